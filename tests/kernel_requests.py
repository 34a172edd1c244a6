"""Count the FUSE requests the kernel sends for a block of system calls.

A filesystem is mounted through the CLI with libfuse's debug log on (``-o debug``):
libfuse prints one line per request it reads from ``/dev/fuse``
(``unique: 8, opcode: LOOKUP (1), ...``), whether a callback answers it or libfuse
itself. :meth:`RequestLog.count` marks the start and the end of a block by a ``stat`` of
a name that does not exist, whose ``LOOKUP`` libfuse's log names, and counts the
requests in between. The counts are exact and repeatable: what a test asserts about
them does not depend on how busy the machine is.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from conformance.targets import LIBFUSE3_VARIABLE, CliMount

REQUEST = re.compile(r"^(?:[a-z]+ )?unique: \d+, opcode: ([A-Z_]+) ")
MARK = ".requests-mark-{}-end"  # no mark's name holds another's

_marks = itertools.count()


class RequestLog:
    """``python -m defuse2 mount APP MOUNTPOINT --foreground -o debug,...`` for a block.

    :param app: ``module:attribute`` of the filesystem (``tests/`` is on the path).
    :param binding: ``mfusepy`` or ``fusepy``; ``libfuse``: ``"2"`` or ``"3"``.
    :param options: more ``-o`` options.
    :param arguments: more arguments of ``defuse2 mount`` (``["--store", DIR]``).
    """

    def __init__(
        self, app: str, binding: str, libfuse: str, *options: str, arguments: Sequence[str] = ()
    ) -> None:
        options_argument = ",".join(["debug", *options])
        self._mount = CliMount(app, binding, libfuse, *arguments, "-o", options_argument)
        self.binding, self.libfuse = binding, libfuse
        self.root = Path()

    def __enter__(self) -> RequestLog:
        self.root = Path(self._mount.__enter__())
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._mount.__exit__()

    def _mark(self) -> str:
        name = MARK.format(next(_marks))
        with contextlib.suppress(FileNotFoundError):
            os.stat(self.root / name)
        return name

    @contextlib.contextmanager
    def count(self, settle: float = 0.05) -> Iterator[Counter[str]]:
        """Count the requests of the block, by opcode, into the counter it yields.

        :param settle: seconds to wait after the block for requests the kernel sends
            after the system call returned (``RELEASE`` of a closed file).
        """
        counts: Counter[str] = Counter()
        begin = self._mark()
        yield counts
        time.sleep(settle)
        end = self._mark()
        counts.update(self._between(begin, end))

    def count_until(
        self,
        block: Callable[[], object],
        holds: Callable[[Counter[str]], bool],
        attempts: int = 3,
    ) -> Counter[str]:
        """The requests of ``block()``, counted again (up to ``attempts`` times) while
        ``holds(counts)`` is false.

        Another process may empty the kernel's caches in the middle of a block (the
        benchmarks' ``drop_caches``); what the filesystem lets the kernel keep shows in a
        count that holds once. A filesystem that never lets it fails every attempt.
        """
        for _ in range(attempts):
            with self.count() as counts:
                block()
            if holds(counts):
                break
        return counts

    def _between(self, begin: str, end: str, timeout: float = 10.0) -> Counter[str]:
        deadline = time.monotonic() + timeout
        while end not in (text := self._mount.output()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the server never logged {end}:\n{text[-2000:]}")
            time.sleep(0.02)
        counts: Counter[str] = Counter()
        inside = False
        for line in text.splitlines():
            request = REQUEST.match(line)
            if request is not None:
                counts[request.group(1)] += inside
            elif begin in line and not inside:
                inside = True
            elif end in line:
                counts["LOOKUP"] -= 1  # the end mark's own
                break
        return +counts


def libfuse_version(libfuse: str) -> tuple[int, int]:
    """``(3, 14)``: the version of the libfuse the mounts of ``libfuse`` load."""
    path = os.environ.get(LIBFUSE3_VARIABLE) if libfuse == "3" else None
    path = path or ctypes.util.find_library("fuse3" if libfuse == "3" else "fuse")
    number = ctypes.CDLL(path).fuse_version()
    return divmod(number, 10) if number < 100 else divmod(number, 100)
