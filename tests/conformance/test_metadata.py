"""Attributes: modes, owners, times, special files, extended attributes, capacity."""

from __future__ import annotations

import errno
import os
import stat
import time

import pytest

from defuse2.store.base import UTIME_NOW, UTIME_OMIT

from .targets import Target, errno_of


@pytest.mark.parametrize("mode", [0o000, 0o400, 0o644, 0o755, 0o777, 0o1777, 0o4755, 0o2750])
def test_chmod(t: Target, mode: int) -> None:
    t.write_bytes("f", b"")
    t.mkdir("d")
    t.chmod("f", mode)
    t.chmod("d", mode)
    assert stat.S_IMODE(t.stat("f").st_mode) == mode
    assert stat.S_IMODE(t.stat("d").st_mode) == mode
    assert stat.S_ISREG(t.stat("f").st_mode)
    assert stat.S_ISDIR(t.stat("d").st_mode)


@pytest.mark.parametrize(
    ("uid", "gid", "expected"),
    [(1234, 5678, (1234, 5678)), (1234, -1, (1234, 0)), (-1, 5678, (0, 5678)), (-1, -1, (0, 0))],
)
def test_chown(t: Target, uid: int, gid: int, expected: tuple[int, int]) -> None:
    if os.getuid() != 0:
        pytest.skip("chown to other users needs root")
    t.write_bytes("f", b"")
    t.chown("f", 0, 0)
    t.chown("f", uid, gid)
    st = t.stat("f")
    assert (st.st_uid, st.st_gid) == expected


def test_chown_to_minus_one_changes_no_owner_and_on_fuse_no_time(t: Target) -> None:
    """``chown(f, -1, -1)``: POSIX lets the times stay. tmpfs moves ``ctime``; through
    libfuse's high-level API no callback comes (it calls ``chown`` only for an owner or a
    group to set), so every defuse2 mount keeps it, and the test client does the same."""
    t.write_bytes("f", b"")
    before = t.stat("f")
    time.sleep(0.05)  # past the kernel's coarse clock
    t.chown("f", -1, -1)
    after = t.stat("f")
    assert (after.st_uid, after.st_gid, after.st_mode) == (
        before.st_uid,
        before.st_gid,
        before.st_mode,
    )
    if t.store == "host":
        assert after.st_ctime_ns > before.st_ctime_ns
    else:
        assert after.st_ctime_ns == before.st_ctime_ns


def test_new_files_belong_to_the_caller(t: Target) -> None:
    t.write_bytes("f", b"")
    t.mkdir("d")
    for name in ("f", "d"):
        assert (t.stat(name).st_uid, t.stat(name).st_gid) == (os.getuid(), os.getgid())


TIMES = [
    (1_000_000_001, 2_000_000_002),
    (1_700_000_000_123_456_789, 1_600_000_000_987_654_321),
    (0, 0),
    (-86_400 * 10**9 + 5, 4_102_444_800 * 10**9 + 999_999_999),  # 1969 and 2100
]


@pytest.mark.parametrize("times", TIMES, ids=["small", "recent", "epoch", "1969-2100"])
def test_utime_keeps_nanoseconds(t: Target, times: tuple[int, int]) -> None:
    t.write_bytes("f", b"")
    t.mkdir("d")
    for name in ("f", "d"):
        t.utime(name, ns=times)
        st = t.stat(name)
        assert (st.st_atime_ns, st.st_mtime_ns) == times


def test_utime_now_and_omit(t: Target) -> None:
    t.write_bytes("f", b"")
    old = (1_000_000_000_111, 2_000_000_000_222)
    t.utime("f", ns=old)
    before = time.time_ns()
    t.utime("f", ns=(UTIME_OMIT, UTIME_NOW))
    st = t.stat("f")
    assert st.st_atime_ns == old[0]
    assert st.st_mtime_ns >= before - 10**9
    t.utime("f", ns=old)
    t.utime("f", ns=(UTIME_NOW, UTIME_OMIT))
    st = t.stat("f")
    assert st.st_atime_ns >= before - 10**9
    assert st.st_mtime_ns == old[1]
    t.utime("f", ns=old)
    t.utime("f", ns=(UTIME_OMIT, UTIME_OMIT))
    assert (t.stat("f").st_atime_ns, t.stat("f").st_mtime_ns) == old
    t.utime("f")  # times=None: both now
    st = t.stat("f")
    assert min(st.st_atime_ns, st.st_mtime_ns) >= before - 10**9


