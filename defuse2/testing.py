"""Test a filesystem in-process with an ``os``-like client, or mounted, from pytest.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher. A mount sends the
dispatcher what the kernel's VFS asks after it has walked the path; :class:`TestClient`
plays the VFS's part itself and drives **the same dispatcher** directly, so a test runs
without FUSE and what passes in-process passes mounted::

    client = fs.test_client()
    client.write_text("/notes.txt", "hello\\n")
    assert client.stat("/notes.txt").st_size == 6

What the client does like the kernel: path walking with ``.``/``..`` and symlinks
(``ELOOP`` after 40), trailing-slash rules, ``ENAMETOOLONG`` for paths of 4096 bytes or
more, the umask of its :class:`~defuse2.store.base.Context` applied before create,
``mkdir`` and ``mknod``, ``O_CREAT|O_EXCL``, ``O_TRUNC``, ``O_APPEND``, ``O_DIRECTORY``,
a descriptor table with offsets (``EBADF``), ``flush`` + ``release`` on :meth:`close`, and
the ``rename``/``link`` checks done above the filesystem. What it leaves to the store and
the resources: everything else, including **permission checks** (a mount uses
``default_permissions``, so there the kernel checks modes; the client does not re-check
them, and tests that run as root would not see them anyway).

The pytest plugin (registered as ``defuse2``) gives three fixtures:

``defuse2_filesystem``
    the :class:`~defuse2.FileSystem` under test; override it in your ``conftest.py``
    (the default is a bare ``FileSystem()``, a plain memory filesystem).
``defuse2_client``
    a :class:`TestClient` over it.
``defuse2_mount``
    a :class:`pathlib.Path` where it is really mounted (``fs.mounted``) for the test.
    Without a usable FUSE it skips, or fails when the environment variable ``CI`` is set.
"""

from __future__ import annotations

import ctypes.util
import errno
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .store.base import RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, UTIME_NOW, Context

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .filesystem import FileSystem

__all__ = ["TestClient", "fuse_unavailable_reason"]

#: The kernel's limits: symlinks followed in one lookup, bytes in a path with its NUL.
MAXSYMLINKS = 40
PATH_MAX = 4096
_O_ACCMODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR
_STATVFS_KEYS = ["bsize", "frsize", "blocks", "bfree", "bavail"]
_STATVFS_KEYS += ["files", "ffree", "favail", "flag", "namemax"]


def _error(code: int, path: str | None = None, path2: str | None = None) -> OSError:
    """An ``OSError`` (the right builtin subclass) like the one ``os`` raises."""
    return OSError(code, os.strerror(code), path, None, path2)


