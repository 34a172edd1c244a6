"""Code that runs when a filesystem starts serving and when it stops: ``@fs.on_start``,
``@fs.on_stop``.

Where this sits: beside the stack. A mount (:func:`defuse2.mount.mount`,
:func:`~defuse2.mount.mounted`) and the test client used as a context manager run the
start hooks before the first request and the stop hooks after the last, so a filesystem
over a database or a web API can open its connections there and close them::

    @fs.on_start
    async def connect():
        global session
        session = aiohttp.ClientSession()

    @fs.on_stop
    async def disconnect():
        await session.close()

Hooks are plain functions or ``async def`` (awaited on the filesystem's event loop, where
``async def`` resource methods run too); they take no arguments. Start hooks run in the
order they were declared; if one raises, the rest do not run, the mount fails with
:class:`StartError` naming the hook, and no stop hook runs (as with Starlette's
lifespan). Stop hooks run in the reverse order, each even when another raised; what
they raise is logged, never raised: a filesystem that is stopping cannot be kept.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import DefuseError
from .runner import Runner, is_async

log = logging.getLogger("defuse2")

H = TypeVar("H", bound=Callable[[], Any])


class StartError(DefuseError):
    """A start hook raised: the filesystem does not serve."""


class Lifecycle:
    """The start and stop hooks of one filesystem.

    :param runner: where ``async def`` hooks are awaited.
    """

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._start: list[Callable[[], Any]] = []
        self._stop: list[Callable[[], Any]] = []

    def on_start(self, hook: H) -> H:
        """Run ``hook`` when the filesystem starts serving; returned unchanged."""
        self._start.append(_checked(hook, "on_start"))
        return hook

    def on_stop(self, hook: H) -> H:
        """Run ``hook`` when the filesystem stops serving; returned unchanged."""
        self._stop.append(_checked(hook, "on_stop"))
        return hook

    def start(self) -> None:
        """Run the start hooks, in order.

        :raises StartError: a hook raised (the exception is its ``__cause__``).
        """
        for hook in self._start:
            try:
                self._call(hook)
            except BaseException as error:
                raise StartError(
                    f"on_start hook {_name(hook)}() failed, so the filesystem does not "
                    f"serve: {type(error).__name__}: {error}"
                ) from error

    def stop(self) -> None:
        """Run the stop hooks, last declared first; log what they raise."""
        for hook in reversed(self._stop):
            try:
                self._call(hook)
            except BaseException:
                log.exception("on_stop hook %s() raised; carrying on", _name(hook))

    def _call(self, hook: Callable[[], Any]) -> None:
        if is_async(hook):
            self._runner.run(hook(), timeout=None, what=f"hook {_name(hook)}()")
        else:
            hook()


def _name(hook: Callable[..., Any]) -> str:
    return getattr(hook, "__qualname__", repr(hook))


def _checked(hook: Any, kind: str) -> Callable[[], Any]:
    if not callable(hook):
        raise DefuseError(f"@fs.{kind} decorates a function, not {hook!r}")
    try:
        inspect.signature(hook).bind()
    except TypeError:
        raise DefuseError(
            f"@fs.{kind} hook {_name(hook)}() must take no arguments (it is called as "
            f"{_name(hook)}())"
        ) from None
    except ValueError:
        pass  # no signature to read (a builtin): trust it
    if inspect.isasyncgenfunction(hook):
        raise DefuseError(f"@fs.{kind} hook {_name(hook)}() is an async generator; use async def")
    return hook  # type: ignore[no-any-return]
