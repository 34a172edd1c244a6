"""The host side of a DirectoryStore: its files' attributes, owners and modes.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> DirectoryStore ->
**host files** -> the host kernel. Small rules the store applies to what it finds and
makes on the host: the ``st_*`` mapping of a host ``stat``, the owner and exact mode of a
new name, libfuse's ``.fuse_hidden*`` stand-ins, the mode bits of :manpage:`access(2)`.
Every function acts on descriptors the store already resolved under its root.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable

from .base import Context
from .namespace import HIDDEN_PREFIX
from .paths import fail
from .permissions import in_group

_SETID = stat.S_ISUID | stat.S_ISGID


def stat_mapping(st: os.stat_result) -> dict[str, int]:
    """The ``st_*`` mapping of a host :func:`os.stat` result, times in ns."""
    return {
        "st_mode": st.st_mode,
        "st_ino": st.st_ino,
        "st_nlink": st.st_nlink,
        "st_uid": st.st_uid,
        "st_gid": st.st_gid,
        "st_size": st.st_size,
        "st_blksize": st.st_blksize,
        "st_blocks": st.st_blocks,
        "st_rdev": st.st_rdev,
        "st_atime": st.st_atime_ns,
        "st_mtime": st.st_mtime_ns,
        "st_ctime": st.st_ctime_ns,
    }


def proc_path(fd: int, name: str = "") -> str:
    """``/proc/self/fd/N[/name]``: the path of what ``fd`` is, without a lookup by name."""
    return f"/proc/self/fd/{fd}/{name}" if name else f"/proc/self/fd/{fd}"


def above_stdio(fd: int) -> int:
    """``fd``, moved above 2 if need be: a handle must never look like "no handle" (0)."""
    if fd > 2:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def new_owner(parent: int, ctx: Context | None) -> tuple[int, int] | None:
    """``(uid, gid)`` to give a new name in ``parent``, or ``None`` to keep what the
    host gave it. Only root can give files away; a setgid parent has given its
    group already.
    """
    euid, egid = os.geteuid(), os.getegid()
    if ctx is None or euid != 0 or (ctx.uid, ctx.gid) == (euid, egid):
        return None
    if os.fstat(parent).st_mode & stat.S_ISGID:
        return ctx.uid, -1
    return ctx.uid, ctx.gid


def settle(parent: int, name: str, mode: int, ctx: Context | None) -> None:
    """Give the new, unopened ``name`` its owner and exactly the bits of ``mode``."""
    owner = new_owner(parent, ctx)
    if owner is not None:
        os.chown(name, *owner, dir_fd=parent, follow_symlinks=False)
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        chmod_opened(fd, mode, keep=stat.S_ISGID)
    finally:
        os.close(fd)


def dropped_hidden(error: OSError, parent: int, name: str) -> bool:
    """After ``ENOTEMPTY`` for directory ``name``: remove its names if all are
    libfuse's hidden ones; whether it is empty now."""
    if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
        return False
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError:
        return False
    try:
        names = os.listdir(fd)
        if not names or visible(names):
            return False
        for hidden in names:
            os.unlink(hidden, dir_fd=fd)
    finally:
        os.close(fd)
    return True


def kill_privileges(fd: int, ctx: object) -> None:
    """After a write or truncation of ``fd`` by ``ctx``: clear setuid and setgid as Linux
    does for anyone but root (setgid with group-execute, or without it for a caller
    outside the file's group). ``ctx`` is a :class:`~defuse2.store.base.Context`, a
    function giving one (asked only when the file has such bits), or ``None`` (this
    process). One :manpage:`fstat(2)` when the file has none."""
    st = os.fstat(fd)
    if not st.st_mode & _SETID or not stat.S_ISREG(st.st_mode):
        return
    caller = ctx() if callable(ctx) else ctx
    if not isinstance(caller, Context):
        caller = Context(os.geteuid(), os.getegid(), os.getpid())
    if caller.uid == 0:
        return
    mode = st.st_mode
    cleared = mode & stat.S_ISUID
    if mode & stat.S_ISGID and (mode & stat.S_IXGRP or not in_group(caller, st.st_gid)):
        cleared |= stat.S_ISGID
    if cleared:
        # (not root: the host cleared them itself when this process wrote)
        with contextlib.suppress(PermissionError):
            os.fchmod(fd, stat.S_IMODE(mode & ~cleared))


