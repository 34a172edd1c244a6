"""A filesystem served by a command of its own, as a user starts it.

Where this sits: the ``defuse2_mount`` fixture mounts a :class:`~defuse2.FileSystem` in
the test's own process; :func:`script_mount` runs a *command* instead, such as
``python examples/hello.py MOUNTPOINT --foreground``, to test the script itself: that it
mounts, serves, and exits cleanly when unmounted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..unmounting import unmount


@contextlib.contextmanager
def script_mount(
    argv: Sequence[str],
    mountpoint: str | os.PathLike[str],
    log: str | os.PathLike[str],
    *,
    timeout: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv``, a command that mounts ``mountpoint`` in the foreground, for the block.

    The command's output goes to the file ``log``. The block starts once the mount is
    there (``RuntimeError`` with the log if the command exits first, or after
    ``timeout`` seconds) and gets the process. When it ends, the mount is unmounted
    (lazily if busy) and the command waited for, killed past ``timeout``: its
    ``returncode`` is then set.
    """
    with open(log, "wb") as output, subprocess.Popen(argv, stdout=output, stderr=output) as run:
        try:
            deadline = time.monotonic() + timeout
            while not os.path.ismount(mountpoint):
                if run.poll() is not None or time.monotonic() > deadline:
                    text = Path(log).read_text(errors="replace")
                    raise RuntimeError(f"{' '.join(argv)} did not mount {mountpoint}:\n{text}")
                time.sleep(0.05)
            yield run
        finally:
            unmount(mountpoint, timeout=timeout)  # -u, then lazily if busy
            try:
                run.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait(timeout=timeout)
                unmount(mountpoint, timeout=timeout)  # a killed server leaves its mount
