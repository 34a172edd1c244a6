"""The mount adapter: options, the operations it registers, and real mounts on every binding.

Real mounts run ``python -m defuse2 mount APP MOUNTPOINT --foreground`` in a subprocess on
each of mfusepy + libfuse 3, mfusepy + libfuse 2 and fusepy (libfuse 2), and exercise the
mount with real system calls; in-process mounts use ``fs.mounted()``.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from defuse2 import FileSystem, Resource, attributes
from defuse2.adapter import Operations, operations_class
from defuse2.assembly import adapter_class
from defuse2.callbacks import guarded_call
from defuse2.caller import FuseContext, context_function
from defuse2.mount import (
    MountError,
    binding_name,
    fuse_options,
    is_mounted,
    libfuse_major,
    mounted,
    parse_options,
    unmount,
)
from defuse2.store.base import RENAME_NOREPLACE, Context

TIMEOUT = 20.0

APP = textwrap.dedent(
    '''
    """A small routed filesystem for the mount tests."""
    from defuse2 import FileSystem, Resource, attributes

    fs = FileSystem(quota="1 MiB")

    @fs.route("/")
    class Root(Resource):
        def readdir(self):
            return ["hello.txt", "broken.txt"]

    @fs.route("/hello.txt")
    class Hello(Resource):
        def getattr(self):
            return attributes.file(size=6, mode=0o444)

        def read(self, size, offset):
            return b"hello\\n"[offset : offset + size]

    @fs.route("/broken.txt")
    class Broken(Resource):
        def getattr(self):
            return attributes.file(size=10, mode=0o444)

        def read(self, size, offset):
            raise RuntimeError("a bug in user code")
    '''
)

#: (binding, libfuse major) of every real-mount configuration.
CONFIGS = [("mfusepy", "3"), ("mfusepy", "2"), ("fusepy", "2")]
CONFIG_IDS = [f"{binding}-libfuse{major}" for binding, major in CONFIGS]


# -- helpers -------------------------------------------------------------------------------


def renameat2(old: Path, new: Path, flags: int) -> int:
    """:manpage:`renameat2(2)` through libc; 0 or the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    result = libc.renameat2(at_fdcwd, os.fsencode(old), at_fdcwd, os.fsencode(new), flags)
    return 0 if result == 0 else ctypes.get_errno()