def is_hidden(path: str) -> bool:
    """Whether the last component of ``path`` is one of libfuse's hidden names."""
    return path.rpartition("/")[2].startswith(HIDDEN_PREFIX)


def visible(names: list[str]) -> list[str]:
    """``names`` without libfuse's ``.fuse_hidden*`` stand-ins."""
    return [name for name in names if not name.startswith(HIDDEN_PREFIX)]


def chmod_opened(fd: int, mode: int, keep: int = 0) -> None:
    """Set the mode of what the ``O_PATH`` descriptor ``fd`` is to ``mode`` (plus the
    bits of ``keep`` it has now); a symlink's mode cannot change (``EOPNOTSUPP``)."""
    current = os.fstat(fd).st_mode
    if stat.S_ISLNK(current):
        raise fail(errno.EOPNOTSUPP)
    wanted = (mode & 0o7777) | (current & keep)
    if wanted != stat.S_IMODE(current):
        os.chmod(proc_path(fd), wanted)


def allowed(st: os.stat_result, ctx: Context, amode: int) -> bool:
    """Whether ``ctx`` may ``amode`` a file with these attributes (mode bits only)."""
    if ctx.uid == 0:
        return not amode & os.X_OK or stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
    if ctx.uid == st.st_uid:
        bits = st.st_mode >> 6
    elif ctx.gid == st.st_gid:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return amode & bits & 0o7 == amode & 0o7


class HostXattrs:
    """Extended attributes of the host's files, for a store that resolves paths with
    ``_locate`` (``(directory descriptor, name)``) and gives descriptors back with
    ``_release``. The attributes of the name itself, never of a symlink's target."""

    _locate: Callable[[str], tuple[int, str]]
    _release: Callable[[int], None]

    # -- extended attributes ------------------------------------------------------------
    def getxattr(self, path: str, name: str) -> bytes:
        """Value of xattr ``name``; ``ENODATA`` when absent, :manpage:`lgetxattr(2)`."""
        parent, leaf = self._locate(path)
        try:
            return os.getxattr(proc_path(parent, leaf), name, follow_symlinks=False)
        finally:
            self._release(parent)

    def find_xattr(self, path: str, name: str) -> bytes | None:
        """:meth:`getxattr`, but ``None`` where it would raise ``ENODATA``."""
        try:
            return self.getxattr(path, name)
        except OSError as error:
            if error.errno == errno.ENODATA:
                return None
            raise

    def setxattr(
        self, path: str, name: str, value: bytes, options: int, *, ctx: Context | None = None
    ) -> None:
        """Set xattr ``name``, :manpage:`lsetxattr(2)`."""
        parent, leaf = self._locate(path)
        try:
            os.setxattr(proc_path(parent, leaf), name, value, options, follow_symlinks=False)
        finally:
            self._release(parent)

    def listxattr(self, path: str) -> list[str]:
        """Names of the xattrs of ``path``, :manpage:`llistxattr(2)`."""
        parent, leaf = self._locate(path)
        try:
            return os.listxattr(proc_path(parent, leaf), follow_symlinks=False)
        finally:
            self._release(parent)

    def removexattr(self, path: str, name: str, *, ctx: Context | None = None) -> None:
        """Remove xattr ``name``, :manpage:`lremovexattr(2)`."""
        parent, leaf = self._locate(path)
        try:
            os.removexattr(proc_path(parent, leaf), name, follow_symlinks=False)
        finally:
            self._release(parent)
