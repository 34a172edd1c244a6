"""``MemoryStore``: a POSIX-faithful filesystem in memory, with a hard byte quota.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> **MemoryStore**.
The dispatcher sends here every path that no route claims; the store can also be used
on its own, in-process, through the :class:`~defuse2.store.base.Store` methods::

    store = MemoryStore(quota="64 MiB")
    fh = store.create("/notes.txt", 0o644, os.O_WRONLY)
    store.write("/notes.txt", b"hello\\n", 0, fh)
    store.release("/notes.txt", fh)
    store.export_tar("notes.tar")      # and MemoryStore().import_tar("notes.tar")

What the quota counts (``ENOSPC`` when a request would pass it) is the store's memory,
so that a store of ``quota`` bytes holds about that much, whatever is in it:

- file data bytes actually allocated (see :mod:`defuse2.store.content`: holes of whole
  64 KiB chunks cost nothing and read as zeros), and 128 bytes per chunk;
- every inode, 576 bytes (:data:`~defuse2.store.quota.NODE_COST`), and every directory
  entry, 96 bytes plus its name (:data:`~defuse2.store.quota.ENTRY_COST`): so creating
  empty files, directories or links fills the quota too, where ``tmpfs`` would take
  kernel memory beyond its size;
- symlink targets (their bytes);
- extended attributes (name and value bytes, 128 bytes each, 256 for a file's table).

The fixed costs are what CPython 3.11 (64-bit) measures for those objects, rounded up
(``benchmarks/memory_bound.py`` prints both). ``max_nodes`` caps inodes plus extra hard
links; its default is as many nodes as the quota holds at their least cost, the finite
counterpart of ``tmpfs``'s ``nr_inodes``. Both limits give ``ENOSPC``, not ``EDQUOT``:
they are the size of this filesystem (what ``df`` and ``df -i`` report), not a per-user
quota inside a larger one. Every request reserves what it needs *before* allocating and
is refused whole: a refused ``write`` writes nothing, a refused ``create`` creates
nothing; a ``MemoryError`` on the way gives back what it had reserved. Only ``rename``
is never refused: a longer name may take the store up to 254 bytes past its quota
(renaming must work on a full filesystem).

Rules kept, as Linux keeps them (and as the tests check against the errnos of
``tmpfs``): times in ns updated when POSIX says (``write``/``truncate``: mtime and ctime;
``chmod``/``chown``/``link``/``unlink``/``rename``/xattr changes: ctime of the inode,
mtime and ctime of changed directories; ``read``, ``readdir``, ``readlink``: atime,
always, as with ``strictatime``); setgid directories pass on their group; sticky
directories protect other users' entries; ``chmod``/``chown``/``utimens`` permission
rules; files unlinked while open keep their data until their last handle is released.
Search permission on path components is not checked: under ``default_permissions`` the
kernel does it before the request arrives. The store never follows a final symlink.

Names starting with ``.fuse_hidden`` are what libfuse renames a file to when it is
unlinked while open (without ``hard_remove``): the store does not list them, does not
count them in ``st_nlink`` (so ``fstat`` shows 0), lets ``rmdir`` and ``rename`` remove a
directory holding only such names (dropping them), and leaves them out of snapshots.

Thread safety: one short namespace lock for the tree, one lock per inode for its data
and metadata, and the quota's own lock (always taken in that order). ``read`` and
``write`` take only their inode's lock, so writers to different files never wait on
each other; nothing is locked between calls.

The operations on open files and contents live in :mod:`defuse2.store.files`, the
rename rules in :mod:`defuse2.store.rename`, the snapshots in
:mod:`defuse2.store.archive`.

Memory, measured by ``benchmarks/memory_bound.py`` with :mod:`tracemalloc` on CPython
3.11 (64-bit): an empty file with a 10-byte name takes about 630 bytes (inode, lock,
content object, directory entry), a directory 570, a symlink 500 and its target; data
costs 1.002 bytes per byte in big files. Two caches make a repeated ``getattr`` one
dict lookup: remembered paths (at most 65536 of them and 8 Mi characters,
:mod:`defuse2.store.pathcache`) and kept ``stat`` mappings (at most 16384 in the
process, about 500 bytes each, :mod:`defuse2.store.inode`): together at most about
25 MB, whatever the number of files; they, and the kernel's and libfuse's tables of the
names in use, are the daemon's memory beyond the quota.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, BinaryIO

from defuse2.errors import DefuseError
from defuse2.store import permissions, xattrs
from defuse2.store.base import UTIME_NOW, UTIME_OMIT, Context, Stat
from defuse2.store.files import FileOperations
from defuse2.store.inode import Inode
from defuse2.store.namespace import entry_cost, is_hidden, visible
from defuse2.store.paths import PATH_MAX, byte_length, fail
from defuse2.store.permissions import W, X
from defuse2.store.quota import Quota, default_limit, parse_size
from defuse2.store.rename import rename as _rename

if TYPE_CHECKING:
    from defuse2.store.archive import ArchiveSummary


class MemoryStore(FileOperations):
    """A filesystem in memory with a hard byte quota and an optional node cap.

    :param quota: bytes it may hold: an ``int`` or a string read by
        :func:`~defuse2.store.quota.parse_size` (``"64 MiB"``, ``"1.5 GB"``).
        ``None`` means half of the physical memory, the default size of ``tmpfs``.
    :param max_nodes: how many inodes plus extra hard links it may hold (the root
        directory counts one); ``None`` for as many as the quota holds (see the module
        docstring).
    :raises DefuseError: for a quota or node cap it cannot read.
    """

    #: Operations that have nothing to do in memory: a mount need not register them, and
    #: the kernel then never sends them (``flush`` costs a round trip per ``close``).
    no_op_operations = frozenset({"flush", "fsync"})

    #: Operations whose ``ctx`` may be a zero-argument callable giving the caller's
    #: :class:`Context`, called only when the answer depends on who asks (the dispatcher
    #: then spares a ``write`` the cost of reading the caller's context).
    lazy_context_operations = frozenset({"write"})

    #: Only the filesystem it serves changes what the store holds (no other process or
    #: host sees it), so the kernel may keep its files' pages and attributes as long as
    #: nothing goes through the mount (:mod:`defuse2.caching`).
    exclusive = True

    #: A write, truncation or ``fallocate`` by anyone but root clears setuid and setgid,
    #: and any of them (or a ``chown``) drops ``security.capability``, as Linux does: the
    #: kernel may leave that to the store (``FUSE_CAP_HANDLE_KILLPRIV_V2``).
    clears_privileges = True

    def __init__(self, quota: int | str | None = None, max_nodes: int | None = None) -> None:
        limit = default_limit() if quota is None else parse_size(quota)
        if max_nodes is not None and (
            isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1
        ):
            raise DefuseError(f"max_nodes must be a positive int or None; got {max_nodes!r}")
        super().__init__(Quota(limit, max_nodes))

    def __repr__(self) -> str:
        return f"<MemoryStore {self.quota.used}/{self.quota.limit} bytes, {self.quota.nodes} nodes>"

    # -- reading the tree ----------------------------------------------------------------
    def getattr(self, path: str | None, fh: int | None = None) -> Stat:
        """Attributes of ``path`` (or of handle ``fh``), like :manpage:`lstat(2)`.

        The mapping is kept until the inode changes and given to every caller: read it,
        copy it to change it.
        """
        node = self._remembered(path) if fh is None else None
        if node is None:
            node = self._inode(path, fh)
        kept = node.cached_stat  # shared and never changed in place: no lock needed
        if kept is not None:
            return kept
        with node.lock:
            return node.stat()

    def readdir(self, path: str, fh: int | None = None) -> list[str]:
        """Names in directory ``path`` without ``.`` and ``..``, :manpage:`readdir(3)`."""
        node = self._inode(path, fh)
        if node.children is None:
            raise fail(errno.ENOTDIR, path)
        return self._list(node)

    def find_names(self, path: str) -> list[str] | None:
        """:meth:`readdir` that answers ``None`` where it would raise ``ENOENT`` or ``ENOTDIR``.

        For the dispatcher, which adds the store's names to a routed directory's: most
        routed directories have no counterpart here, and an answer without an exception
        is the cheap one.
        """
        node = self._remembered(path)
        if node is None:
            with self._namespace.lock:
                node = self._namespace.find(path)
        if node is None or node.children is None:
            return None
        return self._list(node)

    def _list(self, directory: Inode) -> list[str]:
        """The listed names of ``directory``; its access time becomes now."""
        with self._namespace.lock:
            names = visible(directory)
        with directory.lock:
            directory.atime = self._clock()
            directory.changed()
        return names

    def readlink(self, path: str) -> str:
        """Target of symlink ``path``, :manpage:`readlink(2)` (``EINVAL`` for others)."""
        node = self._inode(path, None)
        if node.target is None:
            raise fail(errno.EINVAL, path)
        with node.lock:
            node.atime = self._clock()
            node.changed()
        return node.target

    def access(self, path: str, amode: int, *, ctx: Context | None = None) -> None:
        """Check ``amode`` for the caller, :manpage:`access(2)`; ``EACCES`` if denied."""
        node = self._inode(path, None)
        if amode != os.F_OK:
            permissions.require(node, self._context(ctx), amode)

    def statfs(self, path: str) -> Stat:
        """Capacity and use from the quota and node cap, :manpage:`statvfs(3)`."""
        self._inode(path, None)
        return self.quota.statfs()

    # -- changing the tree ---------------------------------------------------------------
    def mknod(self, path: str, mode: int, dev: int, *, ctx: Context | None = None) -> None:
        """Create a regular file, FIFO, socket or device node, :manpage:`mknod(2)`.

        :raises OSError: ``EPERM`` for a directory or (unless root) a device node,
            ``EINVAL`` for a symlink or unknown type, ``EEXIST``.
        """
        kind = stat.S_IFMT(mode) or stat.S_IFREG
        if kind == stat.S_IFDIR:
            raise fail(errno.EPERM, path)
        if kind not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK):
            raise fail(errno.EINVAL, path)
        rdev = dev if kind in (stat.S_IFCHR, stat.S_IFBLK) else 0
        with self._namespace.lock:
            self._create(path, kind | (mode & 0o7777), self._context(ctx), rdev=rdev)

    def mkdir(self, path: str, mode: int, *, ctx: Context | None = None) -> None:
        """Create a directory, :manpage:`mkdir(2)` (setuid/setgid bits are dropped)."""
        context = self._context(ctx)
        lock = self._namespace.lock
        lock.acquire()  # not ``with``: half the cost
        try:
            self._create(path, stat.S_IFDIR | (mode & 0o1777), context)
        finally:
            lock.release()

    def unlink(self, path: str, *, ctx: Context | None = None) -> None:
        """Remove a name, :manpage:`unlink(2)`; open handles keep the data."""
        context = self._context(ctx)
        namespace = self._namespace
        namespace.lock.acquire()  # not ``with``: half the cost
        try:
            parent, name = namespace.walk(path)
            if name in (None, ".", ".."):
                raise fail(errno.EISDIR, path)
            assert name is not None
            victim = namespace.child(parent, name)
            if victim is None:
                raise fail(errno.ENOENT, path)
            permissions.may_delete(parent, victim, context, is_dir=False)
            now = self._clock()
            namespace.detach(parent, name, now)
            namespace.unlinked(victim, now, touch=not is_hidden(name))
        finally:
            namespace.lock.release()

    def rmdir(self, path: str, *, ctx: Context | None = None) -> None:
        """Remove an empty directory, :manpage:`rmdir(2)`.

        :raises OSError: ``EBUSY`` for ``/``, ``EINVAL`` for ``.``, ``ENOTEMPTY`` for
            ``..`` or a directory with entries, ``ENOTDIR`` for a non-directory.
        """
        namespace = self._namespace
        with namespace.lock:
            parent, name = namespace.walk(path)
            if name is None:
                raise fail(errno.EBUSY, path)
            if name in (".", ".."):
                raise fail(errno.EINVAL if name == "." else errno.ENOTEMPTY, path)
            victim = namespace.child(parent, name)
            if victim is None:
                raise fail(errno.ENOENT, path)
            permissions.may_delete(parent, victim, self._context(ctx), is_dir=True)
            if visible(victim):
                raise fail(errno.ENOTEMPTY, path)
            now = self._clock()
            namespace.drop_hidden(victim, now)
            namespace.detach(parent, name, now)
            namespace.unlinked(victim, now, touch=not is_hidden(name))

    def symlink(self, target: str, source: str, *, ctx: Context | None = None) -> None:
        """Create the symlink ``target`` whose content is ``source``, :manpage:`symlink(2)`.

        :raises OSError: ``ENOENT`` for an empty ``source``, ``ENAMETOOLONG`` for one of
            ``PATH_MAX`` bytes or more, ``EEXIST``, ``ENOSPC``.
        """
        if not source:
            raise fail(errno.ENOENT, target)
        length = byte_length(source)
        if length >= PATH_MAX:
            raise fail(errno.ENAMETOOLONG, target)
        if "\0" in source:
            raise fail(errno.EINVAL, target)
        with self._namespace.lock:
            _, node = self._create(target, stat.S_IFLNK | 0o777, self._context(ctx), cost=length)
            with node.lock:
                node.target = source
                node.changed()

    def rename(self, old: str, new: str, flags: int = 0, *, ctx: Context | None = None) -> None:
        """Move ``old`` to ``new`` atomically, :manpage:`rename(2)`/:manpage:`renameat2(2)`.

        ``RENAME_NOREPLACE`` and ``RENAME_EXCHANGE`` are honoured; ``RENAME_WHITEOUT``
        and unknown flags are ``EINVAL``. The errno table is in
        :mod:`defuse2.store.rename`.
        """
        _rename(self._namespace, old, new, flags, self._context(ctx), self._clock())

    def link(self, target: str, source: str, *, ctx: Context | None = None) -> None:
        """Create the hard link ``target`` to ``source``, :manpage:`link(2)`.

        :raises OSError: ``ENOENT``, ``EEXIST``, ``EPERM`` for a directory, ``ENOSPC``
            when the node cap is reached.
        """
        context = self._context(ctx)
        namespace = self._namespace
        with namespace.lock:
            node = namespace.lookup(source)
            parent, name = namespace.walk(target)
            if name is None or namespace.child(parent, name) is not None:
                raise fail(errno.EEXIST, target)
            permissions.require(parent, context, W | X)
            if node.is_dir:
                raise fail(errno.EPERM, source)
            charge = entry_cost(name)
            self.quota.reserve(charge, 1)
            now = self._clock()
            try:
                namespace.attach(parent, name, node, now)
            except BaseException:  # a MemoryError: a name not entered costs nothing
                assert parent.children is not None
                if parent.children.get(name) is not node:
                    self.quota.release(charge, 1)
                raise
            with node.lock:
                node.nlink += 1
                node.ctime = now
                node.changed()

    # -- changing attributes -------------------------------------------------------------
    def chmod(
        self, path: str | None, mode: int, fh: int | None = None, *, ctx: Context | None = None
    ) -> None:
        """Change permission bits, :manpage:`chmod(2)` (``EPERM`` unless owner or root)."""
        node = self._inode(path, fh)
        context = self._context(ctx)
        with node.lock:
            node.mode = permissions.chmod_mode(node, mode, context)
            node.ctime = self._clock()
            node.changed()

    def chown(
        self,
        path: str | None,
        uid: int,
        gid: int,
        fh: int | None = None,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Change owner and group, :manpage:`chown(2)`; ``-1`` keeps a value."""
        node = self._inode(path, fh)
        context = self._context(ctx)
        with node.lock:
            node.uid, node.gid, node.mode = permissions.chown_result(node, uid, gid, context)
            if node.xattrs and not node.is_dir:
                xattrs.drop_capability(node, self.quota)
            node.ctime = self._clock()
            node.changed()

    def utimens(
        self,
        path: str | None,
        times: tuple[int, int] | None = None,
        fh: int | None = None,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Set (atime, mtime) in ns, :manpage:`utimensat(2)`; ctime becomes now.

        ``None`` or :data:`UTIME_NOW` means now, :data:`UTIME_OMIT` keeps a time; both
        omitted does nothing at all, as on Linux.
        """
        if times is None:
            times = (UTIME_NOW, UTIME_NOW)
        if times[0] == UTIME_OMIT and times[1] == UTIME_OMIT:
            return
        node = self._inode(path, fh)
        permissions.check_utimens(node, times, self._context(ctx))
        now = self._clock()
        atime, mtime = (now if value == UTIME_NOW else value for value in times)
        with node.lock:
            if atime != UTIME_OMIT:
                node.atime = atime
            if mtime != UTIME_OMIT:
                node.mtime = mtime
            node.ctime = now
            node.changed()

    # -- extended attributes -------------------------------------------------------------
    def getxattr(self, path: str, name: str) -> bytes:
        """Value of xattr ``name``, :manpage:`getxattr(2)`; ``ENODATA`` when absent."""
        node = self._inode(path, None)
        with node.lock:
            return xattrs.get(node, name)

    def find_xattr(self, path: str, name: str) -> bytes | None:
        """:meth:`getxattr` that answers ``None`` instead of raising ``ENODATA``.

        The kernel asks for ``security.capability`` before every write; nearly every
        file has none, and an answer without an exception is the cheap one.
        """
        node = self._inode(path, None)
        with node.lock:
            return xattrs.find(node, name)

    def setxattr(
        self, path: str, name: str, value: bytes, options: int, *, ctx: Context | None = None
    ) -> None:
        """Set xattr ``name``, :manpage:`setxattr(2)`; rules in :mod:`defuse2.store.xattrs`."""
        xattrs.check_name(name)
        xattrs.check_value(value)
        node = self._inode(path, None)
        xattrs.check_write(node, name, self._context(ctx))
        with node.lock:
            if node.freed:
                raise fail(errno.ENOENT, path)
            xattrs.set_value(node, name, value, options, self.quota)
            node.ctime = self._clock()
            node.changed()

    def listxattr(self, path: str) -> list[str]:
        """Names of the xattrs of ``path``, :manpage:`listxattr(2)`."""
        node = self._inode(path, None)
        with node.lock:
            return xattrs.names(node)

    def removexattr(self, path: str, name: str, *, ctx: Context | None = None) -> None:
        """Remove xattr ``name``, :manpage:`removexattr(2)`; ``ENODATA`` when absent."""
        xattrs.check_name(name)
        node = self._inode(path, None)
        xattrs.check_write(node, name, self._context(ctx))
        with node.lock:
            xattrs.remove(node, name, self.quota)
            node.ctime = self._clock()
            node.changed()

    # -- snapshots -----------------------------------------------------------------------
    def export_tar(
        self, target: str | os.PathLike[str] | BinaryIO, root: str = "/"
    ) -> ArchiveSummary:
        """Save the tree under ``root`` to a PAX tar archive, holes kept as holes.

        Safe while the store serves: the tree is taken at one instant and written while
        other calls go on. A path (``.gz``, ``.tgz``, ``.bz2``, ``.xz`` compress) is
        written beside itself and renamed into place once complete, so a failed save
        leaves the previous archive whole; a binary file object is written as a stream.

        :raises OSError: ``ENOENT``/``ENOTDIR`` for ``root``; what writing raises.
        """
        from defuse2.store.archive import export_tar

        return export_tar(self._namespace, target, root)

    def import_tar(
        self, source: str | os.PathLike[str] | BinaryIO, root: str = "/"
    ) -> ArchiveSummary:
        """Read a tar archive (a path or a binary file object) into the directory
        ``root``, all or nothing: on any error the store is as it was.

        Directories merge with those that exist; the archive's ``.`` sets ``root``'s
        metadata.

        :raises DamagedArchive: for a file that is not a tar archive, or one that is
            damaged or cut short.
        :raises OSError: ``ENOSPC`` when it does not fit the quota or the node cap,
            ``EEXIST`` when a non-directory is in the way, and the errors of bad names
            and xattrs.
        """
        from defuse2.store.archive import import_tar

        return import_tar(self._namespace, source, root)
