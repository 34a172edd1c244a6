"""Spare readers: while a call is slow, other threads answer the other requests.

Where this sits: kernel -> libfuse session (:mod:`defuse2.session`) -> **readers** ->
binding callbacks -> adapter. libfuse's single-threaded loop reads one request from
``/dev/fuse``, runs its callbacks and sends the reply, in C: the cheapest way to serve a
request from Python (``benchmarks/threaded_loop.py``). But a callback that waits (on the
network, on a hung server) would hold every other request back.

So whenever a call waits, a *spare reader* joins in: a Python thread that reads the next
request from the same session (``fuse_session_receive_buf()``) and answers it
(``fuse_session_process_buf()``), as libfuse's threaded loop does. A spare reader is
started

- at once, by a call that is about to wait on something defuse2 runs (an ``async def``
  method on the event loop, a ``blocking`` method on the worker pool: see
  :func:`waiting`), when no spare reader is free;
- by a watchdog, for a plain method that has been running for a whole interval
  (:data:`INTERVAL`) while no reader was free.

A spare reader leaves after a request once nothing is slow any more, or when another
spare reader is free, so the loop goes back to one thread. At the end, every spare reader
is out of libfuse before the session is torn down.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger("defuse2.mount")

#: Seconds a plain method may run before the watchdog adds a reader.
INTERVAL = 0.05

#: Spare readers at most (each waiting call holds one thread).
LIMIT = 1000

_current = threading.local()  # .readers: the SpareReaders whose requests this thread reads
_active: list[SpareReaders] = []  # for libfuse's own worker threads (``-o threads``)


class Request(Protocol):
    """The request a thread waits for, as :func:`waiting` gives it."""

    def interrupted(self) -> bool:
        """Whether its caller gave up (a signal) or the mount is stopping."""


class _NoRequest:
    """Outside a mounted filesystem's callback (the test client): never interrupted."""

    def interrupted(self) -> bool:
        return False


def waiting() -> contextlib.AbstractContextManager[Request]:
    """Wrap a wait on a slow call: meanwhile another thread reads the next request, and
    the wait can look whether its request was interrupted.

    Outside a mounted filesystem's callback (the test client) it does nothing.
    """
    readers = getattr(_current, "readers", None)
    if readers is None and _active and _active[-1].serves_this_thread():
        readers = _active[-1]  # a worker thread of libfuse's own threaded loop
    return readers.waiting() if readers is not None else contextlib.nullcontext(_NoRequest())


