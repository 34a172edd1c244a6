"""FsspecStore over S3: a mount against s3fs used directly from Python, side by side.

Where it sits: a driver that starts a local S3-API server (moto's, as the tests do),
mounts ``bench_targets:store_fs`` with ``--store s3://...`` (``-o threads``) through the
defuse2 CLI in a process of its own, and runs the same work both ways in each round:

- ``seq write``: one large file written in 1 MiB pieces (through the mount: ``write``
  calls, then ``close`` uploads; directly: an s3fs file opened ``"wb"``);
- ``seq read``: the same file read back in 1 MiB pieces (the mount reads through
  fsspec's block cache after the kernel's 128 KiB requests);
- ``small files``: files of 4 KiB created one after the other.

The order of the two alternates every round; the figures are medians of the rounds,
and the ratio (mount / direct) is taken within each round, then its median. What the
framework adds is that ratio's distance from 1: the S3 server is the same for both.

Usage::

    python benchmarks/fsspec_s3.py [--size-mib 64] [--files 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import mounts  # noqa: E402
from s3server import s3_filesystem, s3_server, storage_options  # noqa: E402

MiB = 1 << 20
PIECE = MiB


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def mounted_work(root: str, size: int, files: int) -> dict[str, float]:
    """Seconds for each workload through the mount at ``root``."""
    data = os.urandom(PIECE)
    path = os.path.join(root, "big")

    def write() -> None:
        with open(path, "wb", buffering=0) as out:
            for _ in range(size // PIECE):
                out.write(data)

    def read() -> None:
        with open(path, "rb", buffering=0) as source:
            while source.read(PIECE):
                pass

    def small() -> None:
        os.mkdir(os.path.join(root, "small"))
        for number in range(files):
            with open(os.path.join(root, "small", f"f{number}"), "wb") as out:
                out.write(data[:4096])

    times = {"seq write": timed(write)}
    with open("/proc/sys/vm/drop_caches", "w") as drop:  # read from S3, not the page cache
        drop.write("1")
    times["seq read"] = timed(read)
    times["small files"] = timed(small)
    return times


def direct_work(fs: object, root: str, size: int, files: int) -> dict[str, float]:
    """Seconds for each workload with s3fs itself."""
    data = os.urandom(PIECE)

    def write() -> None:
        with fs.open(f"{root}/big", "wb") as out:  # type: ignore[attr-defined]
            for _ in range(size // PIECE):
                out.write(data)

    def read() -> None:
        with fs.open(f"{root}/big", "rb") as source:  # type: ignore[attr-defined]
            while source.read(PIECE):
                pass

    def small() -> None:
        for number in range(files):
            fs.pipe_file(f"{root}/small/f{number}", data[:4096])  # type: ignore[attr-defined]

    return {"seq write": timed(write), "seq read": timed(read), "small files": timed(small)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib * MiB
    amounts = {"seq write": size / MiB, "seq read": size / MiB, "small files": args.files}
    units = {"seq write": "MiB/s", "seq read": "MiB/s", "small files": "files/s"}
    rates: dict[str, dict[str, list[float]]] = {"mount": {}, "s3fs": {}}
    ratios: dict[str, list[float]] = {}
    with s3_server() as endpoint:
        fs = s3_filesystem(endpoint, "bench")
        os.environ["FSSPEC_S3"] = json.dumps(storage_options(endpoint))
        mountpoint = tempfile.mkdtemp(prefix="defuse2-bench-s3-")
        argv = mounts.command("defuse2[threads]", mountpoint, "mfusepy", 3)
        mount = mounts.serve("s3", mountpoint, [*argv, "--store", "s3://bench/mount"], 3)
        try:
            for number in range(args.rounds):
                order = ["mount", "s3fs"] if number % 2 == 0 else ["s3fs", "mount"]
                seconds: dict[str, dict[str, float]] = {}
                for who in order:
                    if who == "mount":
                        root = os.path.join(mountpoint, f"r{number}")
                        os.mkdir(root)
                        seconds[who] = mounted_work(root, size, args.files)
                    else:
                        seconds[who] = direct_work(fs, f"bench/direct/r{number}", size, args.files)
                for who, times in seconds.items():
                    for row, value in times.items():
                        rates[who].setdefault(row, []).append(amounts[row] / value)
                for row in amounts:
                    ratios.setdefault(row, []).append(seconds["s3fs"][row] / seconds["mount"][row])
                print(f"  round {number + 1}/{args.rounds} done", flush=True)
        finally:
            mounts.stop(mount)
    print(f"\nFsspecStore over a local S3 server (moto): medians of {args.rounds} rounds")
    print(f"{'workload':<12} {'unit':<8} {'mount':>9} {'s3fs':>9} {'mount/s3fs':>11}")
    for row in amounts:
        mounted = statistics.median(rates["mount"][row])
        direct = statistics.median(rates["s3fs"][row])
        ratio = statistics.median(ratios[row])
        print(f"{row:<12} {units[row]:<8} {mounted:>9.1f} {direct:>9.1f} {ratio:>10.2f}x")


if __name__ == "__main__":
    main()
