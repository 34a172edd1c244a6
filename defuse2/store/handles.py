"""Open file handles: the ``fh`` numbers the store gives out and takes back.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**handles**. ``open``, ``create`` and ``opendir`` return a number; later calls name the
file by it, which keeps working after the file is renamed or unlinked. A handle holds
its inode, not a path. Numbers are never reused while the store lives.

The table has no lock of its own: the store gives out numbers only under its namespace
lock, and looking up or taking back one number is a single dict operation.
"""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Callable

from defuse2.store.inode import Inode
from defuse2.store.paths import fail

#: Access modes (``flags & O_ACCMODE``) that allow reading, and those that allow writing.
_READING = (os.O_RDONLY, os.O_RDWR)
_WRITING = (os.O_WRONLY, os.O_RDWR)


class Handle:
    """One open file or directory and what it was opened for.

    :param inode: what was opened.
    :param access: the access mode of the ``open`` flags (``flags & os.O_ACCMODE``).
    """

    __slots__ = ("inode", "readable", "writable", "is_dir")

    def __init__(self, inode: Inode, access: int) -> None:
        self.inode = inode
        #: Whether this is a directory handle, which neither reads nor writes data.
        self.is_dir = is_dir = inode.is_dir
        #: Whether ``read`` may use it: opened for reading, and not a directory.
        self.readable = access in _READING and not is_dir
        #: Whether ``write`` may use it: opened for writing (never a directory).
        self.writable = access in _WRITING


class HandleTable:
    """``fh`` -> :class:`Handle` (see the module docstring for why it needs no lock)."""

    def __init__(self) -> None:
        self._handles: dict[int, Handle] = {}
        self._numbers = itertools.count(1)
        #: The handle numbered ``fh``, or ``None`` (one dict lookup).
        self.find: Callable[[int], Handle | None] = self._handles.get

    def add(self, handle: Handle) -> int:
        """Register ``handle`` and return its new number; call with the namespace lock held."""
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
        handle = self._handles.pop(fh, None)
        if handle is None:
            raise fail(errno.EBADF)
        return handle

    def __len__(self) -> int:
        return len(self._handles)
