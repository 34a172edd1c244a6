"""Resource methods that wait: ``async def`` ones on an event loop, ``blocking`` ones on a
pool of threads, each within its timeout.

Where this sits: dispatcher -> invoker (``defuse2.signatures``) -> **runner** ->
resource method. A plain ``def`` method runs on the thread that received the request,
and costs nothing more (a hand-off to another thread would cost more than a whole
request). Two kinds of methods are handed off instead, at registration
(``wrap_invokers()``), so that the thread that received the request *waits* for them
in a way defuse2 controls:

- an ``async def`` method runs on the filesystem's asyncio event loop (one thread, started
  on first use), so many of them wait at once without a thread each;
- a plain method of a route marked ``blocking=True`` runs on the filesystem's pool of
  threads.

While it waits, the receiving thread lets another thread read requests
(``defuse2.readers.waiting()``), and ends the wait early

- at the **timeout** (the route's ``timeout=``, else the filesystem's, default
  :data:`DEFAULT_TIMEOUT`): the call answers ``ETIMEDOUT`` and is logged with the
  operation, path, route and elapsed time;
- when the caller is **interrupted** (Ctrl-C on a ``cat``: the kernel sends
  ``FUSE_INTERRUPT``, which libfuse marks on the request, and its ``fuse_interrupted()``
  reports): the call answers ``EINTR``;
- when the mount is **stopping**: ``EINTR``.

What happens to the abandoned call: a coroutine is cancelled (``CancelledError`` is
raised where it awaits, so ``finally`` blocks and ``async with`` run); a pooled plain
method cannot be stopped by Python and runs on in its pool thread until it returns, its
result thrown away (a thread of the pool stays busy meanwhile). A plain method not marked
``blocking`` has no timeout: nothing can interrupt it, but it holds back only its own
request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import functools
import inspect
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from . import readers
from .errors import DefuseError

if TYPE_CHECKING:
    from .routing import Route

log = logging.getLogger("defuse2")

#: Seconds an ``async`` or ``blocking`` method may take, unless its route or its
#: filesystem says otherwise (``timeout=None``: no limit).
DEFAULT_TIMEOUT = 30.0

#: How often a waiting thread looks whether its caller was interrupted, in seconds.
POLL = 0.1

#: Seconds a call may take before its thread lets a spare reader take the next requests.
GRACE = 0.005

#: Threads of the pool that runs ``blocking`` methods, at most.
WORKERS = 32

_UNSET: Any = object()
_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _block_signals() -> None:
    """Leave the stop signals to the thread that mounted (see :mod:`defuse2.serving`)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


