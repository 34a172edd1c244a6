"""What the dispatcher answers: resources' return values and exceptions, as the binding
wants them.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> resource. A resource may
answer in the friendly forms of :mod:`defuse2.resources` (``str`` for bytes, ``None`` for
"all of ``data`` written", :class:`~defuse2.attributes.Attributes` for a stat mapping, names
or ``(name, attributes)`` pairs for a listing); the functions here turn each into the one
form the binding expects, and raise :class:`~defuse2.errors.DefuseError` for anything
else (which the dispatcher answers with ``EIO``, logged).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .attributes import Attributes
from .errors import DefuseError
from .resources import as_bytes


class _Missing:
    """Marks 'the resource does not define this operation'."""


#: What the dispatcher's call of a resource gives for an operation the resource lacks.
MISSING: Any = _Missing()


def fail(code: int, path: str | None = None) -> OSError:
    """An :class:`OSError` carrying ``code``, ready to raise."""
    return OSError(code, os.strerror(code), path)


def none_if_absent(getxattr: Callable[[str, str], bytes], path: str, name: str) -> bytes | None:
    """``getxattr(path, name)``, or ``None`` where it fails with ``ENODATA`` (no such
    attribute: the answer to nearly every ``security.capability`` asked before a write)."""
    try:
        return getxattr(path, name)
    except OSError as error:
        if error.errno == errno.ENODATA:
            return None
        raise


def as_stat(result: Any, defaults: Mapping[str, int]) -> dict[str, int]:
    """``getattr``'s answer as a new stat mapping.

    :param result: :class:`Attributes`, a stat mapping (``st_mode`` at least), or a
        mapping of :class:`Attributes` fields.
    :param defaults: the stat mapping of a path that says nothing more: its owner,
        times and sizes fill in whatever ``result`` leaves out.
    """
    if isinstance(result, Attributes):
        return result.as_stat(defaults["st_uid"], defaults["st_gid"], defaults["st_mtime"])
    if isinstance(result, Mapping):
        if "st_mode" in result:
            return {**defaults, **result}
        return as_stat(Attributes(**result), defaults)
    raise DefuseError(f"getattr() must return Attributes or a mapping, not {type(result).__name__}")


def as_data(result: Any) -> bytes:
    """``getxattr``'s answer: ``bytes``, or ``str`` as UTF-8."""
    return as_bytes(result, "read")


def as_count(result: Any) -> int:
    """``write``'s answer when not ``None``: the number of bytes written."""
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    raise DefuseError(f"write() must return None or the number of bytes written, not {result!r}")


def as_text(result: Any) -> str:
    """``readlink``'s answer: ``str``, or ``bytes`` decoded as file names are."""
    if isinstance(result, bytes):
        return result.decode("utf-8", "surrogateescape")
    if isinstance(result, str):
        return result
    raise DefuseError(f"readlink() must return str, not {type(result).__name__}")


def as_names(result: Iterable[Any]) -> list[str]:
    """``readdir``'s answer: names, or ``(name, attributes)`` pairs; ``.``/``..`` dropped."""
    entries = result if type(result) is list else list(result)
    try:
        joined = "/".join(entries)
    except TypeError:  # not all are str: pairs, or a mistake
        joined = "//"
    if joined.count("/") != len(entries) - 1 or "//" in f"/{joined}/":
        return _checked_names(entries)  # pairs, a name holding "/", an empty one: say which
    if "." in entries or ".." in entries:
        return [name for name in entries if name not in (".", "..")]
    return entries


def _checked_names(result: Iterable[Any]) -> list[str]:
    """:func:`as_names`, entry by entry."""
    names = []
    for entry in result:
        name = entry if isinstance(entry, str) else entry[0]
        if not isinstance(name, str) or not name or "/" in name:
            raise DefuseError(f"readdir() gave {entry!r}; entries are names without '/'")
        if name not in (".", ".."):
            names.append(name)
    return names