def _stat_result(st: Any) -> os.stat_result:
    """Turn a dispatcher stat mapping (times in ns) into an :class:`os.stat_result`."""
    ns = {key: int(st.get(key, 0)) for key in ("st_atime", "st_mtime", "st_ctime")}
    fields = [int(st.get(key, 0)) for key in ("st_mode", "st_ino", "st_dev", "st_nlink")]
    fields += [int(st.get(key, 0)) for key in ("st_uid", "st_gid", "st_size")]
    fields += [value // 10**9 for value in ns.values()]
    extra: dict[str, float | int] = {key: value / 10**9 for key, value in ns.items()}
    extra.update({f"{key}_ns": value for key, value in ns.items()})
    for key in ("st_blksize", "st_blocks", "st_rdev"):
        extra[key] = int(st.get(key, 0))
    return os.stat_result(fields, extra)


@dataclass
class _Descriptor:
    """One open file description: the handle, the flags and the offset the kernel keeps."""

    path: str | None
    fh: int
    flags: int
    is_dir: bool
    offset: int = 0


class TestClient:
    """An ``os``-like client that drives a filesystem's dispatcher without mounting.

    :param target: a :class:`~defuse2.FileSystem` (its ``dispatcher(context=...)`` is used)
        or a dispatcher.
    :param context: who makes the requests (uid, gid, pid, umask); default: this process.

    Paths are absolute or relative to ``/``. Methods and results mirror :mod:`os`:
    :class:`os.stat_result`, :class:`os.statvfs_result`, and :class:`OSError` with
    ``errno`` and ``filename`` set.
    """

    __test__ = False  # not a test class, despite its name

    def __init__(self, target: FileSystem | Dispatcher, context: Context | None = None) -> None:
        self.context = context if context is not None else Context.current()
        if hasattr(target, "dispatcher"):
            target = target.dispatcher(context=lambda: self.context)
        self.dispatcher: Dispatcher = target
        self._fds: dict[int, _Descriptor] = {}
        self._lock = threading.Lock()  # guards the descriptor table
        self._append_lock = threading.Lock()

    # -- the VFS part: walking paths ------------------------------------------------------
    def _lookup(self, path: str) -> dict[str, int] | None:
        """``getattr`` of an absolute path, or None where nothing is there."""
        try:
            return dict(self.dispatcher.getattr(path))
        except FileNotFoundError:
            return None

    def _resolve(self, path: str, follow: bool = True) -> tuple[str, dict[str, int] | None]:
        """Walk ``path`` like the kernel: the absolute path it ends at and its stat.

        The stat is None when the last component does not exist (its parent does).
        """
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if len(os.fsencode(path)) >= PATH_MAX:
            raise _error(errno.ENAMETOOLONG, path)
        if path == "":
            raise _error(errno.ENOENT, path)
        must_be_dir = path.endswith(("/", "/.", "/..")) or path in (".", "..")
        pending = [part for part in path.split("/") if part not in ("", ".")]
        done: list[str] = []
        links = 0
        st: dict[str, int] | None = self._lookup("/")
        while pending:
            name = pending.pop(0)
            if name == "..":
                done = done[:-1]
                st = self._lookup("/" + "/".join(done))
                continue
            current = "/" + "/".join([*done, name])
            last = not pending
            st = self._lookup(current)
            if st is None:
                if last:
                    return current, None
                raise _error(errno.ENOENT, path)
            if stat.S_ISLNK(st["st_mode"]) and (follow or not last or must_be_dir):
                links += 1
                if links > MAXSYMLINKS:
                    raise _error(errno.ELOOP, path)
                target = self.dispatcher.readlink(current)
                if target.startswith("/"):
                    done = []
                pending = [part for part in target.split("/") if part not in ("", ".")] + pending
                if not pending:
                    st = self._lookup("/" + "/".join(done))
                continue
            if not last and not stat.S_ISDIR(st["st_mode"]):
                raise _error(errno.ENOTDIR, path)
            done.append(name)
        resolved = "/" + "/".join(done)
        if must_be_dir and st is not None and not stat.S_ISDIR(st["st_mode"]):
            raise _error(errno.ENOTDIR, path)
        return resolved, st

    def _existing(self, path: str, follow: bool = True) -> tuple[str, dict[str, int]]:
        resolved, st = self._resolve(path, follow)
        if st is None:
            raise _error(errno.ENOENT, path)
        return resolved, st

    def _new(self, path: str) -> str:
        """The absolute path for a name to be created; ``EEXIST`` if it is taken."""
        resolved, st = self._resolve(path, follow=False)
        if st is not None:
            raise _error(errno.EEXIST, path)
        return resolved

    def _call(self, method: str, path: str, *args: Any, path2: str | None = None) -> Any:
        """Call a dispatcher op, labelling its ``OSError`` with the caller's path(s)."""
        try:
            return getattr(self.dispatcher, method)(*args)
        except OSError as exc:
            if exc.errno is None:
                raise
            raise _error(exc.errno, path, path2) from None

    def _renamed(self, old: str, new: str | None) -> None:
        """Keep the paths of open descriptors in step with a rename (None: removed)."""
        with self._lock:
            descriptors = list(self._fds.values())
        for desc in descriptors:
            if desc.path is None:
                continue
            if desc.path == old:
                desc.path = new
            elif new is not None and desc.path.startswith(old.rstrip("/") + "/"):
                desc.path = new + desc.path[len(old) :]

    # -- descriptors ----------------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        """Open ``path`` and return a descriptor, :manpage:`open(2)`."""
        follow = not flags & os.O_NOFOLLOW and not (flags & os.O_CREAT and flags & os.O_EXCL)
        resolved, st = self._resolve(path, follow)
        writing = flags & _O_ACCMODE != os.O_RDONLY
        if st is None:
            if not flags & os.O_CREAT:
                raise _error(errno.ENOENT, path)
            if path.endswith("/"):
                raise _error(errno.EISDIR, path)
            mode = stat.S_IFREG | (mode & 0o7777 & ~self.context.umask)
            fh = self._call("create", path, resolved, mode, flags)
            return self._add(_Descriptor(resolved, fh, flags, False))
        if flags & os.O_CREAT and flags & os.O_EXCL:
            raise _error(errno.EEXIST, path)
        if stat.S_ISLNK(st["st_mode"]):
            raise _error(errno.ELOOP, path)
        is_dir = stat.S_ISDIR(st["st_mode"])
        if is_dir and (writing or flags & os.O_CREAT):
            raise _error(errno.EISDIR, path)
        if flags & os.O_DIRECTORY and not is_dir:
            raise _error(errno.ENOTDIR, path)
        if is_dir:
            fh = self._call("opendir", path, resolved)
            return self._add(_Descriptor(resolved, fh, flags, True))
        # O_TRUNC goes to open() itself, as libfuse 3 does (atomic_o_trunc)
        fh = self._call("open", path, resolved, flags & ~(os.O_CREAT | os.O_EXCL))
        return self._add(_Descriptor(resolved, fh, flags, False))

    def _add(self, desc: _Descriptor) -> int:
        with self._lock:
            fd = max(self._fds, default=2) + 1
            self._fds[fd] = desc
        return fd

    def _fd(self, fd: int, access: str = "") -> _Descriptor:
        desc = self._fds.get(fd)
        if desc is None:
            raise _error(errno.EBADF)
        mode = desc.flags & _O_ACCMODE
        if (access == "r" and mode == os.O_WRONLY) or (access == "w" and mode == os.O_RDONLY):
            raise _error(errno.EBADF)
        if access and desc.is_dir:
            raise _error(errno.EISDIR)
        return desc

    def close(self, fd: int) -> None:
        """Close a descriptor: ``flush`` then ``release``, :manpage:`close(2)`."""
        with self._lock:
            desc = self._fd(fd)
            del self._fds[fd]
        if desc.is_dir:
            self.dispatcher.releasedir(desc.path, desc.fh)
            return
        try:
            self.dispatcher.flush(desc.path, desc.fh)
        finally:
            self.dispatcher.release(desc.path, desc.fh)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``, :manpage:`pread(2)`."""
        desc = self._fd(fd, "r")
        if offset < 0:
            raise _error(errno.EINVAL)
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
            raise _error(errno.EINVAL)
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
                raise _error(errno.EINVAL)
            base = self.fstat(fd).st_size
        if base + position < 0:
            raise _error(errno.EINVAL)
        desc.offset = base + position
        return desc.offset

    def fstat(self, fd: int) -> os.stat_result:
        """Attributes of an open file, even after it was unlinked, :manpage:`fstat(2)`."""
        desc = self._fd(fd)
        return _stat_result(self._call("getattr", desc.path or "", desc.path, desc.fh))

    def ftruncate(self, fd: int, length: int) -> None:
        """Set the size of an open file, :manpage:`ftruncate(2)`."""
        desc = self._fds.get(fd)
        if desc is None:
            raise _error(errno.EBADF)
        if desc.is_dir or desc.flags & _O_ACCMODE == os.O_RDONLY or length < 0:
            raise _error(errno.EINVAL)
        self._call("truncate", desc.path or "", desc.path, length, desc.fh)

    def fsync(self, fd: int) -> None:
        """Make an open file durable, :manpage:`fsync(2)`."""
        desc = self._fd(fd)
        if not desc.is_dir:
            self._call("fsync", desc.path or "", desc.path, 0, desc.fh)

    # -- whole paths ----------------------------------------------------------------------
    def stat(self, path: str, *, follow_symlinks: bool = True) -> os.stat_result:
        """Attributes of ``path``, :manpage:`stat(2)`."""
        return _stat_result(self._existing(path, follow_symlinks)[1])

    def lstat(self, path: str) -> os.stat_result:
        """Attributes of ``path`` itself, not of a symlink's target, :manpage:`lstat(2)`."""
        return self.stat(path, follow_symlinks=False)

    def listdir(self, path: str = "/") -> list[str]:
        """Names in a directory, without ``.`` and ``..``, :manpage:`readdir(3)`."""
        resolved, st = self._existing(path)
        if not stat.S_ISDIR(st["st_mode"]):
            raise _error(errno.ENOTDIR, path)
        fh = self._call("opendir", path, resolved)
        try:
            names = self._call("readdir", path, resolved, fh)
        finally:
            self.dispatcher.releasedir(resolved, fh)
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
            raise _error(errno.EINVAL, path)
        if last == "..":
            raise _error(errno.ENOTEMPTY, path)
        resolved, st = self._existing(path.rstrip("/") or "/", follow=False)
        if not stat.S_ISDIR(st["st_mode"]):
            raise _error(errno.ENOTDIR, path)
        if resolved == "/":
            raise _error(errno.EBUSY, path)
        self._call("rmdir", path, resolved)

    def unlink(self, path: str) -> None:
        """Remove a name; open descriptors keep the data, :manpage:`unlink(2)`."""
        resolved, st = self._existing(path.rstrip("/") or "/", follow=False)
        if stat.S_ISDIR(st["st_mode"]):
            raise _error(errno.EISDIR, path)
        if path.endswith("/"):
            raise _error(errno.ENOTDIR, path)
        self._call("unlink", path, resolved)
        self._renamed(resolved, None)

    remove = unlink

    def rename(self, src: str, dst: str, flags: int = 0) -> None:
        """Move ``src`` to ``dst``; ``flags`` as :manpage:`renameat2(2)`."""
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) or (
            flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)
        ):
            raise _error(errno.EINVAL, src, dst)
        for name in (src, dst):
            if name.rstrip("/").rsplit("/", 1)[-1] in (".", ".."):
                raise _error(errno.EBUSY, src, dst)
        old, old_st = self._resolve(src.rstrip("/") or "/", follow=False)
        new, new_st = self._resolve(dst.rstrip("/") or "/", follow=False)  # both parents first
        if old_st is None:
            raise _error(errno.ENOENT, src, dst)
        is_dir = stat.S_ISDIR(old_st["st_mode"])
        if not is_dir and (src.endswith("/") or dst.endswith("/")):
            raise _error(errno.ENOTDIR, src, dst)
        if flags & RENAME_EXCHANGE and new_st is None:
            raise _error(errno.ENOENT, src, dst)
        if flags & RENAME_NOREPLACE and new_st is not None:
            raise _error(errno.EEXIST, src, dst)
        if old == "/" or new == "/":
            raise _error(errno.EBUSY, src, dst)
        if new.startswith(old + "/"):
            raise _error(errno.EINVAL, src, dst)
        if old.startswith(new + "/"):
            raise _error(errno.EINVAL if flags & RENAME_EXCHANGE else errno.ENOTEMPTY, src, dst)
        if new_st is not None and not flags & RENAME_EXCHANGE:
            if old_st.get("st_ino") and old_st.get("st_ino") == new_st.get("st_ino"):
                return  # two names of one file: nothing to do
            if is_dir and not stat.S_ISDIR(new_st["st_mode"]):
                raise _error(errno.ENOTDIR, src, dst)
            if not is_dir and stat.S_ISDIR(new_st["st_mode"]):
                raise _error(errno.EISDIR, src, dst)
        if flags:
            self._call("rename", src, old, new, flags, path2=dst)
        else:
            self._call("rename", src, old, new, path2=dst)
        if flags & RENAME_EXCHANGE:
            self._renamed(new, "\0")
            self._renamed(old, new)
            self._renamed("\0", old)
        else:
            if new_st is not None:
                self._renamed(new, None)
            self._renamed(old, new)

    def replace(self, src: str, dst: str) -> None:
        """Move ``src`` over ``dst``, like :func:`os.replace`."""
        self.rename(src, dst)

    def symlink(self, src: str, dst: str) -> None:
        """Create the symlink ``dst`` whose content is ``src``, :manpage:`symlink(2)`."""
        if not src:
            raise _error(errno.ENOENT, src, dst)
        resolved = self._new(dst)
        self._call("symlink", src, resolved, src, path2=dst)

    def readlink(self, path: str) -> str:
        """Content of a symlink, :manpage:`readlink(2)`."""
        resolved, st = self._existing(path, follow=False)
        if not stat.S_ISLNK(st["st_mode"]):
            raise _error(errno.EINVAL, path)
        return str(self._call("readlink", path, resolved))

    def link(self, src: str, dst: str) -> None:
        """Create the hard link ``dst`` to ``src``, :manpage:`link(2)`."""
        old, st = self._existing(src, follow=False)
        new, new_st = self._resolve(dst, follow=False)
        if new_st is not None:
            raise _error(errno.EEXIST, src, dst)
        if stat.S_ISDIR(st["st_mode"]):
            raise _error(errno.EPERM, src, dst)
        self._call("link", src, new, old, path2=dst)

    def chmod(self, path: str, mode: int, *, follow_symlinks: bool = True) -> None:
        """Change permission bits, :manpage:`chmod(2)`."""
        resolved = self._existing(path, follow_symlinks)[0]
        self._call("chmod", path, resolved, mode & 0o7777)

    def chown(self, path: str, uid: int, gid: int, *, follow_symlinks: bool = True) -> None:
        """Change owner and group; -1 keeps one, :manpage:`chown(2)`."""
        resolved = self._existing(path, follow_symlinks)[0]
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
            raise _error(errno.EISDIR, path)
        if length < 0 or not stat.S_ISREG(st["st_mode"]):
            raise _error(errno.EINVAL, path)
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