def test_utime_of_a_symlink_itself(t: Target) -> None:
    t.require("symlinks")
    t.write_bytes("f", b"")
    t.symlink("f", "s")
    t.utime("f", ns=(10**9, 10**9))
    t.utime("s", ns=(5 * 10**9, 6 * 10**9))  # follows
    assert t.stat("f").st_mtime_ns == 6 * 10**9


OLD = (1_000_000_000 * 10**9, 1_000_000_000 * 10**9)  # 2001

# (id, setup, operation, path whose mtime must change)
MTIME_RULES = [
    ("write", lambda t: t.write_bytes("f", b"x"), lambda t: _append(t, "f"), "f"),
    ("truncate", lambda t: t.write_bytes("f", b"x"), lambda t: t.truncate("f", 10), "f"),
    ("o-trunc", lambda t: t.write_bytes("f", b"x"), lambda t: t.write_bytes("f", b""), "f"),
    ("o-trunc-empty", lambda t: t.write_bytes("f", b""), lambda t: t.write_bytes("f", b""), "f"),
    ("truncate-same-size", lambda t: t.write_bytes("f", b"x"), lambda t: t.truncate("f", 1), "f"),
    (
        "ftruncate-same-size-no-data",
        lambda t: _hole(t, "f", 5000),
        lambda t: _ftruncate(t, "f", 5000),
        "f",
    ),
    (
        "ftruncate-same-size",
        lambda t: t.write_bytes("f", b"x"),
        lambda t: _ftruncate(t, "f", 1),
        "f",
    ),
    ("create-in-dir", lambda t: t.mkdir("d"), lambda t: t.write_bytes("d/f", b""), "d"),
    ("mkdir-in-dir", lambda t: t.mkdir("d"), lambda t: t.mkdir("d/e"), "d"),
    ("unlink-in-dir", lambda t: _file_in_dir(t), lambda t: t.unlink("d/f"), "d"),
    ("rename-out-of-dir", lambda t: _file_in_dir(t), lambda t: t.rename("d/f", "g"), "d"),
    ("rename-into-dir", lambda t: _file_in_dir(t, "g"), lambda t: t.rename("g", "d/g"), "d"),
    ("symlink-in-dir", lambda t: t.mkdir("d"), lambda t: t.symlink("x", "d/s"), "d"),
    ("link-in-dir", lambda t: _file_in_dir(t, "g"), lambda t: t.link("g", "d/h"), "d"),
]


_MTIME_NEEDS = {
    operation: {"symlink-in-dir": "symlinks", "link-in-dir": "hard links"}.get(case)
    for case, _, operation, _ in MTIME_RULES
}


def _append(t: Target, path: str) -> None:
    fd = t.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        t.write(fd, b"more")
    finally:
        t.close(fd)


def _hole(t: Target, path: str, size: int) -> None:
    """A file of ``size`` bytes holding no data."""
    t.write_bytes(path, b"")
    t.truncate(path, size)


def _ftruncate(t: Target, path: str, length: int) -> None:
    fd = t.open(path, os.O_RDWR)
    try:
        t.ftruncate(fd, length)
    finally:
        t.close(fd)


def _file_in_dir(t: Target, outside: str | None = None) -> None:
    t.mkdir("d")
    t.write_bytes(outside or "d/f", b"x")


@pytest.mark.parametrize(
    ("setup", "operation", "changed"),
    [case[1:] for case in MTIME_RULES],
    ids=[case[0] for case in MTIME_RULES],
)
def test_operations_update_mtime(t: Target, setup, operation, changed: str) -> None:
    t.require(_MTIME_NEEDS[operation])
    setup(t)
    t.utime(changed, ns=OLD)
    operation(t)
    assert t.stat(changed).st_mtime_ns > OLD[1]


