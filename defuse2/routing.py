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
from .signatures import check_route, invokers_for

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


class _MatchingRule(Rule):
    """A werkzeug rule that only matches.

    defuse2 builds paths itself (:meth:`RouteMap.build_path`, without percent-encoding),
    so the URL builders werkzeug compiles for every rule (through :mod:`ast`, most of
    the cost of a rule) are never made.
    """

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        return _never_built


def _never_built(*args: Any, **kwargs: Any) -> tuple[str, str]:
    raise NotImplementedError("defuse2 builds paths with RouteMap.build_path")


@dataclass(eq=False)
class Route:
    """One rule and the resource that serves it.

    :param rule: the werkzeug rule, e.g. ``"/users/<name>/profile.json"``.
    :param resource: the :class:`~defuse2.Resource` instance serving it.
    :param implied: whether the route exists only because routes below it do.
    :param options: the route's options, as given to ``add_route`` (see
        :data:`ROUTE_OPTIONS`).
    """

    rule: str
    resource: Any
    implied: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The route's variables, in the order they appear in the rule.
    variables: tuple[str, ...] = field(init=False)
    #: Operation name -> invoker, built when the map is built
    #: (:func:`defuse2.signatures.invokers_for`).
    invokers: dict[str, Any] = field(init=False, default_factory=dict)

    #: Whether the content may change behind the kernel's back: the ``dynamic`` option,
    #: else the resource's own ``dynamic`` attribute.
    dynamic: bool = field(init=False)

    def __post_init__(self) -> None:
        self.variables = tuple(m.group("name") for m in _VARIABLE.finditer(self.rule))
        dynamic = self.options.get("dynamic")
        if dynamic is None:
            dynamic = getattr(self.resource, "dynamic", False)
        self.dynamic = bool(dynamic)

    @property
    def name(self) -> str:
        """The resource's class name, as ``defuse2 routes`` shows it."""
        return type(self.resource).__name__


#: The options a route may be given (``fs.add_route(rule, Resource, dynamic=True)``),
#: each with what its value must be. An unknown option is a registration error.
ROUTE_OPTIONS: dict[str, tuple[type, ...]] = {
    "dynamic": (bool,),
    # seconds an async or blocking method may take (None: no limit); see defuse2.runner
    "timeout": (int, float),
    # run the resource's plain methods on the filesystem's pool, within the timeout
    "blocking": (bool,),
}


def check_options(rule: str, options: Mapping[str, Any]) -> None:
    """Refuse an unknown route option or a value of the wrong type."""
    for name, value in options.items():
        kinds = ROUTE_OPTIONS.get(name)
        if kinds is None:
            raise DefuseError(
                f"route {rule!r}: unknown option {name!r}; "
                f"route options: {', '.join(sorted(ROUTE_OPTIONS))}"
            )
        if value is not None and not isinstance(value, kinds):
            expected = " or ".join(kind.__name__ for kind in kinds)
            raise DefuseError(f"route {rule!r}: option {name}={value!r} must be {expected}")


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


