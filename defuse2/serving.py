"""Serving a mount: the loop's thread, readiness, signals, prompt shutdown, daemon mode.

Where this sits: :func:`defuse2.mount.mount` and :func:`~defuse2.mount.mounted` ->
**serving** -> the binding's ``FUSE`` class -> libfuse (:mod:`defuse2.session`). libfuse
serves from a thread of its own (:class:`Serving`), so the thread that mounted stays in
Python: it waits for the mount to appear, and afterwards for ``SIGINT``, ``SIGTERM`` or
``SIGHUP`` (only the main thread can) or for the mount to end by itself.

Stopping (:meth:`Serving.stop`) never waits for a resource method: it unmounts
(``fusermount -u``, lazily if the mount is busy), gives the loop half a second, then
ends the kernel connection (``/sys/fs/fuse/connections/N/abort``: every waiting system
call fails with ``ENOTCONN`` at once) and gives it another half second. A loop still
held by a hung method after that is left behind in its daemon thread, with a warning;
nothing is mounted any more, and the thread ends with the process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

from .callbacks import guarded_call
from .preflight import MountError
from .readers import SpareReaders
from .session import MountFailed, Session

log = logging.getLogger("defuse2.mount")

#: The signals that stop a mount served from the main thread.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: Seconds :meth:`Serving.stop` gives the loop after unmounting, and again after ending
#: the connection.
GRACE = 0.5


class Serving:
    """One mount, served by libfuse from a thread of its own.

    :param fuse: mounts and serves until unmounted, given what to call with the libfuse
        session before its loop starts (the binding's ``FUSE`` class, all else bound).
    :param path: the mount point.
    :param initialized: set by the adapter once libfuse has started serving.
    :param unmount: unmounts ``path`` (lazily if it must); whether it is free after.
    :param is_mounted: whether the mount is there (without asking it).
    :param abort: ends the kernel connection of the mount (``fusectl``).
    :param warn_after: seconds after which a plain method still running is logged.
    """

    def __init__(
        self,
        fuse: Callable[[Callable[[Session], Callable[[], None]]], None],
        path: str,
        *,
        initialized: threading.Event,
        unmount: Callable[[], bool],
        is_mounted: Callable[[], bool],
        abort: Callable[[], bool],
        warn_after: float | None = None,
    ) -> None:
        self._fuse = fuse
        self.path = path
        self._initialized = initialized
        self._unmount = unmount
        self._is_mounted = is_mounted
        self._abort = abort
        self._warn_after = warn_after
        self.failure: BaseException | None = None
        self.ended = threading.Event()  # the loop has returned (or failed)
        self.readers: SpareReaders | None = None
        self._thread = threading.Thread(target=self._serve, name=f"defuse2 {path}", daemon=True)

    def _serve(self) -> None:
        # Signals go to the thread that mounted, never to libfuse's readers.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self._fuse(self._opened)
        except BaseException as exc:  # reported by the thread that waits
            self.failure = exc
        finally:
            self.ended.set()

    def _opened(self, session: Session) -> Callable[[], None]:
        readers = SpareReaders(session, guarded_call.__code__)
        readers.warn_after = self._warn_after
        readers.serve_here()
        readers.start()
        self.readers = readers
        return lambda: readers.stop(self._unmount)

    def start(self, timeout: float) -> None:
        """Mount, and return once the mount answers.

        :raises MountError: libfuse failed, or nothing was mounted within ``timeout``.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (self._initialized.is_set() and self._is_mounted()):
            if self.ended.wait(0.005):
                if self.failure is None:
                    return  # mounted, and already unmounted by someone else
                raise self._failed()
            if time.monotonic() > deadline:
                self.stop()
                raise MountError(f"{self.path} was not mounted within {timeout} s")

    def _failed(self) -> BaseException:
        failure = self.failure
        if isinstance(failure, MountFailed):
            return MountError(
                f"libfuse could not mount {self.path} "
                f"(status {failure.args[0]}; its own message is on stderr)"
            )
        return failure or MountError(f"the FUSE loop of {self.path} failed")

    def wait(self, requested: threading.Event) -> None:
        """Serve until the mount ends by itself or ``requested`` is set (by
        :func:`stop_signals`)."""
        while not (self.ended.is_set() or requested.wait(0.5)):
            pass

    def stop(self) -> bool:
        """Unmount and end the loop, never waiting on a hung method: whether it ended.

        A loop that has already ended (unmounted by ``fusermount -u``, ``defuse2 umount``)
        left nothing to unmount: the path is not unmounted again, as it may hold a new
        mount by now.
        """
        if self.readers is not None:
            self.readers.end_waits()  # calls waiting on the event loop or the pool end now
        if self.ended.is_set():
            return True
        if not self._unmount():
            log.error("could not unmount %s", self.path)
        if self.ended.wait(GRACE):
            return True
        # Still served: files are open there, or a method holds the loop.
        if self._abort() and self.ended.wait(GRACE):
            return True
        log.warning(
            "%s is unmounted, but a resource method is still running; its thread is left "
            "to finish on its own",
            self.path,
        )
        return False


@contextlib.contextmanager
def stop_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop`` on ``SIGINT``/``SIGTERM``/``SIGHUP`` meanwhile (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number in STOP_SIGNALS:
        signal.signal(number, lambda number, frame: stop())
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def daemonize() -> Callable[[BaseException | None], None]:
    """Go on in a child process of a new session, as libfuse's ``-f``-less mode does.

    The parent waits until the child reports, through the returned function, that it
    is serving (then it exits with 0) or that it failed (then it prints why and exits
    with 1). Call it before any thread is started: only the calling thread forks.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    readable, writable = os.pipe()
    if os.fork():
        os.close(writable)
        with os.fdopen(readable, "rb") as pipe:
            message = pipe.read()
        if message == b"ok":
            os._exit(0)
        text = message.decode(errors="replace") or "the filesystem process ended early"
        print(f"defuse2: error: {text}", file=sys.stderr, flush=True)
        os._exit(1)
    os.close(readable)
    os.setsid()

    def report(failure: BaseException | None) -> None:
        with os.fdopen(writable, "wb") as pipe:
            pipe.write(b"ok" if failure is None else str(failure).encode())
        if failure is None:  # serving: let go of the terminal, as libfuse does
            with open(os.devnull, "r+b") as null:
                for descriptor in (0, 1, 2):
                    os.dup2(null.fileno(), descriptor)

    return report
