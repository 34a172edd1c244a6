"""Metadata kept for writable resources that keep none: times, mode, owner.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> **kept metadata** ->
resources. Tools that write files also set their metadata: ``touch`` sets the times,
``cp -p`` and ``tar x`` the times, the mode and (as root) the owner, and they fail when
that fails. A resource that stores content (it defines ``write``) but not the
metadata (it lacks ``utimens``, ``chmod`` or ``chown``) gets those operations from
defuse2: the values are kept here, in memory, by path, and ``getattr`` reports them on
top of what the resource says. Nothing is claimed that ``stat`` does not then show; the
values last as long as the mount (the content lasts as long as the resource keeps it).

The rules are POSIX's: only the owner (or root) changes the mode or sets explicit
times, only root gives a file away, setting the times to now needs write permission,
and every change sets ``ctime``. A write or truncate through defuse2 moves ``mtime`` of
a path that has kept metadata, so a file touched once keeps telling when it changed.
A resource that defines the operation itself is never overridden.
"""

from __future__ import annotations

import errno
import stat
import time
from collections.abc import Mapping

from .answers import fail
from .store.base import UTIME_NOW, UTIME_OMIT, Context

#: The operations this module can stand in for, with the ``st_*`` fields each sets.
KEPT_OPERATIONS = frozenset({"utimens", "chmod", "chown"})


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
        now = time.time_ns()
        atime, mtime = times if times is not None else (UTIME_NOW, UTIME_NOW)
        if atime == UTIME_OMIT and mtime == UTIME_OMIT:
            return
        if {atime, mtime} <= {UTIME_NOW, UTIME_OMIT}:
            if not _owns(current, ctx) and not _may_write(current, ctx):
                raise fail(errno.EACCES, path)
        elif not _owns(current, ctx):
            raise fail(errno.EPERM, path)
        kept = self.by_path.setdefault(path, {})
        for key, value in (("st_atime", atime), ("st_mtime", mtime)):
            if value != UTIME_OMIT:
                kept[key] = now if value == UTIME_NOW else value
        kept["st_ctime"] = now

    def chmod(self, path: str, mode: int, current: Mapping[str, int], ctx: Context) -> None:
        """:manpage:`chmod(2)`: the permission bits."""
        if not _owns(current, ctx):
            raise fail(errno.EPERM, path)
        if ctx.uid != 0 and current["st_gid"] != ctx.gid:
            mode &= ~stat.S_ISGID  # as the kernel does for a group one is not in
        self.by_path.setdefault(path, {}).update(st_mode=mode & 0o7777, st_ctime=time.time_ns())

    def chown(
        self, path: str, uid: int, gid: int, current: Mapping[str, int], ctx: Context
    ) -> None:
        """:manpage:`chown(2)`: ``-1`` keeps the owner or the group."""
        uid = current["st_uid"] if uid == -1 else uid
        gid = current["st_gid"] if gid == -1 else gid
        gives_away = uid != current["st_uid"] or gid not in (ctx.gid, current["st_gid"])
        if ctx.uid != 0 and (gives_away or not _owns(current, ctx)):
            raise fail(errno.EPERM, path)
        kept = self.by_path.setdefault(path, {})
        kept.update(st_uid=uid, st_gid=gid, st_ctime=time.time_ns())
        mode = kept.get("st_mode", current["st_mode"] & 0o7777)
        if mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISDIR(current["st_mode"]):
            kept["st_mode"] = mode & ~(stat.S_ISUID | stat.S_ISGID)  # POSIX: cleared

    def modified(self, path: str, *, keep: bool = False) -> None:
        """Content changed through defuse2: ``mtime`` and ``ctime`` become now, if any
        metadata is kept for ``path`` (``keep``: in any case)."""
        kept = self.by_path.get(path)
        if kept is None:
            if not keep:
                return
            kept = self.by_path[path] = {}
        kept["st_mtime"] = kept["st_ctime"] = time.time_ns()

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


def _owns(current: Mapping[str, int], ctx: Context) -> bool:
    return ctx.uid == 0 or ctx.uid == current["st_uid"]


def _may_write(current: Mapping[str, int], ctx: Context) -> bool:
    mode = current["st_mode"]
    if ctx.uid == current["st_uid"]:
        return bool(mode & stat.S_IWUSR)
    if ctx.gid == current["st_gid"]:
        return bool(mode & stat.S_IWGRP)
    return bool(mode & stat.S_IWOTH)
