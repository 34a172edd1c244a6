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
from defuse2.store.content import CHUNK_COST, CHUNK_SIZE
from defuse2.store.memory import MemoryStore
from defuse2.store.namespace import entry_cost
from defuse2.store.quota import LEAST_NODE_COST, NODE_COST, parse_size
from defuse2.store.xattrs import TABLE_COST, XATTR_COST

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
    """Leave 500 bytes free."""
    s.release("/d/filler", s.create("/d/filler", 0o644, os.O_WRONLY))
    _append(s, "/d/filler", data_fitting(s.quota.free_bytes() - 500))


def data_fitting(nbytes: int) -> int:
    """How many bytes of data a new file's chunks can hold for ``nbytes`` of quota."""
    chunks = -(-nbytes // (CHUNK_SIZE + CHUNK_COST))
    return nbytes - chunks * CHUNK_COST


def _append(s: MemoryStore, path: str, size: int) -> None:
    fh = s.open(path, os.O_WRONLY)
    try:
        s.write(path, b"n" * size, s.getattr(path)["st_size"], fh)
    finally:
        s.release(path, fh)


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
    assert full.quota.used == used + NODE_COST + entry_cost("second")  # the empty file


def test_node_cap_shows_in_statfs(full: MemoryStore) -> None:
    _fill_nodes(full)
    assert full.quota.nodes == 20
    assert full.statfs("/")["f_ffree"] == 0
    full.unlink("/d/n0")
    assert full.statfs("/")["f_ffree"] == 1


def test_quota_can_be_filled_exactly() -> None:
    s = MemoryStore(quota=MiB)
    _write_new_in(s, "/a", 0)
    assert s.quota.used == NODE_COST + entry_cost("a")
    size = data_fitting(s.quota.free_bytes())
    _write_new_in(s, "/a", size)
    assert s.quota.used == MiB
    assert s.statfs("/")["f_bfree"] == 0
    fh = s.open("/a", os.O_WRONLY)
    with pytest.raises(OSError) as info:
        s.write("/a", b"x", size, fh)
    assert info.value.errno == errno.ENOSPC
    s.write("/a", b"o" * 1000, 5000, fh)  # overwriting needs no new space
    s.truncate(None, size - 10, fh)
    s.write("/a", b"x" * 10, size - 10, fh)
    s.release("/a", fh)
    for make in (lambda: s.mkdir("/d", 0o755), lambda: _write_new_in(s, "/e", 0)):
        with pytest.raises(OSError) as info:
            make()  # every node costs memory, an empty one too
        assert info.value.errno == errno.ENOSPC
    assert s.quota.used == MiB


def _write_new_in(s: MemoryStore, path: str, size: int) -> None:
    fh = s.create(path, 0o644, os.O_WRONLY)
    s.write(path, b"q" * size, 0, fh)
    s.release(path, fh)


def test_holes_cost_nothing_and_read_as_zeros() -> None:
    s = MemoryStore(quota=MiB)
    fh = s.create("/sparse", 0o644, os.O_RDWR)
    empty = s.quota.used
    s.truncate(None, 1 << 40, fh)
    assert s.quota.used == empty
    assert s.getattr("/sparse")["st_blocks"] == 0
    assert s.read(None, 10, (1 << 40) - 5, fh) == bytes(5)
    s.write(None, b"x", 10 * 1024 * MiB, fh)  # one byte 10 GiB in
    assert 1 + CHUNK_COST <= s.quota.used - empty <= CHUNK_SIZE + CHUNK_COST
    assert s.read(None, 3, 10 * 1024 * MiB - 1, fh) == b"\0x\0"
    assert s.read(None, 100, 12345678, fh) == bytes(100)
    s.write(None, b"y" * 10, 3 * CHUNK_SIZE, fh)
    assert s.getattr(None, fh)["st_blocks"] * 512 + 2 * CHUNK_COST >= s.quota.used - empty
    s.truncate(None, 0, fh)
    assert s.quota.used == empty
    s.release(None, fh)


def test_every_chunk_costs_its_overhead() -> None:
    """One byte at the start of each chunk of a sparse file: the chunks' overhead counts,
    so they cannot hold more memory than the quota."""
    s = MemoryStore(quota=MiB)
    fh = s.create("/sparse", 0o644, os.O_WRONLY)
    chunks = 0
    with pytest.raises(OSError) as info:
        while True:
            s.write(None, b"x", chunks * CHUNK_SIZE, fh)
            chunks += 1
    assert info.value.errno == errno.ENOSPC
    assert chunks == (MiB - NODE_COST - entry_cost("sparse")) // (1 + CHUNK_COST)
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
    assert s.quota.used == NODE_COST + entry_cost("a") + 40 * KiB + CHUNK_COST
    free = (400 * KiB - s.quota.used) // 4096
    after = s.statfs("/")
    assert (after["f_bfree"], after["f_bavail"], after["f_ffree"]) == (free, free, 8)


def test_the_node_cap_defaults_to_what_the_quota_holds() -> None:
    """As ``tmpfs``'s ``nr_inodes``, finite; and ``df -i`` says how many more fit."""
    s = MemoryStore(quota=MiB)
    assert s.statfs("/")["f_files"] == MiB // LEAST_NODE_COST
    assert s.statfs("/")["f_ffree"] == MiB // LEAST_NODE_COST - 1
    _write_new_in(s, "/big", data_fitting(MiB // 2))
    assert s.statfs("/")["f_ffree"] == s.quota.free_bytes() // LEAST_NODE_COST
    made = 0
    with pytest.raises(OSError) as info:
        while True:
            s.mknod(f"/{made}", stat.S_IFREG | 0o644, 0)
            made += 1
    assert info.value.errno == errno.ENOSPC
    assert s.statfs("/")["f_ffree"] == 0
    assert made >= (MiB // 2 - 2 * LEAST_NODE_COST) // (LEAST_NODE_COST + 6)


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


def test_nodes_names_symlinks_and_xattrs_count() -> None:
    s = MemoryStore(quota=MiB)
    link = NODE_COST + entry_cost("l") + len("target")
    s.symlink("/l", "target")
    assert s.quota.used == link
    s.setxattr("/", "user.k", b"abc", 0)  # the first: the table as well
    assert s.quota.used == link + TABLE_COST + XATTR_COST + 6 + 3
    s.setxattr("/", "user.k", b"a", 0)
    assert s.quota.used == link + TABLE_COST + XATTR_COST + 6 + 1
    s.setxattr("/", "user.j", b"", 0)
    assert s.quota.used == link + TABLE_COST + 2 * XATTR_COST + 12 + 1
    s.removexattr("/", "user.k")
    s.removexattr("/", "user.j")  # the last: the table goes too
    assert s.quota.used == link
    s.mkdir("/" + "d" * 200, 0o755)
    assert s.quota.used == link + NODE_COST + entry_cost("d" * 200)
    s.link("/hard", "/l")
    assert s.quota.used == link + NODE_COST + entry_cost("d" * 200) + entry_cost("hard")
    s.rename("/hard", "/hard-and-longer")  # the name's bytes follow it
    assert s.quota.used == link + NODE_COST + entry_cost("d" * 200) + entry_cost("hard") + 11
    for path in ("/l", "/hard-and-longer", "/" + "d" * 200):
        (s.rmdir if path.startswith("/d") else s.unlink)(path)
    assert (s.quota.used, s.quota.nodes) == (0, 1)


def test_fallocate_modes() -> None:
    s = MemoryStore(quota=MiB)
    fh = s.create("/f", 0o644, os.O_RDWR)
    empty = s.quota.used
    s.fallocate(None, 0, 0, 100 * KiB, fh)
    assert s.getattr(None, fh)["st_size"] == 100 * KiB
    assert s.quota.used == empty + 100 * KiB + 2 * CHUNK_COST
    s.truncate(None, 300 * KiB, fh)
    s.fallocate(None, 1, 200 * KiB, 500 * KiB, fh)  # KEEP_SIZE: up to the end only
    assert s.getattr(None, fh)["st_size"] == 300 * KiB
    s.fallocate(None, 3, 0, 300 * KiB, fh)  # PUNCH_HOLE | KEEP_SIZE
    assert s.quota.used == empty
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
    """Bytes really held, counted from the inodes (including unlinked-open ones) and the
    names of the tree."""
    seen: dict[int, int] = {}
    names = 0
    pending = [s._namespace.root]
    while pending:
        node = pending.pop()
        if node.ino in seen:
            continue
        seen[node.ino] = node.cost()
        if node.children:
            pending.extend(node.children.values())
            names += sum(entry_cost(name) for name in node.children)
    for handle in s._handles._handles.values():
        seen[handle.inode.ino] = handle.inode.cost()
    return sum(seen.values()) + names


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


# -- a MemoryError in the middle leaks nothing ---------------------------------------------


class OutOfMemory:
    """A stand-in for an allocator that fails on call ``fail_at`` (1-based)."""

    def __init__(self, real: Callable[..., object], fail_at: int = 1) -> None:
        self.real, self.calls, self.fail_at = real, 0, fail_at

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.calls == self.fail_at:
            raise MemoryError
        return self.real(*args, **kwargs)


def _content_module(s: MemoryStore) -> object:
    import defuse2.store.content

    return defuse2.store.content


#: (id, what holds the allocator, its name, which call fails, the operation)
MEMORY_ERRORS: list[
    tuple[str, Callable[[MemoryStore], object], str, int, Callable[..., object]]
] = [
    ("create", lambda s: s._namespace, "new_inode", 1, lambda s: s.create("/d/new", 0o644)),
    ("mkdir", lambda s: s._namespace, "attach", 1, lambda s: s.mkdir("/d/new", 0o755)),
    ("link", lambda s: s._namespace, "attach", 1, lambda s: s.link("/d/new", "/d/big")),
    ("write", _content_module, "bytearray", 2, _write_at(300 * KiB, 3 * CHUNK_SIZE)),
    ("fallocate", _content_module, "bytearray", 2, lambda s: _fallocate(s, 0, 0, 4 * CHUNK_SIZE)),
]


@pytest.mark.parametrize(
    ("owner", "name", "fail_at", "call"),
    [case[1:] for case in MEMORY_ERRORS],
    ids=[case[0] for case in MEMORY_ERRORS],
)
def test_a_memory_error_leaks_no_quota(
    owner: Callable[[MemoryStore], object],
    name: str,
    fail_at: int,
    call: Callable[[MemoryStore], object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = MemoryStore(quota=MiB)
    s.mkdir("/d", 0o755)
    _write_new(s, "/d/big", 1000)
    holder = owner(s)
    real = getattr(holder, name, bytearray)
    monkeypatch.setattr(holder, name, OutOfMemory(real, fail_at), raising=False)
    with pytest.raises(MemoryError):
        call(s)
    monkeypatch.undo()
    assert accounted(s) == s.quota.used
    assert sorted(s.readdir("/d")) == ["big"]
    assert s.quota.nodes == 3


def test_a_memory_error_storing_an_xattr_leaks_no_quota() -> None:
    class Unstorable(bytes):
        def __bytes__(self) -> bytes:
            raise MemoryError

    s = MemoryStore(quota=MiB)
    s.mkdir("/d", 0o755)
    used = s.quota.used
    with pytest.raises(MemoryError):
        s.setxattr("/d", "user.big", Unstorable(b"v" * 1000), 0)
    assert s.quota.used == used
    assert s.listxattr("/d") == []
