"""Mount points and mount options, checked before libfuse runs, the same on every binding.

A non-empty mount point is refused on libfuse 3 and 2 alike unless ``nonempty`` is
passed; a stale mount (its server killed) is named as such and cleared by
``defuse2 umount``; a daemon's errors reach its ``--log`` file with their tracebacks; a
misspelt option is refused by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from defuse2 import FileSystem
from defuse2.mount import is_mounted, mount, unmount
from defuse2.options import OptionError, check_options
from defuse2.preflight import MountError, check_access, check_mountpoint
from defuse2.testing import ScriptMount, script_mount

TIMEOUT = 20

APP = textwrap.dedent(
    '''
    """A filesystem with a file whose read always fails."""
    from defuse2 import FileSystem

    fs = FileSystem()

    @fs.file("/motd")
    def motd():
        return "hello\\n"

    @fs.file("/broken")
    def broken():
        return str(1 / 0)
    '''
)

#: (binding, libfuse major) of every way to mount.
TARGETS = [("mfusepy", "3"), ("mfusepy", "2"), ("fusepy", "2")]


@pytest.fixture
def app(tmp_path: Path) -> str:
    path = tmp_path / "points_app.py"
    path.write_text(APP)
    return f"{path}:fs"


def defuse2_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "defuse2", *args]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(defuse2_command(*args), capture_output=True, text=True, timeout=60)


def mount_args(app: str, mountpoint: Path, binding: str, libfuse: str) -> list[str]:
    return ["mount", app, str(mountpoint), "--binding", binding, "--libfuse", libfuse]


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


# -- non-empty mount points ----------------------------------------------------------------


@pytest.mark.mount
@pytest.mark.parametrize(("binding", "libfuse"), TARGETS)
def test_a_non_empty_mount_point_is_refused_alike(
    app: str, tmp_path: Path, binding: str, libfuse: str
) -> None:
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    (mountpoint / "kept.txt").write_text("mine")
    refused = run(*mount_args(app, mountpoint, binding, libfuse))
    assert refused.returncode == 1
    assert refused.stderr == (
        f"defuse2: error: mount point {mountpoint} is not empty (1 entry: kept.txt); a "
        "mount would hide them until it ends. Use an empty directory, or pass the option "
        "nonempty (-o nonempty, or nonempty=True) to mount over them\n"
    )
    assert not is_mounted(mountpoint)

    command = defuse2_command(*mount_args(app, mountpoint, binding, libfuse), "-o", "nonempty")
    with script_mount(command, mountpoint, tmp_path / "log", timeout=TIMEOUT) as server:
        assert sorted(os.listdir(mountpoint)) == ["broken", "motd"]  # kept.txt is hidden
    assert server.returncode == 0, (tmp_path / "log").read_text()
    assert (mountpoint / "kept.txt").read_text() == "mine"


def test_check_mountpoint_allows_entries_when_told(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(MountError, match=r"is not empty \(1 entry: a\)"):
        check_mountpoint(str(tmp_path))
    check_mountpoint(str(tmp_path), nonempty=True)


# -- stale mounts ----------------------------------------------------------------------------


@pytest.mark.mount
@pytest.mark.parametrize(("binding", "libfuse"), TARGETS)
def test_a_stale_mount_is_named_and_cleared_by_one_command(
    app: str, tmp_path: Path, binding: str, libfuse: str
) -> None:
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    command = defuse2_command(*mount_args(app, mountpoint, binding, libfuse))
    script = ScriptMount(command, mountpoint, tmp_path / "log", timeout=TIMEOUT, major=int(libfuse))
    server = script.start()
    try:
        server.send_signal(signal.SIGKILL)  # no chance to unmount: the mount goes stale
        server.wait(TIMEOUT)
        with pytest.raises(OSError) as gone:
            os.listdir(mountpoint)
        assert gone.value.strerror == "Transport endpoint is not connected"

        again = run(*mount_args(app, mountpoint, binding, libfuse))
        assert again.returncode == 1
        assert f"{mountpoint} is a stale FUSE mount" in again.stderr
        assert f"'defuse2 umount {mountpoint}'" in again.stderr

        cleared = run("umount", str(mountpoint))
        assert cleared.returncode == 0, cleared.stderr
        assert (
            cleared.stdout
            == f"cleared the stale mount on {mountpoint} (its filesystem had exited)\n"
        )
        assert not is_mounted(mountpoint)
        assert os.listdir(mountpoint) == []
    finally:
        script.stop()


@pytest.mark.mount
def test_umount_ends_a_live_mount(app: str, tmp_path: Path) -> None:
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    command = defuse2_command("mount", app, str(mountpoint))
    with script_mount(command, mountpoint, tmp_path / "log", timeout=TIMEOUT) as server:
        done = run("umount", str(mountpoint))
        assert (done.returncode, done.stdout) == (0, f"unmounted {mountpoint}\n")
        assert server.wait(TIMEOUT) == 0  # the foreground server exits with its mount


@pytest.mark.mount
def test_a_mount_ended_from_outside_leaves_the_next_mount_alone(tmp_path: Path) -> None:
    """Unmounted from outside, then mounted anew on the same path: the end of the first
    mount must not unmount the second. (A daemon notices its end up to half a second
    after ``defuse2 umount``, while ``defuse2 mount`` may already be there again.)"""
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    first, second = FileSystem(), FileSystem()

    @second.file("/second")
    def marker() -> str:
        return "second\n"

    first_mount = first.mounted(mountpoint)
    first_mount.__enter__()
    try:
        assert unmount(str(mountpoint))
        # The first mount's loop has returned (its thread is named after the path).
        loop = f"defuse2 {mountpoint}"
        assert wait_until(lambda: loop not in {t.name for t in threading.enumerate()})
        with second.mounted(mountpoint):
            first_mount.__exit__(None, None, None)
            assert (mountpoint / "second").read_text() == "second\n"
    finally:
        if is_mounted(mountpoint):
            unmount(str(mountpoint))


def test_umount_refuses_what_is_not_a_fuse_mount(tmp_path: Path, tmpfs_root: str) -> None:
    done = run("umount", str(tmp_path))
    assert (done.returncode, done.stderr) == (
        1,
        f"defuse2: error: {tmp_path} is not a mount point\n",
    )
    if is_mounted(tmpfs_root):
        done = run("umount", tmpfs_root)
        assert done.returncode == 1
        assert "is a tmpfs mount, not FUSE; defuse2 umount leaves it alone" in done.stderr
        assert is_mounted(tmpfs_root)


# -- daemon mode and its log -----------------------------------------------------------------


@pytest.mark.mount
def test_a_daemon_logs_tracebacks_to_its_log_file(app: str, tmp_path: Path) -> None:
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    log = tmp_path / "daemon.log"
    started = run("mount", app, str(mountpoint), "--daemon", "--log", str(log))
    try:
        assert started.returncode == 0, started.stderr  # returns once mounted
        assert is_mounted(mountpoint)
        assert (mountpoint / "motd").read_text() == "hello\n"
        with pytest.raises(OSError) as failed:
            (mountpoint / "broken").read_text()
        assert failed.value.errno == 5  # EIO
        assert wait_until(lambda: "ZeroDivisionError" in log.read_text())
        text = log.read_text()
        assert "ERROR defuse2" in text and "/broken" in text
        assert "Traceback (most recent call last)" in text
        assert "return str(1 / 0)" in text
    finally:
        done = run("umount", str(mountpoint))
    assert done.returncode == 0, done.stderr


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "major", "message"),
    [
        (
            {"alow_other": True},
            3,
            r"unknown mount option 'alow_other' \(did you mean 'allow_other' or",
        ),
        (
            {"big_writes": True},
            3,
            "'big_writes' exists on libfuse 2 only, and this mount uses libfuse 3",
        ),
        ({"clone_fd": True}, 2, "'clone_fd' exists on libfuse 3 only"),
        (
            {"zzz": 1},
            2,
            r"unknown mount option 'zzz'\. An option .* unchecked_options=\{'zzz': \.\.\.\}",
        ),
    ],
)
def test_check_options_names_the_fix(options: dict[str, object], major: int, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        check_options(options, major=major)


def test_every_default_and_common_option_passes() -> None:
    check_options(
        {"allow_other": True, "max_read": "65536", "nonempty": True, "threads": True}, major=3
    )
    check_options({"big_writes": True, "max_write": 131072, "use_ino": True}, major=2)


def test_a_misspelt_option_is_refused_before_mounting(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="did you mean 'default_permissions'"):
        mount(FileSystem(), tmp_path, default_permision=False)
    assert not is_mounted(tmp_path)


# -- access to FUSE ------------------------------------------------------------------------------


def test_check_access_explains_a_missing_device(tmp_path: Path) -> None:
    with pytest.raises(MountError, match="does not exist: load the fuse kernel module"):
        check_access({}, major=3, device=str(tmp_path / "fuse"))


def test_check_access_explains_allow_other_for_users(tmp_path: Path) -> None:
    conf = tmp_path / "fuse.conf"
    conf.write_text("# user_allow_other\nmount_max = 1000\n")
    with pytest.raises(MountError, match="allow_other needs 'user_allow_other' in"):
        check_access({"allow_other": True}, major=3, euid=1000, fuse_conf=str(conf))
    check_access({}, major=3, euid=1000, fuse_conf=str(conf))  # no allow_other: fine
    conf.write_text("user_allow_other\n")
    check_access({"allow_other": True}, major=3, euid=1000, fuse_conf=str(conf))
