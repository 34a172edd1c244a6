"""What handing a resource method to another thread costs: plain, ``blocking``, ``async def``.

Where it sits: a client doing ``stat``/``pread``/``pwrite`` on three mounts side by side,
as ``routed_overhead.py`` does (same options: every call reaches the filesystem; CPU time
of the client thread and every server thread per system call, in runs that alternate
between the mounts):

``plain``     ``bench_targets:hello_fs``: the methods run on the thread that received the
              request (defuse2's default for a plain ``def``);
``blocking``  ``hello_blocking_fs``: the same methods on a route marked ``blocking=True``,
              run on the filesystem's pool of threads while the receiving thread waits;
``async``     ``hello_async_fs``: the same methods as ``async def``, run on the
              filesystem's event loop while the receiving thread waits.

It prints the CPU time and the wall-clock time per system call, and each hand-off's extra
cost over ``plain``: what making a method ``async def`` or ``blocking`` costs a call that
does not wait at all.

Usage::

    python benchmarks/slow_calls.py [--binding mfusepy|fusepy] [--libfuse 2|3]
                                    [--runs 9] [--calls 3000] [--cpu 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mounts  # noqa: E402
import routed_overhead  # noqa: E402

TARGETS = {
    "plain": "bench_targets:hello_fs",
    "blocking": "bench_targets:hello_blocking_fs",
    "async": "bench_targets:hello_async_fs",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binding", default="mfusepy", choices=["mfusepy", "fusepy"])
    parser.add_argument("--libfuse", type=int, choices=[2, 3])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--cpu", type=int, help="run the client and every server on this CPU")
    args = parser.parse_args(argv)
    libfuse = args.libfuse or (2 if args.binding == "fusepy" else 3)
    options = ",".join(routed_overhead.SHARED + routed_overhead.ROUTED_ONLY)
    started: dict[str, mounts.Mount] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    wall: dict[tuple[str, str], list[float]] = {}
    try:
        for name, target in TARGETS.items():
            spec = f"{name}=defuse2[{options}]"
            started[name] = mounts.start(spec, args.binding, libfuse, target=target)
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
            for mount in started.values():
                mounts.pin(mount, args.cpu)
        for syscall, make in routed_overhead.SYSCALLS.items():
            with contextlib.ExitStack() as stack:
                runners = {}
                for name, mount in started.items():
                    assert mount.process is not None
                    runners[name] = (mount.process.pid, make(mount.path, stack))
                    runners[name][1](args.calls // 10)  # warm up: threads and loop started
                for _ in range(args.runs):
                    for name, (spent, waited) in routed_overhead.one_run(
                        runners, args.calls, 6
                    ).items():
                        cpu.setdefault((syscall, name), []).append(spent)
                        wall.setdefault((syscall, name), []).append(waited)
    finally:
        for mount in started.values():
            mounts.stop(mount)
    print(
        f"\n{args.binding} / libfuse {libfuse}: us per system call, median of {args.runs} runs"
        f"{'' if args.cpu is None else f', on CPU {args.cpu}'}"
    )
    header = f"{'syscall':12}" + "".join(f"{n + ' cpu':>14}{n + ' wall':>14}" for n in TARGETS)
    print(header + f"{'blocking +cpu':>15}{'async +cpu':>12}")
    for syscall in routed_overhead.SYSCALLS:
        line = f"{syscall:12}"
        for name in TARGETS:
            line += f"{statistics.median(cpu[syscall, name]) / 1e3:14.2f}"
            line += f"{statistics.median(wall[syscall, name]) / 1e3:14.2f}"
        for name in ("blocking", "async"):
            extra = [b - a for a, b in zip(cpu[syscall, "plain"], cpu[syscall, name], strict=True)]
            line += f"{statistics.median(extra) / 1e3:+{15 if name == 'blocking' else 12}.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
