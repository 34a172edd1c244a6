"""Loading a ``TARGET``: the filesystem that ``module:attr`` or ``file.py:attr`` names.

Where this sits: under the ``defuse2`` command (:mod:`defuse2.cli`), before anything is
mounted. ``attr`` names a :class:`~defuse2.FileSystem`, or a function that returns one
(a factory, as Flask's ``create_app``): called with no arguments, or with the literal
arguments written in the target, ``app.py:create_fs(quota="1 MiB")``. Without ``attr``,
``fs`` is used, else ``create_fs``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DefuseError

if TYPE_CHECKING:
    from .filesystem import FileSystem


class TargetError(DefuseError):
    """A ``TARGET`` that does not name a filesystem."""


def load_target(target: str) -> FileSystem:
    """The :class:`~defuse2.FileSystem` named by ``module:attr`` or ``file.py:attr``.

    :raises TargetError: the module or attribute is missing, or is not a filesystem.
    """
    from .filesystem import FileSystem

    source, sep, attr = target.rpartition(":")
    if not sep or "/" in attr or attr.endswith(".py"):
        source, attr = target, ""
    if not source:
        raise TargetError(f"{target!r} names no module or file (use module:attr or file.py:attr)")
    try:
        module = _load_module(source)
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(f"importing {source!r} failed: {type(exc).__name__}: {exc}") from exc
    if not attr:
        attr = "fs" if hasattr(module, "fs") or not hasattr(module, "create_fs") else "create_fs"
    name, arguments = _parse_call(attr, target)
    try:
        value = getattr(module, name)
    except AttributeError:
        tried = " (nor a factory named create_fs)" if name == "fs" else ""
        raise TargetError(f"{source!r} has no attribute {name!r}{tried}") from None
    if isinstance(value, FileSystem) and arguments is None:
        return value
    if not callable(value) or isinstance(value, type):
        kind = _a(type(value).__name__ if not isinstance(value, type) else "class")
        raise TargetError(
            f"{source}:{name} is {kind}, not a FileSystem or a function that returns one"
        )
    positional, keywords = arguments or ((), {})
    try:
        made = value(*positional, **keywords)
    except Exception as exc:
        raise TargetError(f"calling {source}:{attr} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(made, FileSystem):
        found = _a(type(made).__name__)
        raise TargetError(f"{source}:{attr} returned {found}, not a FileSystem")
    return made


Call = tuple[tuple[Any, ...], dict[str, Any]]  # the positional and keyword arguments


def _parse_call(attr: str, target: str) -> tuple[str, Call | None]:
    """``"fs"`` -> ``("fs", None)``; ``'create_fs(1, quota="1 MiB")'`` -> the name and
    the literal arguments of the call."""
    if "(" not in attr:
        if not attr.isidentifier():
            raise TargetError(f"{attr!r} in {target!r} is not a Python name")
        return attr, None
    try:
        call = ast.parse(attr, mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError(attr)
        positional = tuple(ast.literal_eval(argument) for argument in call.args)
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (SyntaxError, ValueError):
        raise TargetError(
            f"{attr!r} in {target!r} is not a call with literal arguments, such as "
            'create_fs() or create_fs(quota="1 MiB")'
        ) from None
    return call.func.id, (positional, keywords)


def _a(noun: str) -> str:
    """``"an int"``, ``"a str"``: the noun with its indefinite article."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _load_module(source: str) -> Any:
    if source.endswith(".py") or os.sep in source or os.path.isfile(source):
        path = Path(source).resolve()
        if not path.is_file():
            raise TargetError(f"no such file: {source}")
        name = f"defuse2_target_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise TargetError(f"cannot import {source}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and source.startswith(exc.name):
            raise TargetError(f"no module named {source!r}") from None
        raise
