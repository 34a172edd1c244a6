"""Capture the ``--trace`` output that the tutorial shows.

Mounts ``examples/hello.py`` with ``--trace`` in a subprocess, runs ``ls -l MOUNTPOINT`` and
then ``cat MOUNTPOINT/test2.txt``, and writes the callbacks each command caused to
``ls-l.txt`` and ``cat.txt`` beside this file. Run it again after a change to the
trace format or to the example::

    python docs/trace/capture.py

``tests/test_docs.py`` runs the same capture and checks that the stored files still
name the operations a live mount makes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from defuse2.testing import script_mount

HERE = Path(__file__).resolve().parent
HELLO = HERE.parent.parent / "examples" / "hello.py"
#: File name -> command; the last word is a path in the mount ("" is its root).
COMMANDS = {"ls-l.txt": ["ls", "-l", ""], "cat.txt": ["cat", "test2.txt"]}
TIMEOUT = 20
#: Seconds to wait before each command: longer than the kernel's default entry and
#: attribute timeouts (1 s), so every command starts with cold caches and its trace
#: shows every question it asks.
COLD = 1.5


def capture() -> dict[str, str]:
    """Mount hello with ``--trace``, run each command, return its trace by file name."""
    with tempfile.TemporaryDirectory(prefix="defuse2-trace-") as tmp:
        mountpoint = Path(tmp, "m")
        mountpoint.mkdir()
        log_path = Path(tmp, "trace.log")
        command = [sys.executable, str(HELLO), str(mountpoint), "--trace"]
        with script_mount(command, mountpoint, log_path, timeout=TIMEOUT):
            traces = {}
            for name, argv in COMMANDS.items():
                time.sleep(COLD)
                start = len(log_path.read_text().splitlines())
                *program, target = argv
                argv = [*program, str(mountpoint / target) if target else str(mountpoint)]
                subprocess.run(argv, check=True, timeout=TIMEOUT, capture_output=True)
                time.sleep(COLD)
                lines = log_path.read_text().splitlines()[start:]
                traces[name] = "\n".join(lines) + "\n"
    return traces


def operations(trace: str) -> list[str]:
    """The operation names of a trace, in order (the first word of each line)."""
    return [line.split()[0] for line in trace.splitlines() if line.strip()]


if __name__ == "__main__":
    for name, text in capture().items():
        (HERE / name).write_text(text)
        print(f"{name}: {' '.join(operations(text))}")
