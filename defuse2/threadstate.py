"""One Python thread state per libfuse worker thread, kept for as long as it serves.

Where this sits: kernel -> libfuse (threaded loop) -> binding's ctypes callbacks ->
**here** -> adapter. libfuse's threaded loop calls back from threads that Python did
not start. For such a thread, ctypes wraps every callback in ``PyGILState_Ensure()`` /
``PyGILState_Release()``: the first creates a Python thread state for the thread, the
second destroys it again, so each callback pays for a new thread state (and for a new
``threading.local`` namespace, which lives in it). That, not the threads themselves, is
what made the threaded loop two times slower than the single-threaded one
(``benchmarks/threaded_loop.py``, ``docs/performance.rst``).

:class:`KeptThreadStates` takes one more ``PyGILState_Ensure()`` in the first callback of
each worker thread and gives it back only when that thread is gone: ctypes' own pair then
finds the state there and neither creates nor destroys it. The states of threads that
have ended (libfuse 2 ends idle workers beyond ten; every worker ends with the loop) are
cleared when a new worker appears and when the loop has ended.
"""

from __future__ import annotations

import ctypes
import os
import threading

_ensure = ctypes.pythonapi.PyGILState_Ensure
_ensure.restype = ctypes.c_int
_current_state = ctypes.pythonapi.PyThreadState_Get
_current_state.restype = ctypes.c_void_p
_clear_state = ctypes.pythonapi.PyThreadState_Clear
_clear_state.argtypes = [ctypes.c_void_p]
_delete_state = ctypes.pythonapi.PyThreadState_Delete
_delete_state.argtypes = [ctypes.c_void_p]


class _Kept(threading.local):
    """Per thread: whether its state is kept (lives in that state, so is cheap to read)."""

    kept = False


class KeptThreadStates:
    """Keeps the Python thread state of every libfuse worker thread that calls back.

    Create it in the thread that runs the FUSE loop; call :meth:`keep` at the start of
    every callback; call :meth:`release` once the loop has returned.
    """

    def __init__(self) -> None:
        self._flag = _Kept()
        self._owner = threading.get_ident()  # the loop's own thread: a Python thread
        self._states: dict[int, int] = {}  # PyThreadState * -> its native thread id
        self._lock = threading.Lock()

    @property
    def flag(self) -> threading.local:
        """Per thread: ``flag.kept`` is true once :meth:`keep` has run there."""
        return self._flag

    def keep(self, foreign: bool = True) -> None:
        """Keep the calling thread's state (a flag read once it is kept).

        :param foreign: the thread is libfuse's, not Python's (a Python thread calling
            back, such as a spare reader, owns its state and frees it when it ends).
        """
        flag = self._flag
        if flag.kept:
            return
        flag.kept = True
        if not foreign or threading.get_ident() == self._owner:
            return
        _ensure()  # never released by this thread: its state outlives each callback
        with self._lock:
            self._release_ended()
            self._states[_current_state()] = threading.get_native_id()

    def release(self) -> None:
        """Free the kept states of the worker threads that have ended."""
        with self._lock:
            self._release_ended()

    @property
    def count(self) -> int:
        """How many thread states are kept now."""
        return len(self._states)

    def _release_ended(self) -> None:
        if not self._states:
            return
        try:
            alive = {int(name) for name in os.listdir("/proc/self/task")}
        except OSError:
            return  # cannot tell which threads ended: keep every state
        for state in [s for s, native_id in self._states.items() if native_id not in alive]:
            del self._states[state]
            # The thread is gone, so its state is current nowhere: clear and free it.
            _clear_state(state)
            _delete_state(state)
