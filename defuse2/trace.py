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
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import errno_of
from .operations import ARGUMENTS, OPENING, TWO_PATHS

if TYPE_CHECKING:
    from .dispatch import Dispatcher

_lock = threading.Lock()


def stderr_sink(line: str) -> None:
    """Write one trace line to standard error (whole lines, even from many threads)."""
    with _lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


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
    sink: Callable[[str], None],
) -> Callable[..., Any]:
    """Wrap an adapter ``method`` so each call emits one line to ``sink``."""

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
            sink(
                format_line(
                    operation,
                    args,
                    describe(dispatcher, args[0] if args else None),
                    outcome,
                    elapsed,
                )
            )

    return wrapper
