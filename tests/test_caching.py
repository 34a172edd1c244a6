"""What the kernel may cache: the requests it no longer sends, and what stays correct.

Each test mounts ``caching_app:fs`` through the CLI on every binding with libfuse's debug
log on, and counts the FUSE requests a few system calls cause
(:mod:`kernel_requests`): counts are exact on a busy machine too.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kernel_requests import RequestLog, libfuse_version

pytestmark = pytest.mark.mount

CONFIGS = [("mfusepy", "3"), ("mfusepy", "2"), ("fusepy", "2")]
CONFIG_IDS = [f"{binding}-libfuse{major}" for binding, major in CONFIGS]
MiB = 1 << 20


@pytest.fixture(scope="module", params=CONFIGS, ids=CONFIG_IDS)
def mounted(request: pytest.FixtureRequest) -> Iterator[RequestLog]:
    """``caching_app:fs`` mounted with its requests logged, shared by a configuration;
    other users may use it (``allow_other``)."""
    with RequestLog("caching_app:fs", *request.param, "allow_other") as log:
        yield log


def takes_over_privileges(mounted: RequestLog) -> bool:
    """Whether the mount's libfuse lets defuse2 clear setuid and capabilities itself."""
    return mounted.libfuse == "3" and libfuse_version("3") >= (3, 17)


