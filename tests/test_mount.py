"""Real mounts on every binding, through the CLI and in-process.

Real mounts run ``python -m defuse2 mount APP MOUNTPOINT --foreground`` in a subprocess on
each of mfusepy + libfuse 3, mfusepy + libfuse 2 and fusepy (libfuse 2), and exercise the
mount with real system calls; in-process mounts use ``fs.mounted()``. The adapter without a
mount is in ``test_mount_adapter.py``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from defuse2 import FileSystem, Resource, attributes
from defuse2.mount import (
    MountError,
    is_mounted,
    mounted,
)
from defuse2.store.base import RENAME_NOREPLACE, Context
from defuse2.testing import ScriptMount
from motd import small_filesystem

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


class CliMount:
    """A ``python -m defuse2 mount`` process and its mount point."""

    def __init__(self, server: ScriptMount, process: subprocess.Popen[bytes]) -> None:
        self.server, self.process = server, process
        self.root, self.major = Path(server.mountpoint), str(server.major)

    def output(self) -> str:
        return self.server.output()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and return the exit status."""
        self.process.send_signal(sig)
        return self.process.wait(timeout=TIMEOUT)


def start_mount(
    target: str, mountpoint: Path, log: Path, binding: str, major: str, *extra: str
) -> CliMount:
    command = [sys.executable, "-m", "defuse2", "mount", target, str(mountpoint), "--foreground"]
    command += ["--binding", binding, "--libfuse", major, *extra]
    server = ScriptMount(command, mountpoint, log, timeout=TIMEOUT, major=int(major))
    try:
        return CliMount(server, server.start())
    except RuntimeError as error:
        pytest.fail(str(error))


def cleanup(mount: CliMount) -> None:
    mount.server.stop()


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