@pytest.mark.parametrize(
    "operation",
    [
        lambda t: t.read_bytes("f"),
        lambda t: t.stat("f"),
        lambda t: t.listdir("."),
        lambda t: t.chmod("f", 0o600),
        lambda t: t.setxattr("f", "user.k", b"v"),
    ],
    ids=["read", "stat", "listdir", "chmod", "setxattr"],
)
def test_operations_keep_mtime(t: Target, operation, request: pytest.FixtureRequest) -> None:
    if "setxattr" in request.node.callspec.id:
        t.require("xattrs")
    t.write_bytes("f", b"x")
    t.utime("f", ns=OLD)
    operation(t)
    assert t.stat("f").st_mtime_ns == OLD[1]


def test_chmod_changes_ctime_not_mtime(t: Target) -> None:
    t.write_bytes("f", b"x")
    t.utime("f", ns=OLD)
    ctime = t.stat("f").st_ctime_ns
    t.chmod("f", 0o600)
    st = t.stat("f")
    assert st.st_mtime_ns == OLD[1]
    assert st.st_ctime_ns >= ctime


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        (stat.S_IFIFO | 0o640, stat.S_ISFIFO),
        (stat.S_IFREG | 0o640, stat.S_ISREG),
        (0o640, stat.S_ISREG),
    ],
    ids=["fifo", "regular", "no-type-is-regular"],
)
def test_mknod(t: Target, mode: int, check) -> None:
    if not stat.S_ISREG(mode) and stat.S_IFMT(mode):
        t.require("special files")
    t.mknod("node", mode)
    st = t.lstat("node")
    assert check(st.st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(st.st_mode) == 0o640 & ~umask
    assert st.st_size == 0
    assert t.listdir() == ["node"]


def test_access(t: Target) -> None:
    t.write_bytes("f", b"")
    assert t.access("f", os.F_OK)
    assert t.access("f", os.R_OK | os.W_OK)
    assert not t.access("missing", os.F_OK)


def test_statvfs(t: Target) -> None:
    st = t.statvfs()
    assert st.f_namemax == 255
    assert st.f_frsize > 0 and st.f_bsize > 0
    assert 0 <= st.f_bavail <= st.f_bfree <= st.f_blocks
    if t.quota is not None:
        assert st.f_blocks * st.f_frsize == t.quota


def test_statvfs_counts_written_bytes(t: Target) -> None:
    t.require("capacity")
    before = t.statvfs()
    t.write_bytes("f", b"x" * (512 * 1024))
    after = t.statvfs()
    used = (before.f_bfree - after.f_bfree) * before.f_frsize
    assert 512 * 1024 <= used <= 512 * 1024 + 64 * 1024
    t.unlink("f")
    assert t.statvfs().f_bfree == before.f_bfree


# -- extended attributes -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_xattrs(t: Target, kind: str) -> None:
    t.require("xattrs")
    if kind == "file":
        t.write_bytes("x", b"")
    else:
        t.mkdir("x")
    assert t.listxattr("x") == []
    t.setxattr("x", "user.one", b"1")
    t.setxattr("x", "user.bin", bytes(range(256)))
    t.setxattr("x", "user.empty", b"")
    t.setxattr("x", "user.big", b"v" * 4000)
    assert sorted(t.listxattr("x")) == ["user.big", "user.bin", "user.empty", "user.one"]
    assert t.getxattr("x", "user.bin") == bytes(range(256))
    assert t.getxattr("x", "user.empty") == b""
    assert t.getxattr("x", "user.big") == b"v" * 4000
    t.setxattr("x", "user.one", b"uno")
    assert t.getxattr("x", "user.one") == b"uno"
    t.removexattr("x", "user.one")
    assert sorted(t.listxattr("x")) == ["user.big", "user.bin", "user.empty"]


XATTR_ERRORS = [
    ("get-missing", lambda t: t.getxattr("f", "user.nope"), errno.ENODATA),
    ("remove-missing", lambda t: t.removexattr("f", "user.nope"), errno.ENODATA),
    ("create-existing", lambda t: t.setxattr("f", "user.k", b"2", os.XATTR_CREATE), errno.EEXIST),
    ("replace-missing", lambda t: t.setxattr("f", "user.n", b"2", os.XATTR_REPLACE), errno.ENODATA),
    ("create-new", lambda t: t.setxattr("f", "user.n", b"2", os.XATTR_CREATE), None),
    ("replace-existing", lambda t: t.setxattr("f", "user.k", b"2", os.XATTR_REPLACE), None),
    ("name-too-long", lambda t: t.setxattr("f", "user." + "n" * 251, b""), errno.ERANGE),
]


@pytest.mark.parametrize(
    ("operation", "expected"), [c[1:] for c in XATTR_ERRORS], ids=[c[0] for c in XATTR_ERRORS]
)
def test_xattr_errors(t: Target, operation, expected: int | None) -> None:
    t.require("xattrs")
    t.write_bytes("f", b"")
    t.setxattr("f", "user.k", b"1")
    assert errno_of(lambda: operation(t)) == expected
    if expected is not None:
        assert t.listxattr("f") == ["user.k"]
        assert t.getxattr("f", "user.k") == b"1"


def test_xattrs_follow_symlinks_and_survive_rename(t: Target) -> None:
    t.require("xattrs", "symlinks")
    t.write_bytes("f", b"")
    t.symlink("f", "s")
    t.setxattr("s", "user.k", b"v")
    assert t.getxattr("f", "user.k") == b"v"
    t.rename("f", "g")
    assert t.getxattr("g", "user.k") == b"v"
    t.link("g", "h")
    assert t.getxattr("h", "user.k") == b"v"


# -- the quota -----------------------------------------------------------------------------


def test_enospc_refuses_the_whole_write(t: Target) -> None:
    if t.quota is None:
        pytest.skip("a kernel filesystem writes what fits; the store's quota refuses it all")
    chunk = 64 * 1024
    free = t.statvfs().f_bavail * t.statvfs().f_frsize
    fd = t.open("fill", os.O_RDWR | os.O_CREAT)
    try:
        size = 0
        goal = free - chunk - chunk // 2
        while size < goal:
            size += t.pwrite(fd, b"f" * min(chunk, goal - size), size)
        t.pwrite(fd, b"g" * chunk, size)  # still fits, with half a chunk to spare
        size += chunk
        before = t.statvfs()
        with pytest.raises(OSError) as exc:
            t.pwrite(fd, b"h" * chunk, size)  # does not fit: nothing of it is written
        assert exc.value.errno in (errno.ENOSPC, errno.EDQUOT)
        assert t.fstat(fd).st_size == size
        assert t.pread(fd, chunk + 1, size - chunk) == b"g" * chunk
        assert t.statvfs().f_bfree == before.f_bfree
        t.ftruncate(fd, size + 10 * chunk)  # a hole costs nothing, so it still works
        assert t.pread(fd, 4, size + 5 * chunk) == bytes(4)
        with pytest.raises(OSError) as exc:
            t.write_bytes("other", b"o" * chunk)
        assert exc.value.errno in (errno.ENOSPC, errno.EDQUOT)
    finally:
        t.close(fd)
    assert t.read_bytes("other") == b""
    t.unlink("fill")
    t.write_bytes("other", b"o" * chunk)  # freed space is usable again
    assert t.statvfs().f_bavail * t.statvfs().f_frsize >= free - 2 * chunk


def test_empty_files_fill_the_quota_too(t: Target) -> None:
    """Names and inodes take memory: the quota counts them, and ``df -i`` says how many
    more fit."""
    if t.quota is None:
        pytest.skip("a kernel filesystem keeps inodes and names beyond its size")
    free = t.statvfs().f_bavail * t.statvfs().f_frsize
    t.write_bytes("filler", b"f" * (free - 64 * 1024 - 4096))  # 64 KiB left, about
    room = t.statvfs().f_bavail * t.statvfs().f_frsize
    made = 0
    with pytest.raises(OSError) as exc:
        while made < 10_000:
            t.close(t.open(f"{made:08d}".rjust(208, "n"), os.O_WRONLY | os.O_CREAT, 0o644))
            made += 1
    assert exc.value.errno == errno.ENOSPC
    assert 0 < made < room // 600  # each costs more than 600 bytes of the quota
    assert t.statvfs().f_ffree == 0
    t.unlink("filler")
    assert t.statvfs().f_ffree > made
