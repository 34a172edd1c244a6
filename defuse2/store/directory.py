"""``DirectoryStore``: unrouted paths are files in a host directory.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> **DirectoryStore**
-> the host kernel. Each store operation is the matching system call on the same path
under the store's root, so data persists after unmount, can be larger than memory, and
behaves exactly as the host filesystem under it does (errnos, times, sparse files,
hard links, xattrs, ``rename`` flags)::

    fs = FileSystem(store=DirectoryStore("/srv/data"))

or on the command line: ``defuse2 mount app.py /mnt --store /srv/data``.

**Confinement.** Every path is resolved by :mod:`defuse2.store.beneath` relative to a
descriptor of the root, with :manpage:`openat2(2)`'s ``RESOLVE_IN_ROOT`` (or the same
rule walked by hand where the kernel lacks it); the last component is never followed.
No path, ``..`` or symlink -- made through the mount or already in the directory, even
one swapped in while a request runs -- makes the store read or change anything outside
the root. A symlink's *content* is stored as given: ``ln -s /etc/passwd link`` makes a
link that the kernel resolves for the caller, as on any filesystem, and the store never
follows it. Changes that name an existing file (``chmod``, ``truncate``, xattrs) act on
the descriptor or on ``/proc/self/fd/N/name`` of a descriptor already resolved, so a
symlink planted in between is never followed either (``chmod`` of a symlink is
``EOPNOTSUPP``, as Linux answers).

**Ownership.** The store acts with the rights of the mounting process. Under a mount
with ``default_permissions`` (the default) the kernel has checked the caller's
permissions against the modes and owners the host reports before a request arrives;
the store then makes the change. New files, directories, nodes and symlinks get exactly
the requested mode (the process umask does not apply; the caller's umask was applied
by the kernel) and, when the mount runs as root, belong to the caller (``ctx``): its uid,
and its gid unless the parent directory is setgid (then the parent's group, as Linux
does). A mount run by another user creates everything as that user. Without
``default_permissions`` nobody checks the caller: mount that way only for yourself.

**Files the store did not create** are served as they are: owner, group and mode as the
host has them (the kernel enforces those modes on callers), inode numbers from the host
(hard links share one). FIFOs, sockets and device nodes are listed and ``stat``-ed; the
kernel never asks a FUSE filesystem to open them (a FIFO is a pipe inside the mount;
FUSE mounts are ``nodev``), and in-process :meth:`~defuse2.Store.open` of one is refused with
``ENXIO`` (it is opened ``O_NONBLOCK``, so it never hangs). Making device nodes needs
a root caller (``EPERM`` otherwise). Names starting with ``.fuse_hidden`` are libfuse's
stand-ins for files unlinked while open: the store does not list them, and ``rmdir`` or
a ``rename`` over a directory holding only such names removes them first. (A crash can
leave some behind; delete them while nothing is mounted.)

**Capacity** is the host filesystem's: ``statfs`` reports it, a full disk answers
``ENOSPC`` and a user quota ``EDQUOT``, from the host. There is no quota of the store's.

**Speed.** ``read`` is one :manpage:`pread(2)`, ``write`` one :manpage:`pwrite(2)` of the
binding's buffer (no copy); a handle is the host descriptor itself. A path costs one
:manpage:`openat2(2)` of its directory (none at the top level). ``flush`` has nothing to
do and is not registered, so ``close`` costs no round trip; ``fsync`` is the host's.

**Caching.** Other processes may change the directory while it is mounted, so the kernel
reads a file again at each ``open`` and drops its pages when its ``mtime`` moves
(close-to-open consistency, as on NFS); attributes may be up to the mount's ``attr_timeout`` (1 s)
old. ``exclusive=True`` promises that only the mount changes the files: pages then stay
cached from one ``open`` to the next, as for :class:`~defuse2.store.memory.MemoryStore`.

The mount point must not lie inside the root: the store would then ask the mount
about itself. Mount points inside the root are crossed (their inode numbers may collide
with the root filesystem's).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from ..errors import DefuseError
from .base import Buffer, Context, Stat
from .beneath import Beneath
from .hostfiles import (
    HostXattrs,
    above_stdio,
    allowed,
    chmod_opened,
    dropped_hidden,
    is_hidden,
    kill_privileges,
    new_owner,
    settle,
    stat_mapping,
    visible,
)
from .namespace import HIDDEN_PREFIX
from .paths import fail
from .syscalls import fallocate, futimens, renameat2, utimensat

#: ``open`` flags passed on to the host. ``O_APPEND`` is not: the kernel (or the test
#: client) gives every write its offset, and page writeback needs real offsets too.
#: ``O_DIRECT`` is not: the binding's buffers are not aligned as it requires.
_OPEN_FLAGS = os.O_ACCMODE | os.O_TRUNC | os.O_SYNC | os.O_DSYNC | os.O_NOATIME | os.O_NOCTTY
_CREATED = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_LOOKUP_FAILURES = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
_DEVICES = (stat.S_IFCHR, stat.S_IFBLK)
_NODE_KINDS = (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK, *_DEVICES)


class DirectoryStore(HostXattrs):
    """A store whose files are the files of the host directory ``root``.

    :param root: an existing directory (relative paths are taken from the current one).
    :param create: make ``root`` (and its parents) first if it does not exist.
    :param exclusive: promise that nothing but this store changes the files while
        mounted: the kernel may then keep file pages from one ``open`` to the next.
    :param use_openat2: see :class:`~defuse2.store.beneath.Beneath`; default: use
        :manpage:`openat2(2)` where the kernel has it.
    :raises DefuseError: ``root`` is not a directory this process can open.
    """

    #: ``flush`` has nothing to do: the mount does not register it, so ``close`` costs
    #: no round trip (see :class:`~defuse2.store.memory.MemoryStore`).
    no_op_operations = frozenset({"flush"})

    #: ``write`` asks who is asking only when the file has setuid or setgid bits.
    lazy_context_operations = frozenset({"write"})

    #: A write, truncation or ``fallocate`` by anyone but root clears setuid and setgid
    #: (the host, acting as the mount's root, would keep them), and the host drops
    #: ``security.capability`` itself: the kernel may leave both to the store
    #: (``FUSE_CAP_HANDLE_KILLPRIV_V2``) and stop asking for ``security.capability``
    #: before every write.
    clears_privileges = True

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        create: bool = False,
        exclusive: bool = False,
        use_openat2: bool | None = None,
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        #: Whether only the mount changes the files (see :mod:`defuse2.caching`): if not,
        #: the kernel keeps no file pages from one ``open`` to the next.
        self.exclusive = exclusive
        try:
            if create:
                os.makedirs(self.root, exist_ok=True)
            self._beneath = Beneath(self.root, use_openat2=use_openat2)
        except OSError as error:
            hint = "" if create else " (create it first, or pass create=True)"
            raise DefuseError(
                f"DirectoryStore needs a directory it can open; {self.root}: {error.strerror}{hint}"
            ) from None
        self._locate = self._beneath.locate
        self._release = self._beneath.release
        self._euid, self._egid = os.geteuid(), os.getegid()

    def __repr__(self) -> str:
        return f"<DirectoryStore {self.root}>"

    def close(self) -> None:
        """Close the root's descriptor (handles still open stay usable)."""
        self._beneath.close()

    # -- reading the tree ---------------------------------------------------------------
    def getattr(self, path: str | None, fh: int | None = None) -> Stat:
        """Attributes of ``path`` itself (or of handle ``fh``), :manpage:`lstat(2)`.

        A libfuse ``.fuse_hidden*`` name is not counted in ``st_nlink``: a file unlinked
        while open shows 0 links, as it would on the host.
        """
        if fh:
            result = stat_mapping(os.fstat(fh))
        else:
            assert path is not None
            parent, name = self._locate(path)
            try:
                result = stat_mapping(os.stat(name, dir_fd=parent, follow_symlinks=False))
            finally:
                self._release(parent)
        if path is not None and HIDDEN_PREFIX in path and is_hidden(path):
            result["st_nlink"] = max(result["st_nlink"] - 1, 0)
        return result

    def readdir(self, path: str, fh: int | None = None) -> list[str]:
        """Names in directory ``path`` (or handle ``fh``), :manpage:`readdir(3)`.

        libfuse's ``.fuse_hidden*`` names are left out.
        """
        if fh:
            return visible(os.listdir(fh))
        fd = self._open_directory(path)
        try:
            return visible(os.listdir(fd))
        finally:
            os.close(fd)

    def find_names(self, path: str) -> list[str] | None:
        """:meth:`readdir`, but ``None`` where ``path`` is no directory of the store."""
        try:
            return self.readdir(path)
        except OSError as error:
            if error.errno in _LOOKUP_FAILURES:
                return None
            raise

    def readlink(self, path: str) -> str:
        """Target of symlink ``path``, :manpage:`readlink(2)`."""
        parent, name = self._locate(path)
        try:
            return os.readlink(name, dir_fd=parent)
        finally:
            self._release(parent)

    def access(self, path: str, amode: int, *, ctx: Context | None = None) -> None:
        """Check ``amode`` for the caller, :manpage:`access(2)`; ``EACCES`` if denied.

        The caller's primary group only (``ctx`` carries no others).
        """
        parent, name = self._locate(path)
        try:
            if ctx is None or (ctx.uid, ctx.gid) == (self._euid, self._egid):
                if not os.access(
                    name, amode, dir_fd=parent, effective_ids=True, follow_symlinks=False
                ):
                    raise fail(errno.EACCES, path)
                return
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        finally:
            self._release(parent)
        if not allowed(st, ctx, amode):
            raise fail(errno.EACCES, path)

    def statfs(self, path: str) -> Stat:
        """The host filesystem's capacity and use, :manpage:`statvfs(3)`."""
        st = os.statvfs(self._beneath.fd)
        keys = ("bsize", "frsize", "blocks", "bfree", "bavail", "files", "ffree", "favail")
        result = {f"f_{key}": getattr(st, f"f_{key}") for key in keys}
        result.update(f_flag=st.f_flag, f_namemax=st.f_namemax)
        return result

    # -- changing the tree --------------------------------------------------------------
    def mknod(self, path: str, mode: int, dev: int, *, ctx: Context | None = None) -> None:
        """Create a file, FIFO, socket or (for root) device node, :manpage:`mknod(2)`."""
        kind = stat.S_IFMT(mode) or stat.S_IFREG
        if kind == stat.S_IFDIR:
            raise fail(errno.EPERM, path)
        if kind not in _NODE_KINDS:
            raise fail(errno.EINVAL, path)
        if kind in _DEVICES and ctx is not None and ctx.uid != 0:
            raise fail(errno.EPERM, path)
        parent, name = self._locate(path)
        try:
            os.mknod(name, kind | (mode & 0o777), dev, dir_fd=parent)
            settle(parent, name, mode, ctx)
        finally:
            self._release(parent)

    def mkdir(self, path: str, mode: int, *, ctx: Context | None = None) -> None:
        """Create a directory, :manpage:`mkdir(2)` (a setgid parent passes its group on)."""
        parent, name = self._locate(path)
        try:
            os.mkdir(name, mode & 0o777, dir_fd=parent)
            settle(parent, name, mode, ctx)
        finally:
            self._release(parent)

    def unlink(self, path: str, *, ctx: Context | None = None) -> None:
        """Remove a name, :manpage:`unlink(2)`."""
        parent, name = self._locate(path)
        try:
            os.unlink(name, dir_fd=parent)
        finally:
            self._release(parent)

    def rmdir(self, path: str, *, ctx: Context | None = None) -> None:
        """Remove an empty directory, :manpage:`rmdir(2)`; libfuse's hidden names go too."""
        parent, name = self._locate(path)
        try:
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError as error:
                if not dropped_hidden(error, parent, name):
                    raise
                os.rmdir(name, dir_fd=parent)
        finally:
            self._release(parent)

    def symlink(self, target: str, source: str, *, ctx: Context | None = None) -> None:
        """Create the symlink ``target`` with content ``source``, :manpage:`symlink(2)`."""
        parent, name = self._locate(target)
        try:
            os.symlink(source, name, dir_fd=parent)
            owner = new_owner(parent, ctx)
            if owner is not None:
                os.chown(name, *owner, dir_fd=parent, follow_symlinks=False)
        finally:
            self._release(parent)

    def rename(self, old: str, new: str, flags: int = 0, *, ctx: Context | None = None) -> None:
        """Move ``old`` to ``new``, :manpage:`rename(2)` / :manpage:`renameat2(2)` flags."""
        old_parent, old_name = self._locate(old)
        try:
            new_parent, new_name = self._locate(new)
            try:
                try:
                    self._rename(old_parent, old_name, new_parent, new_name, flags)
                except OSError as error:
                    if flags or not dropped_hidden(error, new_parent, new_name):
                        raise
                    self._rename(old_parent, old_name, new_parent, new_name, flags)
            finally:
                self._release(new_parent)
        finally:
            self._release(old_parent)

    @staticmethod
    def _rename(old_parent: int, old: str, new_parent: int, new: str, flags: int) -> None:
        if flags:
            renameat2(old_parent, old, new_parent, new, flags)
        else:
            os.rename(old, new, src_dir_fd=old_parent, dst_dir_fd=new_parent)

    def link(self, target: str, source: str, *, ctx: Context | None = None) -> None:
        """Create the hard link ``target`` to ``source`` (never its target), :manpage:`link(2)`."""
        source_parent, source_name = self._locate(source)
        try:
            parent, name = self._locate(target)
            try:
                os.link(
                    source_name,
                    name,
                    src_dir_fd=source_parent,
                    dst_dir_fd=parent,
                    follow_symlinks=False,
                )
            finally:
                self._release(parent)
        finally:
            self._release(source_parent)

    # -- changing attributes ------------------------------------------------------------
    def chmod(
        self, path: str | None, mode: int, fh: int | None = None, *, ctx: Context | None = None
    ) -> None:
        """Change permission bits, :manpage:`chmod(2)`; ``EOPNOTSUPP`` for a symlink."""
        if fh:
            os.fchmod(fh, mode & 0o7777)
            return
        assert path is not None
        fd = self._beneath.open(path, os.O_PATH)
        try:
            chmod_opened(fd, mode)
        finally:
            os.close(fd)

    def chown(
        self,
        path: str | None,
        uid: int,
        gid: int,
        fh: int | None = None,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Change owner and group (-1 keeps one), :manpage:`lchown(2)`."""
        if fh:
            os.fchown(fh, uid, gid)
            return
        assert path is not None
        parent, name = self._locate(path)
        try:
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
        finally:
            self._release(parent)

    def truncate(
        self, path: str | None, length: int, fh: int | None = None, *, ctx: Context | None = None
    ) -> None:
        """Set the size, :manpage:`truncate(2)`."""
        if fh:
            os.ftruncate(fh, length)
            kill_privileges(fh, ctx)
            return
        assert path is not None
        try:
            fd = self._beneath.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ENXIO:  # a FIFO without a reader
                raise fail(errno.EINVAL, path) from None
            raise
        try:
            os.ftruncate(fd, length)
            kill_privileges(fd, ctx)
        finally:
            os.close(fd)

    def utimens(
        self,
        path: str | None,
        times: tuple[int, int] | None = None,
        fh: int | None = None,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Set (atime, mtime) in ns, of a symlink itself too, :manpage:`utimensat(2)`."""
        if fh:
            futimens(fh, times)
            return
        assert path is not None
        parent, name = self._locate(path)
        try:
            utimensat(parent, name, times)
        finally:
            self._release(parent)

    # -- file contents ------------------------------------------------------------------
    def create(self, path: str, mode: int, flags: int = 0, *, ctx: Context | None = None) -> int:
        """Create and open a regular file; the handle is the host descriptor."""
        parent, name = self._locate(path)
        try:
            try:
                fd = os.open(name, (flags & _OPEN_FLAGS) | _CREATED, mode & 0o777, dir_fd=parent)
            except FileExistsError:
                if flags & os.O_EXCL:
                    raise
                return self.open(path, flags, ctx=ctx)  # made meanwhile: open it as it is
            try:
                owner = new_owner(parent, ctx)
                if owner is not None:
                    os.fchown(fd, *owner)
                os.fchmod(fd, mode & 0o7777)
            except BaseException:
                os.close(fd)
                raise
        finally:
            self._release(parent)
        return above_stdio(fd)

    def open(self, path: str, flags: int, *, ctx: Context | None = None) -> int:
        """Open an existing regular file; the handle is the host descriptor."""
        fd = self._beneath.open(path, (flags & _OPEN_FLAGS) | os.O_NONBLOCK)
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            os.close(fd)
            raise fail(errno.EISDIR if kind == stat.S_IFDIR else errno.ENXIO, path)
        if flags & os.O_TRUNC:
            kill_privileges(fd, ctx)
        return above_stdio(fd)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        """Up to ``size`` bytes at ``offset``, :manpage:`pread(2)`."""
        return os.pread(fh, size, offset)

    def write(
        self, path: str | None, data: Buffer, offset: int, fh: int, *, ctx: Any = None
    ) -> int:
        """Write ``data`` at ``offset``, :manpage:`pwrite(2)`, straight from the buffer;
        then clear setuid and setgid as a write by the caller would."""
        written = os.pwrite(fh, data, offset)
        kill_privileges(fh, ctx)
        return written

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
        """Reserve space or punch holes, :manpage:`fallocate(2)` with its ``mode``."""
        fallocate(fh, mode, offset, size)
        kill_privileges(fh, ctx)

    def flush(self, path: str | None, fh: int) -> None:
        """Nothing to do: the host has every written byte already."""

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        """:manpage:`fsync(2)` or :manpage:`fdatasync(2)` on the host."""
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)

    def release(self, path: str | None, fh: int) -> None:
        """Close the host descriptor."""
        os.close(fh)

    def opendir(self, path: str, *, ctx: Context | None = None) -> int:
        """Open a directory for listing; the handle is the host descriptor."""
        return above_stdio(self._open_directory(path))

    def releasedir(self, path: str | None, fh: int) -> None:
        """Close a directory handle."""
        if fh:
            os.close(fh)

    def _open_directory(self, path: str) -> int:
        try:
            return self._beneath.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as error:
            if error.errno == errno.ELOOP:  # a symlink: not a directory itself
                raise fail(errno.ENOTDIR, path) from None
            raise
