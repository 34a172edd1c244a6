"""Routing: werkzeug's URL map, taught to speak file paths.

Where this sits: the dispatcher asks this module which resource serves a path the kernel
sent. Matching is werkzeug's own (its converters, rule weighting, ``Submount``-style
prefixes), with three changes that FUSE needs:

- converters never percent-encode: ``path_for`` returns the real file name;
- the map never redirects: FUSE sends no trailing slashes, so there is nothing to fix;
- a match is cached per path until the routes change, so a path the kernel asks about
  again and again pays for werkzeug's matcher once.

Each rule also *implies* its parent directories: ``/users/<name>/profile.json`` makes
``/users`` and ``/users/<name>`` exist as directories.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.routing import (
    AnyConverter,
    BaseConverter,
    FloatConverter,
    IntegerConverter,
    Map,
    PathConverter,
    Rule,
    UnicodeConverter,
    UUIDConverter,
)

from .errors import DefuseError

#: How many path matches are remembered; enough for the working set of a busy mount.
MATCH_CACHE_SIZE = 1 << 16


class _RawName:
    """Mixin: build file names as they are, instead of percent-encoding them."""

    def to_url(self, value: Any) -> str:
        text = str(value)
        if "/" in text and not isinstance(self, PathConverter):
            raise ValueError(f"{text!r} contains '/', which a single path segment cannot hold")
        return text


class StringConverter(_RawName, UnicodeConverter):
    """``<name>``: one path segment (no ``/``)."""


class PathSegmentsConverter(_RawName, PathConverter):
    """``<path:rest>``: one or more segments, ``/`` included."""


class IntConverter(_RawName, IntegerConverter):
    """``<int:id>``: a non-negative integer."""


class FloatNumberConverter(_RawName, FloatConverter):
    """``<float:x>``: a floating point number."""


class ChoiceConverter(_RawName, AnyConverter):
    """``<any(a, b):kind>``: one of the given words."""


class UUIDValueConverter(_RawName, UUIDConverter):
    """``<uuid:id>``: a UUID."""


CONVERTERS: dict[str, type] = {
    "default": StringConverter,
    "string": StringConverter,
    "path": PathSegmentsConverter,
    "int": IntConverter,
    "float": FloatNumberConverter,
    "any": ChoiceConverter,
    "uuid": UUIDValueConverter,
}

_VARIABLE = re.compile(
    r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>.*?)\))?:)?"
    r"(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>"
)


@dataclass(eq=False)
class Route:
    """One rule and the resource that serves it."""

    rule: str
    resource: Any
    implied: bool = False
    #: The route's variables, in the order they appear in the rule.
    variables: tuple[str, ...] = ()
    #: Operation name -> invoker, filled in by the dispatcher at registration.
    invokers: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The resource's class name, as ``defuse2 routes`` shows it."""
        return type(self.resource).__name__


#: What a match gives: the route serving a path, and the path's values of its variables.
Found = tuple[Route, Mapping[str, Any]]


def split_rule(rule: str) -> list[str]:
    """Split a rule into segments at ``/`` outside ``<...>``: ``"/a/<b>"`` -> ``["a", "<b>"]``."""
    segments: list[str] = []
    current: list[str] = []
    depth = 0
    for char in rule:
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        if char == "/" and depth == 0:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return [segment for segment in segments[1:]] if rule != "/" else []


def validate_rule(rule: str) -> None:
    """Refuse rules that could never match a path the kernel sends."""
    if not rule.startswith("/"):
        raise DefuseError(f"route {rule!r} must start with '/', like '/{rule}'")
    if rule != "/" and rule.endswith("/"):
        raise DefuseError(
            f"route {rule!r} ends with '/': FUSE never sends trailing slashes; "
            f"use {rule.rstrip('/')!r}"
        )
    if "//" in rule:
        raise DefuseError(f"route {rule!r} has an empty segment ('//')")
    for segment in split_rule(rule):
        if segment in (".", ".."):
            raise DefuseError(f"route {rule!r} has a '{segment}' segment, which no path holds")


