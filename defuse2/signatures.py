"""Argument injection: a resource method gets exactly the arguments it names.

Where this sits: at registration the filesystem reads each resource method's signature
once and builds an *invoker* for it; on every FUSE callback the dispatcher calls the
invoker, which picks the named values out of the route variables, the operation's
arguments, ``path`` and ``ctx``. Nothing is inspected on the hot path.

The names a method may use:

- the route's variables (``<name>`` in the rule gives ``name``);
- the operation's arguments with fusepy's names (see :mod:`defuse2.operations`);
- ``path`` (the path the kernel asked about) and ``ctx`` (who asked: uid, gid, pid,
  umask);
- ``**variables`` receives all route variables.

A parameter with a default may name something not every route provides.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import DefuseError
from .operations import ARGUMENTS, EXTRAS
from .runner import check_not_async_generator, wrap_invokers

if TYPE_CHECKING:
    from .routing import Route

Invoker = Callable[..., Any]
M = TypeVar("M", bound=Callable[..., Any])


@cache
def _parameters(
    function: Callable[..., Any], bound: bool
) -> tuple[tuple[str, ...], frozenset[str], bool]:
    """(names, names with defaults, takes ``**kwargs``) of a function, read once."""
    names: list[str] = []
    optional: set[str] = set()
    takes_kwargs = False
    listed = list(inspect.signature(function).parameters.values())
    for parameter in listed[1:] if bound else listed:
        if parameter.kind is parameter.VAR_KEYWORD:
            takes_kwargs = True
        elif parameter.kind is parameter.VAR_POSITIONAL and is_ours(function):
            continue  # a shape's helper declared for type checkers: never given positions
        elif parameter.kind in (parameter.VAR_POSITIONAL, parameter.POSITIONAL_ONLY):
            raise DefuseError(
                f"{_describe(function)} takes *{parameter.name} or a positional-only "
                "argument; defuse2 passes arguments by name: name each one you need"
            )
        else:
            names.append(parameter.name)
            if parameter.default is not parameter.empty:
                optional.add(parameter.name)
    return tuple(names), frozenset(optional), takes_kwargs


def parameters(function: Callable[..., Any]) -> tuple[tuple[str, ...], frozenset[str], bool]:
    """The parameters of ``function`` (a bound method or plain function), cached."""
    underlying = getattr(function, "__func__", None)
    if underlying is None:
        return _parameters(function, False)
    return _parameters(underlying, True)


def is_ours(function: Callable[..., Any]) -> bool:
    """Whether ``function`` is defuse2's own (a shape's method), not user code."""
    return str(getattr(function, "__module__", "")).startswith("defuse2.")


def _describe(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", repr(function)) + "()"


def check(
    function: Callable[..., Any],
    op: str | None,
    variables: tuple[str, ...],
    rule: str,
    arguments: tuple[str, ...] | None = None,
) -> None:
    """Refuse a signature that asks for names this route and operation cannot give.

    :param op: the operation the method serves, or ``None`` for a shape's helper.
    :param arguments: the names the method may ask for besides the route variables,
        ``path`` and ``ctx``; default: the operation's arguments.
    """
    names, optional, takes_kwargs = parameters(function)
    if arguments is None:
        arguments = ARGUMENTS.get(op, ()) if op else ()
    for reserved in EXTRAS:
        if reserved in variables:
            raise DefuseError(
                f"route {rule!r} has a variable named {reserved!r}, which is reserved "
                f"for every method; rename the variable, e.g. <{reserved}_name>"
            )
    if is_ours(function):
        return  # defuse2's own shapes mean the operation's argument where names clash
    clashes = set(variables) & set(arguments)
    used_clashes = clashes & set(names) if not takes_kwargs else clashes
    if used_clashes:
        clash = sorted(used_clashes)[0]
        raise DefuseError(
            f"route {rule!r}: variable {clash!r} clashes with the argument {clash!r} of "
            f"{_describe(function)}; rename the variable in the rule, e.g. <{clash}_>"
        )
    available = set(variables) | set(arguments) | set(EXTRAS)
    unknown = [n for n in names if n not in available and n not in optional]
    if unknown:
        raise DefuseError(
            f"{_describe(function)} asks for {', '.join(map(repr, unknown))}, which route "
            f"{rule!r} does not provide; available names: {', '.join(sorted(available))}"
        )


def check_route(route: Route) -> None:
    """Refuse, at registration, a resource whose methods ask for names its route cannot
    give (see :func:`check`), or a shape whose required helper is missing."""
    resource = route.resource
    for op in ARGUMENTS:
        method = getattr(resource, op, None)
        if callable(method):
            check_not_async_generator(method, f"{type(resource).__name__}.{op}()")
            check(method, op, route.variables, route.rule)
    for name, arguments in getattr(resource, "injected", {}).items():
        helper = getattr(resource, name)
        if getattr(helper, "required", False):
            raise DefuseError(f"{type(resource).__name__} must define {name}()")
        check_not_async_generator(helper, f"{type(resource).__name__}.{name}()")
        check(helper, None, route.variables, route.rule, arguments)


def invokers_for(route: Route) -> dict[str, Invoker]:
    """The invokers of every operation ``route``'s resource defines, by operation name.

    This is the one place where they are built (once per route, when the route map is
    built): whatever wraps every call of a resource method belongs here.
    """
    resource = route.resource
    found: dict[str, Invoker] = {}
    for op in ARGUMENTS:
        method = getattr(resource, op, None)
        if callable(method):
            found[op] = invoker(method, op, route.variables)
    return wrap_invokers(route, found)  # async def and blocking methods wait elsewhere


def ignores_context(method: M) -> M:
    """Mark a method that takes ``ctx`` only to be called like its siblings: its invoker
    does not ask who is calling (one call less per callback), and it gets ``None``."""
    method.ignores_context = True  # type: ignore[attr-defined]
    return method


def invoker(function: Callable[..., Any], op: str, variables: tuple[str, ...]) -> Invoker:
    """A fast caller of ``function`` for ``op``: ``invoke(values, path, context, *args)``.

    ``args`` are the operation's arguments in :data:`~defuse2.operations.ARGUMENTS` order,
    passed one by one (``invoke(values, path, context, size, offset, fh)`` for ``read``);
    ``context`` is called only when the method names ``ctx``. The caller is compiled once,
    as a plain ``lambda`` that passes each argument in the method's own order (by position
    while it can, then by name), so a callback costs one call.
    """
    names, _optional, takes_kwargs = parameters(function)
    kinds = inspect.signature(function).parameters
    arguments = ARGUMENTS[op]
    passed = []
    by_position = True
    for name in names:
        if name in arguments:
            value = name
        elif name in variables and not takes_kwargs:
            value = f"values[{name!r}]"
        elif name == "path":
            value = "path"
        elif name == "ctx" and not getattr(function, "ignores_context", False):
            value = "context()"
        else:  # an optional parameter this route does not provide: keep its default
            by_position = False
            continue
        by_position = by_position and kinds[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        passed.append(value if by_position else f"{name}={value}")
    if takes_kwargs and variables:
        passed.append("**values")
    lambda_parameters = ", ".join(("values", "path", "context", *arguments))
    source = f"lambda {lambda_parameters}: function({', '.join(passed)})"
    compiled: Invoker = eval(source, {"function": function})  # names are checked identifiers
    return compiled


def call_with(function: Callable[..., Any], variables: Mapping[str, Any], **extras: Any) -> Any:
    """Call a helper such as ``content()`` with the route variables and extras it names."""
    names, _optional, takes_kwargs = parameters(function)
    if takes_kwargs:
        kwargs = dict(variables)
        kwargs.update((n, extras[n]) for n in names if n in extras)
    else:
        kwargs = {
            n: variables[n] if n in variables else extras[n]
            for n in names
            if n in variables or n in extras
        }
    return function(**kwargs)
