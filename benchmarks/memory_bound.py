"""What the store's memory costs per node and per byte, and that the quota bounds it.

Run it from the repository root (the mount part needs FUSE)::

    python benchmarks/memory_bound.py                     # both parts
    python benchmarks/memory_bound.py --quota "1 MiB" --name-length 208 --files 200000

In-process, with :mod:`tracemalloc`: the bytes a ``MemoryStore`` allocates for each kind
of node (an empty file, a directory, a symlink, a hard link, an extended attribute) and
per byte of file data, next to what the quota charges for it (``NODE_COST``,
``ENTRY_COST``, ``CHUNK_COST``, ``XATTR_COST``). A charge at or above the measured
bytes is what keeps the quota an upper bound of the store's memory. (The store's two
caches, of paths and of ``stat`` mappings, are bounded apart: at most about 20 MB per
process, whatever the tree.)

Mounted, through the CLI (mfusepy on libfuse 3): a store with ``--quota`` bytes; empty
files with names of ``--name-length`` bytes are created until ``ENOSPC`` (or
``--files``), then data is written until ``ENOSPC``; the daemon's resident memory
(``VmRSS`` of ``/proc/PID/status``) is read before and after each step and printed per
node, per byte, and as a multiple of the quota.
"""

from __future__ import annotations

import argparse
import errno
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from defuse2.store.content import CHUNK_COST, CHUNK_SIZE
from defuse2.store.memory import MemoryStore
from defuse2.store.namespace import entry_cost
from defuse2.store.quota import NODE_COST, parse_size
from defuse2.store.xattrs import TABLE_COST, XATTR_COST
from defuse2.testing import ScriptMount

MiB = 1 << 20


# -- in-process ----------------------------------------------------------------------------


def measured(count: int, make: Callable[[MemoryStore, int], None]) -> tuple[float, float]:
    """Bytes allocated, and quota bytes charged, per call of ``make``."""
    store = MemoryStore(quota="4 GiB")
    store.mkdir("/d", 0o755)
    make(store, -1)  # whatever the first call sets up once
    gc.collect()
    tracemalloc.start()
    before, charged = tracemalloc.get_traced_memory()[0], store.quota.used
    for index in range(count):
        make(store, index)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / count, (store.quota.used - charged) / count


def _file(store: MemoryStore, index: int) -> None:
    store.release(None, store.create(f"/d/f{index:09d}", 0o644))


def _directory(store: MemoryStore, index: int) -> None:
    store.mkdir(f"/d/d{index:09d}", 0o755)


def _symlink(store: MemoryStore, index: int) -> None:
    store.symlink(f"/d/s{index:09d}", "t" * 30)


def _hard_link(store: MemoryStore, index: int) -> None:
    if index < 0:
        store.release(None, store.create("/d/target", 0o644))
    else:
        store.link(f"/d/h{index:09d}", "/d/target")


def _xattr(store: MemoryStore, index: int) -> None:
    if index < 0:
        store.release(None, store.create("/d/x", 0o644))
    else:
        store.setxattr("/d/x", f"user.a{index:09d}", os.urandom(16), 0)


def _file_with_xattr(store: MemoryStore, index: int) -> None:
    """A file and its first attribute, which brings the table of attributes."""
    if index >= 0:
        path = f"/d/f{index:09d}"
        store.release(None, store.create(path, 0o644))
        store.setxattr(path, "user.a", os.urandom(16), 0)


def _chunk(store: MemoryStore, index: int) -> None:
    """One byte at the start of a chunk of a sparse file: the worst case per chunk."""
    if index < 0:
        store.release(None, store.create("/d/sparse", 0o644))
        return
    fh = store.open("/d/sparse", os.O_WRONLY)
    store.write(None, b"x", index * CHUNK_SIZE, fh)
    store.release(None, fh)


def _data(store: MemoryStore, index: int) -> None:
    """1 MiB files: what a byte of data costs."""
    fh = store.create(f"/d/data{index}", 0o644, os.O_WRONLY)
    block = b"d" * (128 << 10)
    for offset in range(0, MiB, len(block)):
        store.write(None, block, offset, fh)
    store.release(None, fh)


