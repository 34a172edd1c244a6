"""``--save``/``--load`` from the command line: checked before mounting, one-line errors,
a summary line, and saves while mounted (``SIGUSR1``, ``--save-every``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from defuse2.store.memory import MemoryStore
from defuse2.testing import script_mount

APP = 'from defuse2 import FileSystem\nfs = FileSystem(quota="8 MiB")\n'

#: (binding, libfuse major) of every set-up.
SETUPS = [("mfusepy", "3"), ("mfusepy", "2"), ("fusepy", "2")]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "snap_app.py"
    path.write_text(APP)
    return path


def command(
    app: Path, mountpoint: Path, *extra: str, setup: tuple[str, str] = SETUPS[0]
) -> list[str]:
    binding, major = setup
    return [
        sys.executable, "-m", "defuse2", "mount", str(app), str(mountpoint), "--foreground",
        "--binding", binding, "--libfuse", major, *extra,
    ]  # fmt: skip


def names_in(archive: Path) -> list[str]:
    try:
        with tarfile.open(archive) as opened:
            return sorted(opened.getnames())
    except (OSError, tarfile.TarError):
        return []


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def mountpoint(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "mnt"
    path.mkdir()
    yield path
    assert not os.path.ismount(path)


# -- before mounting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("/no/such/dir/s.tar", "cannot save to /no/such/dir/s.tar: No such file or directory"),
        ("/", "cannot save to /: Is a directory"),
    ],
)
def test_an_unwritable_save_path_is_refused_before_mounting(
    app: Path, mountpoint: Path, option: str, message: str
) -> None:
    done = subprocess.run(
        command(app, mountpoint, "--save", option), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"defuse2: error: {message}"


def test_a_damaged_archive_to_load_is_one_line(app: Path, mountpoint: Path) -> None:
    bad = mountpoint.parent / "bad.tar"
    bad.write_text("not an archive\n")
    done = subprocess.run(
        command(app, mountpoint, "--load", str(bad)), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"defuse2: error: cannot load {bad}: not a tar archive "
        "(or a compressed one of a kind not recognised)"
    ]


# -- while mounted -------------------------------------------------------------------------


@pytest.mark.mount
@pytest.mark.parametrize("setup", SETUPS, ids=["-".join(s) for s in SETUPS])
def test_sigusr1_saves_while_mounted(app: Path, mountpoint: Path, setup: tuple[str, str]) -> None:
    archive = mountpoint.parent / "store.tar"
    log = mountpoint.parent / "log.txt"
    with script_mount(
        command(app, mountpoint, "--save", str(archive), setup=setup), mountpoint, log
    ) as run:
        (mountpoint / "first.txt").write_text("one\n")
        os.kill(run.pid, signal.SIGUSR1)
        assert wait_for(lambda: names_in(archive) == [".", "first.txt"]), log.read_text()
        (mountpoint / "second.txt").write_text("two\n")
        assert (mountpoint / "first.txt").read_text() == "one\n"  # still serving
    assert run.returncode == 0, log.read_text()
    assert names_in(archive) == [".", "first.txt", "second.txt"]
    lines = log.read_text().splitlines()
    assert any(f"saved {archive} (on SIGUSR1): 2 entries" in line for line in lines), lines
    assert any(f"saved {archive} (at unmount): 3 entries" in line for line in lines), lines
    restored = MemoryStore(quota="8 MiB")
    restored.import_tar(archive)
    assert sorted(restored.readdir("/")) == ["first.txt", "second.txt"]


@pytest.mark.mount
def test_save_every_saves_on_a_timer(app: Path, mountpoint: Path) -> None:
    archive = mountpoint.parent / "store.tar"
    log = mountpoint.parent / "log.txt"
    argv = command(app, mountpoint, "--save", str(archive), "--save-every", "0.2")
    with script_mount(argv, mountpoint, log):
        (mountpoint / "a.txt").write_text("a\n")
        assert wait_for(lambda: "a.txt" in names_in(archive)), log.read_text()
        (mountpoint / "b.txt").write_text("b\n")
        assert wait_for(lambda: "b.txt" in names_in(archive)), log.read_text()
    assert "(every 0.2 s)" not in log.read_text()  # quick timed saves print nothing


@pytest.mark.mount
def test_a_failed_save_at_unmount_keeps_the_previous_archive(
    app: Path, mountpoint: Path, small_tmpfs: Path
) -> None:
    archive = small_tmpfs / "store.tar"
    previous = MemoryStore()
    previous.mkdir("/kept", 0o755)
    previous.export_tar(archive)
    log = mountpoint.parent / "log.txt"
    with script_mount(command(app, mountpoint, "--save", str(archive)), mountpoint, log) as run:
        (mountpoint / "random").write_bytes(os.urandom(2 << 20))  # more than the disk holds
    assert run.returncode == 1
    assert f"saving {archive} (at unmount) failed: No space left on device" in log.read_text()
    assert names_in(archive) == [".", "kept"]
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["store.tar"]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 1 MiB, to fill."""
    path = tmp_path / "small"
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)]).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)])


def test_a_saver_saves_on_the_signal_and_restores_signal_handling(tmp_path: Path) -> None:
    from defuse2.autosave import SAVE_SIGNAL, Saver

    before = signal.getsignal(SAVE_SIGNAL), signal.pthread_sigmask(signal.SIG_BLOCK, [])
    store = MemoryStore()
    store.mkdir("/made", 0o755)
    lines: list[str] = []
    saver = Saver(store, str(tmp_path / "s.tar"), report=lines.append)
    saver.start()
    try:
        os.kill(os.getpid(), SAVE_SIGNAL)
        assert wait_for(lambda: names_in(tmp_path / "s.tar") == [".", "made"])
    finally:
        saver.stop()
    assert (signal.getsignal(SAVE_SIGNAL), signal.pthread_sigmask(signal.SIG_BLOCK, [])) == before
    assert len(lines) == 1
    assert lines[0].startswith(f"saved {tmp_path / 's.tar'} (on SIGUSR1): 2 entries, 0 bytes")


def serving_pid(mountpoint: Path) -> int:
    """The process whose command line names ``mountpoint`` (a daemon's child)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if os.fsencode(mountpoint) in argv and b"--daemon" in argv:
                return int(entry.name)
    raise AssertionError(f"no process serves {mountpoint}")


@pytest.mark.mount
def test_a_daemon_saves_on_sigusr1_on_a_timer_and_at_unmount(app: Path, mountpoint: Path) -> None:
    archive, log = mountpoint.parent / "store.tar", mountpoint.parent / "fs.log"
    argv = command(app, mountpoint, "--save", str(archive), "--log", str(log))
    argv[argv.index("--foreground")] = "--daemon"
    done = subprocess.run([*argv, "--save-every", "30"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr  # the parent returns once the child serves
    try:
        (mountpoint / "a.txt").write_text("a\n")
        os.kill(serving_pid(mountpoint), signal.SIGUSR1)
        assert wait_for(lambda: "a.txt" in names_in(archive)), log.read_text()
        (mountpoint / "b.txt").write_text("b\n")
    finally:
        subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True)
    assert wait_for(lambda: "(at unmount)" in log.read_text()), log.read_text()
    assert names_in(archive) == [".", "a.txt", "b.txt"]
    assert "(on SIGUSR1): 2 entries" in log.read_text()
