"""Saving a store while it is mounted: on ``SIGUSR1``, every N seconds, and at unmount.

Where this sits: a terminal -> cli -> **autosave** -> the store's ``export_tar``. The
CLI's ``--save TAR`` saves the store when the filesystem is unmounted; while it is
mounted, ``kill -USR1 PID`` saves it at once, and ``--save-every SECONDS`` saves it on a
timer, so a crash loses at most what changed since the last save::

    defuse2 mount notes.py /tmp/m --save notes.tar --save-every 60
    kill -USR1 $(pgrep -f "defuse2 mount notes.py")     # save now

Each save is a point-in-time snapshot taken by the store under its own locks and
written while the filesystem serves on (:meth:`MemoryStore.export_tar
<defuse2.store.memory.MemoryStore.export_tar>`); the archive is replaced only once the
new one is complete. Saves run one at a time, in a thread of their own; each prints a
line (entries, bytes, seconds) -- timed ones only when they fail or take a second or
more -- and a failed one leaves the previous archive as it was.

The CLI starts and stops the saver as the filesystem's ``on_start``/``on_stop`` hooks,
so with ``--daemon`` it runs in the process that serves. How the signal arrives:
``SIGUSR1`` is blocked in the threads started after the saver starts (libfuse's among
them) and a thread of its own waits for it with ``signal.sigwait``, wherever the other
threads are (in C, serving requests); a thread that was running before may still take
it, and then a Python handler asks for the save.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

#: The signal that asks for a save.
SAVE_SIGNAL = signal.SIGUSR1

#: Timed saves are reported only when they fail or take this long (seconds).
SLOW = 1.0


class Saver:
    """Saves ``store`` to ``path`` on request, on :data:`SAVE_SIGNAL` and on a timer.

    :param store: anything with ``export_tar(path)`` (a
        :class:`~defuse2.store.memory.MemoryStore`).
    :param path: the archive to write (replaced atomically by each save).
    :param every: seconds between timed saves, or ``None`` for none.
    :param report: called with one line after each save (what was saved, or why not).
    """

    def __init__(
        self,
        store: Any,
        path: str,
        *,
        every: float | None = None,
        report: Callable[[str], None] = print,
    ) -> None:
        self.store = store
        self.path = path
        self.every = every
        self.report = report
        self._lock = threading.Lock()  # one save at a time
        self._wake = threading.Event()  # a save is asked for, or the end
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._restore: list[Callable[[], object]] = []

    def save(self, why: str, *, quiet: bool = False) -> bool:
        """Save now (after a save under way); report and return whether it worked.

        :param quiet: report only a failure, or a save that took :data:`SLOW` or more.
        """
        with self._lock:
            started = time.monotonic()
            try:
                summary = self.store.export_tar(self.path)
            except OSError as exc:
                self.report(f"saving {self.path} ({why}) failed: {_reason(exc)}")
                return False
            if not quiet or time.monotonic() - started >= SLOW:
                details = f": {summary}" if summary is not None else ""
                self.report(f"saved {self.path} ({why}){details}")
            return True

    def start(self, *, signals: bool = True) -> None:
        """Start saving on :data:`SAVE_SIGNAL` (``signals``) and every :attr:`every` seconds.

        Call from the main thread before the filesystem starts serving (an ``on_start``
        hook of a mount is).
        """
        self._threads.append(_thread(self._saving, "defuse2 saver"))
        if signals:
            # A thread that was running before us may still take the signal: then this
            # handler asks for the save (when the main thread next runs Python).
            previous = signal.signal(SAVE_SIGNAL, lambda number, frame: self._wake.set())
            self._restore.append(lambda: signal.signal(SAVE_SIGNAL, previous))
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {SAVE_SIGNAL})
            self._restore.append(lambda: signal.pthread_sigmask(signal.SIG_SETMASK, blocked))
            self._threads.append(_thread(self._waiting_for_signals, "defuse2 save signal"))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the threads (a save under way finishes first); no save is made."""
        self._stopping = True
        self._wake.set()
        for thread in self._threads:
            if thread.name == "defuse2 save signal" and thread.ident is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pthread_kill(thread.ident, SAVE_SIGNAL)  # out of sigwait
            thread.join()
        self._threads.clear()
        while self._restore:  # the mask first: a signal still pending meets our handler
            self._restore.pop()()

    def _waiting_for_signals(self) -> None:
        while True:
            signal.sigwait({SAVE_SIGNAL})
            if self._stopping:
                return
            self._wake.set()

    def _saving(self) -> None:
        while True:
            asked = self._wake.wait(self.every)
            self._wake.clear()
            if self._stopping:
                return
            if asked:
                self.save("on SIGUSR1")
            else:
                self.save(f"every {self.every:g} s", quiet=True)


def _thread(target: Callable[[], None], name: str) -> threading.Thread:
    return threading.Thread(target=target, name=name, daemon=True)


def _reason(exc: OSError) -> str:
    """An error's message without Python's ``[Errno N]`` and repeated path."""
    return exc.strerror or str(exc)
