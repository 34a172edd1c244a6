"""MemoryStore.rename: the POSIX table, renameat2 flags, and never a silent overwrite."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from defuse2.store.base import RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT
from defuse2.store.content import CHUNK_COST
from defuse2.store.memory import MemoryStore
from defuse2.store.namespace import entry_cost
from defuse2.store.quota import NODE_COST


def write_file(s: MemoryStore, path: str, data: bytes) -> None:
    fh = s.create(path, 0o644, os.O_WRONLY)
    s.write(path, data, 0, fh)
    s.release(path, fh)


def read_file(s: MemoryStore, path: str) -> bytes:
    fh = s.open(path, os.O_RDONLY)
    try:
        return s.read(path, 1 << 20, 0, fh)
    finally:
        s.release(path, fh)


@pytest.fixture
def store() -> MemoryStore:
    """::

    /a           "A"
    /b           "B"
    /hard        hard link of /a
    /d/          /d/x "X", /d/sub/ (empty)
    /e/          empty
    /full/       /full/y "Y"
    /sym         -> a
    """
    s = MemoryStore(quota="1 MiB")
    write_file(s, "/a", b"A")
    write_file(s, "/b", b"B")
    s.link("/hard", "/a")
    s.mkdir("/d", 0o755)
    write_file(s, "/d/x", b"X")
    s.mkdir("/d/sub", 0o755)
    s.mkdir("/e", 0o755)
    s.mkdir("/full", 0o755)
    write_file(s, "/full/y", b"Y")
    s.symlink("/sym", "a")
    return s


def tree(s: MemoryStore) -> dict[str, tuple[int, int]]:
    """path -> (inode, size) for everything."""
    out: dict[str, tuple[int, int]] = {}
    pending = ["/"]
    while pending:
        path = pending.pop()
        attrs = s.getattr(path)
        out[path] = (attrs["st_ino"], attrs["st_size"])
        if stat.S_ISDIR(attrs["st_mode"]):
            pending.extend(path.rstrip("/") + "/" + n for n in s.readdir(path))
    return out


FAILURES: list[tuple[str, str, int, int]] = [
    ("/missing", "/z", 0, errno.ENOENT),
    ("/a", "/missing/z", 0, errno.ENOENT),
    ("/missing/a", "/z", 0, errno.ENOENT),
    ("/a/x", "/z", 0, errno.ENOTDIR),
    ("/a", "/b/z", 0, errno.ENOTDIR),
    ("/", "/z", 0, errno.EBUSY),
    ("/a", "/", 0, errno.EBUSY),
    ("/d/.", "/z", 0, errno.EBUSY),
    ("/a", "/d/..", 0, errno.EBUSY),
    ("/a", "/d/..", RENAME_NOREPLACE, errno.EEXIST),
    ("/a", "/d", 0, errno.EISDIR),
    ("/a", "/e", 0, errno.EISDIR),
    ("/d", "/a", 0, errno.ENOTDIR),
    ("/e", "/full", 0, errno.ENOTEMPTY),
    ("/e", "/d", 0, errno.ENOTEMPTY),
    ("/d", "/d/sub/inside", 0, errno.EINVAL),
    ("/d", "/d/inside", 0, errno.EINVAL),
    ("/d/sub", "/d", 0, errno.ENOTEMPTY),
    ("/d", "/d/sub", RENAME_EXCHANGE, errno.EINVAL),
    ("/a", "/b", RENAME_NOREPLACE, errno.EEXIST),
    ("/a", "/hard", RENAME_NOREPLACE, errno.EEXIST),
    ("/a", "/a", RENAME_NOREPLACE, errno.EEXIST),
    ("/e", "/d", RENAME_NOREPLACE, errno.EEXIST),
    ("/a", "/new", RENAME_EXCHANGE, errno.ENOENT),
    ("/missing", "/a", RENAME_EXCHANGE, errno.ENOENT),
    ("/a", "/b", RENAME_WHITEOUT, errno.EINVAL),
    ("/a", "/b", RENAME_NOREPLACE | RENAME_EXCHANGE, errno.EINVAL),
    ("/a", "/b", 8, errno.EINVAL),
    ("/a", "/b", 1 << 20, errno.EINVAL),
    ("/a", "/" + "n" * 256, 0, errno.ENAMETOOLONG),
    ("/a", "/b/", 0, errno.ENOTDIR),
]


@pytest.mark.parametrize(
    ("old", "new", "flags", "expected"),
    FAILURES,
    ids=[f"{o}->{n} flags={f}" for o, n, f, _ in FAILURES],
)
def test_refused_renames_change_nothing(
    store: MemoryStore, old: str, new: str, flags: int, expected: int
) -> None:
    before = tree(store)
    with pytest.raises(OSError) as info:
        store.rename(old, new, flags)
    assert errno.errorcode[info.value.errno] == errno.errorcode[expected]
    assert tree(store) == before


def test_file_replaces_file_atomically(store: MemoryStore) -> None:
    ino = store.getattr("/b")["st_ino"]
    store.rename("/b", "/a")
    assert "b" not in store.readdir("/")
    assert read_file(store, "/a") == b"B"
    assert store.getattr("/a")["st_ino"] == ino
    assert store.getattr("/hard")["st_nlink"] == 1
    assert read_file(store, "/hard") == b"A"


def test_directory_replaces_empty_directory(store: MemoryStore) -> None:
    root_links = store.getattr("/")["st_nlink"]
    store.rename("/d", "/e")
    assert read_file(store, "/e/x") == b"X"
    assert "d" not in store.readdir("/")
    assert store.getattr("/")["st_nlink"] == root_links - 1


def test_directory_moves_between_parents(store: MemoryStore) -> None:
    store.rename("/d/sub", "/e/sub")
    assert store.getattr("/d")["st_nlink"] == 2
    assert store.getattr("/e")["st_nlink"] == 3
    assert store.getattr("/e/sub/..")["st_ino"] == store.getattr("/e")["st_ino"]


@pytest.mark.parametrize(
    ("old", "new"), [("/a", "/hard"), ("/a", "/a"), ("/d", "/d"), ("/sym", "/sym")]
)
def test_same_inode_is_a_no_op(store: MemoryStore, old: str, new: str) -> None:
    before = tree(store)
    store.rename(old, new)
    assert tree(store) == before
    assert "a" in store.readdir("/")


def test_noreplace_moves_to_a_free_name(store: MemoryStore) -> None:
    store.rename("/a", "/d/new", RENAME_NOREPLACE)
    assert read_file(store, "/d/new") == b"A"


def test_exchange_swaps_atomically(store: MemoryStore) -> None:
    a, d = store.getattr("/a")["st_ino"], store.getattr("/d")["st_ino"]
    store.rename("/a", "/d", RENAME_EXCHANGE)
    assert store.getattr("/d")["st_ino"] == a
    assert store.getattr("/a")["st_ino"] == d
    assert read_file(store, "/a/x") == b"X"
    store.rename("/a/x", "/full/y", RENAME_EXCHANGE)
    assert read_file(store, "/a/x") == b"Y"
    assert read_file(store, "/full/y") == b"X"
    store.rename("/a/sub", "/e", RENAME_EXCHANGE)  # two directories, different parents
    assert store.getattr("/a")["st_nlink"] == 3
    assert store.getattr("/e/..")["st_ino"] == 1
    assert store.getattr("/a/sub/..")["st_ino"] == d


def test_rename_of_symlink_moves_the_link(store: MemoryStore) -> None:
    store.rename("/sym", "/d/sym")
    assert store.readlink("/d/sym") == "a"
    assert store.getattr("/a")["st_size"] == 1


def test_replacing_moves_the_quota(store: MemoryStore) -> None:
    write_file(store, "/big", b"z" * 10000)
    used = store.quota.used
    store.rename("/b", "/big")
    big = NODE_COST + 10000 + CHUNK_COST
    assert store.quota.used == used - big - entry_cost("b")  # /big's data, /b's old name
    assert store.quota.nodes == len(tree(store))  # every name counts, /hard too


def test_rename_over_a_file_in_use_keeps_its_data(store: MemoryStore) -> None:
    fh = store.open("/b", os.O_RDWR)
    store.rename("/d/x", "/b")
    assert store.read(None, 10, 0, fh) == b"B"
    store.write(None, b"still", 0, fh)
    store.release(None, fh)
    assert read_file(store, "/b") == b"X"
