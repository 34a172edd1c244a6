"""The test client and the pytest plugin: what the conformance suite does not already show.

The conformance suite (``tests/conformance``) runs every POSIX check through the client,
also over a store that passes through to tmpfs, so the client's path walking is proven
against Linux there. This file covers the client's own promises: ``os``-shaped results and
errors, the caller's context, routed resources, and the plugin's fixtures and FUSE gate.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from defuse2 import ContentFile, FileSystem
from defuse2 import testing as defuse2_testing
from defuse2.store.base import Context
from defuse2.testing import TestClient, gate


@pytest.fixture
def fs() -> FileSystem:
    filesystem = FileSystem(quota="1 MiB")

    @filesystem.route("/motd")
    class Motd(ContentFile):
        def content(self) -> str:
            return "hello\n"

    return filesystem


@pytest.fixture
def client(fs: FileSystem) -> TestClient:
    return fs.test_client()


def test_results_are_os_types(client: TestClient) -> None:
    client.write_bytes("/f", b"12345")
    client.utime("/f", ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
    st = client.stat("/f")
    assert isinstance(st, os.stat_result)
    assert stat.S_ISREG(st.st_mode) and st.st_size == 5 and st.st_nlink == 1
    assert st.st_mtime_ns == 1_600_000_000_987_654_321
    assert st[stat.ST_MTIME] == 1_600_000_000 and st.st_mtime == pytest.approx(1.6e9 + 0.98765)
    assert st.st_atime_ns == 1_500_000_000_123_456_789
    assert isinstance(client.statvfs("/"), os.statvfs_result)
    client.utime("/f", (10.5, 20.25))
    assert (client.stat("/f").st_atime_ns, client.stat("/f").st_mtime_ns) == (
        10_500_000_000,
        20_250_000_000,
    )


def test_errors_are_os_errors_with_filenames(client: TestClient) -> None:
    with pytest.raises(FileNotFoundError) as exc:
        client.stat("/missing/x")
    assert (exc.value.errno, exc.value.filename) == (errno.ENOENT, "/missing/x")
    client.write_bytes("/a", b"")
    client.mkdir("/d")
    with pytest.raises(IsADirectoryError) as exc:
        client.rename("/a", "/d")
    assert (exc.value.filename, exc.value.filename2) == ("/a", "/d")
    with pytest.raises(OSError) as exc:
        client.read(1234, 1)
    assert exc.value.errno == errno.EBADF


def test_descriptors_are_small_distinct_integers(client: TestClient) -> None:
    first = client.open("/f", os.O_RDWR | os.O_CREAT)
    second = client.open("/f", os.O_RDONLY)
    assert first >= 3 and second not in (first, 0, 1, 2)
    client.write(first, b"abc")
    assert client.read(second, 10) == b"abc"  # separate offsets
    assert client.read(second, 10) == b""
    client.close(first)
    client.close(second)
    with pytest.raises(OSError) as exc:
        client.close(first)
    assert exc.value.errno == errno.EBADF


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000, 0o777])
def test_the_context_umask_applies_to_new_nodes(fs: FileSystem, umask: int) -> None:
    client = TestClient(fs, context=Context(os.getuid(), os.getgid(), os.getpid(), umask))
    client.mkdir("/d", 0o777)
    client.close(client.open("/f", os.O_CREAT | os.O_WRONLY, 0o666))
    client.mknod("/p", stat.S_IFIFO | 0o666)
    assert stat.S_IMODE(client.stat("/d").st_mode) == 0o777 & ~umask
    assert stat.S_IMODE(client.stat("/f").st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(client.lstat("/p").st_mode) == 0o666 & ~umask
    client.chmod("/f", 0o666)  # chmod ignores the umask
    assert stat.S_IMODE(client.stat("/f").st_mode) == 0o666


def test_the_context_owns_new_nodes_and_is_checked(fs: FileSystem) -> None:
    client = TestClient(fs, context=Context(1234, 5678, 42, 0o022))
    with pytest.raises(PermissionError) as exc:  # "/" belongs to this process's user
        client.write_bytes("/f", b"")
    assert exc.value.errno == errno.EACCES
    TestClient(fs, context=Context(0, 0, 1, 0o022)).chmod("/", 0o1777)
    client.write_bytes("/f", b"")
    assert (client.stat("/f").st_uid, client.stat("/f").st_gid) == (1234, 5678)


def test_routed_resources_through_the_client(client: TestClient) -> None:
    assert "motd" in client.listdir("/")
    assert client.read_text("/motd") == "hello\n"
    assert client.isfile("/motd") and not client.isdir("/motd") and not client.islink("/motd")
    with pytest.raises(OSError) as exc:
        client.write_text("/motd", "changed")
    assert exc.value.errno == errno.EROFS
    with pytest.raises(OSError) as exc:
        client.unlink("/motd")
    assert exc.value.errno == errno.EROFS


def test_conveniences(client: TestClient) -> None:
    assert client.write_text("/t.txt", "héllo") == len("héllo".encode())
    assert client.read_text("/t.txt") == "héllo"
    client.makedirs("/a/b/c")
    client.makedirs("/a/b/c", exist_ok=True)
    client.symlink("a/b", "/link")
    assert client.exists("/link/c") and client.isdir("/link") and client.islink("/link")
    assert not client.exists("/nothing")
    assert client.access("/t.txt", os.R_OK) and not client.access("/nothing", os.F_OK)
    client.replace("/t.txt", "/a/t.txt")
    client.remove("/a/t.txt")
    assert client.listdir("/a") == ["b"]


def test_a_dispatcher_can_be_driven_directly(fs: FileSystem) -> None:
    client = TestClient(fs.dispatcher())
    client.write_bytes("/x", b"data")
    assert fs.test_client().read_bytes("/x") == b"data"  # the same store behind both


def test_unlinked_descriptors_reach_the_store_without_a_path(client: TestClient) -> None:
    fd = client.open("/f", os.O_RDWR | os.O_CREAT)
    client.write(fd, b"kept")
    client.unlink("/f")
    assert client.pread(fd, 10, 0) == b"kept"
    assert client.fstat(fd).st_nlink == 0
    client.close(fd)
    assert client.listdir("/") == ["motd"]


def test_require_fuse_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "fuse_unavailable_reason", lambda binding=None: "no /dev/fuse")
    monkeypatch.setenv("CI", "true")  # the environment alone changes nothing
    with pytest.raises(pytest.skip.Exception, match="no /dev/fuse"):
        defuse2_testing.require_fuse()
    with pytest.raises(pytest.fail.Exception, match="FUSE is required here: no /dev/fuse"):
        defuse2_testing.require_fuse(required=True)
    monkeypatch.setattr(gate, "fuse_unavailable_reason", lambda binding=None: None)
    defuse2_testing.require_fuse(required=True)  # usable: nothing happens


@pytest.mark.mount
@pytest.mark.parametrize("binding", ["mfusepy", "fusepy"])
def test_fuse_is_usable_here(binding: str) -> None:
    assert defuse2_testing.fuse_unavailable_reason(binding) is None


def test_script_mount_refuses_a_command_that_exits_without_mounting(tmp_path: Path) -> None:
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    log = tmp_path / "log.txt"
    argv = [sys.executable, "-c", "print('no mount here')"]
    mounted = defuse2_testing.script_mount(argv, mountpoint, log, timeout=10)
    with pytest.raises(RuntimeError, match="(?s)did not mount.*no mount here"), mounted:
        pytest.fail("the block ran without a mount")
    assert not os.path.ismount(mountpoint)


def test_script_mount_kills_a_command_that_neither_mounts_nor_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    argv = [sys.executable, "-c", "print('waiting', flush=True); import time; time.sleep(60)"]
    server = defuse2_testing.ScriptMount(argv, mountpoint, tmp_path / "log.txt", timeout=0.5)
    calls: list[str] = []

    def noting(name: str) -> Callable[[], None]:
        method = getattr(server, name)

        def call() -> None:
            calls.append(name)
            method()

        return call

    for name in ("kill", "stop"):
        monkeypatch.setattr(server, name, noting(name))
    with pytest.raises(RuntimeError, match="(?s)did not mount.*waiting"):
        server.start()
    assert calls[:2] == ["kill", "stop"]  # killed first, not waited for a whole timeout more
    assert server.process is not None and server.process.returncode == -signal.SIGKILL
