"""What a hung resource method costs the rest of the mount, as a user sees it.

A filesystem with a route whose ``read`` sleeps 20 s is mounted through the CLI on each
binding. The script times, in milliseconds, a ``stat`` and a ``cat`` of another routed
file, a ``mkdir`` + ``rmdir`` in the store and an ``ls`` of the root: first with nothing
waiting, then while a ``cat`` waits in the slow ``read``. Then 20 ``cat`` of routes
whose ``async def read`` awaits 1 s each, all at once, and the time from ``SIGTERM``
(sent while a client still waits in the slow read) until the mount is gone and the
server has exited::

    python benchmarks/hung_read.py [--binding mfusepy|fusepy|all] [--libfuse 2|3|all]
                                   [--repeat 20]

Latencies are medians (and maxima) of ``--repeat`` tries; on a shared machine compare
the two columns of one run, not runs with each other.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from defuse2.mount import is_mounted
from defuse2.testing import ScriptMount

HANG = 20.0

APP = textwrap.dedent(
    f"""
    import asyncio
    import time

    from defuse2 import FileSystem, Resource, attributes

    fs = FileSystem()

    @fs.route("/async/<name>", dynamic=True)
    class Awaiting(Resource):
        def getattr(self, name):
            return attributes.file(size=5)

        async def read(self, name, size, offset):
            if offset == 0:  # not again for the read that finds the end
                await asyncio.sleep(1)
            return b"done\\n"[offset : offset + size]

    @fs.route("/slow.txt")
    class Slow(Resource):
        def getattr(self):
            return attributes.file(size=5)

        def read(self, size, offset):
            time.sleep({HANG})
            return b"slow\\n"

    @fs.route("/fast.txt")
    class Fast(Resource):
        def getattr(self):
            return attributes.file(size=5)

        def read(self, size, offset):
            return b"fast\\n"
    """
)

CONFIGS = [("mfusepy", "3"), ("mfusepy", "2"), ("fusepy", "2")]


def millis(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and maximum time of ``action`` in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def probes(root: Path) -> dict[str, Callable[[], object]]:
    def mkdir_rmdir() -> None:
        os.mkdir(root / "made")
        os.rmdir(root / "made")

    return {
        "stat fast.txt": lambda: os.stat(root / "fast.txt"),
        "cat fast.txt": lambda: subprocess.run(
            ["cat", str(root / "fast.txt")], check=True, stdout=subprocess.DEVNULL
        ),
        "mkdir+rmdir (store)": mkdir_rmdir,
        "ls /": lambda: os.listdir(root),
    }


def measure(app: Path, base: Path, binding: str, libfuse: str, repeat: int) -> None:
    root = base / f"{binding}{libfuse}"
    root.mkdir()
    command = [sys.executable, "-m", "defuse2", "mount", f"{app}:fs", str(root)]
    command += ["--binding", binding, "--libfuse", libfuse]
    mount = ScriptMount(command, root, base / f"{binding}{libfuse}.log", major=int(libfuse))
    server = mount.start()
    hung: subprocess.Popen[bytes] | None = None
    try:
        idle = {name: millis(probe, repeat) for name, probe in probes(root).items()}
        hung = subprocess.Popen(
            ["cat", str(root / "slow.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(0.5)
        waiting = {name: millis(probe, repeat) for name, probe in probes(root).items()}
        assert hung.poll() is None, "the slow read ended early"

        start = time.perf_counter()
        readers = [
            subprocess.Popen(["cat", str(root / f"async/f{n}")], stdout=subprocess.PIPE)
            for n in range(20)
        ]
        assert all(reader.communicate(timeout=HANG)[0] == b"done\n" for reader in readers)
        concurrent = time.perf_counter() - start

        start = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=HANG)
        stopped = time.perf_counter() - start
        gone = not is_mounted(root)
        client_status = hung.wait(timeout=5)
    finally:
        if hung is not None and hung.poll() is None:
            hung.kill()
            hung.wait()
        mount.stop()

    print(f"\n{binding} / libfuse {libfuse}: ms, median (max) of {repeat}")
    print(f"    {'probe':<22}{'nothing waiting':>18}{'a read hung':>18}")
    for name in idle:
        (a, a_max), (b, b_max) = idle[name], waiting[name]
        print(f"    {name:<22}{a:>9.2f} ({a_max:6.2f}){b:>9.2f} ({b_max:6.2f})")
    print(f"    20 async reads of 1 s each, at once: {concurrent:.2f} s (one after another: 20 s)")
    print(
        f"    SIGTERM with a read hung: exit {status} after {stopped:.2f} s, "
        f"{'nothing' if gone else 'A MOUNT'} left mounted, waiting cat exited {client_status}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binding", choices=["mfusepy", "fusepy", "all"], default="all")
    parser.add_argument("--libfuse", choices=["2", "3", "all"], default="all")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="defuse2-hung-") as directory:
        base = Path(directory)
        app = base / "hung_app.py"
        app.write_text(APP)
        for binding, libfuse in CONFIGS:
            if args.binding in ("all", binding) and args.libfuse in ("all", libfuse):
                measure(app, base, binding, libfuse, args.repeat)


if __name__ == "__main__":
    main()
