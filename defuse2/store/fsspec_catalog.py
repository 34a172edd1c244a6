"""What an FsspecStore knows of its backend's names: cached, and kept where it must be.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> FsspecStore ->
**catalog** -> fsspec -> the backend. Every ``stat`` of an object store is a request
(S3: a ``HEAD``, then a ``LIST`` for a directory), so the catalog keeps, for
``cache_seconds``:

- the ``info`` of each name the backend was asked about, absent ones included;
- the names of each directory listed, which also answer the ``stat`` of every name in
  it and that any other name is absent (``ls -l`` costs one listing, a ``create`` of a
  new name no request at all).

It also holds what the backend cannot: the inode number of each name (stable while
mounted, carried over by ``rename``), the time each directory last changed through the
store, and the directories to show although the backend no longer has them (a prefix
vanishes with its last object; POSIX keeps an emptied directory until ``rmdir``).
"""

from __future__ import annotations

import errno
import itertools
import threading
import time
from typing import Any

from .fsspec_files import Backend
from .paths import check_name, fail

#: The zero-byte object that keeps an empty directory on an object store. Not listed;
#: a file of that name cannot be made through the mount (``EPERM``).
MARKER = ".defuse2-directory"

_MISSING: dict[str, Any] = {}
#: The ``info`` of a directory the store knows without asking.
DIRECTORY: dict[str, Any] = {"type": "directory", "size": 0}


class Catalog:
    """The names of ``backend``, as last seen, for ``cache_seconds``.

    :param started: the time (ns) a directory shows until it changes through the store.
    """

    def __init__(self, backend: Backend, cache_seconds: float, started: int) -> None:
        self.backend = backend
        self.cache_seconds = cache_seconds
        self.started = started
        self.lock = threading.Lock()
        #: directories emptied through the store, shown until ``rmdir`` or unmount
        self.kept: set[str] = set()
        self._infos: dict[str, tuple[float, dict[str, Any]]] = {}  # path -> (until, info)
        self._listed: dict[str, tuple[float, set[str]]] = {}  # directory -> (until, names)
        self._changed: dict[str, int] = {}  # directory -> when it changed here (ns)
        self._inodes: dict[str, int] = {"/": 1}
        self._next_inode = itertools.count(2)

    def info(self, path: str) -> dict[str, Any]:
        """The backend's ``info`` of ``path``; ``ENOENT`` if it has no such name.

        :raises OSError: ``ENAMETOOLONG`` for a name over 255 bytes.
        """
        if path == "/":
            return DIRECTORY
        check_name(path.rpartition("/")[2])
        if not is_utf8(path):
            raise fail(errno.ENOENT, path)  # no object can have this name
        now = time.monotonic()
        cached = self._infos.get(path)
        if cached is not None and cached[0] > now:
            if cached[1] is _MISSING:
                return self._kept_or_missing(path)
            return cached[1]
        parent, _, name = path.rpartition("/")
        listed = self._listed.get(parent or "/")
        if listed is not None and listed[0] > now and name not in listed[1]:
            return self._kept_or_missing(path)
        try:
            info: dict[str, Any] = self.backend.info(path)
        except FileNotFoundError:
            self.missing(path)
            return self._kept_or_missing(path)
        if name == MARKER:
            raise fail(errno.ENOENT, path)
        self._infos[path] = (now + self.cache_seconds, info)
        return info

    def exists(self, path: str) -> bool:
        """Whether ``path`` names something (as far as the cache knows)."""
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def holds_file(self, path: str) -> bool:
        """Whether the backend has a file at ``path`` now (asked, never cached)."""
        try:
            return bool(self.backend.info(path)["type"] == "file")
        except FileNotFoundError:
            return False

    def _kept_or_missing(self, path: str) -> dict[str, Any]:
        if path in self.kept:
            return DIRECTORY
        raise fail(errno.ENOENT, path)

    def names(self, path: str) -> set[str]:
        """The names the backend lists in directory ``path``, remembered with their
        ``info``; ``ENOTDIR`` for a file, ``ENOENT`` for nothing."""
        full = self.backend.path(path).rstrip("/")
        try:
            entries = self.backend.listing(path)
        except FileNotFoundError:
            if path != "/" and path not in self.kept:
                raise fail(errno.ENOENT, path) from None
            entries = []
        names: set[str] = set()
        until = time.monotonic() + self.cache_seconds
        prefix = path.rstrip("/")
        for entry in entries:
            if str(entry["name"]).rstrip("/") == full:  # the path itself: a file
                if entry["type"] != "directory":
                    raise fail(errno.ENOTDIR, path)
                continue
            name = self.backend.name(entry)
            if name and name != MARKER:
                names.add(name)
                self._infos[f"{prefix}/{name}"] = (until, entry)
        self._listed[path] = (until, set(names))
        return names

    def missing(self, path: str) -> None:
        """The backend has no ``path`` (for now)."""
        self._infos[path] = (time.monotonic() + self.cache_seconds, _MISSING)

    def forget(self, *paths: str) -> None:
        """Drop what is cached of ``paths`` and of their directories' listings."""
        with self.lock:
            for path in paths:
                self._infos.pop(path, None)
                self._listed.pop(path.rpartition("/")[0] or "/", None)

    def added(self, path: str, info: dict[str, Any]) -> None:
        """The store made ``path`` (or uploaded it) with ``info``: the cache knows it
        now, and a cached listing of its directory holds it."""
        until = time.monotonic() + self.cache_seconds
        parent, _, name = path.rpartition("/")
        with self.lock:
            self._infos[path] = (until, info)
            listed = self._listed.get(parent or "/")
            if listed is not None:
                listed[1].add(name)
            if info["type"] == "directory" and path not in self._listed:
                self._listed[path] = (until, set())  # new: nothing in it yet

    def removed(self, path: str, *, keep_parent: bool, keep_inode: bool = False) -> None:
        """``path`` is gone; with ``keep_parent``, its directory stays shown."""
        self.touch(path)
        parent, _, name = path.rpartition("/")
        with self.lock:
            self.missing(path)
            self._listed.pop(path, None)
            listed = self._listed.get(parent or "/")
            if listed is not None:
                listed[1].discard(name)
            if not keep_inode:
                self._inodes.pop(path, None)
            self.kept.discard(path)
            if parent and keep_parent:
                self.kept.add(parent)

    def touch(self, path: str) -> int:
        """The directory of ``path`` changed now; the time, in ns."""
        now = time.time_ns()
        self._changed[path.rpartition("/")[0] or "/"] = now
        return now

    def directory_mtime(self, path: str) -> int:
        """When directory ``path`` last changed through the store (or the mount began)."""
        return self._changed.get(path, self.started)

    def inode(self, path: str | None) -> int:
        """The inode number of ``path`` while mounted (a new one for no path)."""
        if path is None:
            return next(self._next_inode)
        inode = self._inodes.get(path)
        if inode is None:
            with self.lock:
                inode = self._inodes.setdefault(path, next(self._next_inode))
        return inode

    def move(self, old: str, new: str) -> None:
        """``old`` is now called ``new``: it keeps its inode number."""
        with self.lock:
            self._inodes[new] = self._inodes.pop(old, 0) or next(self._next_inode)


def is_utf8(name: str) -> bool:
    """Whether ``name`` is valid Unicode (object names are; a name with bytes that are
    not UTF-8 arrives with lone surrogates, and no object can have it)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