def in_process() -> None:
    print("In-process (tracemalloc), CPython", sys.version.split()[0])
    print(
        f"charges: NODE_COST {NODE_COST}, ENTRY_COST {entry_cost('')} + name, "
        f"CHUNK_COST {CHUNK_COST}, XATTR_COST {XATTR_COST} + name + value, "
        f"TABLE_COST {TABLE_COST} with a file's first xattr"
    )
    print(f"{'bytes per':<32} {'allocated':>10} {'charged':>10}")
    rows = [
        ("empty file, 10-byte name", _file),
        ("directory, 10-byte name", _directory),
        ("symlink, 30-byte target", _symlink),
        ("hard link, 10-byte name", _hard_link),
        ("xattr, 15 + 16 bytes", _xattr),
        ("file and its first xattr", _file_with_xattr),
        ("1-byte chunk of a sparse file", _chunk),
    ]
    for label, make in rows:
        allocated, charged = measured(20000, make)
        print(f"{label:<32} {allocated:>10.0f} {charged:>10.0f}")
    allocated, charged = measured(64, _data)
    print(f"{'byte of data (1 MiB files)':<32} {allocated / MiB:>10.4f} {charged / MiB:>10.4f}")


# -- a real mount --------------------------------------------------------------------------


def rss(pid: int) -> int:
    """Resident bytes of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def mounted(quota: str, name_length: int, files: int) -> None:
    limit = parse_size(quota)
    work = Path(tempfile.mkdtemp(prefix="defuse2-membound-"))
    app, mountpoint, log = work / "app.py", work / "mnt", work / "log.txt"
    app.write_text(f"from defuse2 import FileSystem\nfs = FileSystem(quota={limit})\n")
    mountpoint.mkdir()
    command = [sys.executable, "-m", "defuse2", "mount", str(app), str(mountpoint), "-f"]
    mount = ScriptMount(command, mountpoint, log, timeout=30)
    try:
        server = mount.start()
        os.listdir(mountpoint)
        start = rss(server.pid)
        print(f"\nMounted (mfusepy, libfuse 3), quota {limit} bytes; daemon RSS at start")
        print(f"{start / MiB:.1f} MiB")
        made, refused = 0, None
        began = time.monotonic()
        while made < files:
            name = f"{made:08d}".rjust(name_length, "n")
            try:
                os.close(os.open(mountpoint / name, os.O_CREAT | os.O_WRONLY, 0o644))
            except OSError as exc:
                refused = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                break
            made += 1
        after_files = rss(server.pid)
        grown = after_files - start
        print(
            f"{made} empty files with {name_length}-byte names, then "
            f"{refused or 'no refusal'} ({time.monotonic() - began:.1f} s); "
            f"RSS +{grown / MiB:.2f} MiB = {grown / max(made, 1):.0f} bytes per node, "
            f"{grown / limit:.2f} x the quota"
        )
        stats = os.statvfs(mountpoint)
        print(f"df: {stats.f_bfree * stats.f_frsize} bytes free; df -i: {stats.f_files} inodes, "
              f"{stats.f_ffree} free")  # fmt: skip
        for index in range(made):
            os.unlink(mountpoint / f"{index:08d}".rjust(name_length, "n"))
        before_data = rss(server.pid)
        written = 0
        block = os.urandom(128 << 10)
        try:
            with open(mountpoint / "data", "wb", buffering=0) as file:
                while True:
                    written += file.write(block)
        except OSError as exc:
            refused = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        grown = rss(server.pid) - before_data
        print(
            f"{written} bytes of data, then {refused}; RSS +{grown / MiB:.2f} MiB "
            f"= {grown / max(written, 1):.3f} bytes per byte stored; "
            f"peak growth {(rss(server.pid) - start) / limit:.2f} x the quota"
        )
    finally:
        mount.stop()
        mountpoint.rmdir()
        for path in (app, log):
            path.unlink()
        work.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quota", default="1 MiB")
    parser.add_argument("--name-length", type=int, default=208)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--skip-mount", action="store_true")
    args = parser.parse_args()
    in_process()
    if not args.skip_mount:
        mounted(args.quota, args.name_length, args.files)


if __name__ == "__main__":
    main()
