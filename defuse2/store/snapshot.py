"""A point-in-time copy of a store's tree, taken in one step and read at leisure.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**snapshot** -> archive. Saving a store while it is mounted must not stop it for the
length of a disk write, and must not mix states: a file written after another must never
be saved with its new bytes while the other keeps its old ones. So a save has two parts:

1. :func:`capture` holds the namespace lock and then every inode's lock at once, for as
   long as it takes to copy the tree's names and metadata and to *freeze* each file's
   chunk table (:meth:`~defuse2.store.content.Content.freeze`: a table of the same
   chunks, no data copied). Every change to the store waits for that moment, so the
   snapshot is one instant of the tree. It costs time in proportion to the number of
   nodes (a few microseconds each: 0.3 to 0.6 s for 100,000 files where it was
   measured), not to the bytes; the garbage collector is held off meanwhile.
2. The archive is written from the :class:`Snapshot` with no lock held, while the store
   serves on; a write to a chunk the snapshot shares copies that chunk first (memory
   beyond the quota, for the length of the save, at most the data changed meanwhile).
   :meth:`Snapshot.release` ends the sharing.

Locks are taken in the store's order (namespace, then inodes); holding several inode
locks at once is safe because no other thread that holds one waits for another.
"""

from __future__ import annotations

import errno
import gc
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from defuse2.store.content import CHUNK_SIZE
from defuse2.store.inode import Inode
from defuse2.store.namespace import Namespace, is_hidden
from defuse2.store.paths import fail


