"""Declaring routes: what :class:`~defuse2.FileSystem` and :class:`Group` share.

Where this sits: user code declares routes on a filesystem or on a group of routes; a
group's routes reach a filesystem when it is registered on one. Declaring only
*collects*: the route map is built when the filesystem first serves (see
:class:`~defuse2.routing.RouteMap`), so registering a hundred routes costs ten times
what ten cost. Flask's ``Scaffold`` is the model: ``route()`` is sugar over
:meth:`Scaffold.add_route`, the one public way to add a route.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import DefuseError
from .resources import FunctionDirectory, FunctionFile, Resource
from .routing import check_options, validate_rule

R = TypeVar("R", bound=type[Resource])
F = TypeVar("F", bound=Callable[..., Any])

#: What a route is served by, as recorded: a resource instance, a resource class (one
#: instance per filesystem, shared by its routes) or a factory of a new instance.
Source = Resource | type[Resource] | Callable[[], Resource]


class Scaffold:
    """The ways to declare routes, shared by :class:`~defuse2.FileSystem` and
    :class:`Group`. Subclasses say what recording a route means (:meth:`_record`)."""

    def add_route(self, rule: str, resource: type[Resource] | Resource, **options: Any) -> None:
        """Serve the paths that match ``rule`` with ``resource``.

        :param rule: a werkzeug rule: ``"/users/<name>/profile.json"``.
        :param resource: a :class:`~defuse2.Resource` subclass (created once per
            filesystem, without arguments, and shared by all its routes) or an instance
            (for a resource that takes arguments: ``Table("users")``).
        :param options: route options: ``dynamic=True`` marks the content as changing
            behind the kernel's back, whatever the resource's ``dynamic`` says;
            ``timeout=SECONDS`` is how long an ``async def`` or ``blocking`` method may
            take (``None``: no limit; default: the filesystem's); ``blocking=True`` runs
            the resource's plain methods on the filesystem's pool of threads, so that the
            timeout can cut the wait (see :doc:`/howto/network`).
        :raises DefuseError: a bad rule, a bad resource, a method asking for a name the
            route cannot give, an unknown option, or a filesystem that is mounted.
        """
        if not isinstance(resource, Resource) and not (
            inspect.isclass(resource) and issubclass(resource, Resource)
        ):
            hint = f"; use fs.file({rule!r}) for a function" if callable(resource) else ""
            raise DefuseError(
                f"route {rule!r} is served by a subclass of defuse2.Resource or an "
                f"instance of one, not {resource!r}{hint}"
            )
        self._record(rule, resource, dict(options))

    def route(self, rule: str, **options: Any) -> Callable[[R], R]:
        """Serve the paths that match ``rule`` with the decorated resource class.

        Sugar for :meth:`add_route`. Routes stack: one class may serve several rules.
        The class is returned unchanged.
        """

        def decorator(cls: R) -> R:
            self.add_route(rule, cls, **options)
            return cls

        return decorator

    def file(
        self, rule: str, *, mode: int = 0o444, dynamic: bool = False, **options: Any
    ) -> Callable[[F], F]:
        """Serve ``rule`` as a read-only file whose content the function (plain or
        ``async def``) returns; ``options`` as for :meth:`add_route`.

        ::

            @fs.file("/motd")
            def motd():
                return "Welcome!\\n"
        """

        def decorator(function: F) -> F:
            _check_function("file", rule, function)
            made = functools.partial(FunctionFile, function, mode, dynamic)
            self._record(rule, made, dict(options))
            return function

        return decorator

    def directory(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Serve ``rule`` as a read-only directory whose names the function (plain or
        ``async def``) returns; ``options`` as for :meth:`add_route`."""

        def decorator(function: F) -> F:
            _check_function("directory", rule, function)
            self._record(rule, functools.partial(FunctionDirectory, function), dict(options))
            return function

        return decorator

    def _record(self, rule: str, source: Source, options: dict[str, Any]) -> None:
        """Add a route served by ``source`` (checked by the caller) with ``options``."""
        raise NotImplementedError

    def _check_open(self, rule: str) -> None:
        """Refuse a new route while any filesystem it would reach is serving."""


def _check_function(kind: str, rule: str, function: Any) -> None:
    if not callable(function) or inspect.isclass(function):
        raise DefuseError(
            f"fs.{kind}({rule!r}) decorates a function; for a class use fs.route({rule!r})"
        )


class Group(Scaffold):
    """Routes that belong together under a prefix, like a Flask blueprint.

    Declare routes on the group, then register it: ``fs.register(api, prefix="/api")``.
    Routes added after registration go to every filesystem it is registered with.
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._records: list[tuple[str, Source, dict[str, Any]]] = []
        self._targets: list[tuple[Scaffold, str]] = []

    def _record(self, rule: str, source: Source, options: dict[str, Any]) -> None:
        validate_rule(rule)
        check_options(rule, options)
        self._check_open(rule)
        self._records.append((rule, source, options))
        for target, prefix in self._targets:
            target._record(join_rule(prefix, rule), source, options)

    def _check_open(self, rule: str) -> None:
        for target, prefix in self._targets:
            target._check_open(join_rule(prefix, rule))

    def register_on(self, target: Scaffold, prefix: str | None = None) -> None:
        """Add the group's routes, now and later, to ``target`` under ``prefix``
        (default: the group's own). :meth:`FileSystem.register` calls this."""
        prefix = self.prefix if prefix is None else prefix
        self._targets.append((target, prefix))
        for rule, source, options in self._records:
            target._record(join_rule(prefix, rule), source, options)


def join_rule(prefix: str, rule: str) -> str:
    """``join_rule("/api", "/users")`` -> ``"/api/users"``; ``"/"`` is the prefix itself."""
    prefix = prefix.rstrip("/")
    if rule == "/":
        return prefix or "/"
    return prefix + rule
