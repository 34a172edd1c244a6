"""FileSystem: the object users build, like a Flask app.

Where this sits: user code registers resources on a :class:`FileSystem` with
:meth:`~FileSystem.route`; mounting hands the filesystem's dispatcher to libfuse through
the binding. Unrouted paths are served by the filesystem's store (a
:class:`~defuse2.store.memory.MemoryStore` unless you pass another).

::

    fs = FileSystem(quota="64 MiB")

    @fs.route("/<name>.txt")
    class Notes(ContentFile):
        def content(self, name):
            return f"hello {name}\\n"

    fs.main()        # python notes.py MOUNTPOINT --foreground
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from .dispatch import Dispatcher
from .errors import DefuseError
from .lifecycle import Lifecycle
from .operations import ARGUMENTS
from .resources import FunctionDirectory, FunctionFile, ImpliedDirectory, Resource
from .routing import Route, RouteMap
from .runner import DEFAULT_TIMEOUT, Runner, refuse_coroutine_functions
from .scaffold import Group, Scaffold, Source, join_rule
from .store.base import Context, Store

if TYPE_CHECKING:
    from .invalidation import Invalidator
    from .testing import TestClient

H = TypeVar("H", bound=Callable[[], Any])


class RouteInfo(NamedTuple):
    """One row of the route table, as ``defuse2 routes`` prints it."""

    rule: str
    resource: str
    operations: tuple[str, ...]
    implied: bool


class Match(NamedTuple):
    """Which route serves a path, and with which variables."""

    rule: str
    resource: str
    variables: Mapping[str, Any]


class FileSystem(Scaffold):
    """A filesystem made of routed resources, with a store for everything else.

    :param quota: byte quota of the default store (an int or a string like ``"64 MiB"``).
    :param max_nodes: node cap of the default store.
    :param store: a :class:`~defuse2.store.base.Store` to use instead of a new
        :class:`~defuse2.store.memory.MemoryStore`.
    :param converters: extra werkzeug converters, by name, for the rules.
    :param timeout: seconds an ``async def`` or ``blocking`` resource method may take
        before it answers ``ETIMEDOUT`` (``None``: no limit); a route's own ``timeout=``
        wins (see :mod:`defuse2.runner`).
    """

    def __init__(
        self,
        quota: int | str | None = None,
        *,
        max_nodes: int | None = None,
        store: Store | None = None,
        converters: Mapping[str, type] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        if store is None:
            from .store.memory import MemoryStore

            options: dict[str, Any] = {"max_nodes": max_nodes}
            if quota is not None:
                options["quota"] = quota
            store = MemoryStore(**options)
        elif quota is not None or max_nodes is not None:
            raise DefuseError(
                "quota and max_nodes configure the default store; "
                "give them to your own store instead"
            )
        refuse_coroutine_functions(store, ARGUMENTS, type(store).__name__)
        for converter in (converters or {}).values():
            refuse_coroutine_functions(converter, ("to_python", "to_url"), converter.__name__)
        self.store: Store = store
        #: Runs the ``async def`` and ``blocking`` methods (its
        #: :meth:`~defuse2.runner.Runner.loop` is the filesystem's event loop).
        self.runner = Runner(timeout)
        self.lifecycle = Lifecycle(self.runner)
        self._invalidators: list[Invalidator] = []
        implied = ImpliedDirectory()
        implied.filesystem = self
        self.url_map = RouteMap(converters, implied_directory=implied)
        self.start_time_ns = time.time_ns()
        self._instances: dict[type, Resource] = {}
        self._mounts = 0
        self._sessions = 0  # mounts and test clients serving now (see serving())

    # -- registration -------------------------------------------------------------------
    def register(self, group: Group, prefix: str | None = None) -> None:
        """Add a :class:`Group`'s routes under ``prefix`` (default: the group's own)."""
        group.register_on(self, prefix)

    def group(self, prefix: str) -> Group:
        """A new :class:`Group` registered under ``prefix``: ``api = fs.group("/api")``."""
        group = Group(prefix)
        self.register(group)
        return group

    def _check_open(self, rule: str) -> None:
        if self._mounts:
            raise DefuseError(
                f"cannot add route {rule!r} while the filesystem is mounted; "
                "register every route before mounting"
            )

    def _record(self, rule: str, source: Source, options: dict[str, Any]) -> None:
        self._check_open(rule)
        self.url_map.add(Route(rule, self._resource(source, rule), options=options))

    def _resource(self, source: Source, rule: str) -> Resource:
        """The instance serving a route of this filesystem, from what was recorded."""
        if isinstance(source, Resource):
            owner = vars(source).get("filesystem")
            if owner is not None and owner is not self:
                raise DefuseError(
                    f"route {rule!r}: this {type(source).__name__} instance already serves "
                    "another filesystem; register the class, or one instance per filesystem"
                )
            source.filesystem = self
            return source
        if not isinstance(source, type):  # a factory: a new instance for each route
            made = source()
            made.filesystem = self
            return made
        if source not in self._instances:
            try:
                instance = source()
            except TypeError as error:
                raise DefuseError(
                    f"{source.__name__}() must be constructible without arguments "
                    f"(it is created once, at registration): {error}; "
                    f"or pass an instance: fs.add_route({rule!r}, {source.__name__}(...))"
                ) from None
            instance.filesystem = self
            self._instances[source] = instance
        return self._instances[source]

    # -- introspection ------------------------------------------------------------------
    def routes(self) -> list[RouteInfo]:
        """The route table: rule, resource, the operations it defines, whether implied."""
        return [
            RouteInfo(r.rule, _name(r.resource), tuple(r.invokers), r.implied) for r in self.url_map
        ]

    def match(self, path: str) -> Match | None:
        """Which route serves ``path`` and with which variables; ``None``: the store."""
        found = self.url_map.match(path)
        if found is None:
            return None
        route, values = found
        return Match(route.rule, _name(route.resource), dict(values))

    def path_for(self, resource: type[Resource] | Callable[..., Any], **values: Any) -> str:
        """The real path that ``resource`` serves with ``values`` (never percent-encoded).

        ``fs.path_for(Files, name="a b", ext="txt")`` -> ``"/a b.txt"``.
        """
        candidates = [
            r
            for r in self.url_map
            if not r.implied
            and (
                type(r.resource) is resource
                or getattr(r.resource, "content", None) is resource
                or getattr(r.resource, "entries", None) is resource
            )
        ]
        if not candidates:
            raise DefuseError(f"{_name(resource)} has no route on this filesystem")
        for route in candidates:
            if set(route.variables) == set(values):
                return self.url_map.build_path(route, values)
        rules = ", ".join(f"{r.rule!r}" for r in candidates)
        raise DefuseError(
            f"no route of {_name(resource)} takes exactly {sorted(values)}; its rules: {rules}"
        )

    # -- running ------------------------------------------------------------------------
    def dispatcher(self, context: Callable[[], Context] | None = None) -> Dispatcher:
        """The object that answers FUSE operations for this filesystem."""
        return Dispatcher(self, context)

    def test_client(self) -> TestClient:
        """An ``os``-like client that drives this filesystem in-process, without a mount."""
        from .testing import TestClient

        return TestClient(self)

    # -- lifecycle -------------------------------------------------------------------
    def on_start(self, hook: H) -> H:
        """Run ``hook()`` (plain or ``async def``) when the filesystem starts serving,
        before the first request: open connections there. If it raises, the mount fails
        with a message naming it. See :mod:`defuse2.lifecycle`."""
        return self.lifecycle.on_start(hook)

    def on_stop(self, hook: H) -> H:
        """Run ``hook()`` (plain or ``async def``) when the filesystem stops serving,
        after the last request: close connections there. What it raises is logged."""
        return self.lifecycle.on_stop(hook)

    @contextmanager
    def serving(self, invalidator: Invalidator | None = None) -> Iterator[None]:
        """Run the start hooks, then the block, then the stop hooks; mounts and the test
        client used in a ``with`` block do this around serving.

        :param invalidator: what tells this mount's kernel to forget a path
            (:meth:`invalidate`), if anything can.
        :raises ~defuse2.lifecycle.StartError: a start hook raised.
        """
        self.lifecycle.start()
        self._sessions += 1
        if invalidator is not None:
            self._invalidators.append(invalidator)
        try:
            yield
        finally:
            if invalidator is not None:
                self._invalidators.remove(invalidator)
            try:
                self.lifecycle.stop()
            finally:
                self._sessions -= 1
                if not self._sessions:
                    self.runner.stop()  # cancels what still runs on the event loop

    def invalidate(self, path: str, wait: float = 0.0) -> None:
        """Tell the kernel that the content and attributes of ``path`` changed behind
        its back: it forgets what it cached for that name and asks again next time. The
        resource serving ``path`` is told first (:meth:`~defuse2.Resource.invalidated`), so that
        a :class:`~defuse2.ContentFile` computes the size anew.

        Call it from anywhere (a resource method, a hook, a task on the event loop, another
        thread); the kernel is told from a thread of its own, in order, soon after.

        :param wait: seconds to wait until the kernel was told (0: return at once).

        On libfuse 3 this is ``fuse_invalidate_path()``. libfuse 2's high-level API has
        no such call: there it does nothing, and a changed routed file is seen at its next
        ``open`` (the kernel keeps no routed file's pages from one open to the next) with
        attributes at most ``attr_timeout`` old (1 s). Routes whose content changes all
        the time are better declared ``dynamic``. The test client caches nothing.
        """
        found = self.url_map.match(path)
        if found is not None:
            found[0].resource.invalidated(path)  # what defuse2 itself remembers, first
        for invalidator in list(self._invalidators):
            invalidator.invalidate(path, wait)

    def mount(self, mountpoint: str | Path, foreground: bool = True, **options: Any) -> None:
        """Mount at ``mountpoint`` and serve until unmounted (or SIGINT/SIGTERM).

        Every libfuse ``-o`` option passes through as a keyword (``allow_other=True``).
        """
        from .mount import mount

        with self._mounted_state():
            mount(self, str(mountpoint), foreground=foreground, **options)

    def mounted(self, mountpoint: str | Path, **options: Any) -> AbstractContextManager[Path]:
        """Mount in the background for a ``with`` block, and always unmount after it.

        For example, ``with fs.mounted("/tmp/m") as root:`` gives ``root``, a
        :class:`~pathlib.Path` of the live mount point, to read and write with ``open``.

        :param mountpoint: an empty directory.
        :param options: libfuse ``-o`` options, as for :meth:`mount`.
        """
        from .mount import mounted

        return self._while_mounted(mounted(self, str(mountpoint), **options))

    def main(self, argv: list[str] | None = None) -> None:
        """Command line for a script: ``python fs.py MOUNTPOINT [--foreground] [--trace]``."""
        from .cli import run_script

        run_script(self, argv)

    def _mounted_state(self) -> AbstractContextManager[None]:
        from contextlib import contextmanager

        @contextmanager
        def state() -> Iterator[None]:
            self._mounts += 1
            try:
                yield
            finally:
                self._mounts -= 1

        return state()

    def _while_mounted(self, inner: AbstractContextManager[Path]) -> AbstractContextManager[Path]:
        from contextlib import contextmanager

        @contextmanager
        def both() -> Iterator[Path]:
            with self._mounted_state(), inner as root:
                yield root

        return both()


def _name(resource: Any) -> str:
    if isinstance(resource, FunctionFile | FunctionDirectory):
        return str(resource.__name__)
    if inspect.isclass(resource) or inspect.isfunction(resource):
        return str(resource.__name__)
    return type(resource).__name__


__all__ = ["FileSystem", "Group", "Match", "RouteInfo", "join_rule"]
