"""Where a threaded loop's cost comes from: the store served seven ways, side by side.

Where it sits: a driver like ``routed_overhead.py`` and ``suite.py``; each variant is
``bench_targets:store_fs`` served by this script in a process of its own, with one
piece of the serving loop changed:

``single``
    defuse2's default: libfuse's single-threaded loop, in C, in a thread of its own;
    spare reader threads join only while a call is slow (none does here).
``spare``
    the same with one spare reader (a Python thread calling
    ``fuse_session_receive_buf()``/``fuse_session_process_buf()``) serving all along.
``per-call``
    libfuse's threaded loop (``-o threads``) as ctypes alone runs it: each callback
    arrives on a libfuse worker thread without a Python thread state, so ctypes makes
    one before the callback and destroys it after; ``fuse_get_context()`` is asked on
    every call.
``kept-state``
    the threaded loop with each worker's Python thread state kept
    (:mod:`defuse2.threadstate`); ``fuse_get_context()`` still asked on every call.
``threads``
    ``-o threads`` as defuse2 runs it: kept states, each worker's context struct
    fetched once; libfuse's default of at most 10 workers.
``threads-2``, ``threads-64``
    the same with at most 2 and 64 workers (``max_threads``).

By default it compares **CPU time per system call** (client thread plus every server
thread, as ``routed_overhead.py`` does; ``stat``, ``pread`` and ``pwrite`` of 4 KiB,
``listdir`` of 100 names, a file created and unlinked, all with
``attr_timeout=0,entry_timeout=0,direct_io`` so each call reaches the filesystem), in
runs that alternate between the variants, and prints medians and each variant's ratio to
``single`` (per run, then the median); then how many threads each server has.
``--before REV`` adds ``before``: defuse2 as git revision ``REV`` mounts it by default.
``--suite`` runs the suite's workloads instead (wall-clock rates, ratios to ``single``).

Usage::

    python benchmarks/threaded_loop.py [--binding mfusepy|fusepy] [--libfuse 2|3]
                                       [--runs 9] [--calls 4000] [--cpu 1] [--before REV]
    python benchmarks/threaded_loop.py --suite [--quick] [--rounds 5]
                                       [--workloads small,random,append]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mounts  # noqa: E402
import routed_overhead  # noqa: E402
import suite  # noqa: E402
from workloads import FULL, QUICK, WORKLOADS, CacheDropper  # noqa: E402

#: Extra ``-o`` options of each variant.
VARIANTS: dict[str, list[str]] = {
    "single": [],
    "spare": [],
    "per-call": ["threads"],
    "kept-state": ["threads"],
    "threads": ["threads"],
    "threads-2": ["threads", "max_threads=2"],
    "threads-64": ["threads", "max_threads=64"],
}
#: What the CPU-time comparison mounts every variant with.
EVERY_CALL = ["attr_timeout=0", "entry_timeout=0", "direct_io", "xattrs=no"]


def _per_call_context(get: Any, **_: Any) -> Any:
    """The caller's context from ``fuse_get_context()`` on every call."""
    from defuse2.caller import FuseContext, fields_unpacker
    from defuse2.store.base import Context

    unpack = fields_unpacker(FuseContext, "uid:I gid:I pid:i umask:I")
    new = tuple.__new__
    return lambda: new(Context, unpack(get().contents))


def _spare_reader_all_along() -> None:
    from defuse2 import readers

    start = readers.SpareReaders.start

    def started(self: Any) -> None:
        start(self)
        with self._lock:
            self._waits += 1  # as if a call waited all along: the reader never leaves
            self._threads += 1
        self._spawn()

    readers.SpareReaders.start = started  # type: ignore[method-assign]


def serve(variant: str, mountpoint: str, binding: str, libfuse: str, extra: str) -> None:
    """Mount the store as *variant* and serve it in the foreground (in this process)."""
    from defuse2 import callbacks, caller, cli

    if variant == "per-call":
        callbacks.thread_keeping_call = lambda states: callbacks.guarded_call
    if variant in ("per-call", "kept-state"):
        caller.context_function = _per_call_context
    if variant == "spare":
        _spare_reader_all_along()
    options = VARIANTS[variant] + [option for option in extra.split(",") if option]
    argv = ["mount", "bench_targets:store_fs", mountpoint, "--foreground"]
    argv += ["--binding", binding, "--libfuse", libfuse]
    cli.main(argv + (["-o", ",".join(options)] if options else []))


def starter(extra: list[str]) -> Any:
    """``start(variant, binding, libfuse)``: mount a variant, served by this script."""

    def start(variant: str, binding: str, libfuse: int) -> mounts.Mount:
        path = tempfile.mkdtemp(prefix=f"defuse2-bench-{variant}-")
        argv = [sys.executable, os.path.abspath(__file__), "--serve", variant, path]
        argv += ["--binding", binding, "--libfuse", str(libfuse), "--extra", ",".join(extra)]
        return mounts.serve(variant, path, argv, libfuse)

    return start