@dataclass(slots=True)
class Entry:
    """One name of the tree and what it names, as it was when the snapshot was taken.

    :param path: relative to the snapshot's top (``.`` for the top itself).
    :param link_to: for a second name of a hard-linked file, the first name's path; the
        other fields then repeat that file's.
    """

    path: str
    mode: int
    uid: int
    gid: int
    atime: int
    mtime: int
    ctime: int
    rdev: int = 0
    target: str | None = None
    xattrs: dict[str, bytes] = field(default_factory=dict)
    link_to: str | None = None
    size: int = 0
    chunks: dict[int, bytearray] | None = None

    @property
    def kind(self) -> int:
        """The file type bits (:func:`stat.S_IFMT`)."""
        return stat.S_IFMT(self.mode)

    def regions(self) -> Iterator[tuple[int, int]]:
        """``(offset, length)`` of the data of a regular file, in order, holes left out.

        Holes are the chunks never written, the bytes past a chunk's end, and any
        512-byte block of zeros (as GNU tar's ``--sparse`` finds them). Every region but
        one that ends the file is made of whole blocks (GNU tar reads each region from a
        block of its own); runs of data in adjacent chunks make one region.
        """
        assert self.chunks is not None
        start = end = 0
        for index in sorted(self.chunks):
            base = index * CHUNK_SIZE
            chunk = self.chunks[index]
            for offset, length in _data_runs(chunk, min(len(chunk), self.size - base)):
                blocks = -(-length // HOLE_BLOCK) * HOLE_BLOCK
                if base + offset != end:
                    if end > start:
                        yield start, end - start
                    start = base + offset
                end = min(base + offset + blocks, self.size)
        if end > start:
            yield start, end - start

    def pieces(self, offset: int, length: int) -> Iterator[memoryview]:
        """The bytes of a region :meth:`regions` gave, one view per chunk (and zeros where
        a block goes past the end of its chunk)."""
        assert self.chunks is not None
        while length > 0:
            index, start = divmod(offset, CHUNK_SIZE)
            take = min(length, CHUNK_SIZE - start)
            stored = memoryview(self.chunks.get(index, b""))[start : start + take]
            yield stored
            if len(stored) < take:
                yield _ZEROS[: take - len(stored)]
            offset += take
            length -= take


#: The unit in which zeros count as a hole: a tar block.
HOLE_BLOCK = 512
_ZERO_BLOCK = bytes(HOLE_BLOCK)
_ZEROS = memoryview(bytes(CHUNK_SIZE))


def _data_runs(chunk: bytearray, length: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of the parts of ``chunk[:length]`` that are not blocks of
    :data:`HOLE_BLOCK` zeros (offsets are multiples of it, but for the last run's end)."""
    if length <= 0:
        return
    if _ZERO_BLOCK not in chunk:  # most data: one scan in C
        yield 0, length
        return
    run = -1
    for block in range(0, length, HOLE_BLOCK):
        end = min(block + HOLE_BLOCK, length)
        if chunk.count(0, block, end) == end - block:
            if run >= 0:
                yield run, block - run
                run = -1
        elif run < 0:
            run = block
    if run >= 0:
        yield run, length - run


@dataclass(slots=True)
class Snapshot:
    """The entries of a tree, parents before children, and the files whose chunks they
    share with the store (each with the chunk table it froze)."""

    entries: list[Entry]
    shared: list[tuple[Inode, dict[int, bytearray]]]

    def release(self) -> None:
        """Stop sharing chunks with the store (call once, when the snapshot is written)."""
        shared, self.shared = self.shared, []
        for node, chunks in shared:
            with node.lock:
                assert node.content is not None
                node.content.thaw(chunks)


def capture(namespace: Namespace, root: str = "/") -> Snapshot:
    """Copy the tree under ``root`` as it is at one instant (see the module docstring).

    Files unlinked while open (libfuse's ``.fuse_hidden*`` names) are left out, and so
    are sockets, which no archive can hold.

    :raises OSError: ``ENOENT``/``ENOTDIR`` for ``root``.
    """
    entries: list[Entry] = []
    shared: list[tuple[Inode, dict[int, bytearray]]] = []
    held: list[Inode] = []
    collecting = gc.isenabled()
    gc.disable()  # the entries are new objects, not garbage: no collection while held
    try:
        with namespace.lock:
            _capture(namespace, root, entries, shared, held)
    finally:
        if collecting:
            gc.enable()
    return Snapshot(entries, shared)


def _capture(
    namespace: Namespace,
    root: str,
    entries: list[Entry],
    shared: list[tuple[Inode, dict[int, bytearray]]],
    held: list[Inode],
) -> None:
    """Fill ``entries`` and ``shared`` (namespace lock held); every inode lock taken is
    let go before returning."""
    top = namespace.lookup(root)
    if not top.is_dir:
        raise fail(errno.ENOTDIR, root)
    first_names: dict[int, str] = {}
    try:
        for path, node in _walk(top):
            first = first_names.get(node.ino)
            if first is None:  # the first name of this inode: lock it
                node.lock.acquire()
                held.append(node)
                if not node.is_dir:
                    first_names[node.ino] = path
            if stat.S_ISSOCK(node.mode):
                continue
            entry = _entry(path, node)
            if first is not None:
                entry.link_to = first
            elif node.content is not None:
                entry.chunks = node.content.freeze()
                shared.append((node, entry.chunks))
            entries.append(entry)
    except BaseException:  # (a MemoryError): share nothing
        for node, chunks in shared:
            assert node.content is not None
            node.content.thaw(chunks)
        raise
    finally:
        for node in held:
            node.lock.release()


#: The xattrs of an entry that has none (entries are only read, never changed).
_NO_XATTRS: dict[str, bytes] = {}


def _entry(path: str, node: Inode) -> Entry:
    """What an archive keeps of ``node`` (its lock held)."""
    xattrs = node.xattrs
    content = node.content
    return Entry(
        path,
        node.mode,
        node.uid,
        node.gid,
        node.atime,
        node.mtime,
        node.ctime,
        node.rdev,
        node.target,
        xattrs.copy() if xattrs else _NO_XATTRS,
        None,
        content.size if content is not None else 0,
    )


def _walk(top: Inode) -> Iterator[tuple[str, Inode]]:
    """``(relative path, inode)`` for ``top`` (as ``.``) and everything under it, parents
    first (namespace lock held)."""
    stack: list[tuple[str, Inode]] = [(".", top)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if node.children is not None:
            prefix = "" if path == "." else path + "/"
            stack.extend(
                (prefix + name, child)
                for name, child in reversed(node.children.items())
                if not is_hidden(name)
            )
