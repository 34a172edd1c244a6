"""Round trips: how many FUSE requests each filesystem receives per unit of work.

Where it sits: beside ``suite.py``. The suite times; this counts. Every request
the kernel sends is a round trip through ``/dev/fuse``, and on a busy machine a
round trip costs anywhere from 10 to 300 us, so the number of them is the part
of a ratio that is exact, and a deterministic one: a change that removes
requests shows here the same on every run. For each workload of
``workloads.py``, each target is mounted fresh with libfuse's debug log on
(``-o debug``: libfuse prints one line per request it reads from the device,
``unique: 8, opcode: LOOKUP (1), ...``, whether a callback answers it or
libfuse itself), the workload runs once, and the target is unmounted. The
workload marks the start and end of each timed part by a ``stat`` of a name
that does not exist (``/.roundtrips-N``), so each row counts only what its
timed part asked for.

Usage::

    python benchmarks/roundtrips.py [--binding mfusepy|fusepy|all] [--libfuse 2|3|all]
                                    [--libfuse-path LIBFUSE3.SO]
                                    [--targets raw,raw+,defuse2,routed,c]
                                    [--workloads small,append,...] [--tiny] [--ops]

The targets are those of ``suite.py``, including ``raw+``, the raw reference
with ``default_permissions`` and a registered ``getxattr``: the guarantees
defuse2 gives, and ``c``, libfuse's ``passthrough_ll`` in C. What ``defuse2``
asks for beyond ``raw+`` is framework cost; what ``raw+`` asks for beyond
``raw`` is the price of those guarantees.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mounts  # noqa: E402
import workloads  # noqa: E402
from suite import (  # noqa: E402
    LIBFUSE_PATH_HELP,
    _targets,
    aligned,
    configurations,
    run_guarded,
    title,
    use_libfuse,
)
from workloads import QUICK, ROWS, WORKLOADS, CacheDropper, Sizes  # noqa: E402

#: The default targets: no tmpfs, it has no requests to count.
TARGETS = ["raw", mounts.RAW_PLUS, "defuse2", "routed", "c"]

#: A tenth of the ``--quick`` sizes, for a fast look.
TINY = Sizes(
    seq_bytes=4 * workloads.MiB,
    small_files=100,
    random_bytes=4 * workloads.MiB,
    random_ops=500,
    appends=500,
    deep_stats=500,
    ls_entries=500,
    readdir_repeats=4,
    tree_files=480,
    rereads=20,
)

#: The prefix of the names whose ``stat`` marks a timed part (``/.roundtrips-N``).
MARK = ".roundtrips-"

Counts = dict[str, Counter[str]]  # row -> request (LOOKUP, WRITE...) -> how many

#: libfuse's debug line for each request it reads from the device (3.17 and later put
#: the transport first: ``dev unique: ...``).
REQUEST = re.compile(r"^(?:[a-z]+ )?unique: \d+, opcode: ([A-Z_]+) ")


def units(sizes: Sizes) -> dict[str, tuple[str, int]]:
    """Per row: what one unit of work is (a system call of the workload) and how many."""
    requests = sizes.seq_bytes // sizes.request
    return {
        "seq write": ("write(2)", requests),
        "seq read": ("read(2)", requests),
        "create 4K": ("file", sizes.small_files),
        "stat": ("stat(2)", sizes.small_files),
        "readdir": ("listdir", sizes.readdir_repeats),
        "unlink": ("unlink(2)", sizes.small_files),
        "rand read 4K": ("pread(2)", sizes.random_ops),
        "rand write 4K": ("pwrite(2)", sizes.random_ops),
        "append 100B": ("write(2)", sizes.appends),
        f"stat {sizes.depth}-deep": ("stat(2)", sizes.deep_stats),
        "ls -l": ("entry", sizes.ls_entries),
        "du": ("file", sizes.tree_files),
        f"reread {sizes.reread_size // workloads.MiB}M": ("reread", sizes.rereads),
    }


class Marker:
    """The workloads' observer: ``stat`` a fresh missing name at each begin and end.

    The server's debug log shows that ``LOOKUP`` with the name, so the log shows
    where each timed part begins and ends. The name sits at the mount's root, whose
    attributes the timed parts do not change.
    """

    def __init__(self, mountpoint: str) -> None:
        self.mountpoint = mountpoint
        self.marks: dict[str, tuple[str, str]] = {}  # ".roundtrips-N" -> (row, event)

    def __call__(self, row: str, event: str) -> None:
        if event == "end":
            time.sleep(0.05)  # let the last asynchronous RELEASE arrive inside the part
        name = f"{MARK}{len(self.marks)}"
        self.marks[name] = (row, event)
        with contextlib.suppress(FileNotFoundError):
            os.stat(os.path.join(self.mountpoint, name))


def parse(log: Iterable[str], marks: dict[str, tuple[str, str]]) -> Counts:
    """Count the requests of each timed part in a server's debug *log*.

    A request is libfuse's ``unique: N, opcode: NAME (...)`` line. A mark is the line
    that names a marker (``LOOKUP /.roundtrips-3`` from the high-level API,
    ``lo_lookup(parent=1, name=.roundtrips-3)`` from ``passthrough_ll``), printed
    after its own ``LOOKUP`` request line: that ``LOOKUP`` is taken back.
    """
    counts: Counts = {}
    row: str | None = None
    for line in log:
        request = REQUEST.match(line)
        if request is not None:
            if row is not None:
                counts[row][request.group(1)] += 1
            continue
        at = line.find(MARK)
        if at < 0:
            continue
        name = re.match(r"[\w.-]+", line[at:])
        marked = marks.pop(name.group(0), None) if name else None
        if marked is None:
            continue  # a later line about a marker already seen
        if row is not None:
            counts[row]["LOOKUP"] -= 1
        row = marked[0] if marked[1] == "begin" else None
        if row is not None:
            counts.setdefault(row, Counter())
    return counts


def count(
    spec: str,
    workload: str,
    binding: str,
    libfuse: int,
    sizes: Sizes,
    caches: CacheDropper,
    timeout: float,
) -> Counts:
    """Mount *spec* fresh, run *workload* once with its parts marked, unmount, count."""
    mount = mounts.start(mounts.with_options(spec, "debug"), binding, libfuse)
    marker = Marker(mount.path)
    try:
        workloads.observer = marker
        run_guarded(
            WORKLOADS[workload], mount, os.path.join(mount.path, "run"), sizes, caches, timeout
        )
    except BaseException:
        print(mount.log_tail(), file=sys.stderr)
        raise
    finally:
        workloads.observer = None
        mounts.stop(mount, keep_log=True)
    try:
        with open(mount.log, errors="replace") as log:
            return parse(log, dict(marker.marks))
    finally:
        with contextlib.suppress(OSError):
            os.remove(mount.log)


def table(counts: dict[str, Counts], targets: list[str], sizes: Sizes) -> str:
    """Requests per unit of work: one row per workload row, one column per target."""
    per = units(sizes)
    header = ["workload", "unit", *map(mounts.label, targets)]
    rows = [header]
    for row in ROWS:
        if row not in per or not any(row in counts.get(t, {}) for t in targets):
            continue
        unit, amount = per[row]
        line = [row, unit]
        for target in targets:
            found = counts.get(target, {}).get(row)
            line.append("-" if found is None else f"{sum(found.values()) / amount:.2f}")
        rows.append(line)
    return aligned(rows)


def reference(target: str, targets: list[str]) -> str | None:
    """What *target* is compared with: ``raw+`` and ``c`` with ``raw``, the rest with
    ``raw+``."""
    labels = {mounts.label(t): t for t in targets}
    if mounts.label(target) == "raw":
        return None
    if mounts.label(target) in ("raw+", "c") or "raw+" not in labels:
        return labels.get("raw")
    return labels["raw+"]


def _difference(mine: Counter[str], theirs: Counter[str], amount: int) -> str:
    parts = []
    for operation in sorted(set(mine) | set(theirs)):
        delta = (mine[operation] - theirs[operation]) / amount
        if abs(delta) >= 0.005:
            parts.append(f"{operation} {delta:+.2f}")
    return ", ".join(parts) or "same"


def differences(counts: dict[str, Counts], targets: list[str], sizes: Sizes) -> str:
    """Per row, which operations make each target differ from its reference (per unit).

    Pairs that make the same calls are left out.
    """
    per = units(sizes)
    rows: list[tuple[str, str, str]] = []
    for row in ROWS:
        if row not in per:
            continue
        unit, amount = per[row]
        head = f"{row} (per {unit})"
        compared = False
        for target in targets:
            base = reference(target, targets)
            if base is None or row not in counts.get(target, {}) or row not in counts.get(base, {}):
                continue
            compared = True
            difference = _difference(counts[target][row], counts[base][row], amount)
            if difference != "same":
                pair = f"{mounts.label(target)} - {mounts.label(base)}:"
                rows.append((head, pair, difference))
                head = ""
        if compared and head:
            rows.append((head, "", "the same everywhere"))
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{h:<{widths[0]}}  {p:<{widths[1]}}  {d}" for h, p, d in rows)


def operations(counts: dict[str, Counts], targets: list[str], sizes: Sizes) -> str:
    """Every target's callbacks per unit, operation by operation (``--ops``)."""
    per = units(sizes)
    lines = []
    for row in ROWS:
        if row not in per:
            continue
        unit, amount = per[row]
        lines.append(f"{row} (per {unit}, {amount} in all)")
        for target in targets:
            found = counts.get(target, {}).get(row)
            if found is None:
                continue
            shown = ", ".join(f"{op} {n / amount:.2f}" for op, n in sorted(found.items()))
            lines.append(f"  {mounts.label(target):<8} {shown or 'none'}")
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binding", default="all", choices=["all", "mfusepy", "fusepy"])
    parser.add_argument("--libfuse", default="all", choices=["all", "2", "3"])
    parser.add_argument("--libfuse-path", help=LIBFUSE_PATH_HELP)
    parser.add_argument("--targets", type=_targets, default=TARGETS)
    parser.add_argument("--workloads", type=lambda v: v.split(","), default=list(WORKLOADS))
    parser.add_argument("--tiny", action="store_true", help="a tenth of the --quick sizes")
    parser.add_argument("--ops", action="store_true", help="also every operation's count")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per workload")
    args = parser.parse_args(list(argv) if argv is not None else None)
    for spec in args.targets:
        if mounts.parse_target(spec)[0] == "tmpfs":
            parser.error("tmpfs has no requests to count")
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {list(WORKLOADS)}")
    sizes = TINY if args.tiny else QUICK
    use_libfuse(args.libfuse_path)
    caches = CacheDropper()
    began = time.monotonic()
    print(f"FUSE requests per unit of work, one run per workload on a fresh mount; sizes: {sizes}")
    print(f"cache drop before reads: {caches.method}")
    for binding, libfuse in configurations(args.binding, args.libfuse):
        counts: dict[str, Counts] = {}
        failures: list[str] = []
        for workload in args.workloads:
            for spec in args.targets:
                try:
                    found = count(spec, workload, binding, libfuse, sizes, caches, args.timeout)
                except (OSError, AssertionError, RuntimeError) as error:
                    failures.append(f"{mounts.label(spec)} {workload}: {error!r}")
                    continue
                counts.setdefault(spec, {}).update(found)
        print(f"\n{title(binding, libfuse)}: requests per unit")
        print(table(counts, args.targets, sizes))
        print("\nwhere they differ (requests per unit)")
        print(differences(counts, args.targets, sizes))
        if args.ops:
            print("\nper operation")
            print(operations(counts, args.targets, sizes))
        for failure in failures:
            print(f"  FAILED {failure.splitlines()[0]}")
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