class RouteMap:
    """The rules of one filesystem, matched with werkzeug, cached per path."""

    def __init__(self, converters: Mapping[str, type] | None = None) -> None:
        self.converters = {**CONVERTERS, **(converters or {})}
        self._routes: list[Route] = []
        self._rebuild()

    # -- registration -------------------------------------------------------------------
    def add(self, route: Route) -> None:
        """Add an explicit route (and the directories its rule implies)."""
        validate_rule(route.rule)
        for existing in self._routes:
            if existing.rule == route.rule and not existing.implied:
                raise DefuseError(
                    f"route {route.rule!r} is already served by {existing.name}; "
                    "a path has exactly one resource"
                )
        previous = self._routes
        route.variables = self._variables(route.rule)
        self._routes = [r for r in previous if not (r.implied and r.rule == route.rule)]
        self._routes.append(route)
        try:
            self._rebuild()
        except (ValueError, LookupError) as error:
            self._routes = previous
            self._rebuild()
            raise DefuseError(
                f"route {route.rule!r} is not a valid rule: {error} "
                f"(converters: {', '.join(sorted(self.converters))})"
            ) from None

    def add_implied(self, route: Route) -> None:
        """Add a directory that routes below it imply, unless a route already serves it."""
        if any(r.rule == route.rule for r in self._routes):
            return
        self._routes.append(route)
        self._rebuild()

    @staticmethod
    def _variables(rule: str) -> tuple[str, ...]:
        return tuple(m.group("name") for m in _VARIABLE.finditer(rule))

    def _rebuild(self) -> None:
        rules = [Rule(r.rule, endpoint=r) for r in self._routes]
        werkzeug_map = Map(
            rules,
            converters=self.converters,
            strict_slashes=False,
            merge_slashes=False,
            redirect_defaults=False,
        )
        self._adapter = werkzeug_map.bind("", "/")
        self._parents = self._static_children_by_parent()
        #: Whether any route's resource is dynamic (see ``Resource.dynamic``).
        self.has_dynamic = any(getattr(r.resource, "dynamic", False) for r in self._routes)
        #: The route serving a path and its variables, or ``None`` for the store.
        self.match: Callable[[str | None], Found | None] = _MatchCache(self._match).__getitem__
        if not self._routes:  # every path goes to the store: nothing to match or remember
            self.match = _NO_ROUTES.get  # None for every path, without a Python frame
        self.static_children = lru_cache(maxsize=MATCH_CACHE_SIZE)(self._static_children)

    # -- lookup -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def _match(self, path: str | None) -> Found | None:
        """The route serving ``path`` and its variables, or ``None`` for the store (and for
        ``None``, the path of a file unlinked while open)."""
        if path is None:
            return None
        try:
            route, values = self._adapter.match(path, method="GET")
        except (NotFound, ValueError):  # a converter's to_python may refuse with ValueError
            return None
        return route, values

    def _static_children_by_parent(self) -> list[tuple[Any, frozenset[str]]]:
        by_parent: dict[str, set[str]] = {}
        for route in self._routes:
            segments = split_rule(route.rule)
            if segments and "<" not in segments[-1]:
                parent = "/" + "/".join(segments[:-1])
                by_parent.setdefault(parent, set()).add(segments[-1])
        parents = []
        for parent, names in by_parent.items():
            single = Map(
                [Rule(parent, endpoint=parent)],
                converters=self.converters,
                strict_slashes=False,
                merge_slashes=False,
            ).bind("", "/")
            parents.append((single, frozenset(names)))
        return parents

    def _static_children(self, path: str) -> frozenset[str]:
        """Names of the static routes directly under directory ``path``."""
        names: set[str] = set()
        for adapter, children in self._parents:
            try:
                adapter.match(path, method="GET")
            except NotFound:
                continue
            names |= children
        return frozenset(names)

    def build(self, route: Route, values: Mapping[str, Any]) -> str:
        """The real path of ``route`` with ``values`` filled in (never percent-encoded)."""
        converters = self._adapter.map.converters

        def fill(match: re.Match[str]) -> str:
            converter_class = converters[match.group("converter") or "default"]
            args, kwargs = _converter_arguments(match.group("args"))
            converter = converter_class(self._adapter.map, *args, **kwargs)
            value = values[match.group("name")]
            if type(converter).to_url is BaseConverter.to_url:
                return str(value)  # a plain custom converter would percent-encode
            return str(converter.to_url(value))

        path = _VARIABLE.sub(fill, route.rule)
        found = self.match(path)
        if found is None or found[0] is not route:
            raise DefuseError(f"{values!r} does not build a path that {route.rule!r} serves")
        return path


#: Stays empty: its ``get`` is the match of any path in a map without routes.
_NO_ROUTES: dict[str | None, Found] = {}


class _MatchCache(dict[str | None, "Found | None"]):
    """Path -> its match, computed on first sight: a hit costs one dict lookup in C.

    At most :data:`MATCH_CACHE_SIZE` paths are kept; past that, the oldest is forgotten.
    (A :func:`functools.lru_cache` reorders its entries on every hit, which costs more
    than the lookup.)
    """

    def __init__(self, match: Callable[[str | None], Found | None]) -> None:
        super().__init__()
        self._compute = match

    def __missing__(self, path: str | None) -> Found | None:
        found = self._compute(path)
        if len(self) >= MATCH_CACHE_SIZE:
            # On a threaded loop another thread may be forgetting the same path right now.
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del self[next(iter(self))]
        self[path] = found
        return found


def _converter_arguments(text: str | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if not text:
        return (), {}
    from werkzeug.routing.rules import parse_converter_args

    return parse_converter_args(text)
