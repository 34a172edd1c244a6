"""Telling the kernel to forget what it cached about a path, from a thread of its own.

Where this sits: kernel <- libfuse <- **invalidation** <- adapter. The kernel keeps a
file's attributes and pages for as long as the filesystem allowed; when the content
changes some other way than through that kernel inode, the filesystem tells it so with
libfuse 3's ``fuse_invalidate_path()``: the kernel drops the attributes and the cached
pages of that name, and asks again next time.

That call writes a notification to ``/dev/fuse``, and the kernel handles it at once: it
waits for pages that are being read. A read waits for its ``READ`` reply, which a
single-threaded loop busy in the same callback can never send. So the notifications are
sent by a thread of their own, in the order they were asked for. A callback may wait a
moment for its own to be done (so the change it made is never seen stale afterwards),
but never longer: if the kernel is waiting for a read meanwhile, that read overlaps the
change anyway, and the notification goes out as soon as it is answered. libfuse 2's
high-level API has no such call: there :func:`invalidator` gives ``None``.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
from typing import Any

log = logging.getLogger("defuse2.mount")

ENCODING, ERRORS = "utf-8", "surrogateescape"


class Invalidator:
    """Sends ``fuse_invalidate_path()`` for the paths it is given, from its own thread.

    :param invalidate_path: libfuse's ``fuse_invalidate_path(struct fuse *, const char *)``.
    :param get_context: libfuse's ``fuse_get_context()``; :meth:`attach` reads the
        ``struct fuse *`` from it inside a callback.
    """

    def __init__(self, invalidate_path: Any, get_context: Any) -> None:
        self._invalidate_path = invalidate_path
        self._get_context = get_context
        self._fuse: int | None = None
        self._queue: queue.SimpleQueue[tuple[bytes, threading.Event | None] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # held while libfuse is called, and to close

    def attach(self) -> None:
        """Remember the mount's ``struct fuse``; call inside a callback (``init``)."""
        self._fuse = self._get_context().contents.fuse

    def invalidate(self, path: str, wait: float = 0.0) -> None:
        """Have the kernel forget the attributes and pages it holds for ``path``.

        :param wait: seconds to wait until it is done; 0: return at once.
        """
        if self._fuse is None:
            return
        done = threading.Event() if wait else None
        self._queue.put((path.encode(ENCODING, ERRORS), done))
        self._start()
        if done is not None:
            done.wait(wait)

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and self._fuse is not None:
                    self._thread = threading.Thread(
                        target=self._run, name="defuse2 invalidation", daemon=True
                    )
                    self._thread.start()

    def close(self) -> None:
        """Send nothing more: the mount is going away (libfuse's ``destroy``).

        Returns once no notification is being sent (libfuse frees the mount's
        ``struct fuse`` next), or after a second if the kernel is stuck in one.
        """
        locked = self._lock.acquire(timeout=1.0)
        self._fuse = None
        if locked:
            self._lock.release()
        self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            path, done = item
            with self._lock:
                if self._fuse is None:
                    return
                error = self._invalidate_path(ctypes.c_void_p(self._fuse), path)
            if done is not None:
                done.set()
            if error and error != -2:  # -ENOENT: the kernel does not know the name
                log.debug("fuse_invalidate_path(%r) answered %d", path, error)


def invalidator(library: Any, major: int) -> Invalidator | None:
    """An :class:`Invalidator` over ``library`` (libfuse 3's ``CDLL``); ``None`` on 2."""
    if major < 3:
        return None
    invalidate_path = library["fuse_invalidate_path"]  # fresh function objects
    invalidate_path.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    invalidate_path.restype = ctypes.c_int
    get_context = library["fuse_get_context"]
    get_context.argtypes = []
    get_context.restype = ctypes.POINTER(_Context)
    return Invalidator(invalidate_path, get_context)


class _Context(ctypes.Structure):
    """The start of ``struct fuse_context``: the mount's ``struct fuse *``."""

    _fields_ = [("fuse", ctypes.c_void_p)]
