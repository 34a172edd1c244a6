"""defuse2 benchmark suite: rates and ratios against a tuned raw reference and tmpfs.

Where it sits: a driver that mounts every target side by side (each served by
its own process, see ``mounts.py``), runs the same system calls on each
(``workloads.py``) and prints medians of several rounds, rotating the order of
the targets every round so that a noisy neighbour hurts them all alike.

Usage::

    python benchmarks/suite.py [--quick] [--binding mfusepy|fusepy|all]
                               [--libfuse 2|3|all] [--targets raw,raw+,defuse2,routed,tmpfs]
                               [--rounds N] [--workloads sequential,small,...]
                               [--scaling] [--json FILE] [--cpu N] [--versus LABEL]

Ratios are computed within each round (target rate / raw rate of the same
round) and the median over rounds is printed; above 1.0 is faster than raw.
``raw+`` is the raw reference with defuse2's guarantees (``default_permissions``
and a registered ``getxattr``), so ``defuse2/raw+`` compares like with like and
``raw+/raw`` is what those guarantees cost (``roundtrips.py`` counts why).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mounts  # noqa: E402
from workloads import FULL, QUICK, ROWS, WORKLOADS, CacheDropper, Result, Sizes  # noqa: E402

#: (binding, libfuse) pairs a binding allows.
CONFIGURATIONS = [("mfusepy", 3), ("mfusepy", 2), ("fusepy", 2)]

#: The targets compared by default (see ``mounts.py``).
DEFAULT_TARGETS = ["raw", mounts.RAW_PLUS, "defuse2", "routed", "c", "tmpfs"]

LIBFUSE_PATH_HELP = (
    "a libfuse 3 shared library for mfusepy on libfuse 3 (mfusepy's FUSE_LIBRARY_PATH, "
    "which is the default), e.g. a newer release built locally"
)

Samples = dict[str, dict[str, list[Result]]]  # target -> row -> one Result per round


def configurations(binding: str, libfuse: str) -> list[tuple[str, int]]:
    """The (binding, libfuse) pairs selected by the command line."""
    chosen = [
        (name, major)
        for name, major in CONFIGURATIONS
        if binding in ("all", name) and libfuse in ("all", str(major))
    ]
    if not chosen:
        raise SystemExit(
            f"no configuration for --binding {binding} --libfuse {libfuse}"
            " (fusepy runs on libfuse 2 only)"
        )
    return chosen


def use_libfuse(path: str | None) -> None:
    """Load libfuse 3 from ``path`` (or env ``FUSE_LIBRARY_PATH``) in the targets."""
    path = path or os.environ.get("FUSE_LIBRARY_PATH")
    if path and not os.path.exists(path):
        raise SystemExit(f"no libfuse at {path}")
    mounts.LIBFUSE_PATH = os.path.abspath(path) if path else None


def title(binding: str, libfuse: int) -> str:
    """``mfusepy / libfuse 3.14``: a configuration with the version its targets load."""
    version = mounts.libfuse_version(libfuse)
    where = f" ({mounts.LIBFUSE_PATH})" if libfuse == 3 and mounts.LIBFUSE_PATH else ""
    return f"{binding} / libfuse {version}{where}"


def run_guarded(
    function: Callable[[str, Sizes, CacheDropper], list[Result]],
    mount: mounts.Mount,
    root: str,
    sizes: Sizes,
    caches: CacheDropper,
    timeout: float,
) -> list[Result]:
    """Run one workload; past *timeout* seconds, kill the target's server.

    Killing the server makes every pending system call on the mount fail
    (ENOTCONN), so a hung filesystem cannot hang the suite.
    """
    timer = threading.Timer(timeout, mounts.kill, args=(mount,))
    timer.daemon = True
    timer.start()
    try:
        os.mkdir(root)
        results = function(root, sizes, caches)
        os.rmdir(root)
        return results
    finally:
        timer.cancel()


def rotate(items: list[str], by: int) -> list[str]:
    if not items:
        return items
    by %= len(items)
    return items[by:] + items[:by]


def measure(
    targets: list[str],
    binding: str,
    libfuse: int,
    sizes: list[Sizes],
    rounds: int,
    workloads: list[str],
    caches: CacheDropper,
    timeout: float,
    log: Callable[[str], None],
    cpu: int | None = None,
    start: Callable[[str, str, int], mounts.Mount] = mounts.start,
) -> tuple[list[Samples], dict[str, str]]:
    """Mount *targets*, run *rounds* rounds of *workloads* on each, unmount.

    Each workload runs on each target at every one of *sizes* back to back, so
    the scaling check compares sizes measured under the same load.

    With *cpu*, every server runs on that CPU only, as the caller does (see
    :func:`mounts.pin`). *start* mounts one target (``start(spec, binding, libfuse)``).

    :return: the samples (one per entry of *sizes*) and, per target, a note on
        what was mounted (or why it failed).
    """
    samples: list[Samples] = [defaultdict(lambda: defaultdict(list)) for _ in sizes]
    notes: dict[str, str] = {}
    live: dict[str, mounts.Mount] = {}
    try:
        for spec in targets:
            try:
                live[spec] = start(spec, binding, libfuse)
                notes[spec] = live[spec].kind
                if cpu is not None:
                    mounts.pin(live[spec], cpu)
            except RuntimeError as error:
                notes[spec] = f"FAILED to mount: {str(error).splitlines()[0]}"
                log(str(error))
        for round_number in range(rounds):
            order = rotate(list(live), round_number)
            log(f"  round {round_number + 1}/{rounds}: {' '.join(order)}")
            for workload in workloads:
                for spec in order:
                    mount = live[spec]
                    if not mount.alive:
                        continue
                    for index, size in enumerate(sizes):
                        root = os.path.join(mount.root, f"run-{round_number}-{workload}-{index}")
                        try:
                            results = run_guarded(
                                WORKLOADS[workload], mount, root, size, caches, timeout
                            )
                        except (OSError, AssertionError) as error:
                            notes[spec] = f"FAILED in {workload}: {error!r}"
                            log(f"    {spec} {workload}: {error!r}\n{mount.log_tail()}")
                            break
                        for result in results:
                            samples[index][spec][result.workload].append(result)
    finally:
        for mount in live.values():
            mounts.stop(mount)
    return samples, notes


def _median_rate(results: list[Result]) -> float:
    return statistics.median(result.rate for result in results) if results else float("nan")


def _median_ratio(top: list[Result], bottom: list[Result]) -> float:
    pairs = [(a.rate / b.rate) for a, b in zip(top, bottom, strict=False) if b.rate]
    return statistics.median(pairs) if pairs else float("nan")


def _format(value: float, ratio: bool = False) -> str:
    if value != value:  # NaN
        return "-"
    if ratio:
        return f"{value:.2f}x"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def ratio_pairs(targets: list[str], versus: str | None = None) -> list[tuple[str, str]]:
    """The (target, reference) pairs whose ratio the table shows, in column order.

    Each Python target against ``raw``, and right beside it against ``raw+`` (when both
    are there); then each against each C reference (``c``, ``passthrough``), and each
    against ``tmpfs`` (``raw+``, a variant of ``raw``, only against ``raw``). With
    *versus* (a target's label), each other target against that one only.
    """
    if versus is not None:
        reference = next(t for t in targets if mounts.label(t) == versus)
        return [(t, reference) for t in targets if t != reference]
    base = next((t for t in targets if mounts.label(t) == "raw"), None)
    plus = next((t for t in targets if mounts.label(t) == "raw+"), None)
    cs = [t for t in targets if mounts.parse_target(t)[0] in ("c", "passthrough")]
    physical = next((t for t in targets if mounts.parse_target(t)[0] == "tmpfs"), None)
    pairs = []
    for target in targets:
        if target in (base, physical) or target in cs:
            continue
        pairs += [(target, base)] if base else []
        pairs += [(target, plus)] if plus and target != plus else []
    for c in cs:
        pairs += [(t, c) for t in targets if t not in (*cs, physical, plus)]
    pairs += [(t, physical) for t in targets if physical and t not in (physical, plus)]
    return pairs


def aligned(rows: list[list[str]]) -> str:
    """Rows of cells as a table: the first row a header, two text columns, then numbers."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for index, line in enumerate(rows):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(line[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def table(samples: Samples, targets: list[str], versus: str | None = None) -> str:
    """Median rates per target, then ratios vs ``raw``, ``raw+`` and ``tmpfs`` (or vs
    the target labelled *versus*)."""
    name = mounts.label
    pairs = ratio_pairs(targets, versus)
    header = ["workload", "unit", *map(name, targets)]
    header += [f"{name(top)}/{name(bottom)}" for top, bottom in pairs]
    rows = [header]
    for row in ROWS:
        results = {t: samples.get(t, {}).get(row, []) for t in targets}
        if not any(results.values()):
            continue
        unit = next(r[0].unit for r in results.values() if r)
        line = [row, unit, *(_format(_median_rate(results[t])) for t in targets)]
        line += [_format(_median_ratio(results[t], results[b]), True) for t, b in pairs]
        rows.append(line)
    return aligned(rows)


def scaling_table(small: Samples, large: Samples, targets: list[str], factor: int) -> str:
    """Time at ``factor`` x data divided by time at 1x, per workload and target."""
    header = ["workload", *(f"{mounts.label(t)} t{factor}x/t1x" for t in targets)]
    rows = [header]
    for row in ROWS:
        line = [row]
        for target in targets:
            one, many = small.get(target, {}).get(row), large.get(target, {}).get(row)
            if not one or not many:
                line.append("-")
                continue
            ratio = statistics.median(r.seconds for r in many) / statistics.median(
                r.seconds for r in one
            )
            line.append(f"{ratio:.1f}x")
        if any(cell != "-" for cell in line[1:]):
            rows.append(line)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        )
        for r in rows
    )


