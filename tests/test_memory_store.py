"""MemoryStore called directly, in-process: the errno of every failure, names and paths,
symlinks, handles, hard links and unlinked-open files.

Times, permissions, xattrs, hidden names, quota, rename, snapshots, content and threads have
their own ``test_store_*.py`` files.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

import pytest

from defuse2.store import read_stored
from defuse2.store.base import Store
from defuse2.store.content import CHUNK_COST
from defuse2.store.memory import MemoryStore
from defuse2.store.namespace import entry_cost
from defuse2.store.quota import NODE_COST
from errnos import errno_of
from memory_tree import ALICE, ROOT, read_file, small_tree, write_file


@pytest.fixture
def store() -> MemoryStore:
    """The small tree of :func:`memory_tree.small_tree`."""
    return small_tree()


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


def test_read_stored_reads_a_whole_file(store: MemoryStore) -> None:
    write_file(store, "/big", bytes(range(256)) * 1000)
    assert read_stored(store, "/big") == bytes(range(256)) * 1000
    assert read_stored(store, "/file") == b"hello"
    assert errno_of(lambda: read_stored(store, "/link")) == errno.ELOOP
    assert errno_of(lambda: read_stored(store, "/missing")) == errno.ENOENT
    assert errno_of(lambda: read_stored(store, "/dir")) == errno.EISDIR
