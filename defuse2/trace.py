"""``--trace``: one line per FUSE callback, to see what a command asks of a filesystem.

Where this sits: kernel -> libfuse -> binding -> **trace** -> mount adapter -> dispatcher.
When tracing is on, :func:`defuse2.adapter.operations_class` wraps each registered adapter
method with :func:`traced`; when it is off nothing is wrapped, so tracing costs nothing.

A line names the operation, the path, who serves it (a route and its variables, or the
store), the outcome and the time spent in Python, e.g.::

    getattr    /test0.txt   /<name>.<ext> {name='test0', ext='txt'}  -> mode=0o100444 size=20  31 µs
    open       /test0.txt   /<name>.<ext> {name='test0', ext='txt'}  -> fh=0  9 µs
    read       /test0.txt   /<name>.<ext> {name='test0', ext='txt'}  -> 20 bytes  14 µs
    getattr    /nope        store  -> ENOENT  12 µs

Each line is one :mod:`logging` record at ``INFO`` of the logger ``defuse2.trace``
(:data:`logger`), so the standard library routes, filters, formats and captures it; a
level above ``INFO`` on that logger silences a traced mount, and then no line is even
formatted. While a traced mount serves, :func:`logging_on` makes sure the lines are seen.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import errno_of
from .operations import ARGUMENTS, OPENING, TWO_PATHS

if TYPE_CHECKING:
    from .dispatch import Dispatcher

#: The logger of the trace: one record at ``INFO`` per callback, the line as its message.
logger = logging.getLogger("defuse2.trace")


def stderr_handler() -> logging.Handler:
    """A handler that prints each record's message alone on standard error, one line
    each, whole lines even from many threads: how the trace looks on a terminal."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


_lock = threading.Lock()
_serving = 0  # traced mounts inside logging_on()
_undo: list[Callable[[], None]] = []  # what the first of them changed


@contextlib.contextmanager
def logging_on() -> Iterator[None]:
    """Make the trace seen while a traced mount serves.

    The logger's level becomes ``INFO`` unless one was set for it. When no handler would
    receive its records (none on the logger or its ancestors: logging is not configured;
    ``logging.lastResort`` shows warnings only), a :func:`stderr_handler` is added to
    print them, where :func:`logging.basicConfig` would have printed them. Handlers the
    program (or pytest) configured get the records instead. Both changes are undone when
    the last traced mount ends.
    """
    global _serving
    with _lock:
        if _serving == 0:
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
                _undo.append(functools.partial(logger.setLevel, logging.NOTSET))
            if not logger.hasHandlers():
                handler = stderr_handler()
                logger.addHandler(handler)
                _undo.append(functools.partial(logger.removeHandler, handler))
        _serving += 1
    try:
        yield
    finally:
        with _lock:
            _serving -= 1
            while _serving == 0 and _undo:
                _undo.pop()()


def summarize(operation: str, result: Any) -> str:
    """A short form of what an operation returned: a size, a count, a handle, ``ok``."""
    if result is None:
        return "ok"
    if isinstance(result, bytes | bytearray | memoryview):
        return f"{len(result)} bytes"
    if isinstance(result, int):
        if operation in OPENING:
            return f"fh={result}"
        return f"{result} bytes" if operation == "write" else str(result)
    if isinstance(result, str):
        return repr(result)
    if isinstance(result, Mapping):
        if "st_mode" in result:
            return f"mode={result['st_mode']:#o} size={result.get('st_size', 0)}"
        if "f_blocks" in result:
            return f"blocks={result['f_blocks']} free={result.get('f_bavail', 0)}"
        return f"{len(result)} fields"
    if isinstance(result, list | tuple):
        return f"{len(result)} entries"
    return type(result).__name__


