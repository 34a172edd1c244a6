"""How long the kernel may cache each attribute reply: libfuse 3's timeouts, per reply.

Where this sits: kernel -> libfuse 3 -> binding -> adapter (``getattr``) -> **here**.
The kernel caches a file's attributes, and the name that led to it, for as long as the
reply that brought them says (``attr_valid``, ``entry_valid``). libfuse's high-level API
takes both from its live ``struct fuse_config`` (``attr_timeout``, ``entry_timeout``),
which it reads when it builds the reply, *after* the ``getattr`` callback has returned.
Setting them inside ``getattr`` therefore chooses the timeouts of the reply being built.
libfuse 2 hands its configuration to nobody: there every reply gets ``-o attr_timeout``.

Replies get one of a few timeouts (:mod:`defuse2.caching` says which): the longest for
what only the kernel changes, a shorter one for what may change behind its back, 0 for
what must never be cached. On the threaded loop another thread's ``getattr`` can change
the config between a callback's return and its reply. :class:`ReplyTimeouts` makes that
harmless: a thread that answered with less than the longest timeout stays *pending*
until its next ``getattr`` callback, which it can only reach after it has sent that
reply, and the config holds the shortest timeout any pending thread needs (the longest
when none is pending). A reply therefore never gets more than it asked for; one may get
less meanwhile, which costs a round trip, never a stale answer. libfuse hands requests
to its idle workers in turn, so pending threads clear quickly.
"""

from __future__ import annotations

import threading
from typing import Any


class ReplyTimeouts:
    """Chooses, inside each ``getattr`` callback, the timeouts of the reply libfuse builds.

    :param config: libfuse's live ``struct fuse_config`` (from ``init``).
    :param longest: the longest timeout any reply gets, in seconds.
    """

    def __init__(self, config: Any, longest: float) -> None:
        self._config = config
        self._longest = longest
        self._current = longest  # what the config holds
        self._pending: dict[int, float] = {}  # thread -> the shorter timeout it needs
        self._lock = threading.Lock()
        config.attr_timeout = config.entry_timeout = longest

    def choose(self, seconds: float) -> None:
        """Set the timeouts for the reply the calling thread is about to build.

        :param seconds: the longest the answer may be cached (0: not at all).
        """
        if seconds >= self._longest and not self._pending:
            return  # the longest timeout is set and no thread needs less
        me = threading.get_ident()
        with self._lock:
            if seconds < self._longest:
                self._pending[me] = seconds
            else:
                self._pending.pop(me, None)  # this thread's previous reply has been sent
            wanted = min(self._pending.values(), default=self._longest)
            if wanted != self._current:
                self._current = wanted
                self._config.attr_timeout = self._config.entry_timeout = wanted

    @property
    def pending(self) -> int:
        """How many threads may still be building a reply that needs a shorter timeout."""
        return len(self._pending)
