"""A filesystem served by a command of its own, as a user starts it.

Where this sits: the ``defuse2_mount`` fixture mounts a :class:`~defuse2.FileSystem` in
the test's own process; :func:`script_mount` runs a *command* instead, such as
``python examples/hello.py MOUNTPOINT --foreground``, to test the script itself: that it
mounts, serves, and exits cleanly when unmounted. :class:`ScriptMount` is the same in two
steps, :meth:`~ScriptMount.start` and :meth:`~ScriptMount.stop`, for a mount that lives
longer than one block (a benchmark's target).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ..unmounting import unmount


class ScriptMount:
    """``argv``, a command that mounts ``mountpoint`` in the foreground, in a subprocess.

    The command's output (stdout and stderr) goes to the file ``log``; its input is
    ``/dev/null``, since a server reads none.

    :param timeout: seconds to wait for the mount, for the unmount and for the command
        to exit afterwards.
    :param env: the command's whole environment; default: this process's.
    :param major: libfuse major of the mount; picks ``fusermount3`` or ``fusermount``.
    :param start_new_session: run the command in a session and process group of its
        own, so that a terminal's signals miss it and :meth:`kill` ends all it started.
    """

    def __init__(
        self,
        argv: Sequence[str],
        mountpoint: str | os.PathLike[str],
        log: str | os.PathLike[str],
        *,
        timeout: float = 20.0,
        env: Mapping[str, str] | None = None,
        major: int = 3,
        start_new_session: bool = False,
    ) -> None:
        self.argv, self.mountpoint, self.log = list(argv), mountpoint, log
        self.timeout, self.env, self.major = timeout, env, major
        self.start_new_session = start_new_session
        self.process: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        """What the command printed so far (its log)."""
        return Path(self.log).read_text(errors="replace")

    def start(self) -> subprocess.Popen[bytes]:
        """Run the command and wait until the mount is there; the process.

        :raises RuntimeError: with the log, if the command exits first or ``timeout``
            passes (it is killed then: a command that has not mounted in time hangs).
        """
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                env=self.env,
                start_new_session=self.start_new_session,
            )
        deadline = time.monotonic() + self.timeout
        while not os.path.ismount(self.mountpoint):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                self.stop()
                command = " ".join(self.argv)
                raise RuntimeError(f"{command} did not mount {self.mountpoint}:\n{self.output()}")
            time.sleep(0.05)
        return self.process

    def stop(self) -> None:
        """Unmount (lazily if busy) and wait for the command to exit; past ``timeout``,
        kill it and unmount again. Its ``returncode`` is set afterwards."""
        unmount(self.mountpoint, major=self.major, timeout=self.timeout)
        if self.process is None:
            return
        try:
            self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=self.timeout)
            unmount(self.mountpoint, major=self.major, timeout=self.timeout)  # left by a kill

    def kill(self) -> None:
        """Kill the command (its whole process group with ``start_new_session``)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.start_new_session:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()

    def __enter__(self) -> subprocess.Popen[bytes]:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def script_mount(
    argv: Sequence[str],
    mountpoint: str | os.PathLike[str],
    log: str | os.PathLike[str],
    *,
    timeout: float = 20.0,
    env: Mapping[str, str] | None = None,
    major: int = 3,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv``, a command that mounts ``mountpoint`` in the foreground, for the block.

    The command's output goes to the file ``log``. The block starts once the mount is
    there (``RuntimeError`` with the log if the command exits first, or after
    ``timeout`` seconds) and gets the process. When it ends, the mount is unmounted
    (lazily if busy) and the command waited for, killed past ``timeout``: its
    ``returncode`` is then set. ``env`` and ``major`` are :class:`ScriptMount`'s.
    """
    with ScriptMount(argv, mountpoint, log, timeout=timeout, env=env, major=major) as process:
        yield process
