"""The bytes of one regular file: sparse, chunked, O(len) to write and to read.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
inode -> **content**. A file's data is a ``dict`` from chunk index to a ``bytearray`` of
at most :data:`CHUNK_SIZE` bytes. A missing chunk is a hole and reads as zeros; a chunk
is only as long as its last written byte, so a short file costs its length, not a whole
chunk. Bytes beyond ``size`` are never kept (truncation trims them), so growing the file
again exposes zeros.

Costs, whatever the file size and the write pattern:

- ``write(data, offset)`` touches ``len(data) / CHUNK_SIZE + 1`` chunks and copies each
  byte once (slice assignment from a ``memoryview``); appends grow the last chunk in
  place with ``bytearray``'s amortised over-allocation;
- ``read(offset, size)`` copies each byte once (``bytes.join`` of ``memoryview`` slices);
- ``truncate`` costs the number of chunks it drops.

The :attr:`Content.allocated` counter is the sum of the chunk lengths (what ``st_blocks``
shows); the quota charges :meth:`Content.cost`, that plus :data:`CHUNK_COST` per chunk.
Writing one byte at offset ``n`` allocates ``n % CHUNK_SIZE + 1`` bytes (the chunk is
filled with zeros up to the byte); holes of whole chunks cost nothing.

Snapshots (:mod:`defuse2.store.snapshot`) share the chunks instead of copying them:
:meth:`Content.freeze` hands out a copy of the chunk *table* (the same ``bytearray``
objects) and remembers it; until :meth:`Content.thaw`, a change to a chunk the snapshot
shares first replaces it with a private copy, so the snapshot keeps seeing the bytes of
the moment it was taken. Outside a snapshot this costs one attribute test per change.

Memory overhead, measured with :mod:`tracemalloc` on CPython 3.11 (64-bit): about 96
bytes per chunk (the ``bytearray`` header and its ``dict`` slot), 0.15 % of a full
64 KiB chunk, plus ``bytearray``'s growth slack (at most 1/8) on a chunk still being
appended to. The per-file figures are in :mod:`defuse2.store.memory`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

#: Bytes per chunk: large enough that a 128 KiB FUSE write touches two or three chunks,
#: small enough that a one-byte write into a hole costs at most this much.
CHUNK_SIZE = 64 * 1024

#: Bytes the quota charges for each chunk besides its data: the ``bytearray`` object and
#: its slot in the table (about 120 bytes measured), so that many tiny chunks spread over
#: a sparse file cannot hold more memory than the quota says.
CHUNK_COST = 128

_ZEROS = memoryview(bytes(CHUNK_SIZE))


class Budget(Protocol):
    """What a write reserves its bytes from (a :class:`~defuse2.store.quota.Quota`)."""

    def reserve(self, nbytes: int) -> object: ...

    def release(self, nbytes: int) -> object: ...


def byte_size(data: bytes | bytearray | memoryview) -> int:
    """Length in bytes of any bytes-like object (a ``memoryview``'s items may be wider)."""
    kind = type(data)
    if kind is bytes or kind is bytearray:
        return len(data)
    return data.nbytes if kind is memoryview else memoryview(data).nbytes  # type: ignore[union-attr]


class Content:
    """Sparse file data in chunks; the caller serialises access (the inode lock)."""

    __slots__ = ("chunks", "size", "allocated", "frozen")

    def __init__(self) -> None:
        self.chunks: dict[int, bytearray] = {}
        self.size = 0
        self.allocated = 0
        #: The chunk table a snapshot reads (see :meth:`freeze`), or ``None``.
        self.frozen: dict[int, bytearray] | None = None

    def freeze(self) -> dict[int, bytearray]:
        """The chunks as they are now, for a snapshot to read without the inode lock.

        The ``bytearray`` objects are shared, not copied: until :meth:`thaw`, a change
        to one of them copies it first (:meth:`_own`).
        """
        frozen = self.frozen = dict(self.chunks)
        return frozen

    def thaw(self, frozen: dict[int, bytearray]) -> None:
        """The snapshot that :meth:`freeze` gave ``frozen`` to is done with it."""
        if self.frozen is frozen:
            self.frozen = None

    def _own(self, index: int, chunk: bytearray) -> bytearray:
        """``chunk`` (chunk ``index``), copied first if a snapshot shares it."""
        frozen = self.frozen
        if frozen is not None and frozen.get(index) is chunk:
            chunk = self.chunks[index] = bytearray(chunk)
        return chunk

    def cost(self) -> int:
        """Quota bytes this content holds: its data and its chunks' overhead."""
        return self.allocated + CHUNK_COST * len(self.chunks)

    def write_cost(self, offset: int, length: int) -> int:
        """Quota bytes that :meth:`write` (or :meth:`allocate`) of ``length`` at
        ``offset`` adds to :meth:`cost`."""
        if length <= 0:
            return 0
        stop = offset % CHUNK_SIZE + length
        if stop <= CHUNK_SIZE:  # within one chunk, as most writes are
            chunk = self.chunks.get(offset // CHUNK_SIZE)
            if chunk is None:
                return stop + CHUNK_COST
            grown = stop - len(chunk)
            return grown if grown > 0 else 0
        end = offset + length
        chunks = self.chunks
        cost = 0
        for index in range(offset // CHUNK_SIZE, (end - 1) // CHUNK_SIZE + 1):
            need = min(CHUNK_SIZE, end - index * CHUNK_SIZE)
            chunk = chunks.get(index)
            if chunk is None:
                cost += need + CHUNK_COST
            elif need > len(chunk):
                cost += need - len(chunk)
        return cost

    def write(
        self, data: bytes | bytearray | memoryview, offset: int, budget: Budget | None = None
    ) -> None:
        """Put ``data`` at ``offset``.

        :param budget: reserves what the write adds (its :meth:`write_cost`) before
            anything changes, and may refuse it by raising; if the write then fails (a
            ``MemoryError``) it gets back what was not used. ``None``: the caller has
            reserved the cost already.
        """
        start = offset % CHUNK_SIZE
        chunk = self.chunks.get(offset // CHUNK_SIZE)
        if chunk is not None and start <= len(chunk):
            length = len(data) if type(data) is bytes else byte_size(data)
            stop = start + length
            if stop <= CHUNK_SIZE:  # into one chunk that reaches the offset: one copy
                grown = stop - len(chunk)
                if grown > 0 and budget is not None:
                    budget.reserve(grown)
                try:
                    if self.frozen is not None:
                        chunk = self._own(offset // CHUNK_SIZE, chunk)
                    chunk[start:stop] = data
                except BaseException:
                    if grown > 0 and budget is not None:
                        budget.release(grown)
                    raise
                if grown > 0:
                    self.allocated += grown
                if offset + length > self.size:
                    self.size = offset + length
                return
        cost = 0
        if budget is not None:
            cost = self.write_cost(offset, byte_size(data))
            if cost:
                budget.reserve(cost)
        before = self.cost()
        try:
            self._write_pieces(data, offset)
        except BaseException:
            if cost and budget is not None:
                budget.release(cost - (self.cost() - before))
            raise

    def _write_pieces(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        """:meth:`write`, chunk by chunk (its cost reserved)."""
        with memoryview(data) as view, view.cast("B") as source:
            length = len(source)
            if length == 0:
                return
            chunks = self.chunks
            index, start = divmod(offset, CHUNK_SIZE)
            position = 0
            while position < length:
                take = min(CHUNK_SIZE - start, length - position)
                piece = source[position : position + take]
                chunk = chunks.get(index)
                if chunk is None:
                    if start == 0:
                        chunk = bytearray(piece)
                    else:
                        chunk = bytearray(start + take)
                        chunk[start:] = piece
                    chunks[index] = chunk
                    self.allocated += len(chunk)
                else:
                    have = len(chunk)
                    if self.frozen is not None:
                        chunk = self._own(index, chunk)
                    if start > have:
                        chunk += _ZEROS[: start - have]
                    chunk[start : start + take] = piece
                    self.allocated += len(chunk) - have
                piece.release()
                position += take
                index += 1
                start = 0
        self.size = max(self.size, offset + length)

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; holes read as zeros, nothing past the end."""
        end = offset + size
        if end > self.size:
            end = self.size
            if offset >= end:
                return b""
        start = offset % CHUNK_SIZE
        stop = start + end - offset
        if stop <= CHUNK_SIZE:  # within one chunk, as most reads are
            chunk = self.chunks.get(offset // CHUNK_SIZE)
            if chunk is not None and stop <= len(chunk):
                return memoryview(chunk)[start:stop].tobytes()  # one copy; views freed here
        chunks = self.chunks
        parts: list[bytes | memoryview] = []
        position = offset
        while position < end:
            index, start = divmod(position, CHUNK_SIZE)
            stop = min(end - index * CHUNK_SIZE, CHUNK_SIZE)
            chunk = chunks.get(index)
            missing = stop - start
            if chunk is not None and start < len(chunk):
                piece = memoryview(chunk)[start:stop]
                parts.append(piece)
                missing -= len(piece)
            if missing:
                parts.append(_ZEROS[:missing])
            position = index * CHUNK_SIZE + stop
        result = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
        for part in parts:
            if isinstance(part, memoryview):
                part.release()
        return result

    def truncate(self, length: int) -> int:
        """Set the size to ``length``; returns the quota bytes freed (growing frees none)."""
        before = self.cost()
        if length < self.size:
            chunks = self.chunks
            index, cut = divmod(length, CHUNK_SIZE)
            last = (self.size - 1) // CHUNK_SIZE
            if last - index < len(chunks):
                doomed: Iterable[int] = range(index + 1, last + 1)
            else:
                doomed = [key for key in chunks if key > index]
            for key in doomed:
                chunk = chunks.pop(key, None)
                if chunk is not None:
                    self.allocated -= len(chunk)
            chunk = chunks.get(index)
            if chunk is not None and len(chunk) > cut:
                self.allocated -= len(chunk) - cut
                if cut == 0:
                    del chunks[index]
                else:
                    del self._own(index, chunk)[cut:]
        self.size = length
        return before - self.cost()

    def allocate(self, offset: int, length: int, *, keep_size: bool) -> None:
        """Back ``length`` bytes at ``offset`` with zeroed memory, :manpage:`fallocate(2)`.

        The caller has reserved :meth:`write_cost` of the range (clipped to the size when
        ``keep_size``).
        """
        end = offset + length
        if keep_size:
            end = min(end, self.size)
        if end <= offset:
            return
        chunks = self.chunks
        for index in range(offset // CHUNK_SIZE, (end - 1) // CHUNK_SIZE + 1):
            need = min(CHUNK_SIZE, end - index * CHUNK_SIZE)
            chunk = chunks.get(index)
            if chunk is None:
                chunks[index] = bytearray(need)
                self.allocated += need
            elif len(chunk) < need:
                self.allocated += need - len(chunk)
                chunk = self._own(index, chunk)
                chunk += _ZEROS[: need - len(chunk)]
        if not keep_size:
            self.size = max(self.size, end)

    def punch_hole(self, offset: int, length: int) -> int:
        """Zero ``length`` bytes at ``offset``, freeing whole chunks; returns the quota
        bytes freed."""
        before = self.cost()
        end = min(offset + length, self.size)
        if end <= offset:
            return 0
        chunks = self.chunks
        for index in range(offset // CHUNK_SIZE, (end - 1) // CHUNK_SIZE + 1):
            chunk = chunks.get(index)
            if chunk is None:
                continue
            base = index * CHUNK_SIZE
            start, stop = max(offset - base, 0), min(end - base, len(chunk))
            if start >= stop:
                continue
            if start == 0 and stop == len(chunk):
                del chunks[index]
                self.allocated -= len(chunk)
            elif stop == len(chunk):
                del self._own(index, chunk)[start:]
                self.allocated -= stop - start
            else:
                self._own(index, chunk)[start:stop] = _ZEROS[: stop - start]
        return before - self.cost()

    def iter_bytes(self, block: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The whole content in pieces of at most ``block`` bytes, holes as zeros."""
        for offset in range(0, self.size, block):
            yield self.read(offset, block)
