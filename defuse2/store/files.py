"""Open files: handles, contents and sizes; half of :class:`~defuse2.store.memory.MemoryStore`.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**files**. :class:`FileOperations` holds the store's state (quota, namespace, handle
table) and the operations that go through a handle or change a file's contents:
``create``, ``open``, ``read``, ``write``, ``truncate``, ``fallocate``, ``flush``,
``fsync``, ``release``, ``opendir``, ``releasedir``. ``read`` and ``write`` take only
their inode's lock, never the namespace lock, so writers to different files never wait
on each other. :class:`~defuse2.store.memory.MemoryStore` adds the tree, the
attributes, the xattrs and the snapshots.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable

from defuse2.store import permissions, xattrs
from defuse2.store.base import Buffer, Context
from defuse2.store.content import byte_size
from defuse2.store.handles import Handle, HandleTable
from defuse2.store.inode import FILE_TYPE, Inode
from defuse2.store.namespace import Namespace, entry_cost
from defuse2.store.paths import fail
from defuse2.store.permissions import R, W, X
from defuse2.store.quota import NODE_COST, Quota

#: Largest file size (``off_t``).
MAX_FILE_SIZE = (1 << 63) - 1

#: The setuid and setgid bits, which a write by anyone but root clears.
SET_ID = stat.S_ISUID | stat.S_ISGID

#: ``fallocate`` modes (``linux/falloc.h``).
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


class FileOperations:
    """The state of a store and its operations on open files.

    :param quota: the budget every allocation is reserved from.
    """

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        #: where times come from (ns since the epoch); tests may replace it.
        self._clock: Callable[[], int] = time.time_ns
        ctx = permissions.current_context()
        self._namespace = Namespace(quota, ctx.uid, ctx.gid, self._clock())
        self._handles = HandleTable()
        #: The inode a path seen before names, or ``None``: no lock, no walk.
        self._remembered: Callable[[str | None], Inode | None] = self._namespace.paths.get

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _context(ctx: Context | Callable[[], Context] | None) -> Context:
        """Who is asking: ``ctx``, or what it gives when it is a callable, or the process."""
        if ctx is None:
            return permissions.current_context()
        return ctx if isinstance(ctx, Context) else ctx()

    def _inode(self, path: str | None, fh: int | None) -> Inode:
        """The inode named by ``fh`` (if given and known) or else by ``path``."""
        if fh is not None:
            handle = self._handles.find(fh)
            if handle is not None:
                return handle.inode
            if path is None:
                raise fail(errno.EBADF)
        if path is None:
            raise fail(errno.EBADF)
        node = self._remembered(path)
        if node is not None:
            return node
        with self._namespace.lock:
            return self._namespace.lookup(path)

    def _create(
        self,
        path: str,
        mode: int,
        ctx: Context,
        *,
        cost: int = 0,
        rdev: int = 0,
        free: tuple[Inode, str] | None = None,
    ) -> tuple[Inode, Inode]:
        """Make a node at ``path``; returns ``(parent, node)``. Namespace lock held.

        :param cost: quota bytes the node holds besides :data:`NODE_COST` (a symlink's
            target).
        :param free: the directory and the name :meth:`Namespace.walk` gave for ``path``,
            if the caller has them and has checked that the name is free.
        """
        namespace = self._namespace
        if free is None:
            parent, name = namespace.walk(path)
            if name is None or namespace.child(parent, name) is not None:
                raise fail(errno.EEXIST, path)
        else:
            parent, name = free
        permissions.require(parent, ctx, W | X)
        if mode & FILE_TYPE in (stat.S_IFCHR, stat.S_IFBLK) and ctx.uid != 0:
            raise fail(errno.EPERM, path)
        charge = NODE_COST + cost + entry_cost(name)
        self.quota.reserve(charge, 1)
        node = None
        try:
            now = self._clock()
            gid, mode = permissions.new_owner(parent, mode, ctx)
            node = namespace.new_inode(mode, ctx.uid, gid, now)
            node.rdev = rdev
            node.extra = NODE_COST + cost
            namespace.attach(parent, name, node, now)
        except BaseException:  # a MemoryError: what is not in the tree costs nothing
            assert parent.children is not None
            if node is None or parent.children.get(name) is not node:
                self.quota.release(charge, 1)
            raise
        return parent, node

    def _open(self, node: Inode, flags: int, ctx: Context) -> int:
        """Open the existing ``node`` for ``flags``; namespace lock held."""
        access = flags & os.O_ACCMODE
        readable = access in (os.O_RDONLY, os.O_RDWR)
        writable = access in (os.O_WRONLY, os.O_RDWR)
        if node.is_symlink:
            raise fail(errno.ELOOP)
        if node.is_dir:
            if writable or flags & (os.O_TRUNC | os.O_CREAT):
                raise fail(errno.EISDIR)
        elif flags & os.O_DIRECTORY:
            raise fail(errno.ENOTDIR)
        wanted = (R if readable else 0) | (W if writable or flags & os.O_TRUNC else 0)
        permissions.require(node, ctx, wanted)
        with node.lock:
            node.opens += 1
            if flags & os.O_TRUNC and node.content is not None:
                self.quota.release(node.content.truncate(0))
                permissions.kill_privileges(node, ctx)
                if node.xattrs:
                    xattrs.drop_capability(node, self.quota)
                node.mtime = node.ctime = self._clock()
                node.changed()
        return self._handles.add(Handle(node, access))

    @staticmethod
    def _refused(handle: Handle | None) -> OSError:
        """Why ``handle`` cannot read or write data: ``EISDIR`` for a directory, else
        ``EBADF`` (unknown, or not open for that)."""
        return fail(errno.EISDIR if handle is not None and handle.is_dir else errno.EBADF)

    def truncate(
        self, path: str | None, length: int, fh: int | None = None, *, ctx: Context | None = None
    ) -> None:
        """Set the size, :manpage:`truncate(2)`; growing makes a hole (no quota).

        :raises OSError: ``EINVAL`` for a negative length, a non-regular file or a handle
            not open for writing; ``EISDIR``; ``EACCES``; ``EFBIG``.
        """
        context = self._context(ctx)
        handle = self._handles.find(fh) if fh is not None else None
        if handle is not None:
            if handle.is_dir:
                raise fail(errno.EISDIR, path)
            if not handle.writable:
                raise fail(errno.EINVAL, path)
            node = handle.inode
        else:
            node = self._inode(path, fh)
            if node.is_dir:
                raise fail(errno.EISDIR, path)
            permissions.require(node, context, W)
        if length < 0 or node.content is None:
            raise fail(errno.EINVAL, path)
        if length > MAX_FILE_SIZE:
            raise fail(errno.EFBIG, path)
        with node.lock:
            if node.freed:
                raise fail(errno.ENOENT, path)
            content = node.content
            self.quota.release(content.truncate(length))
            permissions.kill_privileges(node, context)
            if node.xattrs:
                xattrs.drop_capability(node, self.quota)
            node.mtime = node.ctime = self._clock()  # even at the same size, as Linux does
            node.changed()

    # -- file contents -------------------------------------------------------------------
    def create(self, path: str, mode: int, flags: int = 0, *, ctx: Context | None = None) -> int:
        """Create and open a regular file, :manpage:`open(2)` with ``O_CREAT``.

        An existing file is opened instead (and truncated with ``O_TRUNC``), unless
        ``flags`` has ``O_EXCL``: then ``EEXIST``.
        """
        context = self._context(ctx)
        namespace = self._namespace
        namespace.lock.acquire()  # not ``with``: half the cost
        try:
            parent, name = namespace.walk(path)
            existing = parent if name is None else namespace.child(parent, name)
            if existing is not None:
                if flags & os.O_EXCL:
                    raise fail(errno.EEXIST, path)
                return self._open(existing, flags | os.O_CREAT, context)
            assert name is not None
            if mode & FILE_TYPE not in (0, stat.S_IFREG):
                raise fail(errno.EINVAL, path)
            _, node = self._create(
                path, stat.S_IFREG | (mode & 0o7777), context, free=(parent, name)
            )
            if flags & os.O_DIRECTORY:
                raise fail(errno.ENOTDIR)  # made, but not opened: Linux before 6.4 does so
            node.opens = 1  # no lock: nobody can reach the node before the namespace lock
            return self._handles.add(Handle(node, flags & os.O_ACCMODE))
        finally:
            namespace.lock.release()

    def open(self, path: str, flags: int, *, ctx: Context | None = None) -> int:
        """Open an existing file, :manpage:`open(2)`; ``O_TRUNC`` is honoured.

        :raises OSError: ``ENOENT``, ``EISDIR`` for a directory opened for writing,
            ``ENOTDIR`` with ``O_DIRECTORY``, ``ELOOP`` for a symlink, ``EACCES``.
        """
        context = self._context(ctx)
        with self._namespace.lock:
            node = self._namespace.lookup(path)
            return self._open(node, flags, context)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        """Up to ``size`` bytes at ``offset``, :manpage:`pread(2)`; holes read as zeros.

        :raises OSError: ``EBADF`` for an unknown handle or one not open for reading,
            ``EISDIR`` for a directory handle, ``EINVAL`` for a negative offset.
        """
        handle = self._handles.find(fh)
        if handle is None or not handle.readable:
            raise self._refused(handle)
        if offset < 0 or size < 0:
            raise fail(errno.EINVAL)
        node = handle.inode
        if node.content is None:
            raise fail(errno.EINVAL)
        lock = node.lock
        lock.acquire()  # not ``with``: half the cost on the hottest path
        try:
            node.atime = self._clock()
            node.changed()
            return node.content.read(offset, size)
        finally:
            lock.release()

    def write(
        self,
        path: str | None,
        data: Buffer,
        offset: int,
        fh: int,
        *,
        ctx: Context | Callable[[], Context] | None = None,
    ) -> int:
        """Write all of ``data`` at ``offset``, :manpage:`pwrite(2)`; returns its length.

        ``data`` may be any bytes-like object, also one valid only during the call (a
        ``memoryview`` over the binding's buffer): its bytes are copied into the file's
        chunks before this returns, and no reference to it is kept. ``ctx`` may be a
        callable giving the :class:`Context`: it is called only for a setuid or setgid
        file, whose bits a write by anyone but root clears. A write drops the file's
        capabilities (``security.capability``), whoever makes it.

        :raises OSError: ``ENOSPC`` when the allocation would pass the quota (nothing is
            written), ``EBADF`` for an unknown or read-only handle, ``EISDIR``,
            ``EINVAL`` for a negative offset, ``EFBIG`` past the largest size.
        """
        handle = self._handles.find(fh)
        if handle is None or not handle.writable:
            raise self._refused(handle)
        length = len(data) if type(data) is bytes else byte_size(data)
        if offset < 0:
            raise fail(errno.EINVAL)
        if offset + length > MAX_FILE_SIZE:
            raise fail(errno.EFBIG)
        node = handle.inode
        content = node.content
        if content is None:
            raise fail(errno.EINVAL)
        if length == 0:
            return 0
        lock = node.lock
        lock.acquire()  # not ``with``: half the cost on the hottest path
        try:
            content.write(data, offset, self.quota)
            node.mtime = node.ctime = self._clock()
            if node.mode & SET_ID:
                permissions.kill_privileges(node, self._context(ctx))
            if node.xattrs:
                xattrs.drop_capability(node, self.quota)
            node.changed()
        finally:
            lock.release()
        return length

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
        """Reserve or release space, :manpage:`fallocate(2)`.

        Mode 0 allocates zeros and extends the size, ``FALLOC_FL_KEEP_SIZE`` allocates
        within the current size only, ``FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE``
        frees; other modes are ``EOPNOTSUPP``.
        """
        handle = self._handles.find(fh)
        if handle is None or not handle.writable:
            raise self._refused(handle)
        if offset < 0 or size <= 0:
            raise fail(errno.EINVAL)
        if offset + size > MAX_FILE_SIZE:
            raise fail(errno.EFBIG)
        node = handle.inode
        content = node.content
        if content is None:
            raise fail(errno.ENODEV)
        punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        if mode not in (0, FALLOC_FL_KEEP_SIZE, punch):
            raise fail(errno.EOPNOTSUPP)
        with node.lock:
            if mode == punch:
                self.quota.release(content.punch_hole(offset, size))
            else:
                keep = bool(mode & FALLOC_FL_KEEP_SIZE)
                end = min(offset + size, content.size) if keep else offset + size
                cost = content.write_cost(offset, end - offset)
                self.quota.reserve(cost)
                before = content.cost()
                try:
                    content.allocate(offset, size, keep_size=keep)
                except BaseException:  # a MemoryError: keep only what was allocated
                    self.quota.release(cost - (content.cost() - before))
                    raise
            permissions.kill_privileges(node, self._context(ctx))
            if node.xattrs:
                xattrs.drop_capability(node, self.quota)
            node.mtime = node.ctime = self._clock()
            node.changed()

    def flush(self, path: str | None, fh: int) -> None:
        """Called at each :manpage:`close(2)`; nothing to do in memory."""
        self._handles.get(fh)

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        """:manpage:`fsync(2)`: memory is as durable as it gets."""
        self._handles.get(fh)

    def release(self, path: str | None, fh: int) -> None:
        """Forget handle ``fh``; an unlinked file's data goes with its last handle."""
        node = self._handles.pop(fh).inode
        lock = node.lock
        lock.acquire()  # not ``with``: half the cost, on every close
        try:
            node.opens -= 1
            if node.nlink <= 0:  # unlinked while open: the data may go now
                self._namespace.free_if_unused(node)
        finally:
            lock.release()

    def opendir(self, path: str, *, ctx: Context | None = None) -> int:
        """Open a directory for listing, :manpage:`opendir(3)`."""
        return self.open(path, os.O_RDONLY | os.O_DIRECTORY, ctx=ctx)

    def releasedir(self, path: str | None, fh: int) -> None:
        """Close a directory handle, :manpage:`closedir(3)`."""
        self.release(path, fh)
