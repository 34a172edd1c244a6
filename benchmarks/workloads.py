"""The workloads of the benchmark suite, run against any directory.

Where it sits: a client process doing ordinary system calls on a mounted
directory (FUSE or tmpfs); the filesystem under test runs in another process.

Every workload creates what it needs under a fresh directory, times only the
part it is named after, checks what it read (outside the timed part) and
removes what it made. Each timed part is a :class:`Stopwatch`, which tells
:data:`observer` (when set) where it begins and ends: ``roundtrips.py`` uses
that to count the callbacks of each part alone.
"""

from __future__ import annotations

import os
import random
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Sizes:
    """How much data each workload moves; :meth:`scaled` multiplies it."""

    seq_bytes: int = 256 * MiB
    request: int = 128 * KiB
    small_files: int = 2000
    small_size: int = 4 * KiB
    random_bytes: int = 64 * MiB
    random_ops: int = 20000
    appends: int = 10000
    append_size: int = 100
    depth: int = 20
    deep_stats: int = 20000
    ls_entries: int = 20000
    readdir_repeats: int = 20
    tree_files: int = 4800
    tree_width: int = 100
    rereads: int = 1000
    reread_size: int = 1 * MiB

    def scaled(self, factor: int) -> Sizes:
        """The same workloads with *factor* times the data (or operations)."""
        return replace(
            self,
            seq_bytes=self.seq_bytes * factor,
            small_files=self.small_files * factor,
            random_bytes=self.random_bytes * factor,
            random_ops=self.random_ops * factor,
            appends=self.appends * factor,
            deep_stats=self.deep_stats * factor,
            ls_entries=self.ls_entries * factor,
            tree_files=self.tree_files * factor,
            rereads=self.rereads * factor,
        )


FULL = Sizes()
QUICK = Sizes(
    seq_bytes=32 * MiB,
    small_files=500,
    random_bytes=8 * MiB,
    random_ops=4000,
    appends=2000,
    deep_stats=5000,
    ls_entries=3000,
    readdir_repeats=10,
    tree_files=1200,
    rereads=200,
)

#: Seconds a workload waits before timing what the kernel may have cached: past
#: libfuse's default attribute and entry timeout (1 s), so that a filesystem that
#: keeps its caches longer shows it.
CACHE_AGE = 1.2


@dataclass(frozen=True)
class Result:
    """One timed measurement: *amount* units of work in *seconds*."""

    workload: str
    unit: str
    amount: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.amount / self.seconds if self.seconds > 0 else float("inf")


#: Called as ``observer(row, "begin")`` right before a timed part starts and
#: ``observer(row, "end")`` right after it stops; ``None`` (the default) for none.
observer: Callable[[str, str], None] | None = None


class Stopwatch:
    """Times one part of a workload (``with Stopwatch(row) as watch: ...``)."""

    def __init__(self, row: str) -> None:
        self.row = row
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        if observer is not None:
            observer(self.row, "begin")
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.seconds = time.perf_counter() - self._start
        if observer is not None and kind is None:
            observer(self.row, "end")

    def result(self, unit: str, amount: float) -> Result:
        """The measurement: *amount* units of work in the time taken."""
        return Result(self.row, unit, amount, self.seconds)


class CacheDropper:
    """Empty the kernel's caches between writing and timing a read.

    Prefers ``echo N > /proc/sys/vm/drop_caches`` (needs root); falls back to
    ``posix_fadvise(POSIX_FADV_DONTNEED)`` on the files involved, which drops
    their page cache but not dentries. :attr:`method` says which one ran.
    """

    def __init__(self) -> None:
        try:
            with open("/proc/sys/vm/drop_caches", "w") as proc:
                proc.write("1")
            self.method = "echo N > /proc/sys/vm/drop_caches"
            self._proc = True
        except OSError:
            self.method = "posix_fadvise(DONTNEED) on the files (drop_caches not permitted)"
            self._proc = False

    def pages(self, *paths: str) -> None:
        """Drop the page cache of *paths* (and, with root, every clean page)."""
        os.sync()
        if self._proc:
            with open("/proc/sys/vm/drop_caches", "w") as proc:
                proc.write("1")
            return
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def dentries(self) -> bool:
        """Drop dentries and inodes so names are looked up again; False if not permitted."""
        if not self._proc:
            return False
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as proc:
            proc.write("2")
        return True


def _pattern(request: int) -> bytearray:
    return bytearray(random.Random(42).randbytes(request))


def _stamp(buffer: bytearray, index: int) -> None:
    buffer[:8] = index.to_bytes(8, "little")


