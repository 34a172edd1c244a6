"""An ``os``-like client that drives a filesystem's dispatcher without mounting.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher. :class:`TestClient`
takes the kernel's place: each method is one system call, checked and resolved as the
kernel would (paths walked and descriptors kept by its base in :mod:`.vfs`), then sent to
**the same dispatcher** a mount drives. Results and errors have the types :mod:`os` gives.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from ..store.base import RENAME_EXCHANGE, UTIME_NOW
from .vfs import O_ACCMODE, Descriptor, Vfs, os_error, to_stat_result

_STATVFS_KEYS = ["bsize", "frsize", "blocks", "bfree", "bavail"]
_STATVFS_KEYS += ["files", "ffree", "favail", "flag", "namemax"]
#: What :manpage:`chown(2)` takes as "keep this one": -1, as a C ``uid_t`` too.
_KEEP = (-1, 0xFFFFFFFF)


class TestClient(Vfs):
    """An ``os``-like client that drives a filesystem's dispatcher without mounting.

    :param target: a :class:`~defuse2.FileSystem` (its ``dispatcher(context=...)`` is used)
        or a dispatcher.
    :param context: who makes the requests (uid, gid, pid, umask); default: this process.

    Paths are absolute or relative to the working directory (``/`` until :meth:`chdir`
    changes it). Methods and results mirror :mod:`os`:
    :class:`os.stat_result`, :class:`os.statvfs_result`, and :class:`OSError` with
    ``errno`` and ``filename`` set.
    """

    __test__ = False  # not a test class, despite its name

    # -- serving ----------------------------------------------------------------------------
    def __enter__(self) -> TestClient:
        """Used as a context manager, the client runs the filesystem's start hooks first
        and its stop hooks at the end, as a mount does (``@fs.on_start``/``on_stop``)."""
        filesystem = self.filesystem
        self._serving = filesystem.serving() if filesystem is not None else None
        if self._serving is not None:
            self._serving.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        serving, self._serving = getattr(self, "_serving", None), None
        if serving is not None:
            serving.__exit__(None, None, None)

    # -- descriptors ----------------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        """Open ``path`` and return a descriptor, :manpage:`open(2)`."""
        follow = not flags & os.O_NOFOLLOW and not (flags & os.O_CREAT and flags & os.O_EXCL)
        resolved, st = self._resolve(path, follow)
        writing = flags & O_ACCMODE != os.O_RDONLY
        if st is None:
            if not flags & os.O_CREAT:
                raise os_error(errno.ENOENT, path)
            if path.endswith("/"):
                raise os_error(errno.EISDIR, path)
            mode = stat.S_IFREG | (mode & 0o7777 & ~self.context.umask)
            fh = self._call("create", path, resolved, mode, flags)
            return self._add(Descriptor(resolved, fh, flags, False))
        if flags & os.O_CREAT and flags & os.O_EXCL:
            raise os_error(errno.EEXIST, path)
        if stat.S_ISLNK(st["st_mode"]):
            raise os_error(errno.ELOOP, path)
        is_dir = stat.S_ISDIR(st["st_mode"])
        if is_dir and (writing or flags & os.O_CREAT):
            raise os_error(errno.EISDIR, path)
        if flags & os.O_DIRECTORY and not is_dir:
            raise os_error(errno.ENOTDIR, path)
        if is_dir:
            fh = self._call("opendir", path, resolved)
            return self._add(Descriptor(resolved, fh, flags, True))
        # O_TRUNC goes to open() itself, as libfuse 3 does (atomic_o_trunc)
        fh = self._call("open", path, resolved, flags & ~(os.O_CREAT | os.O_EXCL))
        return self._add(Descriptor(resolved, fh, flags, False))

    def close(self, fd: int) -> None:
        """Close a descriptor: ``flush`` then ``release``, :manpage:`close(2)`."""
        with self._lock:
            desc = self._fd(fd)
            del self._fds[fd]
        shown = desc.path or ""
        if desc.is_dir:
            self._call("releasedir", shown, desc.path, desc.fh)
            return
        try:
            self._call("flush", shown, desc.path, desc.fh)
        finally:
            self._call("release", shown, desc.path, desc.fh)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``, :manpage:`pread(2)`."""
        desc = self._fd(fd, "r")
        if offset < 0:
            raise os_error(errno.EINVAL)
        return bytes(self._call("read", desc.path or "", desc.path, size, offset, desc.fh))

    def read(self, fd: int, size: int) -> bytes:
        """Read at the descriptor's offset and advance it, :manpage:`read(2)`."""
        data = self.pread(fd, size, self._fds[fd].offset if fd in self._fds else 0)
        self._fds[fd].offset += len(data)
        return data

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        """Write ``data`` at ``offset``, :manpage:`pwrite(2)`."""
        desc = self._fd(fd, "w")
        if offset < 0:
            raise os_error(errno.EINVAL)
        if not data:
            return 0
        written = self._call("write", desc.path or "", desc.path, bytes(data), offset, desc.fh)
        return len(data) if written is None else int(written)

    def write(self, fd: int, data: bytes) -> int:
        """Write at the offset (at the end with ``O_APPEND``), :manpage:`write(2)`."""
        desc = self._fd(fd, "w")
        if not desc.flags & os.O_APPEND:
            written = self.pwrite(fd, data, desc.offset)
        else:
            with self._append_lock:  # the kernel holds the inode lock: appends never mix
                desc.offset = self.fstat(fd).st_size
                written = self.pwrite(fd, data, desc.offset)
        desc.offset += written
        return written

    def lseek(self, fd: int, position: int, how: int) -> int:
        """Move the descriptor's offset, :manpage:`lseek(2)`."""
        desc = self._fd(fd)
        base = {os.SEEK_SET: 0, os.SEEK_CUR: desc.offset}.get(how)
        if base is None:
            if how != os.SEEK_END:
                raise os_error(errno.EINVAL)
            base = self.fstat(fd).st_size
        if base + position < 0:
            raise os_error(errno.EINVAL)
        desc.offset = base + position
        return desc.offset

    def fstat(self, fd: int) -> os.stat_result:
        """Attributes of an open file, even after it was unlinked, :manpage:`fstat(2)`."""
        desc = self._fd(fd)
        return to_stat_result(self._call("getattr", desc.path or "", desc.path, desc.fh))

    def ftruncate(self, fd: int, length: int) -> None:
        """Set the size of an open file, :manpage:`ftruncate(2)`."""
        desc = self._fds.get(fd)
        if desc is None:
            raise os_error(errno.EBADF)
        if desc.is_dir or desc.flags & O_ACCMODE == os.O_RDONLY or length < 0:
            raise os_error(errno.EINVAL)
        self._call("truncate", desc.path or "", desc.path, length, desc.fh)

    def fsync(self, fd: int) -> None:
        """Make an open file durable, :manpage:`fsync(2)`."""
        desc = self._fd(fd)
        if not desc.is_dir:
            self._call("fsync", desc.path or "", desc.path, 0, desc.fh)

    # -- whole paths ----------------------------------------------------------------------
    def chdir(self, path: str) -> None:
        """Make ``path`` the directory relative paths start from, :manpage:`chdir(2)`."""
        resolved, st = self._existing(path)
        if not stat.S_ISDIR(st["st_mode"]):
            raise os_error(errno.ENOTDIR, path)
        self._cwd = resolved

    def getcwd(self) -> str:
        """The working directory, as an absolute path, :manpage:`getcwd(3)`."""
        return self._cwd

    def stat(self, path: str, *, follow_symlinks: bool = True) -> os.stat_result:
        """Attributes of ``path``, :manpage:`stat(2)`."""
        return to_stat_result(self._existing(path, follow_symlinks)[1])

    def lstat(self, path: str) -> os.stat_result:
        """Attributes of ``path`` itself, not of a symlink's target, :manpage:`lstat(2)`."""
        return self.stat(path, follow_symlinks=False)

    def listdir(self, path: str = "/") -> list[str]:
        """Names in a directory, without ``.`` and ``..``, :manpage:`readdir(3)`."""
        resolved, st = self._existing(path)
        if not stat.S_ISDIR(st["st_mode"]):
            raise os_error(errno.ENOTDIR, path)
        fh = self._call("opendir", path, resolved)
        try:
            names = self._call("readdir", path, resolved, fh)
        finally:
            self._call("releasedir", path, resolved, fh)
        return [name for name in names if name not in (".", "..")]

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """Create a directory (the umask applies), :manpage:`mkdir(2)`."""
        resolved = self._new(path)
        self._call("mkdir", path, resolved, mode & 0o7777 & ~self.context.umask)

    def makedirs(self, path: str, mode: int = 0o777, exist_ok: bool = False) -> None:
        """Create a directory and its missing parents, like :func:`os.makedirs`."""
        head = os.path.dirname(path.rstrip("/"))
        if head and head != path and not self.exists(head):
            self.makedirs(head, mode, exist_ok=True)
        try:
            self.mkdir(path, mode)
        except FileExistsError:
            if not exist_ok or not self.isdir(path):
                raise

    def mknod(self, path: str, mode: int = 0o600, device: int = 0) -> None:
        """Create a file, FIFO or device node (the umask applies), :manpage:`mknod(2)`."""
        resolved = self._new(path)
        kind = stat.S_IFMT(mode) or stat.S_IFREG
        self._call("mknod", path, resolved, kind | (mode & 0o7777 & ~self.context.umask), device)

    def rmdir(self, path: str) -> None:
        """Remove an empty directory, :manpage:`rmdir(2)`."""
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if last == ".":
            raise os_error(errno.EINVAL, path)
        if last == "..":
            raise os_error(errno.ENOTEMPTY, path)
        resolved, st = self._existing(path.rstrip("/") or "/", follow=False)
        if not stat.S_ISDIR(st["st_mode"]):
            raise os_error(errno.ENOTDIR, path)
        if resolved == "/":
            raise os_error(errno.EBUSY, path)
        self._call("rmdir", path, resolved)

    def unlink(self, path: str) -> None:
        """Remove a name; open descriptors keep the data, :manpage:`unlink(2)`."""
        resolved, st = self._existing(path.rstrip("/") or "/", follow=False)
        if stat.S_ISDIR(st["st_mode"]):
            raise os_error(errno.EISDIR, path)
        if path.endswith("/"):
            raise os_error(errno.ENOTDIR, path)
        self._call("unlink", path, resolved)
        self._renamed(resolved, None)

    remove = unlink

    def rename(self, src: str, dst: str, flags: int = 0) -> None:
        """Move ``src`` to ``dst``; ``flags`` as :manpage:`renameat2(2)`."""
        checked = self._rename_checks(src, dst, flags)
        if checked is None:
            return  # two names of one file: nothing to do
        old, new, replaced = checked
        if flags:
            self._call("rename", src, old, new, flags, path2=dst)
        else:
            self._call("rename", src, old, new, path2=dst)
        if flags & RENAME_EXCHANGE:
            self._renamed(new, "\0")
            self._renamed(old, new)
            self._renamed("\0", old)
        else:
            if replaced:
                self._renamed(new, None)
            self._renamed(old, new)

    def replace(self, src: str, dst: str) -> None:
        """Move ``src`` over ``dst``, like :func:`os.replace`."""
        self.rename(src, dst)

    def symlink(self, src: str, dst: str) -> None:
        """Create the symlink ``dst`` whose content is ``src``, :manpage:`symlink(2)`."""
        if not src:
            raise os_error(errno.ENOENT, src, dst)
        resolved = self._new(dst)
        self._call("symlink", src, resolved, src, path2=dst)

    def readlink(self, path: str) -> str:
        """Content of a symlink, :manpage:`readlink(2)`."""
        resolved, st = self._existing(path, follow=False)
        if not stat.S_ISLNK(st["st_mode"]):
            raise os_error(errno.EINVAL, path)
        return str(self._call("readlink", path, resolved))

    def link(self, src: str, dst: str) -> None:
        """Create the hard link ``dst`` to ``src``, :manpage:`link(2)`."""
        old, st = self._existing(src, follow=False)
        new, new_st = self._resolve(dst, follow=False)
        if new_st is not None:
            raise os_error(errno.EEXIST, src, dst)
        if stat.S_ISDIR(st["st_mode"]):
            raise os_error(errno.EPERM, src, dst)
        self._call("link", src, new, old, path2=dst)

    def chmod(self, path: str, mode: int, *, follow_symlinks: bool = True) -> None:
        """Change permission bits, :manpage:`chmod(2)`."""
        resolved = self._existing(path, follow_symlinks)[0]
        self._call("chmod", path, resolved, mode & 0o7777)

    def chown(self, path: str, uid: int, gid: int, *, follow_symlinks: bool = True) -> None:
        """Change owner and group; -1 keeps one, :manpage:`chown(2)`.

        With both -1 nothing is called, as mounted: libfuse's high-level API calls
        ``chown`` only for an owner or a group to set, so even ``ctime`` stays.
        """
        resolved = self._existing(path, follow_symlinks)[0]
        if uid in _KEEP and gid in _KEEP:
            return
        self._call("chown", path, resolved, uid, gid)

    def utime(
        self,
        path: str,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        """Set access and modification times, :manpage:`utimensat(2)`.

        ``ns`` items may be :data:`~defuse2.store.base.UTIME_NOW` or ``UTIME_OMIT``, the
        markers of ``utimensat``; with neither ``times`` nor ``ns`` both become now.
        """
        resolved = self._existing(path, follow_symlinks)[0]
        if ns is None and times is not None:
            ns = (int(times[0] * 10**9), int(times[1] * 10**9))
        self._call("utimens", path, resolved, ns if ns is not None else (UTIME_NOW, UTIME_NOW))

    def truncate(self, path: str, length: int) -> None:
        """Set the size of a file, :manpage:`truncate(2)`."""
        resolved, st = self._existing(path)
        if stat.S_ISDIR(st["st_mode"]):
            raise os_error(errno.EISDIR, path)
        if length < 0 or not stat.S_ISREG(st["st_mode"]):
            raise os_error(errno.EINVAL, path)
        self._call("truncate", path, resolved, length)

    def access(self, path: str, mode: int) -> bool:
        """Whether the caller may access ``path``, like :func:`os.access`."""
        try:
            resolved = self._existing(path)[0]
            self._call("access", path, resolved, mode)
        except OSError:
            return False
        return True

    def statvfs(self, path: str = "/") -> os.statvfs_result:
        """Capacity and use of the filesystem, :manpage:`statvfs(3)`."""
        st = self._call("statfs", path, self._existing(path)[0])
        values = [int(st.get(f"f_{key}", 0)) for key in _STATVFS_KEYS]
        return os.statvfs_result(values, {"f_fsid": 0})

    # -- extended attributes --------------------------------------------------------------
    def getxattr(self, path: str, name: str, *, follow_symlinks: bool = True) -> bytes:
        """Value of an extended attribute, :manpage:`getxattr(2)`."""
        resolved = self._existing(path, follow_symlinks)[0]
        return bytes(self._call("getxattr", path, resolved, name))

    def setxattr(
        self, path: str, name: str, value: bytes, flags: int = 0, *, follow_symlinks: bool = True
    ) -> None:
        """Set an extended attribute (``os.XATTR_CREATE``/``REPLACE``), :manpage:`setxattr(2)`."""
        resolved = self._existing(path, follow_symlinks)[0]
        self._call("setxattr", path, resolved, name, bytes(value), flags)

    def listxattr(self, path: str, *, follow_symlinks: bool = True) -> list[str]:
        """Names of the extended attributes, :manpage:`listxattr(2)`."""
        resolved = self._existing(path, follow_symlinks)[0]
        return list(self._call("listxattr", path, resolved))

    def removexattr(self, path: str, name: str, *, follow_symlinks: bool = True) -> None:
        """Remove an extended attribute, :manpage:`removexattr(2)`."""
        resolved = self._existing(path, follow_symlinks)[0]
        self._call("removexattr", path, resolved, name)

    # -- conveniences ---------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        """Whether ``path`` exists (following symlinks), like :func:`os.path.exists`."""
        try:
            self.stat(path)
        except OSError:
            return False
        return True

    def _is(self, path: str, test: Callable[[int], bool], follow: bool = True) -> bool:
        try:
            return test(self.stat(path, follow_symlinks=follow).st_mode)
        except OSError:
            return False

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a directory, like :func:`os.path.isdir`."""
        return self._is(path, stat.S_ISDIR)

    def isfile(self, path: str) -> bool:
        """Whether ``path`` is a regular file, like :func:`os.path.isfile`."""
        return self._is(path, stat.S_ISREG)

    def islink(self, path: str) -> bool:
        """Whether ``path`` is a symlink, like :func:`os.path.islink`."""
        return self._is(path, stat.S_ISLNK, follow=False)

    def read_bytes(self, path: str) -> bytes:
        """The whole content of a file."""
        fd = self.open(path, os.O_RDONLY)
        try:
            chunks = []
            while chunk := self.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            self.close(fd)

    def write_bytes(self, path: str, data: bytes) -> int:
        """Create or truncate a file and write ``data`` to it."""
        fd = self.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                view = view[self.write(fd, bytes(view[: 1 << 20])) :]
            return len(data)
        finally:
            self.close(fd)

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        """The whole content of a file, decoded."""
        return self.read_bytes(path).decode(encoding)

    def write_text(self, path: str, text: str, encoding: str = "utf-8") -> int:
        """Create or truncate a file and write ``text`` to it, encoded."""
        return self.write_bytes(path, text.encode(encoding))
