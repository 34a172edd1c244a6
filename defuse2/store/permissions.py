"""Who may do what to an inode: mode bits, owners, sticky and setgid rules.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**permissions**. Under ``default_permissions`` the kernel already checks every path
component before a request reaches the store; these checks make the store right on its
own too (in-process, or mounted without ``default_permissions``). The store knows only
the caller's primary group (``ctx.gid``); supplementary groups are not consulted.
The rules follow Linux 6.x (checked against ``tmpfs``).
"""

from __future__ import annotations

import errno
import os
import stat

from defuse2.store.base import UTIME_NOW, UTIME_OMIT, Context
from defuse2.store.inode import Inode
from defuse2.store.paths import fail

R, W, X = os.R_OK, os.W_OK, os.X_OK

_SETID = stat.S_ISUID | stat.S_ISGID


def current_context() -> Context:
    """The calling process as a :class:`Context`, without touching the umask.

    (:meth:`Context.current` reads the umask by setting it, which races with other
    threads; the store never applies a umask, so it does not need one.)
    """
    return Context(os.geteuid(), os.getegid(), os.getpid(), 0)


def allowed(inode: Inode, ctx: Context, amode: int) -> bool:
    """Whether ``ctx`` may ``amode`` (``R_OK | W_OK | X_OK``) ``inode``, :manpage:`access(2)`.

    Root may read and write anything, and execute what has any ``x`` bit or is a
    directory.
    """
    mode = inode.mode
    if ctx.uid == 0:
        return not amode & X or inode.is_dir or bool(mode & 0o111)
    if ctx.uid == inode.uid:
        bits = mode >> 6
    elif ctx.gid == inode.gid:
        bits = mode >> 3
    else:
        bits = mode
    return amode & bits & 0o7 == amode & 0o7


def require(inode: Inode, ctx: Context, amode: int) -> None:
    """Raise ``EACCES`` unless :func:`allowed`."""
    if not allowed(inode, ctx, amode):
        raise fail(errno.EACCES)


def is_owner(inode: Inode, ctx: Context) -> bool:
    """Whether ``ctx`` owns ``inode`` or is root."""
    return ctx.uid == 0 or ctx.uid == inode.uid


def may_delete(directory: Inode, victim: Inode, ctx: Context, *, is_dir: bool) -> None:
    """Check that ``victim`` may be removed from ``directory`` (Linux ``may_delete``).

    :param is_dir: the caller wants to remove a directory (``rmdir``, or ``rename`` of
        a directory over ``victim``).
    :raises OSError: ``EACCES`` without write and search permission on ``directory``;
        ``EPERM`` in a sticky directory unless ``ctx`` owns the victim or the directory
        or is root; ``ENOTDIR``/``EISDIR`` when the victim's type does not match.
    """
    if not allowed(directory, ctx, W | X):
        raise fail(errno.EACCES)
    if (
        directory.mode & stat.S_ISVTX
        and ctx.uid != 0
        and ctx.uid != victim.uid
        and ctx.uid != directory.uid
    ):
        raise fail(errno.EPERM)
    if is_dir and not victim.is_dir:
        raise fail(errno.ENOTDIR)
    if not is_dir and victim.is_dir:
        raise fail(errno.EISDIR)


def new_owner(directory: Inode, mode: int, ctx: Context) -> tuple[int, int]:
    """The gid and mode of a node created in ``directory`` by ``ctx``.

    In a setgid directory the node takes the directory's group, and a subdirectory also
    takes the setgid bit; a file asking for setgid and group-execute there keeps the bit
    only if the caller is in that group or is root.
    """
    if not directory.mode & stat.S_ISGID:
        return ctx.gid, mode
    gid = directory.gid
    if stat.S_ISDIR(mode):
        return gid, mode | stat.S_ISGID
    wants = stat.S_ISGID | stat.S_IXGRP
    if mode & wants == wants and ctx.uid != 0 and ctx.gid != gid:
        mode &= ~stat.S_ISGID
    return gid, mode


def chmod_mode(inode: Inode, mode: int, ctx: Context) -> int:
    """The new mode for :manpage:`chmod(2)`.

    :raises OSError: ``EPERM`` unless ``ctx`` owns ``inode`` or is root. A caller outside
        the file's group (and not root) cannot set the setgid bit: it is cleared.
    """
    if not is_owner(inode, ctx):
        raise fail(errno.EPERM)
    new = stat.S_IFMT(inode.mode) | (mode & 0o7777)
    if ctx.uid != 0 and ctx.gid != inode.gid:
        new &= ~stat.S_ISGID
    return new


def chown_result(inode: Inode, uid: int, gid: int, ctx: Context) -> tuple[int, int, int]:
    """The new ``(uid, gid, mode)`` for :manpage:`chown(2)`; ``-1`` keeps a value.

    Only root gives a file away; the owner may change the group to its own group.
    On anything but a directory, every chown clears setuid, and clears setgid when
    group-execute is set (as Linux does, for root too).

    :raises OSError: ``EPERM`` for a change the caller may not make.
    """
    keep = (-1, 0xFFFFFFFF)
    if ctx.uid != 0:
        if uid not in keep and (ctx.uid != inode.uid or uid != inode.uid):
            raise fail(errno.EPERM)
        if gid not in keep and (ctx.uid != inode.uid or gid not in (inode.gid, ctx.gid)):
            raise fail(errno.EPERM)
    new_uid = inode.uid if uid in keep else uid
    new_gid = inode.gid if gid in keep else gid
    mode = inode.mode
    if not inode.is_dir:
        mode &= ~stat.S_ISUID
        if mode & stat.S_IXGRP:
            mode &= ~stat.S_ISGID
    return new_uid, new_gid, mode


def kill_privileges(inode: Inode, ctx: Context) -> None:
    """Clear setuid (and setgid with group-execute) after a write or truncate by non-root.

    Call with the inode lock held.
    """
    mode = inode.mode
    if ctx.uid == 0 or not mode & _SETID or not stat.S_ISREG(mode):
        return
    mode &= ~stat.S_ISUID
    if mode & stat.S_IXGRP:
        mode &= ~stat.S_ISGID
    inode.mode = mode


def check_utimens(inode: Inode, times: tuple[int, int], ctx: Context) -> None:
    """Check :manpage:`utimensat(2)` permission.

    Setting explicit times needs ownership (or root): ``EPERM``. Setting them to now
    (``None`` or :data:`UTIME_NOW`) also allows a caller with write permission:
    ``EACCES`` otherwise.
    """
    if is_owner(inode, ctx):
        return
    if any(value not in (UTIME_NOW, UTIME_OMIT) for value in times):
        raise fail(errno.EPERM)
    require(inode, ctx, W)
