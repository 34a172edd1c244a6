"""How MemoryStore's cost grows with the file: time per MB at 1x, 10x and 100x, and
memory per byte stored.

Run it from the repository root::

    python benchmarks/bench_memory_store.py            # 1, 10, 100 MiB; 5 rounds
    python benchmarks/bench_memory_store.py --base 0.25 --rounds 3   # quicker

For each write pattern it grows files of 1x, 10x and 100x the base size (100, 10 and 1
of them, so every figure moves the same bytes) and prints the median time per MB written
and the ratio to the 1x figure. A ratio near 1 means the
cost of a write does not depend on the file size (O(len(data))); a quadratic store
would show ratios near 10 and 100. Memory is measured with :mod:`tracemalloc`: bytes
allocated by the store per byte of file data, for many small files and for big ones.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable

from defuse2.store.memory import MemoryStore

MiB = 1024 * 1024
FUSE_WRITE = 128 * 1024  # what the kernel sends per write with big_writes / FUSE 3


def grow_by_appends(size: int, block: int) -> Callable[[MemoryStore, int], None]:
    def run(store: MemoryStore, fh: int) -> None:
        data = b"a" * block
        for offset in range(0, size, block):
            store.write(None, data, offset, fh)

    return run


def grow_by_random_writes(size: int, block: int) -> Callable[[MemoryStore, int], None]:
    offsets = list(range(0, size, block))
    random.Random(size).shuffle(offsets)

    def run(store: MemoryStore, fh: int) -> None:
        data = b"r" * block
        store.truncate(None, size, fh)
        for offset in offsets:
            store.write(None, data, offset, fh)

    return run


def grow_with_holes(size: int, block: int) -> Callable[[MemoryStore, int], None]:
    """Write every other block: half the file is holes (costs ``size / 2`` bytes)."""

    def run(store: MemoryStore, fh: int) -> None:
        data = b"h" * block
        for offset in range(0, 2 * size, 2 * block):
            store.write(None, data, offset, fh)

    return run


def read_back(size: int, block: int) -> Callable[[MemoryStore, int], None]:
    def run(store: MemoryStore, fh: int) -> None:
        for offset in range(0, size, block):
            store.read(None, block, offset, fh)

    return run


PATTERNS: list[tuple[str, Callable[[int, int], Callable[[MemoryStore, int], None]], int]] = [
    ("append, 128 KiB writes", grow_by_appends, FUSE_WRITE),
    ("append, 4 KiB writes", grow_by_appends, 4096),
    ("random offsets, 128 KiB", grow_by_random_writes, FUSE_WRITE),
    ("random offsets, 4 KiB", grow_by_random_writes, 4096),
    ("with holes, 128 KiB", grow_with_holes, FUSE_WRITE),
    ("read back, 128 KiB reads", read_back, FUSE_WRITE),
]


def seconds_per_mib(
    make: Callable[[int, int], Callable[[MemoryStore, int], None]],
    size: int,
    block: int,
    rounds: int,
    total: int,
) -> float:
    """Median seconds per MiB to grow ``total // size`` files of ``size`` bytes each.

    Every scale moves the same ``total`` bytes through the same amount of memory, so
    the figures differ only by how the cost depends on the size of one file.
    """
    timings = []
    for round_ in range(rounds + 1):  # the first round warms the allocator up
        store = MemoryStore(quota=4 * total + 16 * MiB)
        handles = []
        for index in range(total // size):
            fh = store.create(f"/f{index}", 0o644, os.O_RDWR)
            if make is read_back:
                grow_by_appends(size, FUSE_WRITE)(store, fh)
            handles.append(fh)
        run = make(size, block)
        start = time.perf_counter()
        for fh in handles:
            run(store, fh)
        elapsed = time.perf_counter() - start
        if round_:
            timings.append(elapsed)
        for fh in handles:
            store.release(None, fh)
    return statistics.median(timings) / (total / MiB)


def memory_per_byte(files: int, size: int) -> tuple[float, float]:
    """(traced bytes per stored byte, traced bytes per file beyond its data)."""
    payload = b"m" * size
    tracemalloc.start()
    store = MemoryStore(quota=files * size * 2 + 16 * MiB, max_nodes=files + 10)
    store.mkdir("/d", 0o755)
    before = tracemalloc.get_traced_memory()[0]
    for i in range(files):
        path = f"/d/file{i:06d}"
        fh = store.create(path, 0o644, os.O_WRONLY)
        for offset in range(0, size, FUSE_WRITE):
            store.write(None, payload[offset : offset + FUSE_WRITE], offset, fh)
        store.release(None, fh)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    stored = files * size
    return used / stored, (used - stored) / files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=float, default=1.0, help="1x size in MiB (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (median)")
    args = parser.parse_args()
    base = int(args.base * MiB)
    scales = (1, 10, 100)

    print(f"MemoryStore write/read cost, median of {args.rounds} rounds, base {args.base} MiB")
    header = f"{'pattern':28}" + "".join(f"{f'{s}x ms/MiB':>13}" for s in scales)
    print(header + f"{'10x/1x':>9}{'100x/1x':>9}")
    for name, make, block in PATTERNS:
        per_mib = [
            seconds_per_mib(make, base * scale, block, args.rounds, base * scales[-1])
            for scale in scales
        ]
        cells = "".join(f"{value * 1000:13.3f}" for value in per_mib)
        print(f"{name:28}{cells}{per_mib[1] / per_mib[0]:9.2f}{per_mib[2] / per_mib[0]:9.2f}")

    print()
    print("Memory (tracemalloc), bytes allocated per byte of file data:")
    for label, files, size in (
        ("10000 files of 100 B", 10000, 100),
        ("10000 files of 4 KiB", 10000, 4096),
        ("4 files of 16 MiB", 4, 16 * MiB),
    ):
        ratio, per_file = memory_per_byte(files, size)
        print(f"  {label:24} {ratio:8.3f} bytes/byte   ({per_file:,.0f} bytes per file overhead)")


if __name__ == "__main__":
    main()
