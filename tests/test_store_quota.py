"""The MemoryStore quota: the size parser, ENOSPC refusals that change nothing, holes
that cost nothing, truthful statfs, the node cap, and hypothesis properties."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from defuse2.errors import DefuseError
from defuse2.store.base import Context
from defuse2.store.content import CHUNK_SIZE
from defuse2.store.memory import MemoryStore
from defuse2.store.quota import parse_size

KiB, MiB = 1024, 1024 * 1024
ROOT = Context(0, 0, 1)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64 MiB", 64 * MiB),
        ("1.5 GB", 1_500_000_000),
        ("512 KiB", 512 * KiB),
        ("100", 100),
        ("100 B", 100),
        (" 2k ", 2 * KiB),
        ("1.5KiB", 1536),
        ("10 kb", 10_000),
        ("3M", 3 * MiB),
        ("2 mb", 2_000_000),
        ("1 GiB", 1024 * MiB),
        ("1 T", 1024**4),
        ("1 TB", 10**12),
        (".5 KiB", 512),
        ("0", 0),
        (0, 0),
        (12345, 12345),
    ],
)
def test_parse_size(text: int | str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "bad", ["", "abc", "-1", "1 XB", "1.2.3", "MiB", "1 MiBs", -5, True, 1.5, None]
)
def test_parse_size_refuses_with_the_accepted_forms(bad: object) -> None:
    with pytest.raises(DefuseError) as info:
        parse_size(bad)  # type: ignore[arg-type]
    message = str(info.value)
    assert "MiB" in message or "negative" in message


@pytest.mark.parametrize("bad", [0, -1, "3", 2.0, True])
def test_max_nodes_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(DefuseError):
        MemoryStore(quota=MiB, max_nodes=bad)  # type: ignore[arg-type]


def test_quota_string_reaches_the_store() -> None:
    assert MemoryStore(quota="64 MiB").statfs("/")["f_blocks"] == 64 * MiB // 4096
    with pytest.raises(DefuseError):
        MemoryStore(quota="lots")


def test_default_quota_is_half_the_memory_like_tmpfs() -> None:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert MemoryStore().quota.limit == pages // 2


# -- a full picture of the state, to compare before and after a refusal -----------------------
def snapshot(s: MemoryStore) -> dict[str, object]:
    """Everything observable (but atimes, which looking changes)."""
    state: dict[str, object] = {
        "used": s.quota.used,
        "nodes": s.quota.nodes,
        "statfs": s.statfs("/"),
    }
    pending = ["/"]
    while pending:
        path = pending.pop()
        attrs = dict(s.getattr(path))
        del attrs["st_atime"]
        entry: dict[str, object] = {"attrs": attrs, "xattrs": {}}
        for name in s.listxattr(path):
            entry["xattrs"][name] = s.getxattr(path, name)  # type: ignore[index]
        mode = attrs["st_mode"]
        if stat.S_ISDIR(mode):
            names = sorted(s.readdir(path))
            entry["names"] = names
            pending.extend(path.rstrip("/") + "/" + name for name in names)
        elif stat.S_ISLNK(mode):
            entry["target"] = s.readlink(path)
        elif stat.S_ISREG(mode):
            fh = s.open(path, os.O_RDONLY, ctx=ROOT)
            entry["data"] = s.read(path, attrs["st_size"], 0, fh)
            s.release(path, fh)
        state[path] = entry
    return state


@pytest.fixture
def full() -> MemoryStore:
    """A 256 KiB store with 200 KiB in one file, some xattrs and names, max 20 nodes."""
    s = MemoryStore(quota=256 * KiB, max_nodes=20)
    s.mkdir("/d", 0o755)
    fh = s.create("/d/big", 0o644, os.O_WRONLY)
    s.write("/d/big", b"b" * 200 * KiB, 0, fh)
    s.release("/d/big", fh)
    s.symlink("/d/link", "big")
    s.setxattr("/d/big", "user.tag", b"x" * 100, 0)
    return s


def _write_at(offset: int, size: int) -> Callable[[MemoryStore], object]:
    def call(s: MemoryStore) -> None:
        fh = s.open("/d/big", os.O_WRONLY)
        try:
            s.write("/d/big", b"w" * size, offset, fh)
        finally:
            s.release("/d/big", fh)

    return call


def _fill_nodes(s: MemoryStore) -> None:
    for i in range(100):
        if s.quota.nodes == s.quota.max_nodes:
            return
        s.mknod(f"/d/n{i}", stat.S_IFREG | 0o644, 0)


def _fill_bytes(s: MemoryStore) -> None:
    _write_new(s, "/d/filler", s.quota.free_bytes() - 500)


def _nothing(s: MemoryStore) -> None:
    pass


REFUSALS: list[tuple[str, Callable[[MemoryStore], None], Callable[[MemoryStore], object]]] = [
    ("append past quota", _nothing, _write_at(200 * KiB, 60 * KiB)),
    ("write far past the end", _nothing, _write_at(10 * MiB, 60 * KiB)),
    ("overwrite and grow", _nothing, _write_at(190 * KiB, 70 * KiB)),
    ("symlink target", _fill_bytes, lambda s: s.symlink("/d/l2", "t" * 1000)),
    ("xattr value", _nothing, lambda s: s.setxattr("/d/big", "user.more", bytes(60 * KiB), 0)),
    ("xattr grows", _nothing, lambda s: s.setxattr("/d/big", "user.tag", bytes(60 * KiB), 0)),
    ("xattr name", _fill_bytes, lambda s: s.setxattr("/d/big", "user." + "n" * 250, bytes(300), 0)),
    ("fallocate", _nothing, lambda s: _fallocate(s, 0, 200 * KiB, 100 * KiB)),
    ("node cap: mknod", _fill_nodes, lambda s: s.mknod("/d/x", stat.S_IFIFO | 0o644, 0)),
    ("node cap: create", _fill_nodes, lambda s: s.create("/d/x", 0o644)),
    ("node cap: mkdir", _fill_nodes, lambda s: s.mkdir("/d/x", 0o755)),
    ("node cap: link", _fill_nodes, lambda s: s.link("/d/x", "/d/big")),
    ("node cap: symlink", _fill_nodes, lambda s: s.symlink("/d/x", "big")),
]


def _write_new(s: MemoryStore, path: str, size: int) -> None:
    fh = s.create(path, 0o644, os.O_WRONLY)
    try:
        s.write(path, b"n" * size, 0, fh)
    finally:
        s.release(path, fh)


def _fallocate(s: MemoryStore, mode: int, offset: int, size: int) -> None:
    fh = s.open("/d/big", os.O_WRONLY)
    try:
        s.fallocate("/d/big", mode, offset, size, fh)
    finally:
        s.release("/d/big", fh)


@pytest.mark.parametrize(
    ("prepare", "call"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_refusal_is_enospc_and_changes_nothing(
    full: MemoryStore,
    prepare: Callable[[MemoryStore], None],
    call: Callable[[MemoryStore], object],
) -> None:
    prepare(full)
    before = snapshot(full)
    with pytest.raises(OSError) as info:
        call(full)
    assert info.value.errno == errno.ENOSPC
    assert snapshot(full) == before


def test_refused_write_to_a_new_file_leaves_it_empty(full: MemoryStore) -> None:
    used = full.quota.used
    with pytest.raises(OSError) as info:
        _write_new(full, "/d/second", 60 * KiB)
    assert info.value.errno == errno.ENOSPC
    assert full.getattr("/d/second")["st_size"] == 0
    assert full.quota.used == used


def test_node_cap_shows_in_statfs(full: MemoryStore) -> None:
    _fill_nodes(full)
    assert full.quota.nodes == 20
    assert full.statfs("/")["f_ffree"] == 0
    full.unlink("/d/n0")
    assert full.statfs("/")["f_ffree"] == 1


def test_quota_can_be_filled_exactly() -> None:
    s = MemoryStore(quota=MiB)
    _write_new_in(s, "/a", MiB)
    assert s.statfs("/")["f_bfree"] == 0
    fh = s.open("/a", os.O_WRONLY)
    with pytest.raises(OSError) as info:
        s.write("/a", b"x", MiB, fh)
    assert info.value.errno == errno.ENOSPC
    s.write("/a", b"o" * 1000, 5000, fh)  # overwriting needs no new space
    s.truncate(None, MiB - 10, fh)
    s.write("/a", b"x" * 10, MiB - 10, fh)
    s.release("/a", fh)
    s.mkdir("/empty-dirs-cost-no-bytes", 0o755)
    _write_new_in(s, "/empty-files-too", 0)
    assert s.quota.used == MiB


def _write_new_in(s: MemoryStore, path: str, size: int) -> None:
    fh = s.create(path, 0o644, os.O_WRONLY)
    s.write(path, b"q" * size, 0, fh)
    s.release(path, fh)


def test_holes_cost_nothing_and_read_as_zeros() -> None:
    s = MemoryStore(quota=MiB)
    fh = s.create("/sparse", 0o644, os.O_RDWR)
    s.truncate(None, 1 << 40, fh)
    assert s.quota.used == 0
    assert s.getattr("/sparse")["st_blocks"] == 0
    assert s.read(None, 10, (1 << 40) - 5, fh) == bytes(5)
    s.write(None, b"x", 10 * 1024 * MiB, fh)  # one byte 10 GiB in
    assert 1 <= s.quota.used <= CHUNK_SIZE
    assert s.read(None, 3, 10 * 1024 * MiB - 1, fh) == b"\0x\0"
    assert s.read(None, 100, 12345678, fh) == bytes(100)
    s.write(None, b"y" * 10, 3 * CHUNK_SIZE, fh)
    assert s.getattr(None, fh)["st_blocks"] * 512 >= s.quota.used
    s.truncate(None, 0, fh)
    assert s.quota.used == 0
    s.release(None, fh)


def test_statfs_is_truthful() -> None:
    s = MemoryStore(quota=400 * KiB, max_nodes=10)
    fresh = s.statfs("/")
    assert fresh == {
        "f_bsize": 4096,
        "f_frsize": 4096,
        "f_blocks": 100,
        "f_bfree": 100,
        "f_bavail": 100,
        "f_files": 10,
        "f_ffree": 9,
        "f_favail": 9,
        "f_namemax": 255,
    }
    _write_new_in(s, "/a", 40 * KiB)
    after = s.statfs("/")
    assert (after["f_bfree"], after["f_bavail"], after["f_ffree"]) == (90, 90, 8)
    assert MemoryStore(quota=MiB).statfs("/")["f_files"] >= 1 << 32


def test_unlink_gives_space_back() -> None:
    s = MemoryStore(quota=MiB, max_nodes=5)
    _write_new_in(s, "/a", 100 * KiB)
    s.link("/b", "/a")
    s.setxattr("/a", "user.x", b"123", 0)
    s.symlink("/c", "a")
    assert s.quota.nodes == 4
    s.unlink("/a")
    assert s.quota.nodes == 3
    s.unlink("/b")
    s.unlink("/c")
    assert (s.quota.used, s.quota.nodes) == (0, 1)


def test_symlink_and_xattr_bytes_count() -> None:
    s = MemoryStore(quota=MiB)
    s.symlink("/l", "target")
    assert s.quota.used == 6
    s.setxattr("/", "user.k", b"abc", 0)
    assert s.quota.used == 6 + 6 + 3
    s.setxattr("/", "user.k", b"a", 0)
    assert s.quota.used == 6 + 6 + 1
    s.removexattr("/", "user.k")
    assert s.quota.used == 6


def test_fallocate_modes() -> None:
    s = MemoryStore(quota=MiB)
    fh = s.create("/f", 0o644, os.O_RDWR)
    s.fallocate(None, 0, 0, 100 * KiB, fh)
    assert s.getattr(None, fh)["st_size"] == 100 * KiB
    assert s.quota.used == 100 * KiB
    s.truncate(None, 300 * KiB, fh)
    s.fallocate(None, 1, 200 * KiB, 500 * KiB, fh)  # KEEP_SIZE: up to the end only
    assert s.getattr(None, fh)["st_size"] == 300 * KiB
    s.fallocate(None, 3, 0, 300 * KiB, fh)  # PUNCH_HOLE | KEEP_SIZE
    assert s.quota.used == 0
    assert s.read(None, 300 * KiB, 0, fh) == bytes(300 * KiB)
    with pytest.raises(OSError) as info:
        s.fallocate(None, 2, 0, 10, fh)
    assert info.value.errno == errno.EOPNOTSUPP
    with pytest.raises(OSError) as info:
        s.fallocate(None, 0, 0, 0, fh)
    assert info.value.errno == errno.EINVAL
    s.release(None, fh)


# -- properties ---------------------------------------------------------------------------------
def accounted(s: MemoryStore) -> int:
    """Bytes really held, counted from the inodes (including unlinked-open ones)."""
    seen: dict[int, int] = {}
    pending = [s._namespace.root]
    while pending:
        node = pending.pop()
        if node.ino in seen:
            continue
        seen[node.ino] = node.cost()
        if node.children:
            pending.extend(node.children.values())
    for handle in s._handles._handles.values():
        seen[handle.inode.ino] = handle.inode.cost()
    return sum(seen.values())


PATHS = st.sampled_from(["/a", "/b", "/d/c", "/d"])
OPS = st.one_of(
    st.tuples(st.just("write"), PATHS, st.integers(0, 300 * KiB), st.integers(0, 80 * KiB)),
    st.tuples(st.just("truncate"), PATHS, st.integers(0, 1 << 30), st.just(0)),
    st.tuples(st.just("create"), PATHS, st.just(0), st.just(0)),
    st.tuples(st.just("mkdir"), PATHS, st.just(0), st.just(0)),
    st.tuples(st.just("unlink"), PATHS, st.just(0), st.just(0)),
    st.tuples(st.just("open"), PATHS, st.just(0), st.just(0)),
    st.tuples(st.just("close"), PATHS, st.just(0), st.just(0)),
    st.tuples(st.just("xattr"), PATHS, st.integers(0, 64 * KiB), st.just(0)),
    st.tuples(st.just("link"), PATHS, st.just(0), st.just(0)),
    st.tuples(st.just("symlink"), PATHS, st.integers(1, 4000), st.just(0)),
    st.tuples(st.just("rename"), PATHS, st.just(0), st.just(0)),
)


def apply(s: MemoryStore, handles: dict[str, int], op: tuple[str, str, int, int]) -> None:
    kind, path, number, size = op
    if kind == "write":
        fh = s.open(path, os.O_WRONLY)
        try:
            s.write(path, bytes([number % 251 + 1]) * size, number, fh)
        finally:
            s.release(path, fh)
    elif kind == "truncate":
        s.truncate(path, number)
    elif kind == "create":
        s.release(path, s.create(path, 0o644, os.O_WRONLY))
    elif kind == "mkdir":
        s.mkdir(path, 0o755)
    elif kind == "unlink":
        s.unlink(path)
    elif kind == "open":
        handles[path + str(len(handles))] = s.open(path, os.O_RDWR)
    elif kind == "close" and handles:
        s.release(None, handles.pop(next(iter(handles))))
    elif kind == "xattr":
        s.setxattr(path, "user.p", bytes(number), 0)
    elif kind == "link":
        s.link(path + "-link", path)
    elif kind == "symlink":
        s.symlink(path + "-sym", "s" * number)
    elif kind == "rename":
        s.rename(path, "/b")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=25))
def test_store_never_holds_more_than_its_quota(ops: list[tuple[str, str, int, int]]) -> None:
    s = MemoryStore(quota=200 * KiB, max_nodes=8)
    handles: dict[str, int] = {}
    for op in ops:
        before = snapshot(s) if op[0] != "open" else None
        try:
            apply(s, handles, op)
        except OSError as exc:
            if exc.errno == errno.ENOSPC and before is not None:
                # a refused operation changes nothing (a write's open/release aside)
                assert snapshot(s) == before, op
        assert 0 <= s.quota.used <= s.quota.limit
        assert 1 <= s.quota.nodes <= 8
        assert accounted(s) == s.quota.used
    for fh in handles.values():
        s.release(None, fh)
    assert accounted(s) == s.quota.used