def as_user(change: Callable[[str], object], path: str) -> None:
    """Call ``change(path)`` in a child process running as uid and gid 1000."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.setgroups([])
            os.setresgid(1000, 1000, 1000)
            os.setresuid(1000, 1000, 1000)
            change(path)
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"{change} failed as uid 1000"


def write_one_byte(path: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, b"x")
    os.close(fd)


def fallocate(path: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    os.posix_fallocate(fd, 0, 8192)
    os.close(fd)


def pwrite(path: str, data: bytes, offset: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def test_a_file_read_again_after_a_write_through_the_kernel_is_read_from_memory(
    mounted: RequestLog,
) -> None:
    path = str(mounted.root / "reread.bin")
    with open(path, "wb") as handle:
        handle.write(bytes(MiB))
    read(path)

    def change_and_read_again() -> None:
        for offset in (0, 4096 * 7, MiB - 1):
            pwrite(path, b"\x01", offset)
            assert read(path)[offset] == 1

    requests = mounted.count_until(change_and_read_again, lambda counts: not counts["READ"])
    assert requests["WRITE"] == 3
    assert requests["READ"] == 0
    assert read(path).count(b"\x01") == 3


def test_a_routed_file_is_read_again_at_each_open(mounted: RequestLog) -> None:
    routed, control = str(mounted.root / "routed.txt"), str(mounted.root / "control")
    pwrite(control, b"first\n", 0)
    assert read(routed) == b"first\n"
    with mounted.count() as requests:
        pwrite(control, b"other\n", 0)
        assert read(routed) == b"other\n"
    assert requests["READ"] == 1


def test_a_dynamic_file_is_read_at_each_read(mounted: RequestLog) -> None:
    dynamic, control = str(mounted.root / "dynamic.txt"), str(mounted.root / "control")
    pwrite(control, b"first\n", 0)
    with open(dynamic, "rb") as handle:
        assert handle.read() == b"first\n"
        pwrite(control, b"other\n", 0)
        with mounted.count() as requests:
            assert os.pread(handle.fileno(), 6, 0) == b"other\n"
    assert requests["READ"] == 1


def test_each_open_of_a_hard_linked_file_reads_it_again(mounted: RequestLog) -> None:
    first, second = str(mounted.root / "first"), str(mounted.root / "second")
    with open(first, "wb") as handle:
        handle.write(b"a" * 8192)
    os.link(first, second)
    assert read(second) == b"a" * 8192
    pwrite(first, b"changed", 0)
    assert read(second)[:7] == b"changed"


def test_a_descriptor_on_one_name_reads_what_was_written_through_another(
    mounted: RequestLog, request: pytest.FixtureRequest
) -> None:
    if "libfuse2" in request.node.callspec.id:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="libfuse 2's high-level API cannot tell the kernel to drop the "
                "pages of the other name (documented in docs/performance.rst)",
            )
        )
    first, second = str(mounted.root / "one"), str(mounted.root / "two")
    with open(first, "wb") as handle:
        handle.write(b"a" * 8192)
    os.link(first, second)
    with open(second, "rb") as reader:
        assert reader.read() == b"a" * 8192
        pwrite(first, b"changed", 0)
        assert os.pread(reader.fileno(), 7, 0) == b"changed"


def test_appends_ask_about_capabilities_once_where_libfuse_lets_defuse2_clear_them(
    mounted: RequestLog,
) -> None:
    path = str(mounted.root / "appended.log")
    with open(path, "wb"):
        pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def append() -> None:
        for _ in range(100):
            os.write(fd, b"x" * 100)

    try:
        limit = 1 if takes_over_privileges(mounted) else 100
        requests = mounted.count_until(append, lambda counts: counts["GETXATTR"] <= limit)
    finally:
        os.close(fd)
    assert requests["WRITE"] >= 100  # a write across a page boundary may take two
    if takes_over_privileges(mounted):
        assert requests["GETXATTR"] <= 1
    else:  # libfuse < 3.17: the kernel must ask before every write
        assert requests["GETXATTR"] == 100


#: A valid ``security.capability`` value (revision 2: ``cap_net_bind_service`` permitted).
CAPABILITY = bytes([0, 0, 0, 2, 0, 4, 0, 0]) + bytes(12)


def test_a_write_drops_capabilities_the_kernel_did_not_see_set(mounted: RequestLog) -> None:
    """Set through one name, written through another that the kernel has already seen
    written (and so, with ``KILLPRIV_V2``, no longer checks): the store drops them."""
    first, second = str(mounted.root / "cap1"), str(mounted.root / "cap2")
    with open(first, "wb") as handle:
        handle.write(b"a")
    os.link(first, second)
    fd = os.open(first, os.O_WRONLY)
    try:
        os.pwrite(fd, b"b", 0)
        os.setxattr(second, "security.capability", CAPABILITY)
        os.pwrite(fd, b"c", 0)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as raised:
        os.getxattr(second, "security.capability")
    assert raised.value.errno == errno.ENODATA


@pytest.mark.parametrize(
    "change",
    [
        write_one_byte,
        lambda path: os.truncate(path, 1),
        lambda path: os.close(os.open(path, os.O_WRONLY | os.O_TRUNC)),
        fallocate,
    ],
    ids=["write", "truncate", "open-O_TRUNC", "fallocate"],
)
def test_a_change_by_another_user_clears_setuid_and_setgid(
    mounted: RequestLog, change: Callable[[str], object]
) -> None:
    """Where defuse2 took the duty over (libfuse >= 3.17) the store clears them; else
    the kernel asks the store to, as the writer, before the change."""
    path = str(mounted.root / "setid")
    with open(path, "wb") as handle:
        handle.write(b"data")
    os.chmod(path, 0o6777)
    as_user(change, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777


@pytest.mark.parametrize(("binding", "libfuse"), CONFIGS, ids=CONFIG_IDS)
def test_a_host_directory_changed_behind_the_mount_is_read_again(
    binding: str, libfuse: str, tmp_path: Path
) -> None:
    """A ``DirectoryStore`` is not exclusive: its files are read again at each open."""
    (tmp_path / "host").mkdir()
    host = tmp_path / "host" / "shared.txt"
    arguments = ["--store", str(tmp_path / "host")]
    with RequestLog("caching_app:fs", binding, libfuse, arguments=arguments) as mounted:
        seen = mounted.root / "shared.txt"
        seen.write_bytes(b"first")
        assert seen.read_bytes() == b"first"
        host.write_bytes(b"other")  # same size: only the content tells
        assert seen.read_bytes() == b"other"


@pytest.mark.parametrize("exclusive", [True, False], ids=["exclusive", "shared"])
def test_store_exclusive_lets_the_kernel_keep_a_host_directory_s_names(
    exclusive: bool, tmp_path: Path
) -> None:
    """``--store DIR --store-exclusive``: a second ``du`` asks nothing; without it, a
    ``LOOKUP`` per file once the mount's 1 s has passed."""
    (tmp_path / "host").mkdir()
    for index in range(20):
        (tmp_path / "host" / f"f{index}").write_bytes(b"x")
    arguments = ["--store", str(tmp_path / "host")] + ["--store-exclusive"] * exclusive
    with RequestLog("caching_app:fs", "mfusepy", "3", arguments=arguments) as mounted:
        names = [mounted.root / f"f{index}" for index in range(20)]
        assert [os.stat(name).st_size for name in names] == [1] * 20
        time.sleep(1.2)

        def stat_all() -> None:
            assert [os.stat(name).st_size for name in names] == [1] * 20

        requests = mounted.count_until(stat_all, lambda counts: not counts or not exclusive)
    if exclusive:
        assert not requests  # no LOOKUP, no GETATTR
    else:
        assert requests["LOOKUP"] >= 20


def test_listings_of_the_store_are_kept_where_libfuse_lets_the_kernel_keep_them(
    mounted: RequestLog,
) -> None:
    directory = mounted.root / "listed"
    directory.mkdir()
    for index in range(50):
        (directory / f"f{index}").touch()

    def list_five_times() -> None:
        for _ in range(5):
            assert len(os.listdir(directory)) == 50

    keeps = mounted.libfuse == "3" and libfuse_version("3") >= (3, 16)
    requests = mounted.count_until(
        list_five_times, lambda counts: counts["READDIR"] <= 2 or not keeps
    )
    if keeps:  # libfuse >= 3.16 hands cache_readdir on: the first listing is kept
        assert requests["READDIR"] <= 2
    else:
        assert requests["READDIR"] >= 5
    (directory / "new").touch()
    os.unlink(directory / "f0")
    assert sorted(os.listdir(directory)) == sorted([*(f"f{i}" for i in range(1, 50)), "new"])


