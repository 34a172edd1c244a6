"""What a routed resource costs per callback, compared with no framework at all.

Where it sits: a client doing ``stat``/``pread`` on two real mounts, side by
side in one run:

``routed``  ``bench_targets:hello_fs`` -- defuse2 with one routed resource,
            ``/<name>.<ext>``, whose ``getattr``/``read`` are a dict lookup and
            a slice;
``raw``     the same dict lookup and slice in a plain binding ``Operations``
            class (this file, ``--serve-raw``), no framework.

Both mounts get the same options, chosen so that every system call reaches the
filesystem: ``attr_timeout=0,entry_timeout=0`` (every ``stat`` is a ``LOOKUP``
plus a ``GETATTR``) and ``direct_io`` (every ``pread`` is a ``READ``), and run
single-threaded. The overhead is ``time(routed) / time(raw) - 1`` per system
call, end to end, as a user sees it; the median over several runs, alternating
which mount goes first. Then the same callbacks are timed in-process (no
kernel) to show the absolute cost in microseconds.

Usage::

    python benchmarks/routed_overhead.py [--binding mfusepy|fusepy] [--libfuse 2|3]
                                         [--runs 7] [--calls 5000]
"""

from __future__ import annotations

import argparse
import errno
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mounts  # noqa: E402

#: Options both sides are mounted with (defuse2 adds its own defaults on top;
#: the raw side is given the same ones by hand).
SHARED = ["nothreads", "attr_timeout=0", "entry_timeout=0", "direct_io"]
DEFUSE2_DEFAULTS = ["default_permissions", "hard_remove"]


def serve_raw(mountpoint: str, binding_name: str, libfuse: int, options: list[str]) -> None:
    """Serve the raw side: ``getattr``/``read``/``readdir`` over the same dict."""
    from bench_targets import HELLO, _hello_attrs
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
                attrs = _hello_attrs.get(name)
                if attrs is not None:
                    return attrs
            raise OSError(errno.ENOENT, "no such file")

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            name = path[1:].rpartition(".")[0]
            return HELLO[name][offset : offset + size]

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", *(f"{name}.txt" for name in HELLO)]

        def open(self, path: str, flags: int) -> int:
            return 0

    kwargs: dict[str, Any] = {}
    for option in options:
        key, _, value = option.partition("=")
        kwargs[key] = value if value else True
    if libfuse == 3:
        kwargs.pop("hard_remove", None)  # a fuse_config field on libfuse 3, set below
    binding.FUSE(RawHello(), mountpoint, foreground=True, fsname="raw", **kwargs)


def _start_raw(binding: str, libfuse: int) -> mounts.Mount:
    import subprocess
    import tempfile

    path = tempfile.mkdtemp(prefix="defuse2-bench-rawhello-")
    log = path + ".log"
    options = ",".join(SHARED + DEFUSE2_DEFAULTS)
    argv = [
        sys.executable,
        os.path.abspath(__file__),
        "--serve-raw",
        path,
        "--binding",
        binding,
        "--libfuse",
        str(libfuse),
        "--options",
        options,
    ]
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=mounts._environment(libfuse),
            start_new_session=True,
        )
    mount = mounts.Mount("raw", path, process, log, kind="fuse")
    deadline = time.monotonic() + 20
    while not os.path.ismount(path):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = mount.log_tail()
            mounts.stop(mount)
            raise RuntimeError(f"raw hello did not mount:\n{tail}")
        time.sleep(0.05)
    return mount


def _start_routed(binding: str, libfuse: int) -> mounts.Mount:
    # "routed" would serve bench_targets:routed_fs; hello_fs is started the same way.
    mount = mounts.start(
        "defuse2[" + ",".join(SHARED) + "]", binding, libfuse, target="bench_targets:hello_fs"
    )
    mount.name = "routed"
    return mount


def time_stat(root: str, calls: int) -> float:
    """Seconds per ``stat`` of an existing routed file."""
    path = os.path.join(root, "file3.txt")
    start = time.perf_counter()
    for _ in range(calls):
        os.stat(path)
    return (time.perf_counter() - start) / calls