def _jsonable(samples: Samples) -> dict[str, dict[str, list[list[float]]]]:
    return {
        t: {row: [[r.amount, r.seconds] for r in results] for row, results in rows.items()}
        for t, rows in samples.items()
    }


def _split(value: str) -> list[str]:
    return [item for item in value.split(",") if item]


def _targets(value: str) -> list[str]:
    # Commas also separate options inside brackets: raw[a,b],tmpfs.
    items, depth, current = [], 0, ""
    for char in value:
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [mounts.RAW_PLUS if item == "raw+" else item for item in [*items, current] if item]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--binding", default="all", choices=["all", "mfusepy", "fusepy"])
    parser.add_argument("--libfuse", default="all", choices=["all", "2", "3"])
    parser.add_argument("--libfuse-path", help=LIBFUSE_PATH_HELP)
    parser.add_argument("--targets", type=_targets, default=list(DEFAULT_TARGETS))
    parser.add_argument("--rounds", type=int, help="rounds per configuration (default 3, quick 2)")
    parser.add_argument("--workloads", type=_split, default=list(WORKLOADS))
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="instead: every workload at 1x and 10x the --quick sizes",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per workload")
    parser.add_argument("--json", help="also write every sample to this file")
    parser.add_argument("--cpu", type=int, help="run the client and every server on this one CPU")
    parser.add_argument(
        "--versus", metavar="LABEL", help="ratios of every target against this one only"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    for spec in args.targets:
        mounts.parse_target(spec)
    if args.versus and args.versus not in map(mounts.label, args.targets):
        parser.error(f"--versus {args.versus}: no target has that label")
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {list(WORKLOADS)}")
    if os.geteuid() != 0:
        print("note: not root; tmpfs falls back to /dev/shm and caches to posix_fadvise")
    rounds = args.rounds or (2 if args.quick else 3)
    use_libfuse(args.libfuse_path)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    caches = CacheDropper()
    sizes = QUICK if args.quick or args.scaling else FULL
    log = print
    dump: dict[str, object] = {}
    began = time.monotonic()
    print(
        f"defuse2 benchmark suite: {platform.node()} {platform.release()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"cache drop before reads: {caches.method}")
    if args.cpu is not None:
        print(f"client and every server on CPU {args.cpu}")
    print(f"sizes: {sizes}")
    for binding, libfuse in configurations(args.binding, args.libfuse):
        heading = title(binding, libfuse)
        log(f"\n== {heading}: {rounds} rounds, targets {', '.join(args.targets)}")
        factor = 10
        measured = [sizes, sizes.scaled(factor)] if args.scaling else [sizes]
        samples, notes = measure(
            args.targets,
            binding,
            libfuse,
            measured,
            rounds,
            args.workloads,
            caches,
            args.timeout,
            log,
            args.cpu,
        )
        if args.scaling:
            small, large = samples
            print(f"\n{heading}: scaling, time at {factor}x data / time at 1x (linear = {factor}x)")
            print(scaling_table(small, large, args.targets, factor))
            dump[heading] = {"1x": _jsonable(small), f"{factor}x": _jsonable(large)}
        else:
            print(f"\n{heading}: medians of {rounds} rounds (rates; ratios per round, then median)")
            print(table(samples[0], args.targets, args.versus))
            dump[heading] = _jsonable(samples[0])
        for spec, note in notes.items():
            print(f"  {mounts.label(spec)}: {spec} -- {note}")
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"sizes": str(sizes), "results": dump}, handle, indent=1)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