class _Raised:
    """A coroutine's exception, carried out of the event loop as a value: asyncio lets
    ``KeyboardInterrupt`` or ``SystemExit`` raised in a task stop the loop itself."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _guarded(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # re-raised in the thread that waits
        return _Raised(error)


class Runner:
    """The event loop and thread pool of one filesystem, and the waits on them.

    :param timeout: seconds a call may take by default (``None``: no limit).
    """

    def __init__(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    # -- the event loop and the pool ------------------------------------------------------
    def loop(self) -> asyncio.AbstractEventLoop:
        """The filesystem's event loop, running in a thread of its own (started now if
        need be). Schedule work on it with :func:`asyncio.run_coroutine_threadsafe`."""
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def run() -> None:
                    _block_signals()
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="defuse2 event loop", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    WORKERS, thread_name_prefix="defuse2 blocking", initializer=_block_signals
                )
            return self._pool

    def stop(self) -> None:
        """Cancel what runs on the loop, stop it and the pool (both start again if used)."""
        with self._lock:
            loop, thread, pool = self._loop, self._loop_thread, self._pool
            self._loop = self._loop_thread = self._pool = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if loop is not None and thread is not None:

            def cancel_all() -> None:
                for task in asyncio.all_tasks(loop):
                    task.cancel()
                loop.call_soon(loop.stop)

            loop.call_soon_threadsafe(cancel_all)
            thread.join(2.0)
            if not thread.is_alive():
                loop.close()

    # -- waiting ----------------------------------------------------------------------------
    def run(
        self,
        awaitable: Awaitable[Any],
        *,
        timeout: float | None = _UNSET,
        what: str = "a coroutine",
    ) -> Any:
        """Run ``awaitable`` on the event loop and wait for its result here.

        :param timeout: seconds (default: the filesystem's); ``None``: no limit.
        :param what: how the log names the call (``"read /a.txt (route /<name>)"``).
        :raises TimeoutError: past the timeout (``ETIMEDOUT``).
        :raises InterruptedError: the caller was interrupted, or the mount stops.
        """
        loop = self.loop()
        if threading.current_thread() is self._loop_thread:
            raise RuntimeError(f"{what} was called from the event loop itself; await it")
        future = asyncio.run_coroutine_threadsafe(_guarded(awaitable), loop)
        outcome = self._wait(future, self.timeout if timeout is _UNSET else timeout, what)
        if type(outcome) is _Raised:
            raise outcome.error
        return outcome

    def call(
        self,
        function: Callable[..., Any],
        *args: Any,
        timeout: float | None = _UNSET,
        what: str = "a call",
    ) -> Any:
        """Run ``function(*args)`` on the pool and wait for its result here (see
        :meth:`run`); a call past its timeout runs on, abandoned."""
        future = self._executor().submit(function, *args)
        return self._wait(future, self.timeout if timeout is _UNSET else timeout, what)

    def _wait(
        self, future: concurrent.futures.Future[Any], timeout: float | None, what: str
    ) -> Any:
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        # Most calls are quick: answer those without waking anybody else.
        try:
            return future.result(GRACE if timeout is None else min(GRACE, timeout))
        except TimeoutError:
            if future.done():
                raise  # the call itself raised TimeoutError
        with readers.waiting() as request:
            while True:
                left = POLL if deadline is None else min(POLL, deadline - time.monotonic())
                done, _ = concurrent.futures.wait((future,), max(left, 0.0))
                if done:
                    return future.result()
                elapsed = time.monotonic() - start
                if deadline is not None and time.monotonic() >= deadline:
                    future.cancel()
                    log.error("%s timed out after %.1f s; answering ETIMEDOUT", what, elapsed)
                    raise TimeoutError(errno.ETIMEDOUT, f"{what}: no answer within {timeout} s")
                if request.interrupted():
                    future.cancel()
                    log.warning(
                        "%s: the caller gave up after %.1f s; answering EINTR", what, elapsed
                    )
                    raise InterruptedError(errno.EINTR, f"{what}: interrupted")


# -- registration ---------------------------------------------------------------------------


def is_async(function: Any) -> bool:
    """Whether ``function`` is an ``async def`` (a coroutine function)."""
    return inspect.iscoroutinefunction(function)


def check_not_async_generator(function: Any, where: str) -> None:
    """Refuse an ``async def`` with ``yield`` (defuse2 awaits results, not iterates)."""
    if inspect.isasyncgenfunction(function):
        raise DefuseError(
            f"{where} is an async generator (async def with yield); make it an async def "
            "that returns its whole result"
        )


def refuse_coroutine_functions(owner: Any, names: Iterable[str], what: str) -> None:
    """Refuse ``async def`` methods of ``owner`` that defuse2 calls as plain functions
    (a store's operations, a converter's ``to_python``): a registration error, never a
    coroutine that is never awaited."""
    for name in names:
        method = getattr(owner, name, None)
        if method is not None and (is_async(method) or inspect.isasyncgenfunction(method)):
            raise DefuseError(
                f"{what}.{name}() is async def, but defuse2 calls it as a plain function; "
                "make it a plain def (resource methods, shape helpers and hooks may be async)"
            )


def runner_of(route: Route) -> Runner:
    """The runner of the filesystem that ``route``'s resource serves."""
    filesystem = getattr(route.resource, "filesystem", None)
    runner = getattr(filesystem, "runner", None)
    if runner is None:
        raise DefuseError(f"route {route.rule!r}: its resource belongs to no filesystem")
    return runner  # type: ignore[no-any-return]


def _timeout(route: Route) -> Callable[[Runner], float | None]:
    """The route's timeout, or a function of the runner giving the filesystem's."""
    if "timeout" in route.options:
        fixed: float | None = route.options["timeout"]
        return lambda runner: fixed
    return lambda runner: runner.timeout


def wrap_invokers(route: Route, invokers: dict[str, Any]) -> dict[str, Any]:
    """Hand off, for ``route``, the methods that wait: an ``async def`` method's invoker
    runs it on the event loop, a ``blocking`` route's plain method's on the pool; every
    other invoker is returned as it is. ``async def`` helpers of a shape (``content``,
    ``entries``...) are wrapped on the resource so that the shape's methods can call
    them as plain functions."""
    resource = route.resource
    blocking = bool(route.options.get("blocking", False))
    timeout_of = _timeout(route)
    wrapped = dict(invokers)
    for op, invoke in invokers.items():
        method = getattr(resource, op)
        what = f"{op} %s (route {route.rule})"
        if is_async(method):
            wrapped[op] = _async_invoker(invoke, runner_of(route), timeout_of, what)
        elif blocking:
            wrapped[op] = _pooled_invoker(invoke, runner_of(route), timeout_of, what)
    for name in getattr(resource, "injected", {}):
        helper = getattr(resource, name, None)
        if helper is not None and is_async(helper):
            setattr(resource, name, _awaited(helper, runner_of(route), timeout_of, name, route))
    return wrapped


def _async_invoker(
    invoke: Callable[..., Any],
    runner: Runner,
    timeout_of: Callable[[Runner], float | None],
    what: str,
) -> Callable[..., Any]:
    def run_on_loop(values: Any, path: str, context: Any, *args: Any) -> Any:
        # The invoker calls the async def here, on the receiving thread (the caller's
        # context is read here); its coroutine runs on the loop.
        return runner.run(
            invoke(values, path, context, *args), timeout=timeout_of(runner), what=what % path
        )

    return run_on_loop


def _pooled_invoker(
    invoke: Callable[..., Any],
    runner: Runner,
    timeout_of: Callable[[Runner], float | None],
    what: str,
) -> Callable[..., Any]:
    def run_on_pool(values: Any, path: str, context: Any, *args: Any) -> Any:
        caller = context()  # read here: libfuse knows the caller on this thread only
        return runner.call(
            invoke,
            values,
            path,
            lambda: caller,
            *args,
            timeout=timeout_of(runner),
            what=what % path,
        )

    return run_on_pool


def _awaited(
    helper: Callable[..., Coroutine[Any, Any, Any]],
    runner: Runner,
    timeout_of: Callable[[Runner], float | None],
    name: str,
    route: Route,
) -> Callable[..., Any]:
    @functools.wraps(helper)
    def awaited(*args: Any, **kwargs: Any) -> Any:
        what = f"{type(route.resource).__name__}.{name}() (route {route.rule})"
        return runner.run(helper(*args, **kwargs), timeout=timeout_of(runner), what=what)

    return awaited
