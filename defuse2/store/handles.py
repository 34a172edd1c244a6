"""Open file handles: the ``fh`` numbers the store gives out and takes back.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**handles**. ``open``, ``create`` and ``opendir`` return a number; later calls name the
file by it, which keeps working after the file is renamed or unlinked. A handle holds
its inode, not a path. Numbers are never reused while the store lives.
"""

from __future__ import annotations

import errno
import itertools
import threading
from collections.abc import Callable

from defuse2.store.inode import Inode
from defuse2.store.paths import fail


class Handle:
    """One open file or directory and what it was opened for."""

    __slots__ = ("inode", "readable", "writable", "is_dir")

    def __init__(self, inode: Inode, *, readable: bool, writable: bool, is_dir: bool) -> None:
        self.inode = inode
        self.readable = readable
        self.writable = writable
        self.is_dir = is_dir


class HandleTable:
    """``fh`` -> :class:`Handle`, under its own small lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[int, Handle] = {}
        self._numbers = itertools.count(1)
        #: The handle numbered ``fh``, or ``None`` (one dict lookup, no lock).
        self.find: Callable[[int], Handle | None] = self._handles.get

    def add(self, handle: Handle) -> int:
        """Register ``handle`` and return its new number."""
        with self._lock:
            fh = next(self._numbers)
            self._handles[fh] = handle
        return fh

    def get(self, fh: int) -> Handle:
        """The handle numbered ``fh``.

        :raises OSError: ``EBADF`` for a number the store did not give out or took back.
        """
        handle = self._handles.get(fh)
        if handle is None:
            raise fail(errno.EBADF)
        return handle

    def pop(self, fh: int) -> Handle:
        """Forget ``fh`` and return its handle (``EBADF`` when unknown)."""
        with self._lock:
            handle = self._handles.pop(fh, None)
        if handle is None:
            raise fail(errno.EBADF)
        return handle

    def __len__(self) -> int:
        return len(self._handles)