def test_a_routed_listing_is_asked_for_again(mounted: RequestLog) -> None:
    pwrite(str(mounted.root / "control"), b"one two", 0)
    assert sorted(os.listdir(mounted.root / "names")) == ["one", "two"]
    pwrite(str(mounted.root / "control"), b"six ten", 0)
    assert sorted(os.listdir(mounted.root / "names")) == ["six", "ten"]


# -- the writeback cache (opt-in, libfuse 3) -----------------------------------------------


@pytest.fixture(scope="module")
def writeback() -> Iterator[RequestLog]:
    """A 4 MiB store mounted with ``-o writeback_cache`` (libfuse 3), for all users."""
    with RequestLog("conformance.apps:fs", "mfusepy", "3", "writeback_cache", "allow_other") as log:
        yield log


def test_writeback_gathers_small_writes_into_few_requests(writeback: RequestLog) -> None:
    path = str(writeback.root / "gathered.log")

    def append_and_close() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for index in range(100):
            os.write(fd, b"%99d\n" % index)
        os.close(fd)

    requests = writeback.count_until(append_and_close, lambda counts: counts["WRITE"] <= 2)
    assert requests["WRITE"] <= 2
    assert read(path).endswith(b"".join(b"%99d\n" % index for index in range(100)))


def test_writeback_reports_a_full_store_at_close_and_fsync(writeback: RequestLog) -> None:
    """The data reaches the store after write() returned: ENOSPC comes at fsync or close."""
    for finish in (os.fsync, os.close):
        path = str(writeback.root / "too-big")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for _ in range(5):
                assert os.write(fd, bytes(MiB)) == MiB  # the quota is 4 MiB
            with pytest.raises(OSError) as raised:
                finish(fd)
            assert raised.value.errno == errno.ENOSPC
        finally:
            if finish is os.fsync:
                os.close(fd)
            os.unlink(path)


def test_writeback_lets_another_user_write_and_close(writeback: RequestLog) -> None:
    """At close the kernel sends the ``mtime`` it kept, as the writer: not an EPERM."""
    path = str(writeback.root / "shared")
    with open(path, "wb") as handle:
        handle.write(b"abcdef")
    os.chmod(path, 0o666)
    as_user(write_one_byte, path)
    assert read(path) == b"xbcdef"


def test_writeback_cache_needs_libfuse_3(tmp_path: Path) -> None:
    from defuse2 import FileSystem
    from defuse2.options import OptionError

    with pytest.raises(OptionError, match="libfuse 3 only"):
        FileSystem().mount(tmp_path, binding="fusepy", writeback_cache=True)


# -- attribute and entry timeouts ----------------------------------------------------------


def test_the_kernel_keeps_the_store_s_names_and_attributes_past_a_second(
    mounted: RequestLog,
) -> None:
    """libfuse's default is 1 s; only the kernel changes the store, so it may keep them."""
    directory = mounted.root / "kept"
    directory.mkdir()
    for index in range(20):
        (directory / f"f{index}").write_bytes(b"x")
    sizes = [os.stat(directory / f"f{index}").st_size for index in range(20)]
    time.sleep(1.2)

    def stat_all() -> None:
        assert [os.stat(directory / f"f{index}").st_size for index in range(20)] == sizes

    requests = mounted.count_until(stat_all, lambda counts: not counts)
    assert not requests  # no LOOKUP, no GETATTR


def test_routed_and_dynamic_names_are_asked_for_again(mounted: RequestLog) -> None:
    routed, dynamic = mounted.root / "routed.txt", mounted.root / "dynamic.txt"
    os.stat(routed)
    os.stat(dynamic)
    with mounted.count() as requests:
        os.stat(dynamic)  # 0 s: asked at once
    assert requests["LOOKUP"] == 1
    with mounted.count() as requests:
        os.stat(routed)  # libfuse's 1 s: kept for now...
    assert not requests
    time.sleep(1.2)
    with mounted.count() as requests:
        os.stat(routed)  # ... and asked again after it
    assert requests["LOOKUP"] == 1


def test_invalidate_shows_a_store_change_made_behind_the_kernel_s_back(
    mountpoint: str,
) -> None:
    """The kernel keeps the store's pages and attributes (60 s); ``fs.invalidate`` makes
    it forget them when the program changed the store itself (libfuse 3)."""
    from defuse2 import FileSystem
    from defuse2.mount import libfuse_major

    fs = FileSystem()
    with fs.mounted(mountpoint) as root:
        path = root / "notes.txt"
        path.write_bytes(b"old\n")
        assert path.read_bytes() == b"old\n"  # the pages now in the kernel...
        assert os.stat(path).st_size == 4  # ... and the attributes, after the read's atime
        fh = fs.store.open("/notes.txt", os.O_WRONLY | os.O_TRUNC)
        fs.store.write("/notes.txt", b"brand new\n", 0, fh)
        fs.store.release("/notes.txt", fh)
        assert os.stat(path).st_size == 4  # the kernel's kept answer
        fs.invalidate("/notes.txt", wait=5)
        if libfuse_major() == 2:
            pytest.skip("libfuse 2 has no invalidation (documented)")
        assert os.stat(path).st_size == 10
        assert path.read_bytes() == b"brand new\n"
