"""MemoryStore times: which calls change atime, mtime and ctime, as POSIX says, to the
nanosecond."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

import pytest

from defuse2.store.base import UTIME_NOW, UTIME_OMIT
from defuse2.store.memory import MemoryStore
from memory_tree import small_tree


@pytest.fixture
def store() -> MemoryStore:
    """The small tree of :func:`memory_tree.small_tree`."""
    return small_tree()


@pytest.fixture
def clock(store: MemoryStore) -> list[int]:
    """A fake clock for ``store``: every reading is 1 second after the last."""
    now = [1_700_000_000_000_000_000]

    def tick() -> int:
        now[0] += 1_000_000_000
        return now[0]

    store._clock = tick
    return now


def times(s: MemoryStore, path: str) -> tuple[int, int, int]:
    attrs = s.getattr(path)
    return attrs["st_atime"], attrs["st_mtime"], attrs["st_ctime"]


def changed(before: tuple[int, int, int], after: tuple[int, int, int]) -> str:
    return "".join(name for name, b, a in zip("amc", before, after, strict=True) if a != b)


def _write(s: MemoryStore) -> None:
    fh = s.open("/dir/file", os.O_WRONLY)
    s.write("/dir/file", b"x", 10, fh)
    s.release("/dir/file", fh)


def _read(s: MemoryStore) -> None:
    fh = s.open("/dir/file", os.O_RDONLY)
    s.read("/dir/file", 10, 0, fh)
    s.release("/dir/file", fh)


TIME_CASES: list[tuple[str, Callable[[MemoryStore], object], str, str]] = [
    # (op, call, what changes on /dir/file, what changes on /dir)
    ("write", _write, "mc", ""),
    ("read", _read, "a", ""),
    ("open+release", lambda s: s.release(None, s.open("/dir/file", os.O_RDONLY)), "", ""),
    ("truncate", lambda s: s.truncate("/dir/file", 1), "mc", ""),
    ("truncate same size", lambda s: s.truncate("/dir/file", 4), "mc", ""),
    ("chmod", lambda s: s.chmod("/dir/file", 0o600), "c", ""),
    ("chown", lambda s: s.chown("/dir/file", 5, 5), "c", ""),
    ("setxattr", lambda s: s.setxattr("/dir/file", "user.a", b"1", 0), "c", ""),
    ("getattr", lambda s: s.getattr("/dir/file"), "", ""),
    ("link", lambda s: s.link("/dir/hard", "/dir/file"), "c", "mc"),
    ("link elsewhere", lambda s: s.link("/hard", "/dir/file"), "c", ""),
    ("rename within dir", lambda s: s.rename("/dir/file", "/dir/file2"), "c", "mc"),
    ("create sibling", lambda s: s.release(None, s.create("/dir/new", 0o644)), "", "mc"),
    ("mkdir sibling", lambda s: s.mkdir("/dir/newdir", 0o755), "", "mc"),
    ("symlink sibling", lambda s: s.symlink("/dir/sl", "x"), "", "mc"),
    ("mknod sibling", lambda s: s.mknod("/dir/fifo", stat.S_IFIFO | 0o644, 0), "", "mc"),
    ("rmdir sibling", lambda s: s.rmdir("/dir/sub"), "", "mc"),
    ("readdir", lambda s: s.readdir("/dir"), "", "a"),
    ("utimens now", lambda s: s.utimens("/dir/file", None), "amc", ""),
    ("utimens omit both", lambda s: s.utimens("/dir/file", (UTIME_OMIT, UTIME_OMIT)), "", ""),
    ("utimens omit atime", lambda s: s.utimens("/dir/file", (UTIME_OMIT, 5)), "mc", ""),
    ("utimens now mtime", lambda s: s.utimens("/dir/file", (UTIME_OMIT, UTIME_NOW)), "mc", ""),
]


@pytest.mark.parametrize(
    ("call", "on_file", "on_dir"), [c[1:] for c in TIME_CASES], ids=[c[0] for c in TIME_CASES]
)
def test_times_change_exactly_when_posix_says(
    store: MemoryStore,
    clock: list[int],
    call: Callable[[MemoryStore], object],
    on_file: str,
    on_dir: str,
) -> None:
    file_before, dir_before = times(store, "/dir/file"), times(store, "/dir")
    ino = store.getattr("/dir/file")["st_ino"]
    call(store)
    assert changed(dir_before, times(store, "/dir")) == on_dir
    for path in ("/dir/file", "/dir/file2", "/dir/hard"):
        try:
            if store.getattr(path)["st_ino"] == ino:
                break
        except FileNotFoundError:
            pass
    assert changed(file_before, times(store, path)) == on_file


def test_unlink_and_rename_change_ctime(store: MemoryStore, clock: list[int]) -> None:
    store.link("/hard", "/dir/file")
    before = times(store, "/hard")
    store.unlink("/dir/file")
    assert changed(before, times(store, "/hard")) == "c"
    dir_before, root_before = times(store, "/dir"), times(store, "/")
    store.rename("/hard", "/dir/back")
    assert changed(dir_before, times(store, "/dir")) == "mc"
    assert changed(root_before, times(store, "/")) == "mc"


def test_utimens_sets_exact_nanoseconds(store: MemoryStore, clock: list[int]) -> None:
    store.utimens("/file", (1_234_567_890_123_456_789, -5))
    attrs = store.getattr("/file")
    assert (attrs["st_atime"], attrs["st_mtime"]) == (1_234_567_890_123_456_789, -5)
    assert attrs["st_ctime"] == clock[0]
    store.utimens("/file", (UTIME_NOW, UTIME_OMIT))
    attrs = store.getattr("/file")
    assert attrs["st_atime"] == attrs["st_ctime"] == clock[0]
    assert attrs["st_mtime"] == -5


def test_new_nodes_get_now_for_all_times(store: MemoryStore, clock: list[int]) -> None:
    store.mkdir("/d", 0o755)
    assert times(store, "/d") == (clock[0],) * 3