class SpareReaders:
    """The spare readers of one session.

    :param session: the mounted session to read from.
    :param callback_code: the code object every callback runs first (the binding's
        wrapper): the watchdog finds callbacks on a thread's stack by it.
    """

    def __init__(self, session: Session, callback_code: CodeType) -> None:
        self._session = session
        self._callback_code = callback_code
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._idle = 0  # spare readers waiting for a request
        self._threads = 0  # spare readers alive
        self._waits = 0  # calls inside waiting()
        self._stuck = 0  # callbacks the watchdog saw running for a whole interval
        self._stopping = threading.Event()
        self._ending = threading.Event()  # the mount stops: waits end now
        self._watchdog = threading.Thread(target=self._watch, name="defuse2 watchdog", daemon=True)
        self.started = 0  # spare readers started so far
        #: Seconds after which a plain method still running is logged (``None``: never).
        self.warn_after: float | None = None
        self._waiting: set[int] = set()  # threads inside waiting(): they have a timeout
        self._warned: set[int] = set()

    def serve_here(self) -> None:
        """Mark the calling thread (the loop's own) as one that reads for this session."""
        _current.readers = self

    def start(self) -> None:
        """Start the watchdog."""
        _active.append(self)
        self._watchdog.start()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[Request]:
        """The calling thread waits on a slow call: see that a spare reader is free."""
        me = threading.get_ident()
        with self._lock:
            self._waits += 1
            self._waiting.add(me)
            spawn = self._needs_reader()
        if spawn:
            self._spawn()
        try:
            yield self
        finally:
            with self._lock:
                self._waits -= 1
                self._waiting.discard(me)

    def interrupted(self) -> bool:
        """Whether the request this thread serves was interrupted (``FUSE_INTERRUPT``:
        its caller got a signal), or the mount is stopping (see :meth:`end_waits`)."""
        return self._ending.is_set() or self._session.interrupted()

    def serves_this_thread(self) -> bool:
        """Whether the calling thread is inside one of this session's requests."""
        return self._session.serving_here()

    def end_waits(self) -> None:
        """The mount is stopping: every wait on a slow call ends now (``EINTR``)."""
        self._ending.set()

    def stop(self, unmount: Callable[[], object]) -> None:
        """After the loop: end the watchdog, wake the spare readers (``unmount`` makes
        their reads return), and wait until none is inside libfuse any more."""
        self._stopping.set()
        with contextlib.suppress(ValueError):
            _active.remove(self)
        with self._lock:
            busy = self._threads
        if busy:
            unmount()
        with self._lock:
            while self._threads:
                if not self._changed.wait(5.0):
                    log.warning("waiting for %d request(s) still being answered", self._threads)

    # -- inside ---------------------------------------------------------------------------
    def _needs_reader(self) -> bool:
        """(Lock held.) No spare reader is free, and one more may start: count it."""
        if self._idle or self._threads >= LIMIT or self._stopping.is_set():
            return False
        self._threads += 1
        return True

    def _spawn(self) -> None:
        self.started += 1
        thread = threading.Thread(target=self._read, name="defuse2 reader", daemon=True)
        thread.start()

    def _read(self) -> None:
        _current.readers = self
        session = self._session
        buffer, memory = session.new_buffer()
        try:
            while True:
                with self._lock:
                    self._idle += 1
                try:
                    size = session.receive(buffer, memory)
                finally:
                    with self._lock:
                        self._idle -= 1
                if size == -errno.EINTR:
                    continue
                if size <= 0:
                    break  # unmounted
                session.process(buffer)
                with self._lock:
                    if self._stopping.is_set() or self._idle or not (self._waits or self._stuck):
                        break
        finally:
            session.free_buffer(buffer)
            with self._lock:
                self._threads -= 1
                self._changed.notify_all()

    def _watch(self) -> None:
        seen: dict[int, FrameType] = {}
        since: dict[int, float] = {}  # when each running callback was first seen
        while not self._stopping.wait(INTERVAL):
            running = self._callbacks()
            stuck = sum(1 for ident, frame in running.items() if seen.get(ident) is frame)
            seen = running  # holding the frames keeps their identity unique
            now = time.monotonic()
            since = {id(frame): since.get(id(frame), now) for frame in running.values()}
            with self._lock:
                self._stuck = stuck
                spawn = stuck > 0 and self._needs_reader()
                waiting = set(self._waiting)
            if spawn:
                self._spawn()
            if self.warn_after is not None:
                self._warn_long(running, since, waiting)

    def _warn_long(
        self, running: dict[int, FrameType], since: dict[int, float], waiting: set[int]
    ) -> None:
        """Log, once, a plain method that has run past the filesystem's timeout."""
        assert self.warn_after is not None
        now = time.monotonic()
        self._warned &= {id(frame) for frame in running.values()}
        for ident, frame in running.items():
            started = since[id(frame)]
            if ident in waiting or id(frame) in self._warned or now - started < self.warn_after:
                continue  # a wait on the loop or the pool has a timeout of its own
            self._warned.add(id(frame))
            name = getattr(frame.f_locals.get("func"), "__name__", "a callback")
            path = (frame.f_locals.get("args") or (None,))[0]
            log.warning(
                "%s %s has run for %.1f s, past the %g s timeout: a plain method cannot be "
                "cut short (make it async def, or its route blocking=True, to give it one)",
                _operation(name),
                path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path,
                now - started,
                self.warn_after,
            )

    def _callbacks(self) -> dict[int, FrameType]:
        """The callback frame each thread is running now, by thread."""
        running = {}
        for ident, frame in sys._current_frames().items():
            current: FrameType | None = frame
            while current is not None and current.f_code is not self._callback_code:
                current = current.f_back
            if current is not None:
                running[ident] = current
        return running


def _operation(callback: str) -> str:
    """The operation a binding's callback serves: ``getattr`` for ``getattr_fuse_3``."""
    name = callback.split("_fuse_")[0].removesuffix("_2").removesuffix("_3")
    return {"fgetattr": "getattr", "ftruncate": "truncate"}.get(name, name)