def wait_until(condition: Any, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@dataclass
class CliMount:
    """A ``python -m defuse2 mount`` process and its mount point."""

    process: subprocess.Popen[bytes]
    root: Path
    log: Path
    major: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and return the exit status."""
        self.process.send_signal(sig)
        return self.process.wait(timeout=TIMEOUT)


def start_mount(
    target: str, mountpoint: Path, log: Path, binding: str, major: str, *extra: str
) -> CliMount:
    command = [sys.executable, "-m", "defuse2", "mount", target, str(mountpoint), "--foreground"]
    command += ["--binding", binding, "--libfuse", major, *extra]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    mount = CliMount(process, mountpoint, log, major)
    if not wait_until(lambda: is_mounted(mountpoint) or process.poll() is not None):
        process.kill()
        pytest.fail(f"no mount after {TIMEOUT} s:\n{mount.output()}")
    if process.poll() is not None:
        pytest.fail(f"the mount process exited with {process.returncode}:\n{mount.output()}")
    return mount


def cleanup(mount: CliMount) -> None:
    if is_mounted(mount.root):
        unmount(mount.root, major=int(mount.major))
    if mount.process.poll() is None:
        mount.process.kill()
        mount.process.wait(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def app_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app") / "mount_app.py"
    path.write_text(APP)
    return path


@pytest.fixture(scope="module", params=CONFIGS, ids=CONFIG_IDS)
def cli_mount(
    request: pytest.FixtureRequest, app_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CliMount]:
    """The app mounted through the CLI, shared by the tests of one configuration."""
    binding, major = request.param
    base = tmp_path_factory.mktemp(f"{binding}{major}")
    (base / "mnt").mkdir()
    mount = start_mount(f"{app_file}:fs", base / "mnt", base / "log.txt", binding, major)
    try:
        yield mount
    finally:
        cleanup(mount)


@pytest.fixture(params=CONFIGS, ids=CONFIG_IDS)
def fresh_mount(
    request: pytest.FixtureRequest, app_file: Path, tmp_path: Path
) -> Iterator[CliMount]:
    """A mount of the app of its own, for tests that end it."""
    binding, major = request.param
    (tmp_path / "mnt").mkdir()
    mount = start_mount(f"{app_file}:fs", tmp_path / "mnt", tmp_path / "log.txt", binding, major)
    try:
        yield mount
    finally:
        cleanup(mount)


# -- options and bindings (no FUSE needed) -------------------------------------------------


def test_parse_options_splits_flags_and_values() -> None:
    assert parse_options("allow_other, max_read=65536,,fsname=a=b") == {
        "allow_other": True,
        "max_read": "65536",
        "fsname": "a=b",
    }


@pytest.mark.parametrize("major", [2, 3])
def test_default_options(major: int) -> None:
    options = fuse_options({}, major=major)
    assert options["default_permissions"] is True
    assert options["nothreads"] is True  # libfuse's loop in C, spare readers when slow
    assert "hard_remove" not in options
    assert options["fsname"] == "defuse2"
    assert "allow_other" not in options
    assert ("big_writes" in options) == (major == 2)
    assert ("max_write" in options) == (major == 2)


def test_options_pass_through_and_remove_defaults() -> None:
    options = fuse_options(
        {"default_permissions": False, "allow_other": True, "max_read": 4096}, major=3
    )
    assert "default_permissions" not in options
    assert options["allow_other"] is True
    assert options["max_read"] == 4096


@pytest.mark.parametrize(
    ("options", "nothreads"),
    [({"threads": True}, False), ({"threads": "yes"}, False), ({"threads": "0"}, True),
     ({"nothreads": True}, True)],
)  # fmt: skip
def test_threads_and_nothreads_choose_the_loop(options: dict[str, Any], nothreads: bool) -> None:
    settings = fuse_options(options, major=3)
    assert "threads" not in settings
    assert settings.get("nothreads", False) is nothreads


def test_binding_name_default_env_and_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEFUSE2_BINDING", raising=False)
    assert binding_name() == "mfusepy"
    monkeypatch.setenv("DEFUSE2_BINDING", "fusepy")
    assert binding_name() == "fusepy"
    assert binding_name("mfusepy") == "mfusepy"
    with pytest.raises(MountError, match="unknown binding"):
        binding_name("llfuse")


@pytest.mark.mount
def test_one_libfuse_per_process_for_mfusepy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSE_LIBRARY_NAME", raising=False)
    monkeypatch.delenv("FUSE_LIBRARY_PATH", raising=False)
    monkeypatch.delenv("DEFUSE2_LIBFUSE", raising=False)
    loaded = libfuse_major("mfusepy")
    assert loaded in (2, 3)
    monkeypatch.setenv("DEFUSE2_LIBFUSE", "2" if loaded == 3 else "3")
    with pytest.raises(MountError, match="one libfuse per process"):
        libfuse_major("mfusepy")
    monkeypatch.setenv("DEFUSE2_LIBFUSE", "3")
    with pytest.raises(MountError, match="libfuse 2 only"):
        libfuse_major("fusepy")
    monkeypatch.setenv("DEFUSE2_LIBFUSE", "4")
    with pytest.raises(MountError, match="must be 2 or 3"):
        libfuse_major("mfusepy")


class FakeDispatcher:
    """Implements getattr, readdir and read only."""

    operations = frozenset({"getattr", "readdir", "read"})

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        if path == "/missing":
            raise FileNotFoundError(errno.ENOENT, "No such file")
        if path == "/bug":
            raise ValueError("escaped the dispatcher")
        return {"st_mode": 0o100444, "st_size": 3}

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return b"abc"[offset : offset + size]

    def describe(self, path: str | None) -> tuple[str, dict[str, Any]]:
        return ("/<name>", {"name": path}) if path != "/store" else ("store", {})


@pytest.mark.parametrize("binding", ["mfusepy", "fusepy"])
def test_unimplemented_operations_are_not_registered(binding: str) -> None:
    adapter = adapter_class(FakeDispatcher(), binding, xattrs=True, trace=None)  # type: ignore[arg-type]
    for name in ("getattr", "readdir", "read"):
        assert callable(getattr(adapter, name))
    for name in ("write", "getxattr", "listxattr", "create", "rename", "access"):
        assert getattr(adapter, name) is None, name
    if binding == "fusepy":
        for name in ("bmap", "ioctl", "fsyncdir"):
            assert getattr(adapter, name) is None, name
    assert adapter.use_ns is True


def test_xattrs_can_be_left_out() -> None:
    class WithXattrs(FakeDispatcher):
        operations = frozenset({"getattr", "write", "getxattr", "setxattr", "listxattr"})

    assert callable(operations_class(WithXattrs()).getxattr)  # type: ignore[arg-type]
    adapter = operations_class(WithXattrs(), xattrs=False)  # type: ignore[arg-type]
    assert adapter.getxattr is None
    assert adapter.setxattr is None
    assert callable(adapter.write)


def test_no_trace_means_no_wrapping() -> None:
    adapter = operations_class(FakeDispatcher())  # type: ignore[arg-type]
    assert adapter.getattr is Operations.getattr


def test_untraced_operations_hand_on_to_the_dispatcher_directly() -> None:
    dispatcher = FakeDispatcher()
    operations = operations_class(dispatcher)(dispatcher)  # type: ignore[arg-type]
    assert operations.read == dispatcher.read  # one Python call less per callback
    assert operations.getattr != dispatcher.getattr  # may set per-reply timeouts ...
    operations.init("/")
    assert operations.getattr == dispatcher.getattr  # ... but there are none on libfuse 2
    assert operations.write is None  # not implemented, so not registered


def test_without_routes_operations_hand_on_to_the_store_directly() -> None:
    dispatcher = FileSystem().dispatcher()
    operations = adapter_class(dispatcher, "mfusepy", xattrs=True, trace=None)(dispatcher)
    store = dispatcher.store
    registered = {name for name in dispatcher.store_operations() if getattr(operations, name)}
    assert {"getattr", "read", "release", "find_xattr"} <= registered
    for name in registered - {"getattr"}:
        assert getattr(operations, name) == getattr(store, name), name
    assert operations.getattr != store.getattr  # may set per-reply timeouts ...
    assert operations.write == dispatcher.write  # the dispatcher does more than hand on
    operations.init("/")
    assert operations.getattr == store.getattr  # ... but there are none on libfuse 2

    routed = small_filesystem().dispatcher()
    operations = adapter_class(routed, "mfusepy", xattrs=True, trace=None)(routed)
    assert operations.read == routed.read


def test_traced_operations_stay_traced() -> None:
    lines: list[str] = []
    dispatcher = FakeDispatcher()
    operations = operations_class(dispatcher, trace=lines.append)(dispatcher)  # type: ignore[arg-type]
    operations.init("/")
    assert operations.read("/a.txt", 3, 0, 0) == b"abc"
    assert operations.getattr("/a.txt")["st_size"] == 3
    assert [line.split()[0] for line in lines] == ["read", "getattr"]


def test_trace_wraps_and_reports() -> None:
    lines: list[str] = []
    adapter = operations_class(FakeDispatcher(), trace=lines.append)  # type: ignore[arg-type]
    operations = adapter(FakeDispatcher())  # type: ignore[arg-type]
    assert operations.getattr("/a.txt") == {"st_mode": 0o100444, "st_size": 3}
    with pytest.raises(FileNotFoundError):
        operations.getattr("/missing")
    with pytest.raises(ValueError):
        operations.getattr("/bug")
    assert lines[0].split()[:2] == ["getattr", "/a.txt"]
    assert "/<name> {name='/a.txt'}" in lines[0]
    assert "-> mode=0o100444 size=3" in lines[0]
    assert lines[0].endswith("µs")
    assert "-> ENOENT" in lines[1]
    assert "-> EIO (ValueError: escaped the dispatcher)" in lines[2]


def test_escaping_exceptions_meet_the_errno_boundary(caplog: pytest.LogCaptureFixture) -> None:
    fs = FileSystem()

    @fs.route("/routed")
    class Routed(Resource):
        pass

    fuse = SimpleNamespace(operations=SimpleNamespace(dispatcher=fs.dispatcher()))

    def fgetattr(path: bytes) -> None:
        raise ValueError("escaped")

    def read(path: bytes) -> None:
        raise SystemExit(3)  # a filesystem's code calling sys.exit(): the mount lives on

    def missing(path: bytes) -> None:
        raise FileNotFoundError("gone")  # no errno: its class stands for ENOENT

    def no_errno(path: bytes) -> None:
        raise OSError("no errno")

    def init(path: bytes) -> None:
        raise ValueError("not started")

    with caplog.at_level(logging.ERROR, logger="defuse2"):
        assert guarded_call(fuse, fgetattr, b"/routed") == -errno.EIO
        assert guarded_call(fuse, read, b"/stored") == -errno.EIO
        assert guarded_call(fuse, missing, b"/x") == -errno.ENOENT
        assert guarded_call(fuse, no_errno, None) == -errno.EIO
        assert guarded_call(fuse, lambda path: None, b"/") == 0
        assert guarded_call(fuse, lambda: 7) == 7
        with pytest.raises(ValueError, match="not started"):
            guarded_call(fuse, init, b"/")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "getattr /routed (route /routed (Routed)) raised ValueError; answering EIO",
        "read /stored (store) raised SystemExit; answering EIO",
        "no_errno None (store) raised OSError; answering EIO",
    ]


@pytest.mark.parametrize("single_threaded", [True, False], ids=["one-thread", "threads"])
def test_context_reads_libfuse_context_per_request(single_threaded: bool) -> None:
    # Stands in for fuse_get_context(): NULL before the first request, then the serving
    # thread's struct, which libfuse refills before each request.
    current = FuseContext(uid=1000, gid=100, pid=4242, umask=0o022)
    answers = [ctypes.POINTER(FuseContext)(), ctypes.pointer(current)]
    asked: list[int] = []

    def get() -> Any:
        asked.append(1)
        return answers[min(len(asked), 2) - 1]

    context = context_function(get, single_threaded=single_threaded)
    with pytest.raises(ValueError, match="NULL"):
        context()
    assert context() == Context(1000, 100, 4242, 0o022)
    assert type(context()) is Context
    current.uid, current.gid, current.pid, current.umask = 0, 0, 7, 0o077
    assert context() == Context(0, 0, 7, 0o077)
    assert len(asked) == 2  # once per thread, until it answers
    other: list[Context] = []
    thread = threading.Thread(target=lambda: other.append(context()))
    thread.start()
    thread.join()
    assert other == [Context(0, 0, 7, 0o077)]
    # The threaded loop's other worker threads have structs of their own.
    assert len(asked) == (2 if single_threaded else 3)


def test_is_mounted() -> None:
    assert is_mounted("/")
    assert not is_mounted("/definitely/not/a/mount/point")


def test_mounted_refuses_bad_mountpoints(tmp_path: Path) -> None:
    fs = FileSystem()
    with (
        pytest.raises(MountError, match="does not exist"),
        mounted(fs, tmp_path / "missing"),
    ):
        pass
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(MountError, match="is not a directory"),
        mounted(fs, tmp_path / "file"),
    ):
        pass


# -- real mounts through the CLI -----------------------------------------------------------


@pytest.mark.mount
def test_listing_reading_and_sizes(cli_mount: CliMount) -> None:
    root = cli_mount.root
    assert sorted(os.listdir(root)) == ["broken.txt", "hello.txt"]
    assert (root / "hello.txt").read_bytes() == b"hello\n"
    assert os.stat(root / "hello.txt").st_size == 6
    assert os.stat(root / "hello.txt").st_mode == 0o100444


@pytest.mark.mount
def test_writing_a_read_only_resource_is_erofs(cli_mount: CliMount) -> None:
    with pytest.raises(OSError) as exc:
        os.open(cli_mount.root / "hello.txt", os.O_WRONLY)
    assert exc.value.errno == errno.EROFS


@pytest.mark.mount
def test_store_keeps_directories_and_files(cli_mount: CliMount) -> None:
    notes = cli_mount.root / "notes"
    notes.mkdir()
    (notes / "a.txt").write_bytes(b"first line\n")
    with (notes / "a.txt").open("ab") as file:
        file.write(b"second line\n")
    assert (notes / "a.txt").read_bytes() == b"first line\nsecond line\n"
    assert os.stat(notes / "a.txt").st_size == 23
    assert os.listdir(notes) == ["a.txt"]
    os.unlink(notes / "a.txt")
    notes.rmdir()
    assert "notes" not in os.listdir(cli_mount.root)


@pytest.mark.mount
def test_statfs_reports_the_quota(cli_mount: CliMount) -> None:
    result = os.statvfs(cli_mount.root)
    assert result.f_blocks * result.f_frsize == 1024 * 1024
    assert 0 < result.f_bavail <= result.f_blocks
    df = subprocess.run(
        ["df", "-B1", str(cli_mount.root)], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert df.returncode == 0
    assert "1048576" in df.stdout.splitlines()[-1].split()


@pytest.mark.mount
def test_renameat2_noreplace_never_overwrites(cli_mount: CliMount) -> None:
    root = cli_mount.root
    (root / "old.txt").write_bytes(b"old")
    (root / "existing.txt").write_bytes(b"existing")
    assert renameat2(root / "old.txt", root / "existing.txt", RENAME_NOREPLACE) == errno.EEXIST
    assert (root / "existing.txt").read_bytes() == b"existing"
    result = renameat2(root / "old.txt", root / "new.txt", RENAME_NOREPLACE)
    if cli_mount.major == "3":
        assert result == 0  # the flag reaches the store, which honours it
        assert (root / "new.txt").read_bytes() == b"old"
    else:
        assert result == errno.EINVAL  # libfuse 2: the kernel refuses the flags itself
        assert (root / "old.txt").read_bytes() == b"old"
    for name in ("old.txt", "new.txt", "existing.txt"):
        if (root / name).exists():
            os.unlink(root / name)


@pytest.mark.mount
def test_a_raising_resource_is_eio_and_the_mount_lives_on(cli_mount: CliMount) -> None:
    with pytest.raises(OSError) as exc:
        (cli_mount.root / "broken.txt").read_bytes()
    assert exc.value.errno == errno.EIO
    assert (cli_mount.root / "hello.txt").read_bytes() == b"hello\n"
    assert "a bug in user code" in cli_mount.output()


@pytest.mark.mount
def test_names_that_are_not_utf8_round_trip(cli_mount: CliMount) -> None:
    name = os.fsencode(cli_mount.root) + b"/caf\xe9"
    with open(name, "wb") as file:
        file.write(b"latin-1")
    assert b"caf\xe9" in os.listdir(os.fsencode(cli_mount.root))
    with open(name, "rb") as file:
        assert file.read() == b"latin-1"
    os.unlink(name)


@pytest.mark.mount
def test_an_unlinked_open_file_vanishes_but_its_descriptor_works(cli_mount: CliMount) -> None:
    directory = cli_mount.root / "scratch"
    directory.mkdir()
    fd = os.open(directory / "file.bin", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"before")
        os.unlink(directory / "file.bin")
        assert os.listdir(directory) == []
        os.pwrite(fd, b"after!", 0)
        assert os.pread(fd, 100, 0) == b"after!"
        assert os.fstat(fd).st_size == 6
        assert os.fstat(fd).st_nlink == 0
        os.ftruncate(fd, 3)
        os.fchmod(fd, 0o600)
        assert os.fstat(fd).st_size == 3
        assert os.fstat(fd).st_mode & 0o777 == 0o600
        directory.rmdir()  # its only entry is gone, so it is empty
        assert "scratch" not in os.listdir(cli_mount.root)
        assert os.pread(fd, 100, 0) == b"aft"
    finally:
        os.close(fd)


@pytest.mark.mount
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signals_unmount_cleanly(fresh_mount: CliMount, sig: int) -> None:
    assert (fresh_mount.root / "hello.txt").read_bytes() == b"hello\n"
    assert fresh_mount.stop(sig) == 0, fresh_mount.output()
    assert not is_mounted(fresh_mount.root)
    assert str(fresh_mount.root) not in Path("/proc/mounts").read_text()


@pytest.mark.mount
def test_trace_prints_one_line_per_callback(app_file: Path, tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    mount = start_mount(
        f"{app_file}:fs", tmp_path / "mnt", tmp_path / "log.txt", "mfusepy", "3", "--trace"
    )
    try:
        assert (mount.root / "hello.txt").read_bytes() == b"hello\n"
        with pytest.raises(FileNotFoundError):
            os.stat(mount.root / "nope")
        assert mount.stop() == 0
    finally:
        cleanup(mount)
    lines = mount.output().splitlines()
    assert any(
        line.startswith("read ") and "/hello.txt" in line and "-> 6 bytes" in line for line in lines
    ), lines
    assert any(
        line.startswith("getattr ") and "/nope" in line and "store  -> ENOENT" in line
        for line in lines
    ), lines


@pytest.mark.mount
def test_hello_example_through_the_cli(tmp_path: Path) -> None:
    hello = Path(__file__).resolve().parent.parent / "examples" / "hello.py"
    (tmp_path / "mnt").mkdir()
    mount = start_mount(str(hello), tmp_path / "mnt", tmp_path / "log.txt", "fusepy", "2")
    try:
        assert sorted(os.listdir(mount.root)) == [f"test{i}.txt" for i in range(4)]
        assert (mount.root / "test2.txt").read_text() == "test2test2test2test2"
        assert mount.stop() == 0
    finally:
        cleanup(mount)


@pytest.mark.mount
def test_save_and_load_the_store(app_file: Path, tmp_path: Path) -> None:
    archive = tmp_path / "store.tar"
    (tmp_path / "mnt").mkdir()
    mount = start_mount(
        f"{app_file}:fs", tmp_path / "mnt", tmp_path / "log1.txt", "mfusepy", "3",
        "--save", str(archive),
    )  # fmt: skip
    try:
        (mount.root / "kept").mkdir()
        (mount.root / "kept" / "data.txt").write_text("survives the mount\n")
        assert mount.stop() == 0, mount.output()
    finally:
        cleanup(mount)
    assert archive.is_file()
    mount = start_mount(
        f"{app_file}:fs", tmp_path / "mnt", tmp_path / "log2.txt", "mfusepy", "3",
        "--load", str(archive),
    )  # fmt: skip
    try:
        assert (mount.root / "kept" / "data.txt").read_text() == "survives the mount\n"
    finally:
        cleanup(mount)


# -- in-process mounts ---------------------------------------------------------------------


def small_filesystem() -> FileSystem:
    fs = FileSystem(quota="1 MiB")

    @fs.route("/motd")
    class Motd(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=6)

        def read(self, size: int, offset: int) -> bytes:
            return b"hello\n"[offset : offset + size]

    return fs


@pytest.mark.mount
@pytest.mark.parametrize("binding", ["mfusepy", "fusepy"])
def test_mounted_serves_in_a_thread_and_always_unmounts(binding: str, tmp_path: Path) -> None:
    fs = small_filesystem()
    directory = os.getcwd()
    with fs.mounted(tmp_path, binding=binding, timeout=TIMEOUT) as root:
        assert os.getcwd() == directory  # libfuse's chdir("/") is undone
        assert root == tmp_path
        assert is_mounted(root)
        assert (root / "motd").read_bytes() == b"hello\n"
        (root / "note.txt").write_text("kept in memory")
        assert (root / "note.txt").read_text() == "kept in memory"
    assert not is_mounted(tmp_path)
    assert os.getcwd() == directory
    assert fs.store.getattr("/note.txt")["st_size"] == 14


@pytest.mark.mount
def test_mounted_unmounts_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(KeyError), mounted(small_filesystem(), tmp_path, timeout=TIMEOUT):
        raise KeyError("boom")
    assert not is_mounted(tmp_path)


@pytest.mark.mount
def test_mounted_refuses_a_mount_point_in_use(tmp_path: Path) -> None:
    with (
        mounted(small_filesystem(), tmp_path, timeout=TIMEOUT),
        pytest.raises(MountError, match="already a mount point"),
        mounted(small_filesystem(), tmp_path),
    ):
        pass
    assert not is_mounted(tmp_path)


@pytest.mark.mount
def test_mounted_reports_a_libfuse_failure(tmp_path: Path) -> None:
    with (
        pytest.raises(MountError, match="libfuse could not mount"),
        mounted(
            small_filesystem(),
            tmp_path,
            timeout=TIMEOUT,
            unchecked_options={"no_such_libfuse_option": True},
        ),
    ):
        pass
    assert not is_mounted(tmp_path)


@pytest.mark.mount
def test_utimens_markers_reach_the_store(tmp_path: Path) -> None:
    fs = small_filesystem()
    with fs.mounted(tmp_path, timeout=TIMEOUT) as root:
        (root / "t.txt").write_bytes(b"")
        os.utime(root / "t.txt", ns=(5_000_000_001, 7_000_000_002))
        result = os.stat(root / "t.txt")
        assert (result.st_atime_ns, result.st_mtime_ns) == (5_000_000_001, 7_000_000_002)
        before = time.time_ns()
        os.utime(root / "t.txt")  # both "now"
        assert os.stat(root / "t.txt").st_mtime_ns >= before - 10**9


#: The other caller: a shell that reads and creates in its own process (builtins only).
WHO = 'read -r seen < "$1/whoami"; : > "$1/shared/theirs"; echo "$seen"; echo $$ $(id -u) $(id -g)'


@pytest.mark.mount
@pytest.mark.parametrize(
    ("binding", "threads"),
    [("mfusepy", False), ("fusepy", False), ("mfusepy", True)],
    ids=["mfusepy", "fusepy", "mfusepy-threads"],
)
def test_each_request_sees_its_own_caller(binding: str, threads: bool, mountpoint: str) -> None:
    fs = FileSystem(quota="1 MiB")

    @fs.route("/whoami")
    class WhoAmI(Resource):
        dynamic = True  # direct_io: every read reaches the resource

        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=64, mode=0o444)

        def read(self, size: int, offset: int, ctx: Context) -> bytes:
            return f"{ctx.uid} {ctx.gid} {ctx.pid}".encode().ljust(64)[offset : offset + size]

    # As root, the other caller is another user too (the mount then needs allow_other).
    other = {"user": 1234, "group": 5678} if os.geteuid() == 0 else {}
    options = {"allow_other": True, "threads": threads} if other else {"threads": threads}
    # (``mountpoint``, not ``tmp_path``: the other user must reach it.)
    with fs.mounted(mountpoint, binding=binding, timeout=TIMEOUT, **options) as root:
        me = [str(os.getuid()), str(os.getgid()), str(os.getpid())]
        assert (root / "whoami").read_text().split() == me
        (root / "shared").mkdir()
        (root / "shared").chmod(0o777)
        child = subprocess.run(
            ["/bin/sh", "-c", WHO, "sh", str(root)],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
            **other,  # type: ignore[call-overload]
        )
        seen, (pid, uid, gid) = (line.split() for line in child.stdout.splitlines())
        assert seen == [uid, gid, pid]  # the child's own, not the test process's
        assert pid != str(os.getpid())
        theirs = (root / "shared" / "theirs").stat()
        assert (str(theirs.st_uid), str(theirs.st_gid)) == (uid, gid)
        if other:
            assert (theirs.st_uid, theirs.st_gid) == (1234, 5678)
        assert (root / "whoami").read_text().split() == me  # and back again
        (root / "shared" / "mine").touch()
        assert (root / "shared" / "mine").stat().st_uid == os.getuid()