def describe(dispatcher: Dispatcher, path: Any) -> str:
    """Who serves ``path``: ``"<rule> {variables}"`` or ``"store"``."""
    if not isinstance(path, str):
        return "handle"
    try:
        rule, variables = dispatcher.describe(path)
    except Exception as exc:  # tracing must never change what the filesystem does
        return f"? ({type(exc).__name__})"
    if not variables:
        return rule
    pairs = ", ".join(f"{key}={value!r}" for key, value in variables.items())
    return f"{rule} {{{pairs}}}"


_OPEN_FLAGS = (
    ("O_CREAT", os.O_CREAT),
    ("O_EXCL", os.O_EXCL),
    ("O_TRUNC", os.O_TRUNC),
    ("O_APPEND", os.O_APPEND),
    ("O_DIRECTORY", os.O_DIRECTORY),
    ("O_NOFOLLOW", os.O_NOFOLLOW),
    ("O_SYNC", os.O_SYNC),
)


def _open_flags(flags: int) -> str:
    names = [("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[flags & os.O_ACCMODE]]
    names += [name for name, bit in _OPEN_FLAGS if flags & bit == bit]
    return "|".join(names)


def _access_mode(amode: int) -> str:
    names = [name for name, bit in (("R_OK", 4), ("W_OK", 2), ("X_OK", 1)) if amode & bit]
    return "|".join(names) or "F_OK"


_RENAME_FLAGS = (("RENAME_NOREPLACE", 1), ("RENAME_EXCHANGE", 2), ("RENAME_WHITEOUT", 4))


def format_argument(operation: str, name: str, value: Any) -> str:
    """One argument as ``name=value``, in the form that teaches most (octal modes, flags)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{name}=<{len(value)} bytes>"
    if name == "flags" and isinstance(value, int):
        if operation == "rename":
            return "flags=" + "|".join(n for n, bit in _RENAME_FLAGS if value & bit)
        return f"flags={_open_flags(value)}"
    if name == "mode" and isinstance(value, int) and operation != "fallocate":
        return f"mode={value:#o}"
    if name == "amode" and isinstance(value, int):
        return f"amode={_access_mode(value)}"
    return f"{name}={value!r}"


def format_line(
    operation: str, args: tuple[Any, ...], served_by: str, outcome: str, elapsed_ns: int
) -> str:
    """One trace line from its parts: operation, path, arguments, server, outcome, time."""
    path = args[0] if args else None
    shown = "(no path)" if path is None else str(path)
    names: tuple[str, ...] = ARGUMENTS.get(operation, ())
    rest = args[1:]
    if operation in TWO_PATHS and len(args) > 1:
        shown = f"{shown} -> {args[1]}"
        names, rest = names[2:], args[2:]
    shown_arguments = " ".join(
        format_argument(operation, name, value)
        for name, value in zip(names, rest, strict=False)
        if value is not None and not (operation == "rename" and name == "flags" and not value)
    )
    where = f"{shown} {shown_arguments}" if shown_arguments else shown
    return f"{operation:<10} {where:<32} {served_by}  -> {outcome}  {elapsed_ns // 1000} µs"


def traced(
    operation: str,
    method: Callable[..., Any],
    dispatcher: Dispatcher,
    sink: Callable[[str], None] | None = None,
) -> Callable[..., Any]:
    """Wrap an adapter ``method`` so each call emits one line: a record of :data:`logger`,
    formatted only when the logger is enabled for ``INFO``, or, given a ``sink``, a call
    to it with the line."""
    emit = logger.info if sink is None else sink

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            result = method(self, *args)
        except BaseException as exc:
            code = errno_of(exc)  # what the errno boundary will answer, without its log
            if code is None:
                outcome = f"EIO ({type(exc).__name__}: {exc})"
            else:
                outcome = errno.errorcode.get(code, str(code))
            raise
        else:
            outcome = summarize(operation, result)
            return result
        finally:
            elapsed = time.perf_counter_ns() - start
            if sink is not None or logger.isEnabledFor(logging.INFO):
                emit(
                    format_line(
                        operation,
                        args,
                        describe(dispatcher, args[0] if args else None),
                        outcome,
                        elapsed,
                    )
                )

    return wrapper
