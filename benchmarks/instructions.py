"""Instructions per callback, counted by valgrind: raw reference, defuse2, routed resource.

Where it sits: like ``callbacks.py``, it stands in for libfuse -> binding -> target
without a mount, but it counts instead of timing. For every target, op and
configuration it runs ``callbacks.py --callgrind TARGET --ops OP`` under valgrind
twice, with ``N`` and ``2N`` calls (``--calls N``); the difference in instructions
divided by ``N`` is what one call costs, since the start-up (interpreter, imports,
building the target, one checked call) is the same in both runs and cancels.
Repeated runs differ by a few thousand instructions in ~850 million
(``PYTHONHASHSEED`` is fixed so both runs lay out their dicts and sets alike), a
few instructions per call: one pair of runs gives a figure that a shared, noisy
machine does not move, where wall-clock time needs many rounds. Usage::

    python benchmarks/instructions.py [--binding mfusepy|fusepy|all] [--libfuse 2|3|all]
                                      [--ops getattr,write-4k,...] [--calls 300] [--jobs 2]
                                      [--tool cachegrind|callgrind]

``--jobs`` valgrind processes run at a time. Cachegrind without its cache
simulation counts the same instructions as callgrind (within 0.2 %) in 60 % of the
time. It prints instructions per call for each target, the ratios defuse2/raw and
routed/raw, and what defuse2 and the routed resource add to the raw reference's
call, in instructions. What the counts leave out:

* They are the server's user-space instructions in the binding and the target
  only: the kernel round trip (the request read from ``/dev/fuse``, the reply
  written back, the VFS) and libfuse's own handling of the request are not
  counted. Those are the same for every target, so a mounted callback's ratio lies
  between 1 and the ratio printed here: the printed ``routed/raw`` is an upper
  bound on what a routed resource costs end to end.
* Instructions are not time: cache misses, branch mispredictions, system calls
  and page faults (the heap growing for a 128 KiB buffer) cost time the counts do
  not show.
* ``callbacks.py`` calls each callback from Python through its ctypes thunk, so
  every count includes the caller's half of that call, alike for all targets; and
  outside a FUSE loop there is no ``fuse_get_context()``, so defuse2's targets ask
  a foreign call of the same shape instead.
* ``create+release`` and ``unlink`` are one row, one file's life: ``callbacks.py``
  runs them together, each making the names the other needs. The directory grows
  with ``N``, so this row moves by a few per cent with ``--calls`` (where dict
  resizes and garbage collections fall); the others agree within 0.1 %.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import callbacks  # noqa: E402
from suite import configurations  # noqa: E402

#: Rows of the table: label -> the ``--ops`` that ``callbacks.py`` runs for it.
ROWS = {op: op for op in callbacks.OPS if op not in callbacks.BATCHES}
ROWS["create+release+unlink"] = ",".join(callbacks.BATCHES)


def count(tool: str, binding: str, libfuse: int, target: str, ops: str, calls: int) -> int:
    """Instructions of one ``callbacks.py --callgrind`` process, start to exit."""
    command = [
        "valgrind",
        f"--tool={tool}",
        f"--{tool}-out-file=/dev/null",
        *(["--cache-sim=no"] if tool == "cachegrind" else []),
        sys.executable,
        os.path.join(HERE, "callbacks.py"),
        *("--binding", binding, "--libfuse", str(libfuse), "--callgrind", target),
        *("--calls", str(calls), "--ops", ops),
    ]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode or found is None:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr[-3000:]}")
    return int(found[1].replace(",", ""))


def measure(
    tool: str, binding: str, libfuse: int, rows: list[str], calls: int, jobs: int
) -> dict[tuple[str, str], float]:
    """Instructions per call of every (row, target), ``jobs`` valgrind processes at a time."""
    runs = [(row, target, n) for row in rows for target in callbacks.TARGETS for n in (1, 2)]

    def run(key: tuple[str, str, int]) -> int:
        row, target, n = key
        return count(tool, binding, libfuse, target, ROWS[row], n * calls)

    with ThreadPoolExecutor(jobs) as pool:
        counts = dict(zip(runs, pool.map(run, runs), strict=True))
    return {
        (row, target): (counts[row, target, 2] - counts[row, target, 1]) / calls
        for row, target, _ in runs
    }


def report(per_call: dict[tuple[str, str], float], rows: list[str], title: str) -> None:
    raw, framework, routed = callbacks.TARGETS
    print(title)
    print(
        f"{'op':<22}{raw:>10}{framework:>10}{routed:>10}"
        f"{'defuse2/raw':>13}{'routed/raw':>12}{'defuse2-raw':>13}{'routed-raw':>12}"
    )
    for row in rows:
        base, ours, theirs = (per_call[row, target] for target in callbacks.TARGETS)
        print(
            f"{row:<22}{base:>10,.0f}{ours:>10,.0f}{theirs:>10,.0f}"
            f"{ours / base:>12.3f}x{theirs / base:>11.3f}x"
            f"{ours - base:>+13,.0f}{theirs - base:>+12,.0f}"
        )
    print(flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binding", choices=["mfusepy", "fusepy", "all"], default="all")
    parser.add_argument("--libfuse", choices=["2", "3", "all"], default="all")
    parser.add_argument("--ops", default=",".join(callbacks.OPS), help="default: all")
    parser.add_argument("--calls", type=int, default=300, help="N: runs make N and 2N calls")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at a time")
    parser.add_argument("--tool", choices=["cachegrind", "callgrind"], default="cachegrind")
    args = parser.parse_args(argv)
    wanted = {op for op in args.ops.split(",") if op}
    unknown = wanted - callbacks.OPS.keys()
    if unknown:
        known = ", ".join(callbacks.OPS)
        parser.error(f"unknown ops {', '.join(sorted(unknown))}; choose from {known}")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found (apt-get install valgrind)")
    chosen = [row for row in ROWS if wanted & set(ROWS[row].split(","))]
    for binding, libfuse in configurations(args.binding, args.libfuse):
        # libfuse 3 has no fgetattr: its getattr takes the file handle
        rows = [row for row in chosen if not (row == "fgetattr" and libfuse == 3)]
        per_call = measure(args.tool, binding, libfuse, rows, args.calls, args.jobs)
        title = (
            f"{binding} on libfuse {libfuse}: instructions per call "
            f"({args.tool}, {args.calls} and {2 * args.calls} calls, "
            f"python {sys.version.split()[0]})"
        )
        report(per_call, rows, title)


if __name__ == "__main__":
    main()
