"""What a routed resource costs per callback, compared with no framework at all.

Where it sits: a client doing ``stat``/``pread``/``pwrite`` on two real mounts,
side by side in one run:

``routed``  ``bench_targets:hello_fs`` -- defuse2 with one routed resource,
            ``/<name>.<ext>``, whose ``getattr``/``read``/``write`` are a dict
            lookup and a slice;
``raw``     the same lookup and slice in a plain binding ``Operations`` class
            (this file, ``--serve-raw``), which parses the path by hand.

Both mounts get the same options, chosen so that every system call reaches the
filesystem and each is the same callbacks on both: ``attr_timeout=0,
entry_timeout=0`` (every ``stat`` is a ``LOOKUP``), ``direct_io`` (every
``pread`` is a ``READ``), ``default_permissions``, single-threaded, and no
extended attributes on either side (``xattrs=no``: otherwise the kernel asks
``getxattr`` before each write, one more callback that ``roundtrips.py``
counts). The raw side runs libfuse's single-threaded loop, its fastest; defuse2 its
default loop (``--loop threads``: libfuse's threaded one).

What is compared is **CPU time per system call, end to end**: the client
thread's CPU time (the system call, the VFS and FUSE's request in the kernel)
plus that of every thread of the server process (reading the request from
``/dev/fuse``, libfuse, the binding, the Python callback, the reply), read from
``/proc/PID/task/*/schedstat``. The client and both servers run on one CPU
(``--cpu``), so each request is a switch from client to server and back, never
the wake-up of an idle CPU, which on a virtual machine costs more, and varies
more, than the whole difference measured here. Each run alternates between the
two mounts in ten slices, so a burst of load elsewhere hits both alike; the
overhead is ``cpu(routed) / cpu(raw) - 1`` per run, and its median over the
runs. Wall-clock medians are printed beside it. Then the same callbacks are
timed in-process, without a kernel, in microseconds.

Usage::

    python benchmarks/routed_overhead.py [--binding mfusepy|fusepy] [--libfuse 2|3]
                                         [--runs 9] [--calls 5000] [--cpu 0]
                                         [--loop default|threads]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import glob
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mounts  # noqa: E402

#: Options both sides are mounted with (defuse2 adds its own defaults on top;
#: the raw side is given the one that matters here by hand).
SHARED = ["attr_timeout=0", "entry_timeout=0", "direct_io"]
RAW_ONLY = ["default_permissions", "nothreads"]
ROUTED_ONLY = ["xattrs=no"]

#: The file every system call works on (8 KiB, see ``bench_targets.HELLO``).
NAME = "file3.txt"


def serve_raw(mountpoint: str, binding_name: str, libfuse: int, options: list[str]) -> None:
    """Serve the raw side: ``getattr``/``read``/``write`` over the same dicts."""
    from bench_targets import HELLO, HELLO_ATTRS
    from raw_reference import import_binding

    binding = import_binding(binding_name, libfuse)
    root = {
        "st_mode": 0o40755,
        "st_nlink": 2,
        "st_size": 0,
        "st_uid": 0,
        "st_gid": 0,
        "st_atime": 0,
        "st_mtime": 0,
        "st_ctime": 0,
    }

    class RawHello(binding.Operations):  # type: ignore[misc, name-defined]
        use_ns = True

        def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
            if path == "/":
                return root
            name, dot, ext = path[1:].rpartition(".")
            if dot and "/" not in name:
                attrs = HELLO_ATTRS.get(name)
                if attrs is not None:
                    return attrs
            raise OSError(errno.ENOENT, "no such file")

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            name = path[1:].rpartition(".")[0]
            return bytes(HELLO[name][offset : offset + size])

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            name = path[1:].rpartition(".")[0]
            HELLO[name][offset : offset + len(data)] = data
            return len(data)

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", *(f"{name}.txt" for name in HELLO)]

        def open(self, path: str, flags: int) -> int:
            return 0

    kwargs: dict[str, Any] = {}
    for option in options:
        key, _, value = option.partition("=")
        kwargs[key] = value if value else True
    binding.FUSE(RawHello(), mountpoint, foreground=True, fsname="raw", **kwargs)


def _start_raw(binding: str, libfuse: int) -> mounts.Mount:
    path = tempfile.mkdtemp(prefix="defuse2-bench-rawhello-")
    options = ",".join(SHARED + RAW_ONLY)
    argv = [sys.executable, os.path.abspath(__file__), "--serve-raw", path, "--options", options]
    argv += ["--binding", binding, "--libfuse", str(libfuse)]
    return mounts.serve("raw", path, argv, libfuse)


def _start_routed(binding: str, libfuse: int, loop: str) -> mounts.Mount:
    # "routed" would serve bench_targets:routed_fs; hello_fs is started the same way.
    options = ",".join(SHARED + ROUTED_ONLY + (["threads"] if loop == "threads" else []))
    mount = mounts.start(f"defuse2[{options}]", binding, libfuse, target="bench_targets:hello_fs")
    mount.name = "routed"
    return mount


# -- the system calls ---------------------------------------------------------------------


def _stat(root: str, stack: contextlib.ExitStack) -> Callable[[int], None]:
    path = os.path.join(root, NAME)

    def run(calls: int) -> None:
        for _ in range(calls):
            os.stat(path)

    return run


def _opened(root: str, flags: int, stack: contextlib.ExitStack) -> int:
    """A descriptor of the measured file, closed when ``stack`` closes."""
    fd = os.open(os.path.join(root, NAME), flags)
    stack.callback(os.close, fd)
    return fd


def _pread(size: int) -> Callable[[str, contextlib.ExitStack], Callable[[int], None]]:
    def on(root: str, stack: contextlib.ExitStack) -> Callable[[int], None]:
        fd = _opened(root, os.O_RDONLY, stack)

        def run(calls: int) -> None:
            for _ in range(calls):
                os.pread(fd, size, 0)

        return run

    return on


def _pwrite(size: int) -> Callable[[str, contextlib.ExitStack], Callable[[int], None]]:
    data = b"w" * size

    def on(root: str, stack: contextlib.ExitStack) -> Callable[[int], None]:
        fd = _opened(root, os.O_WRONLY, stack)

        def run(calls: int) -> None:
            for _ in range(calls):
                os.pwrite(fd, data, 0)

        return run

    return on


#: Each system call measured: its label, and what makes a runner of ``calls`` of it on a
#: mount (opening, outside the measured part, what it needs until ``stack`` closes).
SYSCALLS: dict[str, Callable[[str, contextlib.ExitStack], Callable[[int], None]]] = {
    "stat": _stat,
    "pread 4K": _pread(4096),
    "pwrite 4K": _pwrite(4096),
    "pwrite 100B": _pwrite(100),
}


def server_cpu_ns(pid: int) -> int:
    """CPU time, in ns, of every thread of process ``pid`` so far."""
    total = 0
    for name in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(name) as handle:
                total += int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total


def measure(pid: int, run: Callable[[int], None], calls: int) -> tuple[int, int]:
    """(CPU ns, wall ns) of ``calls`` system calls: the client thread's plus the server's."""
    server, client, wall = server_cpu_ns(pid), time.thread_time_ns(), time.perf_counter_ns()
    run(calls)
    wall = time.perf_counter_ns() - wall
    return time.thread_time_ns() - client + server_cpu_ns(pid) - server, wall


Runner = tuple[int, Callable[[int], None]]  # the server's pid, and calls -> None


def one_run(runners: dict[str, Runner], calls: int, slices: int) -> dict[str, tuple[float, float]]:
    """(CPU ns, wall ns) per system call on each mount, measured in ``slices`` turns that
    alternate between the mounts, so that a burst of load elsewhere hits both alike."""
    spent = dict.fromkeys(runners, (0, 0))
    for turn in range(slices):
        for name in list(runners)[:: 1 if turn % 2 == 0 else -1]:
            pid, run = runners[name]
            cpu, wall = measure(pid, run, calls // slices)
            spent[name] = (spent[name][0] + cpu, spent[name][1] + wall)
    done = slices * (calls // slices)
    return {name: (cpu / done, wall / done) for name, (cpu, wall) in spent.items()}


def in_process(calls: int) -> dict[str, tuple[float, float]]:
    """Microseconds per callback without a kernel: (raw function, defuse2 dispatcher)."""
    from bench_targets import HELLO, HELLO_ATTRS, hello_fs

    dispatcher = hello_fs.dispatcher()

    def raw_getattr(path: str, fh: int | None = None) -> dict[str, int]:
        name, dot, ext = path[1:].rpartition(".")
        if dot and "/" not in name:
            attrs = HELLO_ATTRS.get(name)
            if attrs is not None:
                return attrs
        raise OSError(errno.ENOENT, "no such file")

    def raw_read(path: str, size: int, offset: int, fh: int) -> bytes:
        return bytes(HELLO[path[1:].rpartition(".")[0]][offset : offset + size])

    def raw_write(path: str, data: bytes, offset: int, fh: int) -> int:
        HELLO[path[1:].rpartition(".")[0]][offset : offset + len(data)] = data
        return len(data)

    def per_call(function: Any, *args: Any) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                function(*args)
            best = min(best, (time.perf_counter() - start) / calls)
        return best * 1e6

    path, data = "/" + NAME, b"w" * 4096
    return {
        "getattr": (per_call(raw_getattr, path, None), per_call(dispatcher.getattr, path, None)),
        "read 4K": (
            per_call(raw_read, path, 4096, 0, 0),
            per_call(dispatcher.read, path, 4096, 0, 0),
        ),
        "write 4K": (
            per_call(raw_write, path, data, 0, 0),
            per_call(dispatcher.write, path, data, 0, 0),
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binding", default="mfusepy", choices=["mfusepy", "fusepy"])
    parser.add_argument("--libfuse", type=int, default=None, choices=[2, 3])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU both sides run on")
    parser.add_argument(
        "--loop",
        default="default",
        choices=["default", "threads"],
        help="defuse2's loop: its default, or -o threads; the raw side runs nothreads",
    )
    parser.add_argument("--serve-raw", metavar="MOUNTPOINT", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    libfuse = args.libfuse or (2 if args.binding == "fusepy" else 3)
    if args.serve_raw:
        serve_raw(args.serve_raw, args.binding, libfuse, args.options.split(","))
        return 0
    if args.binding == "fusepy" and libfuse != 2:
        parser.error("fusepy runs on libfuse 2 only")
    print(
        f"routed vs a plain {args.binding} Operations class, libfuse {libfuse}; "
        f"options {','.join(SHARED)}; routed on the {args.loop} loop, raw on nothreads; "
        f"{args.runs} runs x {args.calls} calls"
    )
    started: list[mounts.Mount] = []
    cpu: dict[tuple[str, str], list[float]] = {}
    wall: dict[tuple[str, str], list[float]] = {}
    try:
        started.append(_start_raw(args.binding, libfuse))
        started.append(_start_routed(args.binding, libfuse, args.loop))
        os.sched_setaffinity(0, {args.cpu})
        for mount in started:
            mounts.pin(mount, args.cpu)
        for syscall, make in SYSCALLS.items():
            with contextlib.ExitStack() as stack:
                runners: dict[str, Runner] = {}
                for mount in started:
                    assert mount.process is not None
                    runners[mount.name] = (mount.process.pid, make(mount.path, stack))
                    runners[mount.name][1](args.calls // 10)  # warm up
                for _ in range(args.runs):
                    for name, (spent, waited) in one_run(runners, args.calls, 10).items():
                        cpu.setdefault((syscall, name), []).append(spent)
                        wall.setdefault((syscall, name), []).append(waited)
    finally:
        for mount in started:
            mounts.stop(mount)
    print(
        f"\n{'syscall':12} {'raw cpu us':>10} {'routed':>8} {'overhead':>9} {'spread':>16}"
        f" {'wall: raw us':>13} {'routed':>8}"
    )
    for syscall in SYSCALLS:
        raw, routed = cpu[syscall, "raw"], cpu[syscall, "routed"]
        ratios = [b / a - 1 for a, b in zip(raw, routed, strict=True)]
        spread = f"{min(ratios):+.1%} .. {max(ratios):+.1%}"
        print(
            f"{syscall:12} {statistics.median(raw) / 1e3:10.2f}"
            f" {statistics.median(routed) / 1e3:8.2f} {statistics.median(ratios):+9.1%}"
            f" {spread:>16} {statistics.median(wall[syscall, 'raw']) / 1e3:13.1f}"
            f" {statistics.median(wall[syscall, 'routed']) / 1e3:8.1f}"
        )
    print("\nin-process, no kernel: microseconds per callback (best of 5)")
    print(f"{'callback':10} {'raw':>8} {'defuse2':>8} {'extra':>8}")
    for name, (raw_us, routed_us) in in_process(args.calls * 4).items():
        print(f"{name:10} {raw_us:8.2f} {routed_us:8.2f} {routed_us - raw_us:+8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
