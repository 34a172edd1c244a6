"""The store protocol: what serves every path that no route claims.

Where this sits: kernel -> libfuse -> binding (mfusepy/fusepy) -> defuse2 dispatcher ->
**store**. The dispatcher hands a path to the store when no route matches it. A store
speaks the vocabulary of the fusepy high-level API, with libfuse's operation names and
fusepy's argument names, so a reader can go from here to ``fuse.h`` and the man pages:

- paths are absolute ``str`` (``"/notes/a.txt"``); bytes that are not UTF-8 arrive as
  lone surrogates (``errors="surrogateescape"``) and must round-trip unchanged;
- ``getattr`` returns a stat mapping with fusepy's keys (``st_mode``, ``st_size``, ...),
  times as integer nanoseconds;
- every failure is an :class:`OSError` with a real errno;
- every method that creates or changes something takes a keyword-only ``ctx``: who is
  asking (uid, gid, pid, umask). ``None`` means the current process.

``fh`` arguments are the handles the store itself returned from ``open``/``create``/
``opendir``. When ``path`` is ``None`` the file was unlinked while open and only the
handle names it.

A store may also have, where it can do better than the protocol alone:

- ``no_op_operations``: operations with nothing to do (``flush`` in memory), and
  ``unsupported_operations``: operations it can never do (xattrs on an object store).
  A mount does not register either for the store's paths, so the kernel sends none
  (for the unsupported ones it answers ``EOPNOTSUPP`` itself);
- ``lazy_context_operations``: operations whose ``ctx`` may be a function giving the
  caller's :class:`Context`, called only when needed;
- ``exclusive`` and ``clears_privileges``: the cache policy of :mod:`defuse2.caching`;
- ``find_names(path)`` and ``find_xattr(path, name)``: ``readdir`` and ``getxattr``
  answering ``None`` instead of raising for "no such directory" or "no such attribute".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple, Protocol, runtime_checkable

#: ``utimens`` markers. libfuse passes ``struct timespec`` pairs; the binding turns each
#: into ``tv_sec * 10**9 + tv_nsec`` nanoseconds, so the special ``tv_nsec`` values of
#: :manpage:`utimensat(2)` (with ``tv_sec`` 0) arrive as these exact integers.
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

#: ``rename`` flags of :manpage:`renameat2(2)`.
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4

#: ``setxattr`` options of :manpage:`setxattr(2)`.
XATTR_CREATE = 1
XATTR_REPLACE = 2

Stat = Mapping[str, int]

#: What ``write`` accepts: any bytes-like object. Under a mount it is a
#: :class:`memoryview` over the binding's buffer, valid only during the call, so a store
#: copies what it keeps before returning.
Buffer = bytes | bytearray | memoryview


class Context(NamedTuple):
    """Who made a request: the caller's uid, gid, pid and umask.

    Under a mount these come from ``fuse_get_context()``; in-process they default to the
    current process.
    """

    uid: int
    gid: int
    pid: int
    umask: int = 0o022

    @classmethod
    def current(cls) -> Context:
        """The calling process itself, as if it had made the request."""
        return cls(os.getuid(), os.getgid(), os.getpid(), _process_umask())


def _process_umask() -> int:
    """The process's umask, read without changing it (``os.umask`` can only swap it,
    which would race with other threads creating files)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