def _listdir(root: str, stack: contextlib.ExitStack) -> Any:
    directory = os.path.join(root, "listing")
    os.mkdir(directory)
    for number in range(100):
        os.close(os.open(os.path.join(directory, f"f{number}"), os.O_CREAT | os.O_WRONLY))

    def run(calls: int) -> None:
        for _ in range(calls):
            os.listdir(directory)

    return run


def _create_unlink(root: str, stack: contextlib.ExitStack) -> Any:
    directory = os.path.join(root, "churn")
    os.mkdir(directory)

    def run(calls: int) -> None:
        for number in range(calls):
            path = os.path.join(directory, f"f{number}")
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            os.unlink(path)

    return run


#: The system calls compared, each reaching the filesystem every time.
SYSCALLS = {
    "stat": routed_overhead.SYSCALLS["stat"],
    "pread 4K": routed_overhead.SYSCALLS["pread 4K"],
    "pwrite 4K": routed_overhead.SYSCALLS["pwrite 4K"],
    "listdir 100": _listdir,
    "create+unlink": _create_unlink,
}


def threads_of(mount: mounts.Mount) -> int:
    assert mount.process is not None
    return len(os.listdir(f"/proc/{mount.process.pid}/task"))


def cpu_time(args: argparse.Namespace, binding: str, libfuse: int) -> None:
    """CPU time per system call on every variant, alternating; ratios to ``single``."""
    start = starter(EVERY_CALL)
    started: dict[str, mounts.Mount] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    variants = list(VARIANTS)
    try:
        if args.before:  # defuse2 of another revision, as its CLI mounts it by default
            options = ",".join(EVERY_CALL)
            started["before"] = mounts.start(
                f"before=defuse2@{args.before}[{options}]", binding, libfuse
            )
            variants.insert(0, "before")
        for variant in VARIANTS:
            started[variant] = start(variant, binding, libfuse)
        for mount in started.values():
            with open(os.path.join(mount.path, routed_overhead.NAME), "wb") as file:
                file.write(bytes(8192))
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
            for mount in started.values():
                mounts.pin(mount, args.cpu)
        for syscall, make in SYSCALLS.items():
            with contextlib.ExitStack() as stack:
                runners = {}
                for variant, mount in started.items():
                    assert mount.process is not None
                    runners[variant] = (mount.process.pid, make(mount.path, stack))
                    runners[variant][1](args.calls // 10)  # warm up
                for _ in range(args.runs):
                    for variant, (spent, _wall) in routed_overhead.one_run(
                        runners, args.calls, 8
                    ).items():
                        cpu.setdefault((syscall, variant), []).append(spent)
        threads = {variant: threads_of(mount) for variant, mount in started.items()}
    finally:
        for mount in started.values():
            mounts.stop(mount)
    print(f"\n{binding} / libfuse {libfuse}: CPU us per system call (median of {args.runs})")
    print(f"{'variant':12}" + "".join(f"{s:>14} {'ratio':>6}" for s in SYSCALLS) + "  threads")
    for variant in variants:
        line = f"{variant:12}"
        for syscall in SYSCALLS:
            own, reference = cpu[syscall, variant], cpu[syscall, "single"]
            ratio = statistics.median(a / b for a, b in zip(own, reference, strict=True))
            line += f"{statistics.median(own) / 1e3:14.2f} {ratio:5.2f}x"
        print(f"{line}  {threads[variant]:7}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binding", default="mfusepy", choices=["mfusepy", "fusepy"])
    parser.add_argument("--libfuse", type=int, choices=[2, 3])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--cpu", type=int, help="run the client and every server on this CPU")
    parser.add_argument("--before", metavar="REV", help="also defuse2 at git revision REV")
    parser.add_argument("--suite", action="store_true", help="the suite's workloads instead")
    parser.add_argument("--quick", action="store_true", help="with --suite: smaller sizes")
    parser.add_argument("--rounds", type=int, default=5, help="with --suite")
    parser.add_argument("--workloads", type=suite._split, default=["small", "random", "append"])
    parser.add_argument(
        "--serve", nargs=2, metavar=("VARIANT", "MOUNTPOINT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--extra", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    libfuse = args.libfuse or (2 if args.binding == "fusepy" else 3)
    if args.serve:
        serve(*args.serve, args.binding, str(libfuse), args.extra)
        return 0
    if not args.suite:
        cpu_time(args, args.binding, libfuse)
        return 0
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    variants = list(VARIANTS)
    samples, notes = suite.measure(
        variants,
        args.binding,
        libfuse,
        [QUICK if args.quick else FULL],
        args.rounds,
        [w for w in args.workloads if w in WORKLOADS],
        CacheDropper(),
        300.0,
        print,
        args.cpu,
        starter([]),
    )
    title = f"{args.binding} / libfuse {libfuse}"
    print(f"\n{title}: medians of {args.rounds} rounds; ratios per round")
    print(suite.table(samples[0], variants, versus="single"))
    for variant, note in notes.items():
        if note != "fuse":
            print(f"  {variant}: {note}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
