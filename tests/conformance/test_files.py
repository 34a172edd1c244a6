"""File contents through descriptors: offsets, flags, sparse files, unlinked open files."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from .targets import Target


def umasked(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def test_write_read_offsets(t: Target) -> None:
    fd = t.open("f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert t.write(fd, b"hello ") == 6
        assert t.write(fd, b"world") == 5
        assert t.lseek(fd, 0, os.SEEK_CUR) == 11
        assert t.lseek(fd, 0, os.SEEK_SET) == 0
        assert t.read(fd, 5) == b"hello"
        assert t.read(fd, 100) == b" world"
        assert t.read(fd, 100) == b""
        assert t.lseek(fd, -5, os.SEEK_END) == 6
        assert t.read(fd, 5) == b"world"
        assert t.pread(fd, 3, 2) == b"llo"
        assert t.pwrite(fd, b"W", 6) == 1
        assert t.lseek(fd, 0, os.SEEK_CUR) == 11  # pread/pwrite leave the offset alone
        assert t.pread(fd, 100, 0) == b"hello World"
        assert t.pread(fd, 10, 50) == b""
        assert t.write(fd, b"") == 0
        assert t.fstat(fd).st_size == 11
    finally:
        t.close(fd)
    assert t.stat("f").st_size == 11
    assert stat.S_IMODE(t.stat("f").st_mode) == umasked(0o644)


def test_lseek_errors(t: Target) -> None:
    fd = t.open("f", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(OSError) as exc:
            t.lseek(fd, -1, os.SEEK_SET)
        assert exc.value.errno == errno.EINVAL
        assert t.lseek(fd, 100, os.SEEK_SET) == 100  # past the end is fine
    finally:
        t.close(fd)


def test_large_write_round_trip(t: Target) -> None:
    data = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: many FUSE requests
    t.write_bytes("big", data)
    assert t.stat("big").st_size == len(data)
    assert t.read_bytes("big") == data


def test_o_append_writes_at_the_end(t: Target) -> None:
    t.write_bytes("log", b"start\n")
    first = t.open("log", os.O_WRONLY | os.O_APPEND)
    second = t.open("log", os.O_WRONLY | os.O_APPEND)
    try:
        t.write(first, b"one\n")
        t.write(second, b"two\n")
        t.write(first, b"three\n")
    finally:
        t.close(first)
        t.close(second)
    assert t.read_bytes("log") == b"start\none\ntwo\nthree\n"


def test_o_trunc_empties_an_existing_file(t: Target) -> None:
    t.write_bytes("f", b"old content")
    t.close(t.open("f", os.O_WRONLY | os.O_TRUNC))
    assert t.stat("f").st_size == 0
    assert t.read_bytes("f") == b""


def test_o_creat_without_excl_opens_the_existing_file(t: Target) -> None:
    t.write_bytes("f", b"keep")
    t.chmod("f", 0o600)
    fd = t.open("f", os.O_RDWR | os.O_CREAT, 0o777)
    try:
        assert t.read(fd, 10) == b"keep"
    finally:
        t.close(fd)
    assert stat.S_IMODE(t.stat("f").st_mode) == 0o600  # mode only applies to new files


def test_create_through_a_dangling_symlink_creates_its_target(t: Target) -> None:
    t.require("symlinks")
    t.symlink("target", "link")
    t.close(t.open("link", os.O_WRONLY | os.O_CREAT, 0o600))
    assert sorted(t.listdir()) == ["link", "target"]
    assert stat.S_ISREG(t.lstat("target").st_mode)


@pytest.mark.parametrize(
    ("flags", "operation", "expected"),
    [
        (os.O_RDONLY, lambda t, fd: t.write(fd, b"x"), errno.EBADF),
        (os.O_WRONLY, lambda t, fd: t.read(fd, 1), errno.EBADF),
        (os.O_RDONLY, lambda t, fd: t.ftruncate(fd, 0), errno.EINVAL),
        (os.O_RDWR, lambda t, fd: t.ftruncate(fd, -1), errno.EINVAL),
        (os.O_RDWR, lambda t, fd: t.pread(fd, 1, -1), errno.EINVAL),
    ],
    ids=["write-rdonly", "read-wronly", "ftruncate-rdonly", "ftruncate-negative", "pread-negative"],
)
def test_descriptor_errors(t: Target, flags: int, operation, expected: int) -> None:
    t.write_bytes("f", b"data")
    fd = t.open("f", flags)
    try:
        with pytest.raises(OSError) as exc:
            operation(t, fd)
        assert exc.value.errno == expected
    finally:
        t.close(fd)
    assert t.read_bytes("f") == b"data"


def test_closed_descriptor_is_ebadf(t: Target) -> None:
    fd = t.open("f", os.O_RDWR | os.O_CREAT)
    t.close(fd)
    for operation in (lambda: t.read(fd, 1), lambda: t.write(fd, b"x"), lambda: t.fstat(fd)):
        with pytest.raises(OSError) as exc:
            operation()
        assert exc.value.errno == errno.EBADF


def test_reading_a_directory_descriptor_is_eisdir(t: Target) -> None:
    t.mkdir("d")
    fd = t.open("d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert stat.S_ISDIR(t.fstat(fd).st_mode)
        with pytest.raises(OSError) as exc:
            t.read(fd, 10)
        assert exc.value.errno == errno.EISDIR
    finally:
        t.close(fd)


@pytest.mark.parametrize("hole", [1, 4095, 4096, 1 << 20, 16 << 20], ids=lambda n: f"hole{n}")
def test_sparse_files_read_zeros(t: Target, hole: int) -> None:
    fd = t.open("sparse", os.O_RDWR | os.O_CREAT)
    try:
        t.pwrite(fd, b"head", 0)
        t.pwrite(fd, b"tail", 4 + hole)
        assert t.fstat(fd).st_size == 8 + hole
        assert t.pread(fd, 4 + hole + 4, 0) == b"head" + bytes(hole) + b"tail"
        assert (
            t.pread(fd, 3, 4 + hole // 2)
            == bytes(min(3, hole - hole // 2)) + b"tail"[: max(0, 3 - (hole - hole // 2))]
        )
    finally:
        t.close(fd)


def test_holes_cost_no_space(t: Target) -> None:
    before = t.statvfs()
    fd = t.open("sparse", os.O_RDWR | os.O_CREAT)
    try:
        t.ftruncate(fd, 64 << 20)  # larger than the store's quota
        t.pwrite(fd, b"end", (64 << 20) - 3)
        assert t.pread(fd, 6, (64 << 20) - 6) == b"\0\0\0end"
    finally:
        t.close(fd)
    after = t.statvfs()
    used = (before.f_bfree - after.f_bfree) * before.f_frsize
    assert used < 256 * 1024


@pytest.mark.parametrize("sizes", [(10, 3), (3, 10), (5, 0), (0, 4097), (8192, 100)], ids=str)
def test_truncate_shrinks_and_grows_with_zeros(t: Target, sizes: tuple[int, int]) -> None:
    first, second = sizes
    data = bytes((i * 7) % 251 + 1 for i in range(first))
    t.write_bytes("f", data)
    t.truncate("f", second)
    assert t.stat("f").st_size == second
    assert t.read_bytes("f") == (data + bytes(second))[:second]
    fd = t.open("f", os.O_RDWR)
    try:
        t.ftruncate(fd, first)
        assert t.fstat(fd).st_size == first
        assert t.pread(fd, first + 10, 0) == (data[:second] + bytes(first))[:first]
    finally:
        t.close(fd)


def test_fsync(t: Target) -> None:
    fd = t.open("f", os.O_RDWR | os.O_CREAT)
    try:
        t.write(fd, b"durable")
        t.fsync(fd)
    finally:
        t.close(fd)
    assert t.read_bytes("f") == b"durable"


def check_unlinked_fstat(t: Target, fd: int, size: int) -> None:
    """``fstat`` of a descriptor whose file has no name any more."""
    st = t.fstat(fd)
    assert (st.st_nlink, st.st_size) == (0, size)


def test_unlinked_open_file_keeps_working(t: Target) -> None:
    t.require("open after unlink")
    t.mkdir("d")
    fd = t.open("d/f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        t.write(fd, b"0123456789")
        t.unlink("d/f")
        assert t.listdir("d") == []  # gone from the namespace at once: no .fuse_hidden*
        assert not t.exists("d/f")
        check_unlinked_fstat(t, fd, 10)
        assert t.pread(fd, 100, 0) == b"0123456789"
        t.pwrite(fd, b"abc", 10)
        t.ftruncate(fd, 12)
        check_unlinked_fstat(t, fd, 12)
        assert t.pread(fd, 100, 0) == b"0123456789ab"
        t.write_bytes("d/f", b"a new file")  # the name is free again
        assert t.pread(fd, 100, 0) == b"0123456789ab"
        t.unlink("d/f")
        t.rmdir("d")  # the parent goes although the file is still open
        assert t.pread(fd, 4, 0) == b"0123"
    finally:
        t.close(fd)
    assert t.listdir() == []


def test_unlinked_name_of_a_hard_linked_file_keeps_the_other(t: Target) -> None:
    t.require("hard links")
    t.write_bytes("a", b"data")
    t.link("a", "b")
    fd = t.open("a", os.O_RDWR)
    try:
        t.unlink("a")
        assert t.listdir() == ["b"]
        assert t.fstat(fd).st_nlink == 1
        t.pwrite(fd, b"DATA", 0)
    finally:
        t.close(fd)
    assert t.read_bytes("b") == b"DATA"
    assert t.stat("b").st_nlink == 1


def test_file_replaced_by_rename_stays_readable_through_its_descriptor(t: Target) -> None:
    t.require("open after unlink")
    t.write_bytes("old", b"old data")
    t.write_bytes("new", b"new data")
    fd = t.open("old", os.O_RDONLY)
    try:
        t.rename("new", "old")
        assert t.read(fd, 100) == b"old data"
        check_unlinked_fstat(t, fd, 8)
    finally:
        t.close(fd)
    assert t.read_bytes("old") == b"new data"
    assert t.listdir() == ["old"]


def test_descriptor_follows_a_renamed_file(t: Target) -> None:
    t.require("directory rename")
    t.mkdir("a")
    fd = t.open("a/f", os.O_RDWR | os.O_CREAT)
    try:
        t.write(fd, b"one")
        t.rename("a", "b")
        t.write(fd, b"two")
        assert t.fstat(fd).st_size == 6
    finally:
        t.close(fd)
    assert t.read_bytes("b/f") == b"onetwo"