def parents(rule: str) -> list[str]:
    """The directories a rule implies, outermost first: ``"/a/<b>/c"`` -> ``["/a", "/a/<b>"]``."""
    segments = split_rule(rule)
    return ["/" + "/".join(segments[:depth]) for depth in range(1, len(segments))]


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
    """The rules of one filesystem, matched with werkzeug, cached per path.

    Registering only collects (:meth:`add`, a constant cost per route); the werkzeug map,
    the implied directories, the children of each parent directory and the invokers are
    built once, the first time a path is matched or the routes are listed, and again
    only if routes were added since (werkzeug's own ``Map.add`` works the same way).

    :param converters: extra werkzeug converters by name.
    :param implied_directory: the resource serving the directories that routes imply.
    """

    def __init__(
        self, converters: Mapping[str, type] | None = None, *, implied_directory: Any = None
    ) -> None:
        self.converters = {**CONVERTERS, **(converters or {})}
        self._implied_directory = implied_directory
        self._explicit: dict[str, Route] = {}
        self._checker = Map(converters=self.converters)  # parses each rule once, at add()
        self._routes: list[Route] = []
        self._implied: dict[str, Route] = {}
        #: Whether any route's content is dynamic (see ``Resource.dynamic``).
        self.has_dynamic = False
        self._build_on_first_use()

    # -- registration -------------------------------------------------------------------
    def add(self, route: Route) -> None:
        """Add an explicit route, checked now (its rule, options and the signatures of its
        resource's methods); the map is built on first use."""
        validate_rule(route.rule)
        check_options(route.rule, route.options)
        existing = self._explicit.get(route.rule)
        if existing is not None:
            raise DefuseError(
                f"route {route.rule!r} is already served by {existing.name}; "
                "a path has exactly one resource"
            )
        try:
            _MatchingRule(route.rule).bind(self._checker)
        except (ValueError, LookupError) as error:
            raise DefuseError(
                f"route {route.rule!r} is not a valid rule: {error} "
                f"(converters: {', '.join(sorted(self.converters))})"
            ) from None
        check_route(route)
        self._explicit[route.rule] = route
        self.has_dynamic = self.has_dynamic or route.dynamic
        self._build_on_first_use()

    def _build_on_first_use(self) -> None:
        """Make the next lookup build the map first."""
        self._built = False
        self.match: Callable[[str | None], Found | None] = self._build_then_match
        self.static_children: Callable[[str], frozenset[str]] = self._build_then_children

    def _build_then_match(self, path: str | None) -> Found | None:
        self.build()
        return self.match(path)

    def _build_then_children(self, path: str) -> frozenset[str]:
        self.build()
        return self.static_children(path)

    def build(self) -> None:
        """Build what matching needs, unless it is built already."""
        if self._built:
            return
        routes: list[Route] = []
        implied: dict[str, Route] = {}
        for route in self._explicit.values():
            routes.append(route)
            for parent in parents(route.rule):
                if parent not in self._explicit and parent not in implied:
                    # the same Route as last time, if any: its invokers are built already
                    kept = self._implied.get(parent)
                    implied[parent] = kept or Route(parent, self._implied_directory, implied=True)
                    routes.append(implied[parent])
        self._implied = implied
        implied_invokers: dict[tuple[str, ...], dict[str, Any]] = {}
        for route in routes:
            if route.invokers:
                continue
            if route.implied:  # one resource, no options: the same invokers for the same names
                shared = implied_invokers.get(route.variables)
                if shared is None:
                    shared = implied_invokers[route.variables] = invokers_for(route)
                route.invokers = shared
            else:
                route.invokers = invokers_for(route)
        werkzeug_map = Map(
            [_MatchingRule(r.rule, endpoint=r) for r in routes],
            converters=self.converters,
            strict_slashes=False,
            merge_slashes=False,
            redirect_defaults=False,
        )
        self._adapter = werkzeug_map.bind("", "/")
        self._routes = routes
        self._children = _Children(routes, self.converters)
        self.has_dynamic = any(route.dynamic for route in routes)
        if routes:
            self.match = _MatchCache(self._match).__getitem__
        else:  # every path goes to the store: nothing to match or remember
            self.match = _NO_ROUTES.get  # None for every path, without a Python frame
        self.static_children = lru_cache(maxsize=MATCH_CACHE_SIZE)(self._children.names)
        self._built = True

    # -- lookup -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Route]:
        self.build()
        return iter(self._routes)

    def __bool__(self) -> bool:
        """Whether any route is registered (without building anything)."""
        return bool(self._explicit)

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

    def build_path(self, route: Route, values: Mapping[str, Any]) -> str:
        """The real path of ``route`` with ``values`` filled in (never percent-encoded)."""
        self.build()
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


class _Children:
    """The names of the static routes directly under each directory.

    ``/docs/README`` puts ``README`` in ``/docs``; ``/users/<name>/profile.json`` puts
    ``profile.json`` in every ``/users/<name>``. Parents without variables are found
    with one dict lookup; each parent with variables is one small werkzeug map, since
    a path may match several of them (``/users/<name>`` and ``/users/ann``).
    """

    def __init__(self, routes: list[Route], converters: Mapping[str, type]) -> None:
        by_parent: dict[str, set[str]] = {}
        for route in routes:
            segments = split_rule(route.rule)
            if segments and "<" not in segments[-1]:
                parent = "/" + "/".join(segments[:-1])
                by_parent.setdefault(parent, set()).add(segments[-1])
        self._static = {p: frozenset(n) for p, n in by_parent.items() if "<" not in p}
        self._patterns = [
            (
                Map(
                    [_MatchingRule(parent, endpoint=parent)],
                    converters=converters,
                    strict_slashes=False,
                    merge_slashes=False,
                ).bind("", "/"),
                frozenset(names),
            )
            for parent, names in by_parent.items()
            if "<" in parent
        ]

    def names(self, path: str) -> frozenset[str]:
        """Names of the static routes directly under directory ``path``."""
        names = self._static.get(path, frozenset())
        for adapter, children in self._patterns:
            try:
                adapter.match(path, method="GET")
            except (NotFound, ValueError):
                continue
            names = names | children
        return names


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
