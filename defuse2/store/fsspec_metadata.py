"""Modes, owners and times of an FsspecStore's names: what the backend cannot keep.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> FsspecStore ->
**metadata**. An object store keeps content and its own modification time, nothing
else: every file shows ``file_mode``, every directory ``directory_mode``, all owned by
the mounting user. What ``chmod``, ``chown`` and ``utimens`` set, and the owner and mode
of names made through the mount, are kept here, in memory, for as long as the store
lives (``"session"``): tools that copy attributes (``cp -a``, ``rsync -a``, ``tar x``)
then work, and a new mount shows the defaults again. With ``"fixed"`` a change of any
of them is refused with ``EPERM``, as ``vfat`` refuses modes it cannot store.

Each name with attributes of its own costs one small dict here until it is removed.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Mapping
from typing import Literal

from .base import UTIME_NOW, UTIME_OMIT, Context, Stat
from .paths import fail
from .permissions import in_group

Policy = Literal["session", "fixed"]


class Metadata:
    """The ``st_*`` values set through the mount, by path."""

    def __init__(self, policy: Policy, uid: int, gid: int, file_mode: int, directory_mode: int):
        self.policy = policy
        self.uid, self.gid = uid, gid
        self.file_mode, self.directory_mode = file_mode, directory_mode
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, int]] = {}
        #: path -> (the time of its last write, when its upload ended), in ns
        self._uploads: dict[str, tuple[int, int]] = {}

    def apply(self, path: str | None, st: dict[str, int]) -> dict[str, int]:
        """``st`` with what was set for ``path``."""
        if path is not None:
            values = self._values.get(path)
            if values is not None:
                st.update(values)
        return st

    def change(self, path: str, current: Mapping[str, int], changes: Mapping[str, int]) -> None:
        """Set ``changes`` (``chmod``, ``chown``, ``utimens``); ``ctime`` moves too.

        :raises OSError: ``EPERM`` under ``"fixed"`` for a value that differs.
        """
        if self.policy == "fixed":
            if any(current[key] != value for key, value in changes.items()):
                raise fail(errno.EPERM, path)
            return
        with self._lock:
            self._values.setdefault(path, {}).update(changes, st_ctime=time.time_ns())

    def created(
        self, path: str, kind: int, mode: int, ctx: Context | None, parent: Mapping[str, int]
    ) -> None:
        """``path`` was just made with ``mode`` by ``ctx`` in a directory with attributes
        ``parent``: note what the defaults miss. A setgid directory passes on its group,
        and its setgid bit to a directory, as Linux does."""
        uid, gid = (self.uid, self.gid) if ctx is None else (ctx.uid, ctx.gid)
        if parent["st_mode"] & stat.S_ISGID:
            gid = parent["st_gid"]
            if kind == stat.S_IFDIR:
                mode |= stat.S_ISGID
        default = self.directory_mode if kind == stat.S_IFDIR else self.file_mode
        values: dict[str, int] = {}
        if mode != default:
            values["st_mode"] = kind | mode
        if (uid, gid) != (self.uid, self.gid):
            values.update(st_uid=uid, st_gid=gid)
        with self._lock:
            self._values.pop(path, None)
            if values and self.policy == "session":
                self._values[path] = values

    def modified(self, path: str, when: int) -> None:
        """The content of ``path`` (or the names in it) changed at ``when`` (ns): a time
        set earlier moves to it, as a write moves any ``mtime``."""
        values = self._values.get(path)
        if values is not None and "st_mtime" in values:
            with self._lock:
                values.update(st_mtime=when, st_ctime=when)

    def uploaded(self, path: str, when: int) -> None:
        """``path`` was just uploaded, its content last changed at ``when`` (ns)."""
        if self.policy == "session":
            with self._lock:
                self._uploads[path] = (when, time.time_ns())

    def modified_at(self, path: str, backend: int) -> int:
        """The modification time to show for ``path``, whose backend says ``backend``.

        The backend's time of an upload of ours is the upload's (later than the writes,
        and on S3 cut to whole seconds): the file would seem to change on its own, and
        ``make`` and ``rsync`` compare these times. So the time of the last write made
        through the mount stays shown while the backend's is no later than that upload;
        a later one is another client's write, and shows.
        """
        upload = self._uploads.get(path)
        if upload is None or backend > upload[1]:
            return backend
        return upload[0]

    def written(self, path: str, ctx: object) -> None:
        """``path`` was written or truncated by ``ctx`` (a :class:`Context`, a function
        giving one, or ``None``): setuid and setgid go as Linux clears them for anyone
        but root."""
        values = self._values.get(path)
        mode = values.get("st_mode", 0) if values is not None else 0
        if not mode & (stat.S_ISUID | stat.S_ISGID):
            return
        caller = ctx() if callable(ctx) else ctx
        if not isinstance(caller, Context) or caller.uid == 0:
            return
        cleared = mode & stat.S_ISUID
        if mode & stat.S_ISGID and (mode & stat.S_IXGRP or not in_group(caller, self.gid_of(path))):
            cleared |= stat.S_ISGID
        with self._lock:
            values = self._values.setdefault(path, {})
            values["st_mode"] = mode & ~cleared

    def gid_of(self, path: str) -> int:
        """The group ``path`` shows."""
        return self._values.get(path, {}).get("st_gid", self.gid)

    def move(self, old: str, new: str) -> None:
        """``old`` is now called ``new`` (which loses what it had)."""
        with self._lock:
            self._values.pop(new, None)
            if old in self._values:
                self._values[new] = self._values.pop(old)
            self._uploads.pop(new, None)
            if old in self._uploads:
                self._uploads[new] = self._uploads.pop(old)

    def drop(self, path: str) -> None:
        """``path`` is gone."""
        with self._lock:
            self._values.pop(path, None)
            self._uploads.pop(path, None)


class AttributeOperations:
    """The store operations on modes, owners and times, over :class:`Metadata`.

    The store provides ``getattr``, its :class:`Metadata` as ``_metadata``, the mounting
    user as ``_uid``/``_gid``, and ``_path_of(path, fh)``: the path a handle goes by.
    """

    _metadata: Metadata
    _uid: int
    _gid: int

    def getattr(self, path: str | None, fh: int | None = None) -> Stat:
        raise NotImplementedError

    def _path_of(self, path: str | None, fh: int | None) -> str:
        raise NotImplementedError

    # -- modes, owners, times -----------------------------------------------------------
    def chmod(
        self, path: str | None, mode: int, fh: int | None = None, *, ctx: Context | None = None
    ) -> None:
        """Keep the mode for the session (``EPERM`` with ``metadata="fixed"``)."""
        path, current = self._existing(path, fh)
        kind = stat.S_IFMT(current["st_mode"])
        self._metadata.change(path, current, {"st_mode": kind | mode & 0o7777})

    def chown(
        self,
        path: str | None,
        uid: int,
        gid: int,
        fh: int | None = None,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Keep the owner for the session (``EPERM`` with ``metadata="fixed"``).

        On anything but a directory it clears setuid, and setgid with group-execute, as
        Linux does (a mount that leaves that to the store does not ask for it).
        """
        path, current = self._existing(path, fh)
        changes = {key: value for key, value in (("st_uid", uid), ("st_gid", gid)) if value != -1}
        mode = current["st_mode"]
        if self._metadata.policy != "fixed" and not stat.S_ISDIR(mode):
            cleared = mode & ~stat.S_ISUID
            if mode & stat.S_IXGRP:
                cleared &= ~stat.S_ISGID
            if cleared != mode:
                changes["st_mode"] = cleared
        self._metadata.change(path, current, changes)

    def utimens(
        self,
        path: str | None,
        times: tuple[int, int] | None = None,
        fh: int | None = None,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Keep the times for the session (``EPERM`` with ``metadata="fixed"``)."""
        path, current = self._existing(path, fh)
        now = time.time_ns()
        changes = {}
        for key, value in zip(
            ("st_atime", "st_mtime"), times or (UTIME_NOW, UTIME_NOW), strict=True
        ):
            if value != UTIME_OMIT:
                changes[key] = now if value == UTIME_NOW else value
        self._metadata.change(path, current, changes)

    def _existing(self, path: str | None, fh: int | None) -> tuple[str, Stat]:
        """The path a change applies to, and its attributes now (``ENOENT`` if none)."""
        path = self._path_of(path, fh)
        return path, self.getattr(path, fh)

    def access(self, path: str, amode: int, *, ctx: Context | None = None) -> None:
        """Check ``amode`` against the mode bits shown (``EACCES`` if denied)."""
        st = self.getattr(path)
        ctx = ctx or Context(self._uid, self._gid, os.getpid())
        if ctx.uid == 0:
            executable = stat.S_ISDIR(st["st_mode"]) or bool(st["st_mode"] & 0o111)
            allowed = not amode & os.X_OK or executable
        else:
            shift = 6 if ctx.uid == st["st_uid"] else 3 if ctx.gid == st["st_gid"] else 0
            allowed = amode & (st["st_mode"] >> shift) & 0o7 == amode & 0o7
        if not allowed:
            raise fail(errno.EACCES, path)
