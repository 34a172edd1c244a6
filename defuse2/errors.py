"""Errors: the programmer's, and the one place where an exception becomes an errno.

Filesystem errors are plain :class:`OSError` values with a real errno: they travel
through the binding to the kernel and reach the caller as ``errno``. A mistake in how
defuse2 is *used* (a bad route, a resource method asking for an argument that does not
exist, a wrong return type) is a :class:`DefuseError` instead. It is deliberately *not*
an ``OSError``, so it can never be mistaken for an errno and quietly swallowed.

Where this sits: kernel -> libfuse -> binding -> adapter -> dispatcher -> resources and
store. Whatever a resource or a store raises is turned into the errno the caller sees by
:func:`errno_for`, and only there: the dispatcher uses it for resources, the mount's
callbacks (:mod:`defuse2.callbacks`) for everything else that escapes, and the test
client for what it calls. So ``raise FileNotFoundError(path)`` is ``ENOENT`` from a
resource or a store, mounted or in-process, and anything that carries no errno (a bug,
a :class:`DefuseError`, even ``SystemExit``) is logged with the operation, the path and
who serves it, and answered ``EIO``: the mount lives on.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable

log = logging.getLogger("defuse2")


class DefuseError(Exception):
    """A setup or programming mistake in code that uses defuse2."""


#: The errno a builtin :class:`OSError` subclass stands for when raised without one,
#: as in ``raise FileNotFoundError(path)``.
ERRNO_OF_CLASS: dict[type[OSError], int] = {
    FileNotFoundError: errno.ENOENT,
    FileExistsError: errno.EEXIST,
    NotADirectoryError: errno.ENOTDIR,
    IsADirectoryError: errno.EISDIR,
    PermissionError: errno.EACCES,
    InterruptedError: errno.EINTR,
    TimeoutError: errno.ETIMEDOUT,
    BlockingIOError: errno.EAGAIN,
    ProcessLookupError: errno.ESRCH,
    ChildProcessError: errno.ECHILD,
    BrokenPipeError: errno.EPIPE,
    ConnectionAbortedError: errno.ECONNABORTED,
    ConnectionRefusedError: errno.ECONNREFUSED,
    ConnectionResetError: errno.ECONNRESET,
}


def errno_of(error: BaseException) -> int | None:
    """The errno ``error`` stands for: its own, else the one its builtin :class:`OSError`
    subclass stands for; ``None`` if neither (then the answer is ``EIO``)."""
    if not isinstance(error, OSError):
        return None
    if isinstance(error.errno, int) and error.errno > 0:
        return error.errno
    for cls in type(error).__mro__:
        code = ERRNO_OF_CLASS.get(cls)
        if code is not None:
            return code
    return None


def errno_for(
    error: BaseException, op: str, path: object, served_by: str | Callable[[], str]
) -> int:
    """The errno to answer for ``error``, raised while serving ``op`` on ``path``.

    This is the errno boundary. An error without an errno is logged -- the operation,
    the path, who serves it, what went wrong -- and answered ``EIO``.

    :param served_by: the route (``"route /<name>.txt (Files)"``) or ``"store"``, or a
        function giving it, called only when something is logged.
    """
    code = errno_of(error)
    if code is not None:
        return code
    where = served_by if isinstance(served_by, str) else _safely(served_by)
    if isinstance(error, DefuseError):  # a wrong return value: the message says it all
        log.error("%s %s (%s): %s; answering EIO", op, path, where, error)
    else:
        log.error(
            "%s %s (%s) raised %s; answering EIO",
            op,
            path,
            where,
            type(error).__name__,
            exc_info=error,
        )
    return errno.EIO


def _safely(describe: Callable[[], str]) -> str:
    try:
        return describe()
    except Exception as exc:  # describing must never change the answer
        return f"? ({type(exc).__name__})"