# -- is FUSE usable here? -----------------------------------------------------------------
_PROBE = """
import errno, stat, sys
import mfusepy
class Probe(mfusepy.Operations):
    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
        if path == "/probe":
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1}
        raise mfusepy.FuseOSError(errno.ENOENT)
    def readdir(self, path, fh):
        return [".", "..", "probe"]
mfusepy.FUSE(Probe(), sys.argv[1], foreground=True)
"""


def _probe_mount(library: str, unmount: str) -> str | None:
    """Mount a two-entry filesystem with libfuse ``library``; None if it works."""
    mountpoint = tempfile.mkdtemp(prefix="defuse2-probe-")
    env = dict(os.environ, FUSE_LIBRARY_NAME=library)
    env.pop("FUSE_LIBRARY_PATH", None)
    process = subprocess.Popen(
        [sys.executable, "-c", _PROBE, mountpoint],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mountpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()  # it may still run (a timeout): end it before reading its output
                process.wait()
                detail = process.stderr.read().decode(errors="replace") if process.stderr else ""
                return f"a test mount with lib{library} failed: {detail.strip()[-300:]}"
            time.sleep(0.02)
        if os.listdir(mountpoint) != ["probe"]:
            return f"a test mount with lib{library} did not list its file"
        return None
    finally:
        if os.path.ismount(mountpoint):
            done = subprocess.run([unmount, "-u", mountpoint], capture_output=True)
            if done.returncode:
                subprocess.run([unmount, "-u", "-z", mountpoint], capture_output=True)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
        os.rmdir(mountpoint)


@cache
def fuse_unavailable_reason() -> str | None:
    """Why real FUSE mounts cannot run here, or None when they can.

    Checks ``/dev/fuse``, ``fusermount`` and ``fusermount3``, that libfuse 2 and 3 load,
    and that a tiny filesystem really mounts with each (then unmounts it). The answer is
    computed once per process.
    """
    if not sys.platform.startswith("linux"):
        return f"FUSE tests need Linux, not {sys.platform}"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        return f"/dev/fuse cannot be opened: {exc}"
    for tool in ("fusermount", "fusermount3"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    for library in ("fuse", "fuse3"):
        found = ctypes.util.find_library(library)
        try:
            ctypes.CDLL(found or f"lib{library}.so")
        except OSError as exc:
            return f"lib{library} cannot be loaded: {exc}"
    if importlib.util.find_spec("mfusepy") is None:
        return "mfusepy is not installed"
    return _probe_mount("fuse3", "fusermount3") or _probe_mount("fuse", "fusermount")


def require_fuse() -> None:
    """Skip the running test without FUSE, or fail it when env ``CI`` is set."""
    import pytest

    reason = fuse_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"FUSE is required in CI: {reason}", pytrace=False)
        pytest.skip(f"FUSE is not usable: {reason}")


# -- the pytest plugin --------------------------------------------------------------------
if TYPE_CHECKING or importlib.util.find_spec("pytest") is not None:
    import pytest

    @pytest.fixture
    def defuse2_filesystem() -> FileSystem:
        """The filesystem under test; override this fixture in your ``conftest.py``."""
        from .filesystem import FileSystem

        return FileSystem()

    @pytest.fixture
    def defuse2_client(defuse2_filesystem: FileSystem) -> TestClient:
        """A :class:`TestClient` over ``defuse2_filesystem``."""
        return TestClient(defuse2_filesystem)

    @pytest.fixture
    def defuse2_mount(defuse2_filesystem: FileSystem) -> Iterator[Path]:
        """``defuse2_filesystem`` really mounted (skips without FUSE; fails in CI)."""
        require_fuse()
        mountpoint = tempfile.mkdtemp(prefix="defuse2-mount-")
        try:
            with defuse2_filesystem.mounted(mountpoint):
                yield Path(mountpoint)
        finally:
            os.rmdir(mountpoint)
