"""How long the kernel may cache each attribute reply: libfuse 3's timeouts, per reply.

Where this sits: kernel -> libfuse 3 -> binding -> adapter (``getattr``) -> **here**.
The kernel caches a file's attributes, and the name that led to it, for as long as the
reply that brought them says (``attr_valid``, ``entry_valid``). libfuse's high-level API
takes both from its live ``struct fuse_config`` (``attr_timeout``, ``entry_timeout``),
which it reads when it builds the reply, *after* the ``getattr`` callback has returned.
Setting them inside ``getattr`` therefore chooses the timeouts of the reply being built.
libfuse 2 hands its configuration to nobody: there every reply gets ``-o attr_timeout``.

On the threaded loop another thread's ``getattr`` can change the config between a
callback's return and its reply. :class:`ReplyTimeouts` makes that harmless: a thread
that answered with 0 s stays *pending* until its next ``getattr`` callback, which it can
only reach after it has sent that reply; the config goes back to the base timeout only
when no thread is pending. A reply that needs 0 s therefore never gets more; one that
could be cached may get 0 s meanwhile, which costs a round trip, never a stale answer.
libfuse hands requests to its idle workers in turn, so pending threads clear quickly.
"""

from __future__ import annotations

import threading
from typing import Any


class ReplyTimeouts:
    """Chooses, inside each ``getattr`` callback, the timeouts of the reply libfuse builds.

    :param config: libfuse 3's live ``struct fuse_config`` (from ``init``).
    :param base: the timeout of cacheable replies, in seconds.
    """

    def __init__(self, config: Any, base: float) -> None:
        self._config = config
        self._base = base
        self._zero = False  # whether the config holds 0 s now
        self._pending: set[int] = set()  # threads whose last reply needs 0 s
        self._lock = threading.Lock()
        config.attr_timeout = config.entry_timeout = base

    def choose(self, volatile: bool) -> None:
        """Set the timeouts for the reply the calling thread is about to build.

        :param volatile: the answer may not be cached (0 s); else the base timeout.
        """
        if not volatile and not self._zero:
            return  # the base timeout is set and no thread is pending
        me = threading.get_ident()
        with self._lock:
            if volatile:
                self._pending.add(me)
                if not self._zero:
                    self._zero = True
                    self._config.attr_timeout = self._config.entry_timeout = 0.0
            else:
                self._pending.discard(me)  # this thread's previous reply has been sent
                if not self._pending:
                    self._zero = False
                    self._config.attr_timeout = self._config.entry_timeout = self._base

    @property
    def pending(self) -> int:
        """How many threads may still be building a reply that needs 0 s."""
        return len(self._pending)
