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
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .dispatch import Dispatcher
from .errors import DefuseError
from .resources import FunctionDirectory, FunctionFile, ImpliedDirectory, Resource
from .routing import Route, RouteMap
from .scaffold import Group, Scaffold, Source, join_rule
from .store.base import Context, Store

if TYPE_CHECKING:
    from .testing import TestClient


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
    """

    def __init__(
        self,
        quota: int | str | None = None,
        *,
        max_nodes: int | None = None,
        store: Store | None = None,
        converters: Mapping[str, type] | None = None,
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
        self.store: Store = store
        implied = ImpliedDirectory()
        implied.filesystem = self
        self.url_map = RouteMap(converters, implied_directory=implied)
        self.start_time_ns = time.time_ns()
        self._instances: dict[type, Resource] = {}
        self._mounts = 0

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