@runtime_checkable
class Store(Protocol):
    """A filesystem addressed by path, in the fusepy vocabulary.

    :class:`~defuse2.store.memory.MemoryStore` is the default implementation; any object
    with these methods can stand behind a :class:`~defuse2.FileSystem`.
    """

    # -- reading the tree ---------------------------------------------------------------
    def getattr(self, path: str | None, fh: int | None = None) -> Stat:
        """Attributes of ``path`` (or of the open handle ``fh``), :manpage:`stat(2)`."""
        ...

    def readdir(self, path: str, fh: int | None = None) -> list[str]:
        """Names in directory ``path``, without ``.`` and ``..``, :manpage:`readdir(3)`."""
        ...

    def readlink(self, path: str) -> str:
        """Target of symlink ``path``, :manpage:`readlink(2)`."""
        ...

    def access(self, path: str, amode: int, *, ctx: Context | None = None) -> None:
        """Check ``amode`` (``os.R_OK`` ...) for the caller, :manpage:`access(2)`."""
        ...

    def statfs(self, path: str) -> Stat:
        """Capacity and use, with ``f_*`` keys of :manpage:`statvfs(3)`."""
        ...

    # -- changing the tree --------------------------------------------------------------
    def mknod(self, path: str, mode: int, dev: int, *, ctx: Context | None = None) -> None:
        """Create a file, FIFO or device node, :manpage:`mknod(2)`."""
        ...

    def mkdir(self, path: str, mode: int, *, ctx: Context | None = None) -> None:
        """Create a directory, :manpage:`mkdir(2)`."""
        ...

    def unlink(self, path: str, *, ctx: Context | None = None) -> None:
        """Remove a name; the data lives on while handles are open, :manpage:`unlink(2)`."""
        ...

    def rmdir(self, path: str, *, ctx: Context | None = None) -> None:
        """Remove an empty directory, :manpage:`rmdir(2)`."""
        ...

    def symlink(self, target: str, source: str, *, ctx: Context | None = None) -> None:
        """Create the symlink ``target`` pointing at ``source``, :manpage:`symlink(2)`."""
        ...

    def rename(self, old: str, new: str, flags: int = 0, *, ctx: Context | None = None) -> None:
        """Move ``old`` to ``new``, :manpage:`rename(2)` / :manpage:`renameat2(2)`."""
        ...

    def link(self, target: str, source: str, *, ctx: Context | None = None) -> None:
        """Create the hard link ``target`` to the existing ``source``, :manpage:`link(2)`."""
        ...

    # -- changing attributes ------------------------------------------------------------
    def chmod(
        self, path: str | None, mode: int, fh: int | None = None, *, ctx: Context | None = None
    ) -> None:
        """Change permission bits, :manpage:`chmod(2)`."""
        ...

    def chown(
        self,
        path: str | None,
        uid: int,
        gid: int,
        fh: int | None = None,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Change owner and group (-1 keeps one), :manpage:`chown(2)`."""
        ...

    def truncate(
        self, path: str | None, length: int, fh: int | None = None, *, ctx: Context | None = None
    ) -> None:
        """Set the size, :manpage:`truncate(2)`."""
        ...

    def utimens(
        self,
        path: str | None,
        times: tuple[int, int] | None = None,
        fh: int | None = None,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Set (atime, mtime) in ns (``None``: now), :manpage:`utimensat(2)`."""
        ...

    # -- file contents ------------------------------------------------------------------
    def create(self, path: str, mode: int, flags: int = 0, *, ctx: Context | None = None) -> int:
        """Create and open a regular file; returns a handle, :manpage:`open(2)` with O_CREAT."""
        ...

    def open(self, path: str, flags: int, *, ctx: Context | None = None) -> int:
        """Open an existing file; returns a handle, :manpage:`open(2)`."""
        ...

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        """Up to ``size`` bytes at ``offset``, :manpage:`pread(2)`."""
        ...

    def write(
        self, path: str | None, data: Buffer, offset: int, fh: int, *, ctx: Context | None = None
    ) -> int:
        """Write all of ``data`` at ``offset`` or nothing, :manpage:`pwrite(2)`.

        ``data`` may be a :class:`memoryview` valid only during the call: copy it.
        """
        ...

    def fallocate(
        self,
        path: str | None,
        mode: int,
        offset: int,
        size: int,
        fh: int,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Reserve space, :manpage:`fallocate(2)`."""
        ...

    def flush(self, path: str | None, fh: int) -> None:
        """Called at each :manpage:`close(2)` of a descriptor."""
        ...

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        """Make the file durable, :manpage:`fsync(2)` (a no-op in memory)."""
        ...

    def release(self, path: str | None, fh: int) -> None:
        """The last descriptor of ``fh`` is closed; unlinked data may now go."""
        ...

    def opendir(self, path: str, *, ctx: Context | None = None) -> int:
        """Open a directory for listing, :manpage:`opendir(3)`."""
        ...

    def releasedir(self, path: str | None, fh: int) -> None:
        """Close a directory handle, :manpage:`closedir(3)`."""
        ...

    # -- extended attributes ------------------------------------------------------------
    def getxattr(self, path: str, name: str) -> bytes:
        """Value of xattr ``name``; ENODATA when absent, :manpage:`getxattr(2)`."""
        ...

    def setxattr(
        self, path: str, name: str, value: bytes, options: int, *, ctx: Context | None = None
    ) -> None:
        """Set xattr ``name`` (``XATTR_CREATE``/``XATTR_REPLACE``), :manpage:`setxattr(2)`."""
        ...

    def listxattr(self, path: str) -> list[str]:
        """Names of the xattrs of ``path``, :manpage:`listxattr(2)`."""
        ...

    def removexattr(self, path: str, name: str, *, ctx: Context | None = None) -> None:
        """Remove xattr ``name``; ENODATA when absent, :manpage:`removexattr(2)`."""
        ...


def read_stored(store: Store, path: str, *, ctx: Context | None = None) -> bytes:
    """The whole content of the stored file at ``path``, read through the store's own API.

    A resource that works on a stored file (``self.store`` in a route) opens it read-only,
    reads ``st_size`` bytes from offset 0 and releases it, as the kernel would::

        text = read_stored(self.store, "/data/words.txt").decode()

    Errors are the store's: ENOENT when there is no such file, EISDIR for a directory,
    ELOOP for a symlink (a store does not follow the last name of a path).
    """
    fh = store.open(path, os.O_RDONLY, ctx=ctx)
    try:
        return store.read(path, store.getattr(path)["st_size"], 0, fh)
    finally:
        store.release(path, fh)
