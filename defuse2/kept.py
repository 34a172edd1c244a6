"""Metadata kept for writable resources that keep none: times, mode, owner.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> **kept metadata** ->
resources. Tools that write files also set their metadata: ``touch`` sets the times,
``cp -p`` and ``tar x`` the times, the mode and (as root) the owner, and they fail when
that fails. A resource that stores content (it defines ``write``) but not the
metadata (it lacks ``utimens``, ``chmod`` or ``chown``) gets those operations from
defuse2: the values are kept here, in memory, by path, and ``getattr`` reports them on
top of what the resource says. Nothing is claimed that ``stat`` does not then show; the
values last as long as the mount (the content as long as the resource keeps it).

The rules are the :class:`~defuse2.store.memory.MemoryStore`'s own
(:mod:`defuse2.store.permissions`): only the owner (or root) changes the mode or sets
explicit times, only root gives a file away, setting the times to now needs write
permission, a write by someone else clears setuid and setgid, and every change sets
``ctime``. A write or truncate through defuse2 moves ``mtime`` of a path that has kept
metadata, and making or removing a name moves its directory's, so a file touched once
keeps telling when it changed. A resource that defines an operation itself is never
overridden.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from .store import permissions
from .store.base import UTIME_NOW, UTIME_OMIT, Context
from .store.inode import Inode

_SET_ID = 0o6000


class KeptMetadata:
    """The kept ``st_*`` values of the routed paths that have any, by path."""

    def __init__(self) -> None:
        #: path -> the ``st_*`` fields kept for it; the dispatcher reads it directly.
        self.by_path: dict[str, dict[str, int]] = {}

    def apply(self, path: str, stat_result: dict[str, int]) -> None:
        """Put what is kept for ``path`` on top of the resource's ``stat_result``."""
        kept = self.by_path.get(path)
        if kept is None:
            return
        for key, value in kept.items():
            if key == "st_mode":
                value |= stat_result["st_mode"] & ~0o7777  # the type is the resource's
            stat_result[key] = value

    def utimens(
        self, path: str, times: tuple[int, int] | None, current: Mapping[str, int], ctx: Context
    ) -> None:
        """:manpage:`utimensat(2)`: ``times`` in ns (``UTIME_NOW``/``UTIME_OMIT`` markers),
        ``None`` for now."""
        atime, mtime = times if times is not None else (UTIME_NOW, UTIME_NOW)
        if atime == UTIME_OMIT and mtime == UTIME_OMIT:
            return
        permissions.check_utimens(_as_inode(current), (atime, mtime), ctx)
        now = time.time_ns()
        kept = self.by_path.setdefault(path, {})
        for key, value in (("st_atime", atime), ("st_mtime", mtime)):
            if value != UTIME_OMIT:
                kept[key] = now if value == UTIME_NOW else value
        kept["st_ctime"] = now

    def chmod(self, path: str, mode: int, current: Mapping[str, int], ctx: Context) -> None:
        """:manpage:`chmod(2)`: the permission bits."""
        new = permissions.chmod_mode(_as_inode(current), mode, ctx)
        self.by_path.setdefault(path, {}).update(st_mode=new & 0o7777, st_ctime=time.time_ns())

    def chown(
        self, path: str, uid: int, gid: int, current: Mapping[str, int], ctx: Context
    ) -> None:
        """:manpage:`chown(2)`: ``-1`` keeps the owner or the group."""
        uid, gid, mode = permissions.chown_result(_as_inode(current), uid, gid, ctx)
        self.by_path.setdefault(path, {}).update(
            st_uid=uid, st_gid=gid, st_mode=mode & 0o7777, st_ctime=time.time_ns()
        )

    def created(
        self,
        path: str,
        mode: int,
        current: Mapping[str, int],
        ctx: Context,
        *,
        mode_kept: bool,
        owner_kept: bool,
    ) -> None:
        """A file was created with ``mode`` by ``ctx``: keep the mode (``mode_kept``) and
        the owner (``owner_kept``) where ``current``, what the resource reports, differs."""
        kept: dict[str, int] = {}
        if mode_kept and current["st_mode"] & 0o7777 != mode & 0o7777:
            kept["st_mode"] = mode & 0o7777
        if owner_kept and (current["st_uid"], current["st_gid"]) != (ctx.uid, ctx.gid):
            kept.update(st_uid=ctx.uid, st_gid=ctx.gid)
        if kept:
            self.by_path[path] = kept
        else:
            self.by_path.pop(path, None)  # a new file: nothing kept of an older one

    def modified(
        self,
        path: str,
        context: Callable[[], Context] | None = None,
        current: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        """Content changed through defuse2: a kept ``mtime`` and ``ctime`` become now, and
        a kept setuid or setgid bit goes as a write by the caller (``context``) clears it.

        :param current: what the path's attributes are, asked only for set-id bits.
        """
        kept = self.by_path.get(path)
        if kept is None:
            return
        kept["st_mtime"] = kept["st_ctime"] = time.time_ns()
        if kept.get("st_mode", 0) & _SET_ID and context is not None and current is not None:
            cleared = permissions.privileges_cleared(_as_inode(current()), context())
            kept["st_mode"] &= ~cleared

    def moved(self, old: str, new: str) -> None:
        """``old`` was renamed over ``new``."""
        kept = self.by_path.pop(old, None)
        self.by_path.pop(new, None)
        if kept is not None:
            kept["st_ctime"] = time.time_ns()
            self.by_path[new] = kept

    def removed(self, path: str) -> None:
        """``path`` was unlinked."""
        self.by_path.pop(path, None)


def _as_inode(current: Mapping[str, int]) -> Inode:
    """A throwaway :class:`~defuse2.store.inode.Inode` with ``current``'s type, mode and
    owner, for the store's permission rules."""
    return Inode(0, current["st_mode"], current["st_uid"], current["st_gid"], 0)
