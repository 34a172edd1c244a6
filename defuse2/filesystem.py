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
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from .dispatch import Dispatcher
from .errors import DefuseError
from .operations import ARGUMENTS
from .resources import FunctionDirectory, FunctionFile, ImpliedDirectory, Resource
from .routing import Route, RouteMap, split_rule
from .signatures import check, invoker
from .store.base import Context, Store

if TYPE_CHECKING:
    from .testing import TestClient

R = TypeVar("R", bound=type[Resource])
F = TypeVar("F", bound=Callable[..., Any])


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


class Group:
    """Routes that belong together under a prefix, like a Flask blueprint.

    Declare routes on the group, then register it: ``fs.register(api, prefix="/api")``.
    Routes added after registration go to every filesystem it is registered with.
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._records: list[tuple[str, str, Any, dict[str, Any]]] = []
        self._targets: list[tuple[FileSystem, str]] = []

    def _record(self, kind: str, rule: str, target: Any, options: dict[str, Any]) -> None:
        self._records.append((kind, rule, target, options))
        for filesystem, prefix in self._targets:
            filesystem._apply(kind, join_rule(prefix, rule), target, options)

    def route(self, rule: str) -> Callable[[R], R]:
        """Like :meth:`FileSystem.route`, relative to the group's prefix."""

        def decorator(cls: R) -> R:
            self._record("route", rule, cls, {})
            return cls

        return decorator

    def file(self, rule: str, *, mode: int = 0o444, dynamic: bool = False) -> Callable[[F], F]:
        """Like :meth:`FileSystem.file`, relative to the group's prefix."""

        def decorator(function: F) -> F:
            self._record("file", rule, function, {"mode": mode, "dynamic": dynamic})
            return function

        return decorator

    def directory(self, rule: str) -> Callable[[F], F]:
        """Like :meth:`FileSystem.directory`, relative to the group's prefix."""

        def decorator(function: F) -> F:
            self._record("directory", rule, function, {})
            return function

        return decorator


def join_rule(prefix: str, rule: str) -> str:
    """``join_rule("/api", "/users")`` -> ``"/api/users"``; ``"/"`` is the prefix itself."""
    prefix = prefix.rstrip("/")
    if rule == "/":
        return prefix or "/"
    return prefix + rule


class FileSystem:
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
        self.url_map = RouteMap(converters)
        self.start_time_ns = time.time_ns()
        self._instances: dict[type, Resource] = {}
        self._mounts = 0

    # -- registration -------------------------------------------------------------------
    def route(self, rule: str) -> Callable[[R], R]:
        """Serve the paths that match ``rule`` with the decorated resource class.

        Routes stack: one class may serve several rules. The class is returned unchanged.
        """

        def decorator(cls: R) -> R:
            self._apply("route", rule, cls, {})
            return cls

        return decorator

    def file(self, rule: str, *, mode: int = 0o444, dynamic: bool = False) -> Callable[[F], F]:
        """Serve ``rule`` as a read-only file whose content the function returns.

        ::

            @fs.file("/motd")
            def motd():
                return "Welcome!\\n"
        """

        def decorator(function: F) -> F:
            self._apply("file", rule, function, {"mode": mode, "dynamic": dynamic})
            return function

        return decorator

    def directory(self, rule: str) -> Callable[[F], F]:
        """Serve ``rule`` as a read-only directory whose names the function returns."""

        def decorator(function: F) -> F:
            self._apply("directory", rule, function, {})
            return function

        return decorator

    def register(self, group: Group, prefix: str | None = None) -> None:
        """Add a :class:`Group`'s routes under ``prefix`` (default: the group's own)."""
        prefix = group.prefix if prefix is None else prefix
        group._targets.append((self, prefix))
        for kind, rule, target, options in group._records:
            self._apply(kind, join_rule(prefix, rule), target, options)

    def group(self, prefix: str) -> Group:
        """A new :class:`Group` registered under ``prefix``: ``api = fs.group("/api")``."""
        group = Group(prefix)
        self.register(group)
        return group

    def _apply(self, kind: str, rule: str, target: Any, options: dict[str, Any]) -> None:
        if self._mounts:
            raise DefuseError(
                f"cannot add route {rule!r} while the filesystem is mounted; "
                "register every route before mounting"
            )
        if kind == "route":
            resource = self._instance(target, rule)
        elif not callable(target) or inspect.isclass(target):
            raise DefuseError(
                f"fs.{kind}({rule!r}) decorates a function; for a class use fs.route({rule!r})"
            )
        elif kind == "file":
            resource = FunctionFile(target, options["mode"], options["dynamic"])
        else:
            resource = FunctionDirectory(target)
        self._add(Route(rule, resource))

    def _instance(self, cls: Any, rule: str) -> Resource:
        if not (inspect.isclass(cls) and issubclass(cls, Resource)):
            hint = f"use fs.file({rule!r}) for a function" if callable(cls) else ""
            raise DefuseError(
                f"fs.route({rule!r}) decorates a subclass of defuse2.Resource, "
                f"not {cls!r}; {hint}".rstrip("; ")
            )
        if cls not in self._instances:
            try:
                instance = cls()
            except TypeError as error:
                raise DefuseError(
                    f"{cls.__name__}() must be constructible without arguments "
                    f"(it is created once, at registration): {error}"
                ) from None
            instance.filesystem = self
            self._instances[cls] = instance
        return self._instances[cls]

    def _add(self, route: Route) -> None:
        resource = route.resource
        resource.filesystem = self
        route.variables = RouteMap._variables(route.rule)
        for op in ARGUMENTS:
            method = getattr(resource, op, None)
            if callable(method):
                check(method, op, route.variables, route.rule)
                route.invokers[op] = invoker(method, op, route.variables)
        for name in getattr(resource, "injected", ()):
            check(getattr(resource, name), None, route.variables, route.rule)
        self.url_map.add(route)
        segments = split_rule(route.rule)
        for depth in range(1, len(segments)):
            parent = "/" + "/".join(segments[:depth])
            implied = Route(parent, self._implied_directory, implied=True)
            implied.variables = RouteMap._variables(parent)
            for op in ("getattr", "readdir"):
                implied.invokers[op] = invoker(getattr(implied.resource, op), op, implied.variables)
            self.url_map.add_implied(implied)

    @property
    def _implied_directory(self) -> ImpliedDirectory:
        if ImpliedDirectory not in self._instances:
            directory = ImpliedDirectory()
            directory.filesystem = self
            self._instances[ImpliedDirectory] = directory
        return self._instances[ImpliedDirectory]  # type: ignore[return-value]

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
                return self.url_map.build(route, values)
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