def time_read(root: str, calls: int) -> float:
    """Seconds per 4 KiB ``pread`` (each one a READ callback under ``direct_io``)."""
    fd = os.open(os.path.join(root, "file3.txt"), os.O_RDONLY)
    try:
        start = time.perf_counter()
        for _ in range(calls):
            os.pread(fd, 4096, 0)
        return (time.perf_counter() - start) / calls
    finally:
        os.close(fd)


def in_process(calls: int) -> dict[str, tuple[float, float]]:
    """Microseconds per callback without a kernel: (raw function, defuse2 dispatcher)."""
    from bench_targets import HELLO, _hello_attrs, hello_fs

    dispatcher = hello_fs.dispatcher()

    def raw_getattr(path: str, fh: int | None = None) -> dict[str, int]:
        name, dot, ext = path[1:].rpartition(".")
        if dot and "/" not in name:
            attrs = _hello_attrs.get(name)
            if attrs is not None:
                return attrs
        raise OSError(errno.ENOENT, "no such file")

    def raw_read(path: str, size: int, offset: int, fh: int) -> bytes:
        return HELLO[path[1:].rpartition(".")[0]][offset : offset + size]

    def per_call(function: Any, *args: Any) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                function(*args)
            best = min(best, (time.perf_counter() - start) / calls)
        return best * 1e6

    return {
        "getattr": (
            per_call(raw_getattr, "/file3.txt", None),
            per_call(dispatcher.getattr, "/file3.txt", None),
        ),
        "read": (
            per_call(raw_read, "/file3.txt", 4096, 0, 0),
            per_call(dispatcher.read, "/file3.txt", 4096, 0, 0),
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binding", default="mfusepy", choices=["mfusepy", "fusepy"])
    parser.add_argument("--libfuse", type=int, default=3, choices=[2, 3])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--serve-raw", metavar="MOUNTPOINT", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_raw:
        serve_raw(args.serve_raw, args.binding, args.libfuse, args.options.split(","))
        return 0
    if args.binding == "fusepy" and args.libfuse != 2:
        parser.error("fusepy runs on libfuse 2 only")
    print(
        f"routed getattr/read vs a plain {args.binding} Operations class, libfuse "
        f"{args.libfuse}; options {','.join(SHARED)}; {args.runs} runs x {args.calls} calls"
    )
    started: list[mounts.Mount] = []
    times: dict[str, dict[str, list[float]]] = {"stat": {}, "pread 4K": {}}
    try:
        started.append(_start_raw(args.binding, args.libfuse))
        started.append(_start_routed(args.binding, args.libfuse))
        for run in range(args.runs):
            order = started if run % 2 == 0 else started[::-1]
            for name, measure in (("stat", time_stat), ("pread 4K", time_read)):
                for mount in order:
                    measure(mount.path, args.calls // 10)  # warm up
                    times[name].setdefault(mount.name, []).append(measure(mount.path, args.calls))
    finally:
        for mount in started:
            mounts.stop(mount)
    print(
        f"\n{'syscall':10} {'raw us':>8} {'routed us':>10} {'overhead':>9}  (median of runs;"
        " per-run ratio, then median)"
    )
    for name, by_target in times.items():
        raw, routed = by_target["raw"], by_target["routed"]
        ratios = [b / a - 1 for a, b in zip(raw, routed, strict=True)]
        print(
            f"{name:10} {statistics.median(raw) * 1e6:8.1f} {statistics.median(routed) * 1e6:10.1f}"
            f" {statistics.median(ratios):+9.1%}   spread {min(ratios):+.1%} .. {max(ratios):+.1%}"
        )
    print("\nin-process, no kernel: microseconds per callback (best of 5)")
    print(f"{'callback':10} {'raw':>8} {'defuse2':>8} {'extra':>8}")
    for name, (raw_us, routed_us) in in_process(args.calls * 4).items():
        print(f"{name:10} {raw_us:8.2f} {routed_us:8.2f} {routed_us - raw_us:+8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