def sequential(root: str, sizes: Sizes, caches: CacheDropper) -> list[Result]:
    """Write then read one big file in ``sizes.request`` requests."""
    path = os.path.join(root, "big.bin")
    buffer = _pattern(sizes.request)
    chunks = sizes.seq_bytes // sizes.request
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with Stopwatch("seq write") as written:
        for index in range(chunks):
            _stamp(buffer, index)
            os.write(fd, buffer)
        os.close(fd)
    caches.pages(path)
    target = bytearray(sizes.request)
    view = memoryview(target)
    fd = os.open(path, os.O_RDONLY)
    total = 0
    with Stopwatch("seq read") as read:
        while count := os.readv(fd, [view]):
            total += count
    os.close(fd)
    if total != chunks * sizes.request:
        raise AssertionError(f"read {total} bytes, wrote {chunks * sizes.request}")
    _check_chunks(path, sizes, chunks, buffer)
    os.unlink(path)
    mib = sizes.seq_bytes / MiB
    return [written.result("MiB/s", mib), read.result("MiB/s", mib)]


def _check_chunks(path: str, sizes: Sizes, chunks: int, buffer: bytearray) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        for index in {0, chunks // 2, chunks - 1}:
            data = os.pread(fd, sizes.request, index * sizes.request)
            if int.from_bytes(data[:8], "little") != index or data[8:] != buffer[8:]:
                raise AssertionError(f"chunk {index} of {path} reads back wrong")
    finally:
        os.close(fd)


def small_files(root: str, sizes: Sizes, caches: CacheDropper) -> list[Result]:
    """Create, stat, list and unlink ``sizes.small_files`` files of 4 KiB."""
    directory = os.path.join(root, "small")
    os.mkdir(directory)
    names = [os.path.join(directory, f"f{index:06d}") for index in range(sizes.small_files)]
    data = bytes(_pattern(sizes.small_size))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    with Stopwatch("create 4K") as created:
        for name in names:
            fd = os.open(name, flags, 0o644)
            os.write(fd, data)
            os.close(fd)
    with Stopwatch("stat") as stated:
        for name in names:
            os.stat(name)
    listed: list[str] = []
    with Stopwatch("readdir") as readdir:
        for _ in range(sizes.readdir_repeats):
            listed = os.listdir(directory)
    if len(listed) != len(names) or os.stat(names[-1]).st_size != len(data):
        raise AssertionError(f"listed {len(listed)} of {len(names)} files")
    with Stopwatch("unlink") as unlinked:
        for name in names:
            os.unlink(name)
    os.rmdir(directory)
    count = sizes.small_files
    return [
        created.result("files/s", count),
        stated.result("ops/s", count),
        readdir.result("names/s", count * sizes.readdir_repeats),
        unlinked.result("ops/s", count),
    ]


def random_io(root: str, sizes: Sizes, caches: CacheDropper) -> list[Result]:
    """Random 4 KiB ``pread`` then ``pwrite`` on a ``sizes.random_bytes`` file."""
    path = os.path.join(root, "random.bin")
    buffer = _pattern(sizes.request)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    for index in range(sizes.random_bytes // sizes.request):
        _stamp(buffer, index)
        os.write(fd, buffer)
    os.close(fd)
    caches.pages(path)
    block = 4 * KiB
    picker = random.Random(7)
    offsets = [
        picker.randrange(sizes.random_bytes // block) * block for _ in range(sizes.random_ops)
    ]
    page = bytes(block)
    fd = os.open(path, os.O_RDWR)
    with Stopwatch("rand read 4K") as read:
        for offset in offsets:
            os.pread(fd, block, offset)
    with Stopwatch("rand write 4K") as written:
        for offset in offsets:
            os.pwrite(fd, page, offset)
    os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.pread(fd, block, offsets[0]) != page or os.fstat(fd).st_size != sizes.random_bytes:
            raise AssertionError("random writes did not read back")
    finally:
        os.close(fd)
    os.unlink(path)
    return [read.result("ops/s", sizes.random_ops), written.result("ops/s", sizes.random_ops)]


def appends(root: str, sizes: Sizes, caches: CacheDropper) -> list[Result]:
    """``sizes.appends`` writes of 100 bytes to one ``O_APPEND`` file."""
    path = os.path.join(root, "log.txt")
    record = b"x" * (sizes.append_size - 1) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with Stopwatch("append 100B") as appended:
        for _ in range(sizes.appends):
            os.write(fd, record)
    os.close(fd)
    if os.stat(path).st_size != sizes.appends * len(record):
        raise AssertionError("appends lost data")
    os.unlink(path)
    return [appended.result("ops/s", sizes.appends)]


def deep_stat(root: str, sizes: Sizes, caches: CacheDropper) -> list[Result]:
    """``stat`` of a path ``sizes.depth`` directories deep, over and over."""
    parts = [f"d{level}" for level in range(sizes.depth)]
    path = os.path.join(root, *parts)
    os.makedirs(path)
    leaf = os.path.join(path, "leaf")
    os.close(os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644))
    with Stopwatch(f"stat {sizes.depth}-deep") as stated:
        for _ in range(sizes.deep_stats):
            os.stat(leaf)
    os.unlink(leaf)
    for level in range(sizes.depth, 0, -1):
        os.rmdir(os.path.join(root, *parts[:level]))
    return [stated.result("ops/s", sizes.deep_stats)]


def ls_long(root: str, sizes: Sizes, caches: CacheDropper) -> list[Result]:
    """``ls -l`` of a big directory: ``os.scandir`` plus ``lstat`` of each entry.

    Dentries are dropped first (when permitted) so every name is looked up,
    as for a directory nobody has looked at recently.
    """
    directory = os.path.join(root, "wide")
    os.mkdir(directory)
    flags = os.O_WRONLY | os.O_CREAT
    for index in range(sizes.ls_entries):
        os.close(os.open(os.path.join(directory, f"entry-{index:07d}.dat"), flags, 0o644))
    caches.dentries()
    count = 0
    with Stopwatch("ls -l") as listed, os.scandir(directory) as entries:
        for entry in entries:
            mode = entry.stat(follow_symlinks=False).st_mode
            count += stat.S_ISREG(mode)
    if count != sizes.ls_entries:
        raise AssertionError(f"ls -l saw {count} of {sizes.ls_entries} files")
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)
    return [listed.result("entries/s", sizes.ls_entries)]


def tree(root: str, sizes: Sizes, caches: CacheDropper) -> list[Result]:
    """``du`` of a tree of ``sizes.tree_files`` files, run again a while later.

    The files (one byte each, ``sizes.tree_width`` per directory) are created and
    walked once (every directory listed and every entry ``lstat``-ed, as ``du`` does);
    :data:`CACHE_AGE` seconds later the same walk is timed. Every name and attribute was
    seen by the first walk: what the second asks the filesystem is what the kernel no
    longer trusts.
    """
    count = -(-sizes.tree_files // sizes.tree_width)
    directories = [os.path.join(root, f"d{index:04d}") for index in range(count)]
    made = 0
    for directory in directories:
        os.mkdir(directory)
        for index in range(min(sizes.tree_width, sizes.tree_files - made)):
            fd = os.open(os.path.join(directory, f"f{index:04d}"), os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"x")
            os.close(fd)
            made += 1
    _du(root)
    time.sleep(CACHE_AGE)
    with Stopwatch("du") as walked:
        total = _du(root)
    if total < made:
        raise AssertionError(f"du counted {total} bytes in {made} one-byte files")
    for directory in directories:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)
    return [walked.result("entries/s", made + len(directories))]


def _du(root: str) -> int:
    """The bytes under ``root``: every directory listed, every entry ``lstat``-ed."""
    total = 0
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                total += entry.stat(follow_symlinks=False).st_size
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return total


def reread(root: str, sizes: Sizes, caches: CacheDropper) -> list[Result]:
    """Change one byte of a file, then read the whole file again, ``sizes.rereads`` times.

    Each round opens the file to write one byte at a random offset and closes it, then
    opens it again and reads it all (as an editor saves and a viewer reloads). The
    kernel wrote that byte into its page cache itself: a filesystem that lets it keep
    the cache is read from memory.
    """
    path = os.path.join(root, "reread.bin")
    size = sizes.reread_size
    with open(path, "wb") as handle:
        handle.write(bytes(_pattern(sizes.request)) * (size // sizes.request))
    picker = random.Random(11)
    changes = [(picker.randrange(size), bytes([index % 251])) for index in range(sizes.rereads)]
    data = b""
    with Stopwatch(f"reread {size // MiB}M") as timed:
        for offset, byte in changes:
            fd = os.open(path, os.O_WRONLY)
            os.pwrite(fd, byte, offset)
            os.close(fd)
            fd = os.open(path, os.O_RDONLY)
            data = os.read(fd, size + 1)
            os.close(fd)
    offset, byte = changes[-1]
    if len(data) != size or data[offset : offset + 1] != byte:
        raise AssertionError("the changed byte did not read back")
    os.unlink(path)
    return [timed.result("rereads/s", sizes.rereads)]


#: Workload groups in the order the suite runs them, by name.
WORKLOADS: dict[str, Callable[[str, Sizes, CacheDropper], list[Result]]] = {
    "sequential": sequential,
    "small": small_files,
    "random": random_io,
    "append": appends,
    "deep": deep_stat,
    "ls": ls_long,
    "tree": tree,
    "reread": reread,
}

#: Rows of the result table, in print order.
ROWS = [
    "seq write",
    "seq read",
    "create 4K",
    "stat",
    "readdir",
    "unlink",
    "rand read 4K",
    "rand write 4K",
    "append 100B",
    "stat 20-deep",
    "ls -l",
    "du",
    "reread 1M",
]
