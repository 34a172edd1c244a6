"""How much a :class:`~defuse2.store.memory.MemoryStore` may hold: bytes and nodes.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**quota**. Every operation that would allocate memory asks :meth:`Quota.reserve` first;
the reservation either succeeds whole or raises ``ENOSPC`` before anything is allocated.
:meth:`Quota.statfs` turns the same counters into the numbers :manpage:`df(1)` prints.

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

#: ``f_files`` reported when no node cap is set.
UNCAPPED_NODES = 1 << 32


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


class Quota:
    """A byte budget and an optional node budget, with their use, under one small lock.

    :param limit: bytes the store may hold.
    :param max_nodes: nodes (inodes plus extra hard links) it may hold, or ``None``.
    """

    def __init__(self, limit: int, max_nodes: int | None = None) -> None:
        self.limit = limit
        self.max_nodes = max_nodes
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
            if nodes > 0 and self.max_nodes is not None and self.nodes + nodes > self.max_nodes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.used += nbytes
            self.nodes += nodes
        finally:
            lock.release()

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
        """The ``f_*`` fields of :manpage:`statvfs(3)` for this budget."""
        with self._lock:
            used, nodes = self.used, self.nodes
        blocks = self.limit // BLOCK_SIZE
        free_blocks = max(self.limit - used, 0) // BLOCK_SIZE
        files = self.max_nodes if self.max_nodes is not None else UNCAPPED_NODES
        free_files = max(files - nodes, 0)
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
