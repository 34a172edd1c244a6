"""How much a :class:`~defuse2.store.memory.MemoryStore` may hold: bytes and nodes.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**quota**. Every operation that would allocate memory asks :meth:`Quota.reserve` first;
the reservation either succeeds whole or raises ``ENOSPC`` before anything is allocated.
:meth:`Quota.statfs` turns the same counters into the numbers :manpage:`df(1)` prints.

The byte budget bounds the store's memory, so it counts what the store's own objects
take besides the bytes users see: every inode :data:`NODE_COST` bytes, every directory
entry :data:`ENTRY_COST` bytes plus its name, and (in their modules) every chunk of file
data and every extended attribute a fixed overhead too. The figures are what CPython
3.11 (64-bit) measures for those objects (``benchmarks/memory_bound.py``), rounded up.

Sizes are given as an ``int`` (bytes) or as a string that :func:`parse_size` reads::

    parse_size("64 MiB")   # 67108864
    parse_size("1.5 GB")   # 1500000000
    parse_size("512K")     # 524288
"""

from __future__ import annotations

import errno
import os
import re
import threading
from decimal import Decimal, InvalidOperation

from defuse2.errors import DefuseError

#: Units accepted by :func:`parse_size` (lower-cased). ``K``/``M``/``G``/``T`` without
#: a ``B`` are binary, as in ``tmpfs -o size=64M`` and ``df -h``.
UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")

_ACCEPTED = (
    "a number of bytes (int) or a string like '64 MiB', '1.5 GB', '512 KiB' or '100' "
    "(units B; KB, MB, GB, TB = powers of 1000; KiB, MiB, GiB, TiB or K, M, G, T = "
    "powers of 1024)"
)

#: Block size reported by ``statfs`` (``f_bsize`` and ``f_frsize``).
BLOCK_SIZE = 4096

#: Bytes charged for each inode: the object, its lock, and a file's content table or a
#: directory's entry table (about 530 bytes measured for a file).
NODE_COST = 576

#: Bytes charged for each directory entry besides its name's bytes: the name's string
#: object and its slot in the directory (about 90 bytes measured).
ENTRY_COST = 96

#: The least a new node costs: an empty file with a one-byte name.
LEAST_NODE_COST = NODE_COST + ENTRY_COST + 1


def parse_size(value: int | str, *, what: str = "quota") -> int:
    """Read a size in bytes from an ``int`` or a string such as ``"64 MiB"``.

    Fractions are allowed and rounded down to whole bytes (``"1.5 KiB"`` is 1536).

    :param value: ``int`` bytes, or a number with an optional unit from :data:`UNITS`
        (case-insensitive, space optional).
    :param what: the name used in the error message.
    :raises DefuseError: for negative numbers, ``bool``, other types and unknown forms;
        the message lists the accepted forms.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DefuseError(f"{what} must be {_ACCEPTED}; got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise DefuseError(f"{what} must not be negative; got {value}")
        return value
    match = _SIZE.fullmatch(value)
    unit = match and UNITS.get(match.group(2).lower())
    if match is None or unit is None:
        raise DefuseError(f"{what} must be {_ACCEPTED}; got {value!r}")
    try:
        return int(Decimal(match.group(1)) * unit)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise DefuseError(f"{what} must be {_ACCEPTED}; got {value!r}") from None


def default_limit() -> int:
    """Half of the physical memory, the default size of a ``tmpfs``."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # pragma: no cover - every Linux has both
        return 1 << 30
    return max(pages * page_size // 2, 0)


def default_max_nodes(limit: int) -> int:
    """As many nodes as ``limit`` bytes can hold at :data:`LEAST_NODE_COST` each.

    Like ``tmpfs``'s ``nr_inodes``, a finite default; the byte budget, which charges
    every node, stops a tree of real files and names well before it.
    """
    return max(limit // LEAST_NODE_COST, 1)


class Quota:
    """A byte budget and a node budget, with their use, under one small lock.

    :param limit: bytes the store may hold.
    :param max_nodes: nodes (inodes plus extra hard links) it may hold; ``None`` for
        :func:`default_max_nodes`.
    """

    def __init__(self, limit: int, max_nodes: int | None = None) -> None:
        self.limit = limit
        self.max_nodes = default_max_nodes(limit) if max_nodes is None else max_nodes
        self.used = 0
        self.nodes = 0
        self._lock = threading.Lock()

    def reserve(self, nbytes: int = 0, nodes: int = 0) -> None:
        """Take ``nbytes`` and ``nodes`` from the budget, all or nothing.

        Negative amounts give back (used when replacing something larger).

        :raises OSError: ``ENOSPC`` when either budget would be exceeded; nothing is taken.
        """
        lock = self._lock
        lock.acquire()  # not ``with``: half the cost, and every write comes here
        try:
            if nbytes > 0 and self.used + nbytes > self.limit:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if nodes > 0 and self.nodes + nodes > self.max_nodes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.used += nbytes
            self.nodes += nodes
        finally:
            lock.release()

    def charge(self, nbytes: int) -> None:
        """Take ``nbytes`` even past the limit (negative gives back).

        Only for changes that must not fail on a full filesystem and are bounded by
        themselves: a ``rename`` to a longer name (at most 254 bytes more per name).
        """
        self.release(-nbytes)

    def release(self, nbytes: int = 0, nodes: int = 0) -> None:
        """Give ``nbytes`` and ``nodes`` back to the budget."""
        lock = self._lock
        lock.acquire()  # not ``with``: half the cost, and every unlink comes here
        try:
            self.used -= nbytes
            self.nodes -= nodes
        finally:
            lock.release()

    def free_bytes(self) -> int:
        """Bytes that can still be reserved."""
        with self._lock:
            return max(self.limit - self.used, 0)

    def statfs(self) -> dict[str, int]:
        """The ``f_*`` fields of :manpage:`statvfs(3)` for this budget.

        ``f_ffree`` is how many nodes could still be made: no more than the node cap
        leaves, nor than the free bytes pay for at :data:`LEAST_NODE_COST` each.
        """
        with self._lock:
            used, nodes = self.used, self.nodes
        blocks = self.limit // BLOCK_SIZE
        free_bytes = max(self.limit - used, 0)
        free_blocks = free_bytes // BLOCK_SIZE
        files = self.max_nodes
        free_files = max(min(files - nodes, free_bytes // LEAST_NODE_COST), 0)
        return {
            "f_bsize": BLOCK_SIZE,
            "f_frsize": BLOCK_SIZE,
            "f_blocks": blocks,
            "f_bfree": free_blocks,
            "f_bavail": free_blocks,
            "f_files": files,
            "f_ffree": free_files,
            "f_favail": free_files,
            "f_namemax": 255,
        }
