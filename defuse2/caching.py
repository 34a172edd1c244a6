"""What the kernel may cache, and for how long: the cache policy of a mount.

Where this sits: kernel -> libfuse -> binding -> adapter -> **cache policy**. Every
request the kernel does not send is a round trip saved, so the kernel is let keep what
it can keep without ever showing stale data:

- **Names and attributes** (the timeout of each reply, chosen in the adapter's
  ``getattr``, :mod:`defuse2.replytimeouts`): :data:`STORE_TIMEOUT` for the paths of a
  store that declares itself ``exclusive``, the mount's 1 s for routed paths and other
  stores, 0 for dynamic resources, files with several hard links and libfuse's hidden
  names of files unlinked while open.
- **Listings** of an exclusive store's directories (``cache_readdir`` on ``opendir``,
  handed on by libfuse 3.16 and later); the kernel drops one when the directory changes
  through the mount.
- **Pages of the store's files** (``keep_cache`` on ``open``), for a store that declares
  itself ``exclusive`` (the :class:`~defuse2.store.memory.MemoryStore` does; a
  ``DirectoryStore`` does not: other processes may change its directory): a path no
  route serves then changes only through the kernel, which updates its own page cache
  as it writes, so a file read again after it was written is read from memory. libfuse
  3's automatic data invalidation (``FUSE_CAP_AUTO_INVAL_DATA``, which drops a file's
  pages whenever its ``mtime`` moves, the kernel's own writes included) is turned off in
  ``init``.
- **Except** where the content changes behind a kernel inode's back: a dynamic route's
  file is read with ``direct_io`` (no page cache); any other routed file is read again
  at each ``open``; and a file with several hard links, whose names libfuse's high-level
  API gives a kernel inode each, is read again at each ``open``, and every change of its
  content through one name has the kernel forget the pages of its other names
  (:class:`HardLinks`; libfuse 3, see :mod:`defuse2.invalidation`).

And one question the kernel no longer asks: before a write it wants to know whether the
file has capabilities to drop (``getxattr("security.capability")``), every time,
unless the filesystem takes over clearing setuid, setgid and capabilities itself
(``FUSE_CAP_HANDLE_KILLPRIV_V2``, offered by libfuse 3.17 and later). defuse2 asks for
it where offered and the store declares ``clears_privileges``: the
:class:`~defuse2.store.memory.MemoryStore` does what Linux does (a write, truncation or
``fallocate`` by anyone but root clears setuid, and setgid with group-execute; any
write, truncation or ``chown`` drops ``security.capability``), and the kernel then asks
once per file until its attributes are fetched again. A routed resource that reports
setuid bits or capabilities clears them itself on ``write``, as the store does.
"""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Mapping
from typing import Any

#: Seconds the kernel may keep the attributes and names of an exclusive store's paths
#: (the plain reference's): it forgets itself what it changes, and nothing else does.
STORE_TIMEOUT = 60.0

#: ``FUSE_CAP_AUTO_INVAL_DATA`` (libfuse 3's ``fuse_common.h``).
AUTO_INVAL_DATA = 1 << 12
#: ``FUSE_CAP_WRITEBACK_CACHE``.
WRITEBACK_CACHE = 1 << 16
#: ``FUSE_CAP_HANDLE_KILLPRIV_V2`` (libfuse 3.17 and later offer it).
HANDLE_KILLPRIV_V2 = 1 << 21

#: Seconds a change of a hard-linked file's content waits for the kernel to forget the
#: pages of its other names (see :mod:`defuse2.invalidation` for why not longer).
HARD_LINK_WAIT = 0.1


_FORMAT, _DIRECTORY = stat.S_IFMT(0o177777), stat.S_IFDIR


def is_exclusive(store: object) -> bool:
    """Whether only the mount changes what ``store`` holds (its ``exclusive``)."""
    return bool(getattr(store, "exclusive", False))


def negotiate(conn: Any, store: object, writeback: bool = False) -> None:
    """Choose the connection's capabilities in ``init`` (libfuse 3's ``conn->want``).

    :param writeback: the kernel keeps written data and sends it later (the mount's
        ``writeback_cache``).
    """
    if writeback:
        conn.want |= conn.capable & WRITEBACK_CACHE
    if is_exclusive(store):
        conn.want &= ~AUTO_INVAL_DATA
    if conn.capable & HANDLE_KILLPRIV_V2 and getattr(store, "clears_privileges", False):
        conn.want |= HANDLE_KILLPRIV_V2


class HardLinks:
    """The names the kernel knows of each file that has more than one.

    :meth:`saw` is told every ``getattr`` answer; :meth:`changed`, every change of a
    file's content through a name. The other names of a file with several are then
    handed to ``invalidate``. :attr:`names` is empty while no such file was seen, so a
    caller tests it before calling :meth:`changed`.

    :param invalidate: has the kernel forget what it cached for a path.
    """

    def __init__(self, invalidate: Callable[[str], None]) -> None:
        self._invalidate = invalidate
        #: name -> inode number, for the files seen with more than one link
        self.names: dict[str, int] = {}
        self._inodes: dict[int, set[str]] = {}
        self._lock = threading.Lock()

    def saw(self, path: str | None, attributes: Mapping[str, int]) -> None:
        """Note what ``getattr`` answered for ``path``."""
        linked = attributes["st_nlink"] > 1 and attributes["st_mode"] & _FORMAT != _DIRECTORY
        if not linked and path not in self.names or path is None:
            return  # the common case: one name (or a directory), never seen with more
        if linked:
            inode = attributes["st_ino"]
            if self.names.get(path) == inode:
                return
            with self._lock:
                self._forget(path)
                self.names[path] = inode
                self._inodes.setdefault(inode, set()).add(path)
        elif path in self.names:
            with self._lock:
                self._forget(path)

    def _forget(self, path: str) -> None:
        inode = self.names.pop(path, None)
        if inode is not None:
            others = self._inodes[inode]
            others.discard(path)
            if not others:
                del self._inodes[inode]

    def changed(self, path: str | None) -> None:
        """The content of the file at ``path`` changed: its other names forget theirs."""
        inode = self.names.get(path) if path is not None else None
        if inode is None:
            return
        with self._lock:
            others = [name for name in self._inodes.get(inode, ()) if name != path]
        for name in others:
            self._invalidate(name)
