"""Who may do what to an inode: mode bits, owners, sticky and setgid rules.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**permissions**. The rules follow Linux 6.x (checked against ``tmpfs``).

Who checks what:

- Mounted with ``default_permissions`` (defuse2's default), the kernel checks every
  request against the modes and owners ``getattr`` reports before it is sent: search
  permission on each directory on the way, then the operation's own rule. The store
  checks the operation's own rule again, with the same answer, so it never grants what
  the kernel refused nor refuses what it granted.
- In-process, and mounted without ``default_permissions``, the store's checks are the
  only ones. They cover the operation's own rule (the mode of the file or directory
  being read, written or changed, ownership, sticky and setgid directories), but not
  search permission on the directories on the way: a mount that other users can reach
  (``allow_other``) should keep ``default_permissions``.

Groups: a caller is in a file's group when the group is its primary group (``ctx.gid``)
or one of its supplementary groups. Only the primary group comes with a request, so the
supplementary ones are read from ``/proc/PID/status`` of the calling process, as
libfuse's ``fuse_getgroups()`` does, and only when the answer depends on them (the
caller is not the owner, the primary group is not the file's, and the group bits say
otherwise than the bits for others). The lookup trusts the file only when its user and
group ids are the caller's; a process that has ended, or a ``Context`` made up in a
test, has no supplementary groups.
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


def supplementary_groups(ctx: Context) -> frozenset[int]:
    """The supplementary groups of the process that made the request ``ctx`` describes.

    Read from ``/proc/PID/status`` (``Groups:``), trusted only when the file's
    filesystem uid and gid (the ones FUSE reports) are ``ctx``'s; otherwise, and when
    the process is gone, none.
    """
    try:
        with open(f"/proc/{ctx.pid}/status", "rb") as status:
            fields = dict(line.split(b":", 1) for line in status if b":" in line)
        uids, gids = fields[b"Uid"].split(), fields[b"Gid"].split()
        if int(uids[3]) != ctx.uid or int(gids[3]) != ctx.gid:
            return frozenset()
        return frozenset(map(int, fields.get(b"Groups", b"").split()))
    except (OSError, KeyError, IndexError, ValueError):
        return frozenset()


def in_group(ctx: Context, gid: int) -> bool:
    """Whether ``gid`` is the caller's primary group or one of its supplementary groups."""
    return ctx.gid == gid or gid in supplementary_groups(ctx)


def allowed(inode: Inode, ctx: Context, amode: int) -> bool:
    """Whether ``ctx`` may ``amode`` (``R_OK | W_OK | X_OK``) ``inode``, :manpage:`access(2)`.

    Root may read and write anything, and execute what has any ``x`` bit or is a
    directory. The owner gets the owner's bits, a member of the file's group the
    group's, anyone else the others'.
    """
    mode = inode.mode
    if ctx.uid == 0:
        return not amode & X or inode.is_dir or bool(mode & 0o111)
    wanted = amode & 0o7
    if ctx.uid == inode.uid:
        return (mode >> 6) & wanted == wanted
    as_member = (mode >> 3) & wanted == wanted
    if ctx.gid == inode.gid:
        return as_member
    as_other = mode & wanted == wanted
    if as_member == as_other:  # the answer does not depend on the groups
        return as_member
    return as_member if inode.gid in supplementary_groups(ctx) else as_other


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
    if mode & wants == wants and ctx.uid != 0 and not in_group(ctx, gid):
        mode &= ~stat.S_ISGID
    return gid, mode


def chmod_mode(inode: Inode, mode: int, ctx: Context) -> int:
    """The new mode for :manpage:`chmod(2)`.

    Besides the owner and root, a caller who may write the file may clear the bits a
    write by it would clear (:func:`privileges_cleared`), and change nothing else:
    before an unprivileged write to such a file the kernel asks the filesystem, as the
    writer, to clear them (a ``SETATTR`` of the mode), and the write would clear them
    anyway.

    :raises OSError: ``EPERM`` for any other change by a caller who is not the owner or
        root. A caller outside the file's group (and not root) cannot set the setgid
        bit: it is cleared.
    """
    new = stat.S_IFMT(inode.mode) | (mode & 0o7777)
    if not is_owner(inode, ctx):
        cleared = inode.mode & ~new
        if new & ~inode.mode or not cleared or cleared & ~privileges_cleared(inode, ctx):
            raise fail(errno.EPERM)
        if not allowed(inode, ctx, W):
            raise fail(errno.EPERM)
        return new
    if new & stat.S_ISGID and ctx.uid != 0 and not in_group(ctx, inode.gid):
        new &= ~stat.S_ISGID
    return new


def _drops_setgid(inode: Inode, ctx: Context) -> bool:
    """Whether a write or chown by ``ctx`` drops ``inode``'s setgid bit (Linux
    ``setattr_should_drop_sgid``): with group-execute always, without it (mandatory
    locking) when the caller is neither in the file's group nor root."""
    mode = inode.mode
    if not mode & stat.S_ISGID:
        return False
    return bool(mode & stat.S_IXGRP) or (ctx.uid != 0 and not in_group(ctx, inode.gid))


def chown_result(inode: Inode, uid: int, gid: int, ctx: Context) -> tuple[int, int, int]:
    """The new ``(uid, gid, mode)`` for :manpage:`chown(2)`; ``-1`` keeps a value.

    Only root gives a file away; the owner may change the group to any group it is in.
    On anything but a directory, every chown clears setuid (for root too) and setgid as
    a write would (:func:`privileges_cleared`, for root with group-execute only).

    :raises OSError: ``EPERM`` for a change the caller may not make.
    """
    keep = (-1, 0xFFFFFFFF)
    if ctx.uid != 0:
        if uid not in keep and (ctx.uid != inode.uid or uid != inode.uid):
            raise fail(errno.EPERM)
        if gid not in keep and (
            ctx.uid != inode.uid or (gid != inode.gid and not in_group(ctx, gid))
        ):
            raise fail(errno.EPERM)
    new_uid = inode.uid if uid in keep else uid
    new_gid = inode.gid if gid in keep else gid
    mode = inode.mode
    if not inode.is_dir:
        mode &= ~stat.S_ISUID
        if _drops_setgid(inode, ctx):
            mode &= ~stat.S_ISGID
    return new_uid, new_gid, mode


def privileges_cleared(inode: Inode, ctx: Context) -> int:
    """The setuid and setgid bits of ``inode`` that a write or truncate by ``ctx`` clears.

    Root clears none (``CAP_FSETID``); anyone else always clears setuid, and setgid
    when :func:`_drops_setgid` says so. Only regular files lose them.
    """
    mode = inode.mode
    if ctx.uid == 0 or not mode & _SETID or not stat.S_ISREG(mode):
        return 0
    return mode & stat.S_ISUID | (stat.S_ISGID if _drops_setgid(inode, ctx) else 0)


def kill_privileges(inode: Inode, ctx: Context) -> None:
    """Clear what :func:`privileges_cleared` says after a write or truncate.

    Call with the inode lock held.
    """
    cleared = privileges_cleared(inode, ctx)
    if cleared:
        inode.mode &= ~cleared


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
