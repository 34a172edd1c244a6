"""A hung resource method never freezes the mount, nor delays its end.

The filesystem below has a route whose ``read`` blocks for 20 s. Through the CLI, on
every binding, while a client waits on that read: other routed files, ``stat`` and the
store answer at once; ``SIGTERM``/``SIGINT`` unmount and end the process within 2 s,
saving the store when ``--save`` was given; daemon mode does the same. In-process,
``fs.mounted()`` leaves its ``with`` block as quickly.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from defuse2 import FileSystem, Resource, attributes
from defuse2.mount import is_mounted, unmount
from defuse2.testing import ScriptMount

CONFIGS = [("mfusepy", "3", ()), ("mfusepy", "2", ()), ("fusepy", "2", ())]
IDS = ["mfusepy-libfuse3", "mfusepy-libfuse2", "fusepy"]
#: libfuse's own threaded loop too, whose workers keep their Python state while spare
#: readers (Python threads) join them.
THREADED = [*CONFIGS, ("mfusepy", "3", ("-o", "threads"))]
THREADED_IDS = [*IDS, "mfusepy-libfuse3-threads"]
HANG = 20.0  # seconds the slow read blocks
PROMPT = 2.0  # seconds within which the mount must be gone after a signal

APP = textwrap.dedent(
    f'''
    """A filesystem with one read that hangs (env SLOW_SECONDS: for how long)."""
    import asyncio
    import os
    import time

    from defuse2 import FileSystem, Resource, attributes

    fs = FileSystem()

    @fs.route("/async/<int:tenths>/<name>", dynamic=True)
    class Awaiting(Resource):
        def getattr(self, tenths, name):
            return attributes.file(size=5)

        async def read(self, tenths, name, size, offset):
            await asyncio.sleep(tenths / 10)
            return b"done\\n"[offset : offset + size]

    @fs.route("/slow.txt")
    class Slow(Resource):
        def getattr(self):
            return attributes.file(size=5)

        def read(self, size, offset):
            time.sleep(float(os.environ.get("SLOW_SECONDS", {HANG})))
            return b"slow\\n"

    @fs.route("/fast.txt")
    class Fast(Resource):
        def getattr(self):
            return attributes.file(size=5)

        def read(self, size, offset):
            return b"fast\\n"
    '''
)


def elapsed(function: object, *args: object) -> float:
    start = time.monotonic()
    function(*args)  # type: ignore[operator]
    return time.monotonic() - start


def wait_until(condition: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slow") / "slow_app.py"
    path.write_text(APP)
    return path


class Server:
    """``python -m defuse2 mount slow_app.py:fs MOUNTPOINT`` and a client stuck on it."""

    def __init__(
        self, app: Path, tmp_path: Path, binding: str, libfuse: str, extra: tuple[str, ...]
    ) -> None:
        self.root = tmp_path / "mnt"
        self.root.mkdir()
        self.log = tmp_path / "log.txt"
        self.libfuse = libfuse
        self.command = [
            sys.executable, "-m", "defuse2", "mount", f"{app}:fs", str(self.root),
            "--binding", binding, "--libfuse", libfuse, *extra,
        ]  # fmt: skip
        self.mount: ScriptMount | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.client: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str, env: dict[str, str] | None = None) -> None:
        """Mount in the foreground; the mount is there on return."""
        command = [*self.command, "--foreground", *extra]
        self.mount = ScriptMount(command, self.root, self.log, env=env, major=int(self.libfuse))
        self.process = self.mount.start()

    def start_daemon(self) -> None:
        """Mount with ``--daemon``, whose command exits once the mount is live (so not
        through :class:`ScriptMount`, which takes an exit for a failed start)."""
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [*self.command, "--daemon"], stdout=output, stderr=subprocess.STDOUT
            )
        assert wait_until(lambda: is_mounted(self.root)), self.log.read_text()

    def hang_a_client(self) -> None:
        """A ``cat`` of the slow file, waiting in the resource's ``read``."""
        self.client = subprocess.Popen(
            ["cat", str(self.root / "slow.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # well inside the 20 s read
        assert self.client.poll() is None

    def close(self) -> None:
        """End the client, then the mount: ``stop()`` a foreground one; kill a daemon's
        command if still there and unmount, which ends the daemon."""
        if self.client is not None and self.client.poll() is None:
            self.client.kill()
            self.client.wait()
        if self.mount is not None:
            self.mount.stop()
            return
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if is_mounted(self.root):
            unmount(self.root, major=int(self.libfuse))


@pytest.fixture(params=CONFIGS, ids=IDS)
def server(request: pytest.FixtureRequest, app: Path, tmp_path: Path) -> Iterator[Server]:
    started = Server(app, tmp_path, *request.param)
    try:
        yield started
    finally:
        started.close()


def check_other_paths_answer(root: Path) -> None:
    """Routed, store and metadata calls, each well under a second."""
    assert elapsed(os.stat, root / "fast.txt") < 1.0
    assert elapsed((root / "fast.txt").read_bytes) < 1.0
    assert (root / "fast.txt").read_bytes() == b"fast\n"
    assert elapsed(os.mkdir, root / "made") < 1.0
    assert elapsed((root / "made" / "note").write_bytes, b"kept") < 1.0
    assert elapsed(os.listdir, root) < 1.0
    assert sorted(os.listdir(root)) == ["async", "fast.txt", "made", "slow.txt"]


@pytest.mark.mount
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("server", THREADED, ids=THREADED_IDS, indirect=True)
def test_a_hung_read_holds_back_nothing(server: Server, sig: int, tmp_path: Path) -> None:
    saved = tmp_path / "saved.tar"
    server.start("--save", str(saved))
    server.hang_a_client()
    check_other_paths_answer(server.root)

    assert server.process is not None and server.client is not None
    start = time.monotonic()
    server.process.send_signal(sig)
    assert server.process.wait(timeout=HANG) == 0, server.log.read_text()
    assert time.monotonic() - start < PROMPT, server.log.read_text()
    assert not is_mounted(server.root)
    # The waiting client is let go with an error, not left waiting for the read.
    assert server.client.wait(timeout=PROMPT) != 0
    with tarfile.open(saved) as archive:  # the store was saved on the way out
        assert archive.extractfile("made/note").read() == b"kept"  # type: ignore[union-attr]


@pytest.mark.mount
@pytest.mark.parametrize("server", THREADED, ids=THREADED_IDS, indirect=True)
def test_a_mount_that_had_slow_calls_ends_cleanly(server: Server) -> None:
    # The slow read brings a spare reader; once it is over, unmounting ends the loop and
    # tears libfuse down normally (the loop is not left to a hung method).
    server.start(env={**os.environ, "SLOW_SECONDS": "1"})
    slow = subprocess.Popen(["cat", str(server.root / "slow.txt")], stdout=subprocess.PIPE)
    time.sleep(0.2)
    check_other_paths_answer(server.root)
    for number in range(50):  # enough requests to reach a spare reader among threads
        with pytest.raises(FileNotFoundError):
            os.stat(server.root / "made" / f"absent-{number}")
    assert slow.communicate(timeout=HANG)[0] == b"slow\n"
    assert unmount(server.root, major=int(server.libfuse))
    assert server.process is not None
    assert server.process.wait(timeout=HANG) == 0, server.log.read_text()


def serving_process(root: Path) -> int:
    """The pid of the process whose command line names ``root`` (the daemon)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(root).encode() in command and b"defuse2" in command:
                return int(entry)
    raise AssertionError(f"no process serves {root}")


@pytest.mark.mount
def test_twenty_async_reads_of_a_second_each_finish_together(server: Server) -> None:
    server.start()
    readers = [
        subprocess.Popen(["cat", str(server.root / f"async/10/file{n}")], stdout=subprocess.PIPE)
        for n in range(20)
    ]
    start = time.monotonic()
    assert [reader.communicate(timeout=HANG)[0] for reader in readers] == [b"done\n"] * 20
    elapsed = time.monotonic() - start
    assert elapsed < 6, f"{elapsed:.1f} s: not concurrent (one after the other takes 20 s)"


@pytest.mark.mount
def test_ctrl_c_ends_a_client_waiting_on_an_async_read(server: Server) -> None:
    server.start()
    client = subprocess.Popen(["cat", str(server.root / "async/600/x")], stdout=subprocess.PIPE)
    time.sleep(0.5)
    start = time.monotonic()
    client.send_signal(signal.SIGINT)  # the kernel sends FUSE_INTERRUPT; defuse2: EINTR
    assert client.wait(timeout=HANG) == -signal.SIGINT
    assert time.monotonic() - start < PROMPT  # not the 60 s the read awaits
    assert client.stdout is not None and client.stdout.read() == b""
    client.stdout.close()
    check_other_paths_answer(server.root)


def has_exited(pid: int) -> bool:
    """Whether process ``pid`` is gone or a zombie (nobody may be there to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.mount
def test_daemon_mode_stops_as_promptly(server: Server) -> None:
    server.start_daemon()
    assert server.process is not None
    assert server.process.wait(timeout=20) == 0, server.log.read_text()
    daemon = serving_process(server.root)
    server.hang_a_client()
    check_other_paths_answer(server.root)
    start = time.monotonic()
    os.kill(daemon, signal.SIGTERM)
    assert wait_until(lambda: has_exited(daemon), PROMPT * 2)
    assert time.monotonic() - start < PROMPT
    assert not is_mounted(server.root)


@pytest.mark.mount
def test_daemon_mode_reports_a_failed_mount(app: Path, tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    command = [sys.executable, "-m", "defuse2", "mount", f"{app}:fs", str(tmp_path / "mnt")]
    result = subprocess.run(
        [*command, "--daemon", "--unchecked-option", "no_such_option"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert "could not mount" in result.stderr
    assert not is_mounted(tmp_path / "mnt")


@pytest.mark.mount
@pytest.mark.parametrize("mode", ["--foreground", "--daemon"])
def test_a_failing_start_hook_fails_the_command_with_its_name(tmp_path: Path, mode: str) -> None:
    app = tmp_path / "hooked.py"
    app.write_text(
        "from defuse2 import FileSystem\n"
        "fs = FileSystem()\n"
        "@fs.on_start\n"
        "def connect():\n"
        "    raise ConnectionRefusedError(111, 'Connection refused')\n"
    )
    (tmp_path / "mnt").mkdir()
    command = [sys.executable, "-m", "defuse2", "mount", f"{app}:fs", str(tmp_path / "mnt")]
    result = subprocess.run([*command, mode], capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert "on_start hook connect() failed" in result.stderr
    assert "Connection refused" in result.stderr
    assert not is_mounted(tmp_path / "mnt")


@pytest.mark.mount
def test_mounted_leaves_promptly_while_a_method_hangs(
    mountpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    fs = FileSystem()
    entered = []

    @fs.route("/slow.txt")
    class Slow(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=5)

        def read(self, size: int, offset: int) -> bytes:
            entered.append(True)
            time.sleep(HANG)
            return b"slow\n"

    client = None
    start = 0.0
    with caplog.at_level(logging.WARNING, logger="defuse2.mount"), fs.mounted(mountpoint) as root:
        client = subprocess.Popen(["cat", str(root / "slow.txt")], stdout=subprocess.DEVNULL)
        assert wait_until(lambda: bool(entered))
        start = time.monotonic()
    assert time.monotonic() - start < PROMPT
    assert not is_mounted(mountpoint)
    assert client.wait(timeout=PROMPT) != 0
    assert "a resource method is still running" in caplog.text
