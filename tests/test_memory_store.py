"""MemoryStore called directly, in-process: the errno of every failure, handles,
unlinked-open files, times, ownership and permission rules, xattrs.

Quota, rename, snapshots, content and threads have their own ``test_store_*.py`` files.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Callable

import pytest

from defuse2.store import permissions
from defuse2.store.base import (
    UTIME_NOW,
    UTIME_OMIT,
    XATTR_CREATE,
    XATTR_REPLACE,
    Context,
    Store,
)
from defuse2.store.content import CHUNK_COST
from defuse2.store.memory import MemoryStore
from defuse2.store.namespace import entry_cost
from defuse2.store.quota import NODE_COST
from errnos import errno_of

ROOT = Context(0, 0, 1)
ALICE = Context(1000, 1000, 2)
BOB = Context(1001, 1001, 3)
CAROL_IN_ALICE_GROUP = Context(1002, 1000, 4)


@pytest.fixture
def clock(store: MemoryStore) -> list[int]:
    """A fake clock for ``store``: every reading is 1 second after the last."""
    now = [1_700_000_000_000_000_000]

    def tick() -> int:
        now[0] += 1_000_000_000
        return now[0]

    store._clock = tick
    return now


@pytest.fixture
def store() -> MemoryStore:
    """A store holding a small tree::

    /dir/         0755 root
    /dir/sub/     0755 root
    /dir/file     "data"
    /file         "hello"
    /link         -> file
    /empty/       0755 root
    /pub/         1777 root (sticky, world-writable)
    """
    s = MemoryStore(quota="1 MiB", max_nodes=1000)
    s.mkdir("/dir", 0o755, ctx=ROOT)
    s.mkdir("/dir/sub", 0o755, ctx=ROOT)
    s.mkdir("/empty", 0o755, ctx=ROOT)
    s.mkdir("/pub", 0o1777, ctx=ROOT)
    write_file(s, "/dir/file", b"data")
    write_file(s, "/file", b"hello")
    s.symlink("/link", "file", ctx=ROOT)
    return s


def write_file(
    s: MemoryStore, path: str, data: bytes, ctx: Context = ROOT, mode: int = 0o644
) -> None:
    fh = s.create(path, mode, os.O_WRONLY | os.O_TRUNC, ctx=ctx)
    try:
        s.write(path, data, 0, fh, ctx=ctx)
    finally:
        s.release(path, fh)


def read_file(s: MemoryStore, path: str) -> bytes:
    fh = s.open(path, os.O_RDONLY, ctx=ROOT)
    try:
        return s.read(path, 1 << 30, 0, fh)
    finally:
        s.release(path, fh)


def test_is_a_store() -> None:
    assert isinstance(MemoryStore(), Store)


def test_fresh_store_has_an_empty_root() -> None:
    s = MemoryStore(quota=1024)
    attrs = s.getattr("/")
    assert stat.S_ISDIR(attrs["st_mode"])
    assert attrs["st_nlink"] == 2
    assert attrs["st_ino"] == 1
    assert s.readdir("/") == []


def test_write_then_read_back(store: MemoryStore) -> None:
    assert read_file(store, "/file") == b"hello"
    assert read_file(store, "/dir/file") == b"data"
    attrs = store.getattr("/file")
    assert stat.S_ISREG(attrs["st_mode"])
    assert attrs["st_size"] == 5
    assert attrs["st_blksize"] == 4096
    assert attrs["st_blocks"] == 1
    assert sorted(store.readdir("/")) == ["dir", "empty", "file", "link", "pub"]


def test_getattr_keys_are_the_fusepy_ones(store: MemoryStore) -> None:
    attrs = store.getattr("/file")
    for key in [
        "st_mode",
        "st_ino",
        "st_nlink",
        "st_uid",
        "st_gid",
        "st_size",
        "st_atime",
        "st_mtime",
        "st_ctime",
        "st_blocks",
        "st_blksize",
        "st_rdev",
    ]:
        assert isinstance(attrs[key], int), key


def test_directory_nlink_counts_subdirectories(store: MemoryStore) -> None:
    assert store.getattr("/dir")["st_nlink"] == 3
    assert store.getattr("/")["st_nlink"] == 2 + 3
    store.rmdir("/dir/sub")
    assert store.getattr("/dir")["st_nlink"] == 2


def test_inode_numbers_are_stable_and_never_reused(store: MemoryStore) -> None:
    ino = store.getattr("/file")["st_ino"]
    store.rename("/file", "/dir/moved")
    assert store.getattr("/dir/moved")["st_ino"] == ino
    seen = {store.getattr(p)["st_ino"] for p in ("/", "/dir", "/dir/sub", "/dir/moved")}
    store.unlink("/dir/moved")
    write_file(store, "/new", b"")
    assert store.getattr("/new")["st_ino"] not in seen | {ino}


def test_any_byte_but_slash_and_nul_may_be_in_a_name(store: MemoryStore) -> None:
    name = "/\udcff\udcfe odd \t\n:*?\\ ünï"
    write_file(store, name, b"x")
    assert name[1:] in store.readdir("/")
    assert read_file(store, name) == b"x"


NAME_255 = "n" * 255
NAME_256 = "n" * 256

ERRORS: list[tuple[str, Callable[[MemoryStore], object], int]] = [
    ("getattr missing", lambda s: s.getattr("/missing"), errno.ENOENT),
    ("getattr through a file", lambda s: s.getattr("/file/x"), errno.ENOTDIR),
    ("getattr file with slash", lambda s: s.getattr("/file/"), errno.ENOTDIR),
    ("getattr through missing", lambda s: s.getattr("/missing/x"), errno.ENOENT),
    ("getattr name too long", lambda s: s.getattr("/" + NAME_256), errno.ENAMETOOLONG),
    ("missing before long", lambda s: s.getattr("/missing/" + NAME_256), errno.ENOENT),
    ("long before missing", lambda s: s.getattr(f"/{NAME_256}/missing"), errno.ENAMETOOLONG),
    ("deep missing path", lambda s: s.getattr("/" + "a/" * 2047 + "a"), errno.ENOENT),
    ("mkdir existing dir", lambda s: s.mkdir("/dir", 0o755), errno.EEXIST),
    ("mkdir existing file", lambda s: s.mkdir("/file", 0o755), errno.EEXIST),
    ("mkdir existing symlink", lambda s: s.mkdir("/link", 0o755), errno.EEXIST),
    ("mkdir root", lambda s: s.mkdir("/", 0o755), errno.EEXIST),
    ("mkdir in missing", lambda s: s.mkdir("/missing/x", 0o755), errno.ENOENT),
    ("mkdir in file", lambda s: s.mkdir("/file/x", 0o755), errno.ENOTDIR),
    ("mkdir too long", lambda s: s.mkdir("/" + NAME_256, 0o755), errno.ENAMETOOLONG),
    ("rmdir file", lambda s: s.rmdir("/file"), errno.ENOTDIR),
    ("rmdir symlink", lambda s: s.rmdir("/link"), errno.ENOTDIR),
    ("rmdir non-empty", lambda s: s.rmdir("/dir"), errno.ENOTEMPTY),
    ("rmdir missing", lambda s: s.rmdir("/missing"), errno.ENOENT),
    ("rmdir root", lambda s: s.rmdir("/"), errno.EBUSY),
    ("rmdir dot", lambda s: s.rmdir("/empty/."), errno.EINVAL),
    ("rmdir dotdot", lambda s: s.rmdir("/dir/sub/.."), errno.ENOTEMPTY),
    ("unlink dir", lambda s: s.unlink("/dir"), errno.EISDIR),
    ("unlink empty dir", lambda s: s.unlink("/empty"), errno.EISDIR),
    ("unlink root", lambda s: s.unlink("/"), errno.EISDIR),
    ("unlink missing", lambda s: s.unlink("/missing"), errno.ENOENT),
    ("unlink through file", lambda s: s.unlink("/file/x"), errno.ENOTDIR),
    ("open missing", lambda s: s.open("/missing", os.O_RDONLY), errno.ENOENT),
    ("open dir for writing", lambda s: s.open("/dir", os.O_WRONLY), errno.EISDIR),
    ("open dir read-write", lambda s: s.open("/dir", os.O_RDWR), errno.EISDIR),
    ("open dir O_TRUNC", lambda s: s.open("/dir", os.O_RDONLY | os.O_TRUNC), errno.EISDIR),
    ("open file O_DIRECTORY", lambda s: s.open("/file", os.O_DIRECTORY), errno.ENOTDIR),
    ("open symlink", lambda s: s.open("/link", os.O_RDONLY), errno.ELOOP),
    ("create on dir", lambda s: s.create("/dir", 0o644, os.O_WRONLY), errno.EISDIR),
    ("create O_EXCL", lambda s: s.create("/file", 0o644, os.O_EXCL), errno.EEXIST),
    ("create in missing", lambda s: s.create("/missing/f", 0o644), errno.ENOENT),
    ("create in file", lambda s: s.create("/file/f", 0o644), errno.ENOTDIR),
    ("create too long", lambda s: s.create("/" + NAME_256, 0o644), errno.ENAMETOOLONG),
    ("opendir file", lambda s: s.opendir("/file"), errno.ENOTDIR),
    ("opendir missing", lambda s: s.opendir("/missing"), errno.ENOENT),
    ("readdir file", lambda s: s.readdir("/file"), errno.ENOTDIR),
    ("readlink file", lambda s: s.readlink("/file"), errno.EINVAL),
    ("readlink dir", lambda s: s.readlink("/dir"), errno.EINVAL),
    ("readlink missing", lambda s: s.readlink("/missing"), errno.ENOENT),
    ("symlink existing", lambda s: s.symlink("/file", "x"), errno.EEXIST),
    ("symlink empty target", lambda s: s.symlink("/new", ""), errno.ENOENT),
    ("symlink target too long", lambda s: s.symlink("/new", "a" * 4096), errno.ENAMETOOLONG),
    ("symlink in missing", lambda s: s.symlink("/missing/l", "x"), errno.ENOENT),
    ("link to dir", lambda s: s.link("/new", "/dir"), errno.EPERM),
    ("link over existing", lambda s: s.link("/dir/file", "/file"), errno.EEXIST),
    ("link missing source", lambda s: s.link("/new", "/missing"), errno.ENOENT),
    ("link into missing dir", lambda s: s.link("/missing/new", "/file"), errno.ENOENT),
    ("mknod dir", lambda s: s.mknod("/x", stat.S_IFDIR | 0o755, 0), errno.EPERM),
    ("mknod symlink", lambda s: s.mknod("/x", stat.S_IFLNK | 0o777, 0), errno.EINVAL),
    ("mknod existing", lambda s: s.mknod("/file", stat.S_IFIFO | 0o644, 0), errno.EEXIST),
    (
        "mknod device as user",
        lambda s: s.mknod("/pub/null", stat.S_IFCHR | 0o666, os.makedev(1, 3), ctx=ALICE),
        errno.EPERM,
    ),
    ("truncate dir", lambda s: s.truncate("/dir", 0), errno.EISDIR),
    ("truncate negative", lambda s: s.truncate("/file", -1), errno.EINVAL),
    ("truncate symlink", lambda s: s.truncate("/link", 0), errno.EINVAL),
    ("truncate missing", lambda s: s.truncate("/missing", 0), errno.ENOENT),
    ("chmod missing", lambda s: s.chmod("/missing", 0o644), errno.ENOENT),
    ("chown missing", lambda s: s.chown("/missing", 0, 0), errno.ENOENT),
    ("utimens missing", lambda s: s.utimens("/missing", None), errno.ENOENT),
    ("access missing", lambda s: s.access("/missing", os.F_OK), errno.ENOENT),
    ("statfs missing", lambda s: s.statfs("/missing"), errno.ENOENT),
    ("read unknown fh", lambda s: s.read("/file", 1, 0, 999), errno.EBADF),
    ("write unknown fh", lambda s: s.write("/file", b"x", 0, 999), errno.EBADF),
    ("release unknown fh", lambda s: s.release("/file", 999), errno.EBADF),
    ("releasedir unknown fh", lambda s: s.releasedir("/dir", 999), errno.EBADF),
    ("flush unknown fh", lambda s: s.flush("/file", 999), errno.EBADF),
    ("fsync unknown fh", lambda s: s.fsync("/file", 0, 999), errno.EBADF),
    ("getattr unknown fh", lambda s: s.getattr(None, 999), errno.EBADF),
    ("path with NUL", lambda s: s.getattr("/fi\0le"), errno.EINVAL),
    ("relative path", lambda s: s.getattr("file"), errno.EINVAL),
]


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errno(store: MemoryStore, call: Callable[[MemoryStore], object], expected: int) -> None:
    assert errno.errorcode[errno_of(lambda: call(store))] == errno.errorcode[expected]


def test_names_of_255_bytes_are_fine(store: MemoryStore) -> None:
    store.mkdir("/" + NAME_255, 0o755)
    write_file(store, f"/{NAME_255}/{NAME_255}", b"x")
    multibyte = "é" * 127  # 254 bytes
    write_file(store, "/" + multibyte, b"")
    assert errno_of(lambda: store.mkdir("/" + "é" * 128, 0o755)) == errno.ENAMETOOLONG
    assert errno_of(lambda: store.mkdir("/" + "\udcff" * 256, 0o755)) == errno.ENAMETOOLONG
    store.mkdir("/" + "\udcff" * 255, 0o755)


def test_path_of_4095_bytes_is_fine(store: MemoryStore) -> None:
    path = ""
    while len(path) + 2 <= 4095 - 250:
        path += "/" + "d" * 200
        store.mkdir(path, 0o755)
    last = path + "/" + "f" * (4095 - len(path) - 1)
    assert len(last) == 4095
    write_file(store, last, b"ok")
    assert read_file(store, last) == b"ok"


def test_paths_longer_than_path_max_are_fine(store: MemoryStore) -> None:
    """PATH_MAX limits a system call's argument (the kernel checks it), not the path
    from the mount root, which a relative path deep in the tree makes longer."""
    path = ""
    for _ in range(40):  # 40 * 256 bytes: 2.5 times PATH_MAX
        path += "/" + "d" * 255
        store.mkdir(path, 0o755)
    deep = path + "/" + "f" * 255
    write_file(store, deep, b"deep")
    assert read_file(store, deep) == b"deep"
    assert store.find_names(path) == ["f" * 255]
    store.rename(deep, path + "/g")
    store.symlink(path + "/s", ".")
    assert store.getattr(path + "/s/g")["st_size"] == 4  # through the symlink
    store.unlink(path + "/g")
    assert errno_of(lambda: store.getattr(path + "/s/g")) == errno.ENOENT
    assert errno_of(lambda: store.symlink(path + "/t", "x" * 4096)) == errno.ENAMETOOLONG


def test_dot_and_dotdot_in_paths(store: MemoryStore) -> None:
    assert store.getattr("/dir/./sub/..") == store.getattr("/dir")
    assert store.getattr("/..")["st_ino"] == 1
    assert errno_of(lambda: store.mkdir("/dir/.", 0o755)) == errno.EEXIST


def test_intermediate_symlinks_are_followed_final_ones_not(store: MemoryStore) -> None:
    store.symlink("/dirlink", "dir")
    store.symlink("/abs", "/dir/sub")
    assert read_file(store, "/dirlink/file") == b"data"
    assert store.getattr("/abs/..")["st_ino"] == store.getattr("/dir")["st_ino"]
    assert stat.S_ISLNK(store.getattr("/dirlink")["st_mode"])
    store.symlink("/loop", "loop")
    assert errno_of(lambda: store.getattr("/loop/x")) == errno.ELOOP
    assert errno_of(lambda: store.getattr("/link/x")) == errno.ENOTDIR


def test_symlink_attributes(store: MemoryStore) -> None:
    attrs = store.getattr("/link")
    assert stat.S_ISLNK(attrs["st_mode"])
    assert stat.S_IMODE(attrs["st_mode"]) == 0o777
    assert attrs["st_size"] == 4
    assert store.readlink("/link") == "file"
    store.symlink("/dangling", "/nowhere/\udcff")
    assert store.readlink("/dangling") == "/nowhere/\udcff"
    assert store.getattr("/dangling")["st_size"] == len("/nowhere/") + 1


# -- handles ---------------------------------------------------------------------------------
def test_handles(store: MemoryStore) -> None:
    ro = store.open("/file", os.O_RDONLY)
    wo = store.open("/file", os.O_WRONLY)
    dh = store.opendir("/dir")
    dir_as_file = store.open("/dir", os.O_RDONLY)
    assert len({ro, wo, dh, dir_as_file}) == 4
    assert errno_of(lambda: store.write("/file", b"x", 0, ro)) == errno.EBADF
    assert errno_of(lambda: store.read("/file", 1, 0, wo)) == errno.EBADF
    assert errno_of(lambda: store.read("/dir", 1, 0, dh)) == errno.EISDIR
    assert errno_of(lambda: store.write("/dir", b"x", 0, dh)) == errno.EISDIR
    assert errno_of(lambda: store.read("/dir", 1, 0, dir_as_file)) == errno.EISDIR
    assert errno_of(lambda: store.truncate("/file", 0, ro)) == errno.EINVAL
    assert errno_of(lambda: store.read("/file", 1, -1, ro)) == errno.EINVAL
    assert errno_of(lambda: store.write("/file", b"x", -1, wo)) == errno.EINVAL
    assert store.readdir("/dir", dh) == ["sub", "file"]
    assert store.getattr(None, ro) == store.getattr("/file")
    store.flush("/file", ro)
    store.fsync("/file", 1, wo)
    for fh in (ro, wo, dir_as_file):
        store.release("/file", fh)
    store.releasedir("/dir", dh)
    assert errno_of(lambda: store.release("/file", ro)) == errno.EBADF
    assert errno_of(lambda: store.read("/file", 1, 0, ro)) == errno.EBADF


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/dir", ["sub", "file"]),
        ("/dir/sub", []),
        ("/missing", None),
        ("/missing/deeper", None),
        ("/file", None),  # ENOTDIR
        ("/dir/file/below", None),  # ENOTDIR on the way
        ("/link", None),  # a symlink, not followed
        ("/link/below", None),  # through a symlink to a file
        ("/dir/../dir", ["sub", "file"]),
    ],
)
def test_find_names_answers_none_where_readdir_fails(
    store: MemoryStore, path: str, names: list[str] | None
) -> None:
    assert store.find_names(path) == names
    if names is None:
        assert errno_of(lambda: store.readdir(path)) in (errno.ENOENT, errno.ENOTDIR)
    else:
        assert store.readdir(path) == names


def test_find_names_raises_what_is_not_a_missing_directory(store: MemoryStore) -> None:
    assert errno_of(lambda: store.find_names("/dir/" + "x" * 256)) == errno.ENAMETOOLONG
    store.symlink("/loop", "/loop")
    assert errno_of(lambda: store.find_names("/loop/x")) == errno.ELOOP


def test_handle_keeps_naming_the_file_after_rename(store: MemoryStore) -> None:
    fh = store.open("/file", os.O_RDWR)
    store.rename("/file", "/dir/renamed")
    store.write(None, b"J", 0, fh)
    assert store.read("/whatever", 5, 0, fh) == b"Jello"
    store.release(None, fh)
    assert read_file(store, "/dir/renamed") == b"Jello"


def test_read_past_the_end_and_zero_sizes(store: MemoryStore) -> None:
    fh = store.open("/file", os.O_RDWR)
    assert store.read("/file", 10, 5, fh) == b""
    assert store.read("/file", 10, 100, fh) == b""
    assert store.read("/file", 0, 0, fh) == b""
    assert store.read("/file", 3, 3, fh) == b"lo"
    assert store.write("/file", b"", 100, fh) == 0
    assert store.getattr("/file")["st_size"] == 5
    store.release("/file", fh)


def test_create_opens_an_existing_file(store: MemoryStore) -> None:
    fh = store.create("/file", 0o600, os.O_RDWR)
    assert store.read("/file", 10, 0, fh) == b"hello"
    store.release("/file", fh)
    assert stat.S_IMODE(store.getattr("/file")["st_mode"]) == 0o644
    fh = store.create("/file", 0o600, os.O_WRONLY | os.O_TRUNC)
    store.release("/file", fh)
    assert store.getattr("/file")["st_size"] == 0


def test_open_with_o_trunc(store: MemoryStore) -> None:
    fh = store.open("/file", os.O_WRONLY | os.O_TRUNC)
    assert store.getattr(None, fh)["st_size"] == 0
    store.release(None, fh)


def test_mknod_kinds(store: MemoryStore) -> None:
    store.mknod("/fifo", stat.S_IFIFO | 0o640, 0)
    store.mknod("/plain", 0o600, 0)
    store.mknod("/null", stat.S_IFCHR | 0o666, os.makedev(1, 3), ctx=ROOT)
    store.mknod("/blk", stat.S_IFBLK | 0o660, os.makedev(8, 1), ctx=ROOT)
    store.mknod("/sock", stat.S_IFSOCK | 0o755, 0)
    assert stat.S_ISFIFO(store.getattr("/fifo")["st_mode"])
    assert stat.S_ISREG(store.getattr("/plain")["st_mode"])
    assert store.getattr("/null")["st_rdev"] == os.makedev(1, 3)
    assert stat.S_ISBLK(store.getattr("/blk")["st_mode"])
    assert stat.S_ISSOCK(store.getattr("/sock")["st_mode"])
    assert store.getattr("/fifo")["st_rdev"] == 0


# -- hard links and unlinked-open files ---------------------------------------------------
def test_hard_links_share_content_and_metadata(store: MemoryStore) -> None:
    store.link("/dir/hard", "/file")
    assert store.getattr("/file")["st_nlink"] == 2
    assert store.getattr("/dir/hard")["st_ino"] == store.getattr("/file")["st_ino"]
    write_file(store, "/dir/hard", b"changed")
    store.chmod("/dir/hard", 0o600)
    assert read_file(store, "/file") == b"changed"
    assert store.getattr("/file") == store.getattr("/dir/hard")
    store.unlink("/file")
    assert store.getattr("/dir/hard")["st_nlink"] == 1
    assert read_file(store, "/dir/hard") == b"changed"


def test_hard_link_to_a_symlink_links_the_symlink(store: MemoryStore) -> None:
    store.link("/link2", "/link")
    assert store.readlink("/link2") == "file"
    assert store.getattr("/link")["st_nlink"] == 2


def test_unlinked_open_file_lives_until_released(store: MemoryStore) -> None:
    used = store.quota.used
    nodes = store.quota.nodes
    fh = store.create("/doomed", 0o644, os.O_RDWR)
    store.write("/doomed", b"x" * 5000, 0, fh)
    store.unlink("/doomed")
    assert "doomed" not in store.readdir("/")
    assert errno_of(lambda: store.getattr("/doomed")) == errno.ENOENT
    assert store.getattr(None, fh)["st_nlink"] == 0
    assert store.read(None, 5000, 0, fh) == b"x" * 5000
    store.write(None, b"y" * 1000, 5000, fh)
    store.truncate(None, 5500, fh)
    store.chmod(None, 0o600, fh)
    assert store.getattr(None, fh)["st_size"] == 5500
    assert store.quota.used == used + NODE_COST + 5500 + CHUNK_COST  # its name is gone
    assert store.quota.nodes == nodes + 1
    second = store.open("/file", os.O_RDONLY)
    store.release(None, fh)
    assert store.quota.used == used
    assert store.quota.nodes == nodes
    store.release("/file", second)


def test_renamed_over_open_file_lives_until_released(store: MemoryStore) -> None:
    fh = store.open("/file", os.O_RDONLY)
    used = store.quota.used
    store.rename("/dir/file", "/file")
    assert read_file(store, "/file") == b"data"
    assert store.read(None, 100, 0, fh) == b"hello"
    assert store.quota.used == used - entry_cost("file")  # one name fewer
    store.release(None, fh)
    assert store.quota.used == used - entry_cost("file") - NODE_COST - 5 - CHUNK_COST


def test_removed_directory_open_handle(store: MemoryStore) -> None:
    dh = store.opendir("/empty")
    store.rmdir("/empty")
    assert store.readdir("/empty", dh) == []
    assert store.getattr(None, dh)["st_nlink"] == 0
    store.releasedir(None, dh)


# -- times -------------------------------------------------------------------------------------
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


# -- ownership and permissions ---------------------------------------------------------------
def test_new_nodes_belong_to_the_caller(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE)
    store.mkdir("/pub/d", 0o700, ctx=ALICE)
    for path in ("/pub/a", "/pub/d"):
        attrs = store.getattr(path)
        assert (attrs["st_uid"], attrs["st_gid"]) == (1000, 1000)


def test_the_store_does_not_apply_a_umask(store: MemoryStore) -> None:
    store.mkdir("/wide", 0o777, ctx=Context(0, 0, 1, 0o077))
    assert stat.S_IMODE(store.getattr("/wide")["st_mode"]) == 0o777


def test_mkdir_drops_setuid_and_setgid_bits(store: MemoryStore) -> None:
    store.mkdir("/d", 0o7777)
    assert stat.S_IMODE(store.getattr("/d")["st_mode"]) == 0o1777


def test_setgid_directory_passes_on_its_group(store: MemoryStore) -> None:
    store.mkdir("/shared", 0o777, ctx=ROOT)
    store.chown("/shared", 0, 50, ctx=ROOT)
    store.chmod("/shared", 0o2777, ctx=ROOT)
    write_file(store, "/shared/f", b"", ctx=ALICE, mode=0o2755)
    store.mkdir("/shared/sub", 0o755, ctx=ALICE)
    f, sub = store.getattr("/shared/f"), store.getattr("/shared/sub")
    assert f["st_gid"] == sub["st_gid"] == 50
    assert f["st_uid"] == 1000
    assert sub["st_mode"] & stat.S_ISGID
    assert not f["st_mode"] & stat.S_ISGID  # alice is not in group 50
    write_file(store, "/shared/g", b"", ctx=Context(1000, 50, 9), mode=0o2755)
    assert store.getattr("/shared/g")["st_mode"] & stat.S_ISGID


def test_chmod_rules(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE)
    assert errno_of(lambda: store.chmod("/pub/a", 0o777, ctx=BOB)) == errno.EPERM
    store.chmod("/pub/a", 0o2755, ctx=ALICE)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o2755
    store.chown("/pub/a", -1, 7, ctx=ROOT)
    store.chmod("/pub/a", 0o2755, ctx=ALICE)  # group 7 is not alice's: setgid dropped
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o755
    store.chmod("/pub/a", 0o6711, ctx=ROOT)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o6711
    assert stat.S_ISREG(store.getattr("/pub/a")["st_mode"])


def test_chown_rules(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE)
    assert errno_of(lambda: store.chown("/pub/a", 1001, -1, ctx=ALICE)) == errno.EPERM
    assert errno_of(lambda: store.chown("/pub/a", -1, 1001, ctx=ALICE)) == errno.EPERM
    assert errno_of(lambda: store.chown("/pub/a", -1, 1000, ctx=BOB)) == errno.EPERM
    assert errno_of(lambda: store.chown("/pub/a", 1000, -1, ctx=BOB)) == errno.EPERM
    store.chown("/pub/a", 1000, 1000, ctx=ALICE)  # no change: allowed
    store.chown("/pub/a", -1, -1, ctx=BOB)  # nothing asked: allowed
    store.chown("/pub/a", 0xFFFFFFFF, 0xFFFFFFFF, ctx=ALICE)  # unsigned -1
    store.chown("/pub/a", 1001, 1001, ctx=ROOT)
    attrs = store.getattr("/pub/a")
    assert (attrs["st_uid"], attrs["st_gid"]) == (1001, 1001)
    store.chown("/pub/a", -1, 1000, ctx=Context(1001, 1000, 5))  # owner, to own group
    assert store.getattr("/pub/a")["st_gid"] == 1000


@pytest.mark.parametrize(
    ("mode", "ctx", "after"),
    [
        (0o6755, ROOT, 0o0755),
        (0o6745, ROOT, 0o2745),
        (0o6755, ALICE, 0o0755),
    ],
)
def test_chown_clears_setuid_and_setgid(
    store: MemoryStore, mode: int, ctx: Context, after: int
) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE)
    store.chmod("/pub/a", mode, ctx=ROOT)
    store.chown("/pub/a", -1, -1, ctx=ctx)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == after


def test_chown_keeps_setgid_on_directories(store: MemoryStore) -> None:
    store.chmod("/empty", 0o2755)
    store.chown("/empty", 5, 5)
    assert stat.S_IMODE(store.getattr("/empty")["st_mode"]) == 0o2755


def test_write_and_truncate_by_non_root_clear_setuid(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"abc", ctx=ALICE, mode=0o666)
    store.chmod("/pub/a", 0o6777, ctx=ROOT)
    fh = store.open("/pub/a", os.O_WRONLY, ctx=ROOT)
    store.write(None, b"x", 0, fh, ctx=ROOT)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o6777
    store.write(None, b"x", 0, fh, ctx=BOB)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o0777
    store.chmod("/pub/a", 0o6777, ctx=ROOT)
    store.truncate("/pub/a", 1, ctx=BOB)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o0777
    store.release(None, fh)


#: A valid ``security.capability`` value (revision 2: ``cap_net_bind_service`` permitted).
CAPABILITY = bytes([0, 0, 0, 2, 0, 4, 0, 0]) + bytes(12)


@pytest.mark.parametrize(
    "change",
    [
        lambda s, fh: s.write(None, b"x", 0, fh, ctx=ROOT),
        lambda s, fh: s.truncate(None, 1, fh, ctx=ROOT),
        lambda s, fh: s.fallocate(None, 0, 0, 8192, fh, ctx=ROOT),
        lambda s, fh: s.release(None, s.open("/pub/a", os.O_WRONLY | os.O_TRUNC, ctx=ROOT)),
        lambda s, fh: s.chown("/pub/a", -1, -1, ctx=ROOT),
    ],
    ids=["write", "truncate", "fallocate", "open-O_TRUNC", "chown"],
)
def test_changing_a_file_drops_its_capabilities_even_by_root(
    store: MemoryStore, change: Callable[[MemoryStore, int], None]
) -> None:
    write_file(store, "/pub/a", b"abc", ctx=ALICE, mode=0o755)
    store.setxattr("/pub/a", "security.capability", CAPABILITY, 0, ctx=ROOT)
    store.setxattr("/pub/a", "user.kept", b"1", 0, ctx=ALICE)
    fh = store.open("/pub/a", os.O_WRONLY, ctx=ROOT)
    change(store, fh)
    store.release(None, fh)
    assert store.listxattr("/pub/a") == ["user.kept"]


def test_dropped_capabilities_give_their_quota_back(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE, mode=0o755)
    free = store.quota.free_bytes()
    store.setxattr("/pub/a", "security.capability", CAPABILITY, 0, ctx=ROOT)
    assert store.quota.free_bytes() < free
    store.chown("/pub/a", -1, -1, ctx=ROOT)
    assert store.quota.free_bytes() == free


def test_fallocate_by_non_root_clears_setuid(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"abc", ctx=ALICE, mode=0o666)
    store.chmod("/pub/a", 0o6777, ctx=ROOT)
    fh = store.open("/pub/a", os.O_WRONLY, ctx=BOB)
    store.fallocate(None, 0, 0, 4096, fh, ctx=ROOT)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o6777
    store.fallocate(None, 0, 0, 8192, fh, ctx=BOB)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o0777
    store.release(None, fh)


def test_a_writer_may_clear_only_what_a_write_clears(store: MemoryStore) -> None:
    """Before a write by someone else, the kernel asks the filesystem, as the writer, to
    clear setuid/setgid with a chmod: allowed, and nothing more."""
    write_file(store, "/pub/a", b"abc", ctx=ALICE)
    store.chmod("/pub/a", 0o6777, ctx=ALICE)
    for refused in (0o6777, 0o6776, 0o7777, 0o4777 | 0o1000, 0o0700):
        assert errno_of(lambda m=refused: store.chmod("/pub/a", m, ctx=BOB)) == errno.EPERM
    store.chmod("/pub/a", 0o2777, ctx=BOB)  # setuid only
    store.chmod("/pub/a", 0o0777, ctx=BOB)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o777
    store.chmod("/pub/a", 0o2767, ctx=ALICE)  # setgid without group-execute
    store.chmod("/pub/a", 0o0767, ctx=BOB)  # bob is not in the group: a write clears it
    store.chmod("/pub/a", 0o2767, ctx=ALICE)
    member = Context(1001, 1000, 7)
    assert errno_of(lambda: store.chmod("/pub/a", 0o0767, ctx=member)) == errno.EPERM
    store.chmod("/pub/a", 0o6755, ctx=ALICE)  # bob may not write: he may not clear
    assert errno_of(lambda: store.chmod("/pub/a", 0o0755, ctx=BOB)) == errno.EPERM
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o6755


def test_write_clears_setgid_without_group_execute_for_non_members(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"abc", ctx=ALICE, mode=0o666)
    fh = store.open("/pub/a", os.O_WRONLY, ctx=ROOT)
    for writer, after in ((Context(1001, 1000, 7), 0o2767), (BOB, 0o0767)):
        store.chmod("/pub/a", 0o2767, ctx=ALICE)
        store.write(None, b"x", 0, fh, ctx=writer)
        assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == after
    store.release(None, fh)


def test_supplementary_groups_are_read_from_the_calling_process() -> None:
    me = Context(os.geteuid(), os.getegid(), os.getpid())
    assert permissions.supplementary_groups(me) == frozenset(os.getgroups())
    assert permissions.supplementary_groups(me._replace(uid=me.uid + 1)) == frozenset()
    assert permissions.supplementary_groups(me._replace(pid=1 << 30)) == frozenset()


def test_utimens_permissions(store: MemoryStore) -> None:
    write_file(store, "/pub/mine", b"", ctx=ALICE, mode=0o644)
    write_file(store, "/pub/open", b"", ctx=ALICE, mode=0o666)
    explicit = (1, 2)
    assert errno_of(lambda: store.utimens("/pub/mine", explicit, ctx=BOB)) == errno.EPERM
    assert errno_of(lambda: store.utimens("/pub/open", explicit, ctx=BOB)) == errno.EPERM
    assert errno_of(lambda: store.utimens("/pub/mine", None, ctx=BOB)) == errno.EACCES
    now = (UTIME_NOW, UTIME_NOW)
    assert errno_of(lambda: store.utimens("/pub/mine", now, ctx=BOB)) == errno.EACCES
    store.utimens("/pub/open", None, ctx=BOB)
    store.utimens("/pub/open", now, ctx=BOB)
    store.utimens("/pub/mine", explicit, ctx=ALICE)
    store.utimens("/pub/mine", explicit, ctx=ROOT)


@pytest.mark.parametrize(
    ("mode", "ctx", "amode", "ok"),
    [
        (0o000, ROOT, os.R_OK | os.W_OK, True),
        (0o000, ROOT, os.X_OK, False),
        (0o001, ROOT, os.X_OK, True),
        (0o600, ALICE, os.R_OK | os.W_OK, True),
        (0o600, ALICE, os.X_OK, False),
        (0o060, ALICE, os.R_OK, False),  # owner bits decide for the owner
        (0o060, CAROL_IN_ALICE_GROUP, os.R_OK | os.W_OK, True),
        (0o006, CAROL_IN_ALICE_GROUP, os.R_OK, False),
        (0o004, BOB, os.R_OK, True),
        (0o004, BOB, os.W_OK, False),
        (0o000, BOB, os.F_OK, True),
    ],
)
def test_access(store: MemoryStore, mode: int, ctx: Context, amode: int, ok: bool) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE, mode=mode)
    store.chmod("/pub/a", mode, ctx=ROOT)
    if ok:
        store.access("/pub/a", amode, ctx=ctx)
    else:
        assert errno_of(lambda: store.access("/pub/a", amode, ctx=ctx)) == errno.EACCES


def test_root_may_search_any_directory(store: MemoryStore) -> None:
    store.chmod("/empty", 0o000)
    store.access("/empty", os.X_OK, ctx=ROOT)


def test_open_checks_mode_bits(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE, mode=0o640)
    assert errno_of(lambda: store.open("/pub/a", os.O_RDONLY, ctx=BOB)) == errno.EACCES
    assert errno_of(lambda: store.open("/pub/a", os.O_WRONLY, ctx=CAROL_IN_ALICE_GROUP)) == (
        errno.EACCES
    )
    store.release(None, store.open("/pub/a", os.O_RDONLY, ctx=CAROL_IN_ALICE_GROUP))
    assert errno_of(lambda: store.truncate("/pub/a", 0, ctx=BOB)) == errno.EACCES


def test_creating_needs_write_permission_on_the_directory(store: MemoryStore) -> None:
    for call in (
        lambda: store.mkdir("/dir/x", 0o755, ctx=ALICE),
        lambda: store.create("/dir/x", 0o644, ctx=ALICE),
        lambda: store.symlink("/dir/x", "y", ctx=ALICE),
        lambda: store.mknod("/dir/x", stat.S_IFIFO | 0o644, 0, ctx=ALICE),
        lambda: store.link("/dir/x", "/file", ctx=ALICE),
        lambda: store.unlink("/dir/file", ctx=ALICE),
        lambda: store.rmdir("/dir/sub", ctx=ALICE),
    ):
        assert errno_of(call) == errno.EACCES


def test_creator_may_write_a_file_created_read_only(store: MemoryStore) -> None:
    fh = store.create("/pub/ro", 0o444, os.O_WRONLY, ctx=ALICE)
    store.write(None, b"fine", 0, fh, ctx=ALICE)
    store.release(None, fh)


def test_sticky_directory(store: MemoryStore) -> None:
    write_file(store, "/pub/alices", b"", ctx=ALICE)
    store.mkdir("/pub/alicedir", 0o777, ctx=ALICE)
    for call in (
        lambda: store.unlink("/pub/alices", ctx=BOB),
        lambda: store.rmdir("/pub/alicedir", ctx=BOB),
        lambda: store.rename("/pub/alices", "/pub/bobs", ctx=BOB),
        lambda: store.rename("/pub/alicedir", "/pub/bobdir", ctx=BOB),
    ):
        assert errno_of(call) == errno.EPERM
    write_file(store, "/pub/bobs", b"", ctx=BOB)
    assert errno_of(lambda: store.rename("/pub/bobs", "/pub/alices", ctx=BOB)) == errno.EPERM
    store.rename("/pub/alices", "/pub/alices2", ctx=ALICE)
    store.unlink("/pub/alices2", ctx=ROOT)
    store.chown("/pub", 1001, -1, ctx=ROOT)  # bob owns the directory now
    store.rmdir("/pub/alicedir", ctx=BOB)


# -- xattrs --------------------------------------------------------------------------------------
def test_xattrs(store: MemoryStore) -> None:
    store.setxattr("/file", "user.a", b"1", 0)
    store.setxattr("/file", "user.b", b"\x00\xff" * 10, XATTR_CREATE)
    store.setxattr("/file", "user.a", b"22", XATTR_REPLACE)
    store.setxattr("/dir", "user.on_dir", b"", 0)
    store.setxattr("/file", "trusted.t", b"t", 0, ctx=ROOT)
    store.setxattr("/file", "security.s", b"s", 0, ctx=ROOT)
    assert store.getxattr("/file", "user.a") == b"22"
    assert store.getxattr("/file", "user.b") == b"\x00\xff" * 10
    assert store.getxattr("/dir", "user.on_dir") == b""
    assert sorted(store.listxattr("/file")) == ["security.s", "trusted.t", "user.a", "user.b"]
    assert store.listxattr("/empty") == []
    store.removexattr("/file", "user.a")
    assert errno_of(lambda: store.getxattr("/file", "user.a")) == errno.ENODATA
    assert "user.a" not in store.listxattr("/file")


XATTR_ERRORS: list[tuple[str, Callable[[MemoryStore], object], int]] = [
    ("get absent", lambda s: s.getxattr("/file", "user.none"), errno.ENODATA),
    ("remove absent", lambda s: s.removexattr("/file", "user.none"), errno.ENODATA),
    ("replace absent", lambda s: s.setxattr("/file", "user.n", b"", XATTR_REPLACE), errno.ENODATA),
    ("create present", lambda s: s.setxattr("/file", "user.here", b"", XATTR_CREATE), errno.EEXIST),
    ("no namespace", lambda s: s.setxattr("/file", "plain", b"", 0), errno.ENOTSUP),
    ("get no namespace", lambda s: s.getxattr("/file", "plain"), errno.ENOTSUP),
    ("system namespace", lambda s: s.setxattr("/file", "system.posix_acl_access", b"", 0), 95),
    ("empty name", lambda s: s.setxattr("/file", "", b"", 0), errno.ERANGE),
    ("name 256 bytes", lambda s: s.setxattr("/file", "user." + "a" * 251, b"", 0), errno.ERANGE),
    ("value too big", lambda s: s.setxattr("/file", "user.big", bytes(65537), 0), errno.E2BIG),
    ("unknown option", lambda s: s.setxattr("/file", "user.a", b"", 4), errno.EINVAL),
    ("user on symlink", lambda s: s.setxattr("/link", "user.a", b"", 0), errno.EPERM),
    ("get user on symlink", lambda s: s.getxattr("/link", "user.a"), errno.ENODATA),
    ("missing path", lambda s: s.setxattr("/missing", "user.a", b"", 0), errno.ENOENT),
    ("trusted as user", lambda s: s.setxattr("/pub", "trusted.a", b"", 0, ctx=ALICE), errno.EPERM),
    ("user no write", lambda s: s.setxattr("/file", "user.a", b"", 0, ctx=ALICE), errno.EACCES),
    (
        "sticky dir not owner",
        lambda s: s.setxattr("/pub", "user.a", b"", 0, ctx=ALICE),
        errno.EPERM,
    ),
]


@pytest.mark.parametrize(
    ("call", "expected"), [c[1:] for c in XATTR_ERRORS], ids=[c[0] for c in XATTR_ERRORS]
)
def test_xattr_errno(
    store: MemoryStore, call: Callable[[MemoryStore], object], expected: int
) -> None:
    store.setxattr("/file", "user.here", b"x", 0)
    assert errno_of(lambda: call(store)) == expected
    assert store.getxattr("/file", "user.here") == b"x"


def test_xattr_limits_are_inclusive(store: MemoryStore) -> None:
    store.setxattr("/file", "user." + "a" * 250, bytes(65536), 0)
    assert len(store.getxattr("/file", "user." + "a" * 250)) == 65536


def test_xattrs_survive_hard_links_and_renames(store: MemoryStore) -> None:
    store.setxattr("/file", "user.k", b"v", 0)
    store.link("/dir/hard", "/file")
    store.rename("/file", "/moved")
    assert store.getxattr("/dir/hard", "user.k") == b"v"


# -- libfuse's .fuse_hidden names (unlink while open without hard_remove) ----------------------
def hide(s: MemoryStore, path: str, number: int = 1) -> str:
    """What libfuse does when an open file is unlinked: rename it to a hidden name."""
    hidden = path.rsplit("/", 1)[0] + f"/.fuse_hidden{number:016x}"
    s.rename(path, hidden)
    return hidden


def test_hidden_names_are_invisible(store: MemoryStore) -> None:
    used, nodes = store.quota.used, store.quota.nodes
    fh = store.open("/dir/file", os.O_RDWR)
    hidden = hide(store, "/dir/file")
    assert store.readdir("/dir") == ["sub"]
    assert store.getattr(hidden)["st_nlink"] == 0
    assert store.getattr(None, fh)["st_nlink"] == 0
    assert store.read(None, 10, 0, fh) == b"data"
    store.write(None, b"more", 4, fh)
    renamed = entry_cost(hidden.rpartition("/")[2]) - entry_cost("file")
    assert (store.quota.used, store.quota.nodes) == (used + renamed + 4, nodes)
    store.release(None, fh)
    store.unlink(hidden)  # libfuse, at the last release
    file = NODE_COST + entry_cost("file") + len(b"data") + CHUNK_COST
    assert (store.quota.used, store.quota.nodes) == (used - file, nodes - 1)


def test_hidden_names_do_not_count_in_nlink_of_other_links(store: MemoryStore) -> None:
    store.link("/dir/hard", "/dir/file")
    fh = store.open("/dir/file", os.O_RDONLY)
    hidden = hide(store, "/dir/file")
    assert store.getattr("/dir/hard")["st_nlink"] == 1
    assert store.getattr(hidden)["st_nlink"] == 1
    store.rename(hidden, "/dir/visible-again")
    assert store.getattr("/dir/hard")["st_nlink"] == 2
    store.release(None, fh)


def test_rmdir_ignores_and_drops_hidden_names(store: MemoryStore) -> None:
    used = store.quota.used
    fh = store.open("/dir/file", os.O_RDWR)
    hidden = hide(store, "/dir/file")
    store.rmdir("/dir/sub")
    store.rmdir("/dir")
    assert errno_of(lambda: store.unlink(hidden)) == errno.ENOENT
    assert store.read(None, 10, 0, fh) == b"data"
    directories = 2 * NODE_COST + entry_cost("sub") + entry_cost("dir")
    assert store.quota.used == used - directories - entry_cost("file")  # names gone
    store.release(None, fh)
    file = NODE_COST + len(b"data") + CHUNK_COST
    assert store.quota.used == used - directories - entry_cost("file") - file


def test_rename_over_a_directory_ignores_and_drops_hidden_names(store: MemoryStore) -> None:
    fh = store.open("/dir/file", os.O_RDONLY)
    hide(store, "/dir/file")
    store.rmdir("/dir/sub")
    store.rename("/empty", "/dir")
    assert store.readdir("/dir") == []
    assert store.read(None, 10, 0, fh) == b"data"
    store.release(None, fh)


def test_hidden_names_are_not_exported(store: MemoryStore) -> None:
    fh = store.open("/dir/file", os.O_RDONLY)
    hide(store, "/dir/file")
    buffer = io.BytesIO()
    store.export_tar(buffer)
    copy = MemoryStore(quota="1 MiB")
    buffer.seek(0)
    copy.import_tar(buffer)
    assert copy.readdir("/dir") == ["sub"]
    store.release(None, fh)
