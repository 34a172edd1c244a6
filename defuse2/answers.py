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
import struct
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
    """``getattr``'s answer as a new stat mapping, checked (:func:`check_stat`).

    :param result: :class:`Attributes`, a stat mapping (``st_mode`` at least), or a
        mapping of :class:`Attributes` fields.
    :param defaults: the stat mapping of a path that says nothing more: its owner,
        times and sizes fill in whatever ``result`` leaves out.
    """
    if isinstance(result, Attributes):
        stat = result.as_stat(defaults["st_uid"], defaults["st_gid"], defaults["st_mtime"])
    elif isinstance(result, Mapping):
        if "st_mode" in result:
            stat = {**defaults, **result}
        else:
            try:
                attributes = Attributes(**result)
            except TypeError as error:
                raise DefuseError(
                    f"getattr() gave a mapping that is not attributes: {error}"
                ) from None
            return as_stat(attributes, defaults)
    else:
        raise DefuseError(
            f"getattr() must return Attributes or a mapping, not {type(result).__name__}"
        )
    check_stat(stat)
    return stat


#: ``st_mode >> 12`` of the file types the kernel accepts (FIFO, character device,
#: directory, block device, regular file, symlink, socket).
FILE_TYPES = frozenset(
    kind >> 12 for kind in (0o010000, 0o020000, 0o040000, 0o060000, 0o100000, 0o120000, 0o140000)
)

#: The ``st_*`` fields the kernel is sent, with the ``struct`` code of the range it
#: takes (``struct fuse_attr``: 32-bit mode, link count, owner, block size; 64-bit
#: sizes, inode and times in nanoseconds, signed where they may be negative).
_STAT_FIELDS = {
    "st_mode": "I",
    "st_ino": "Q",
    "st_nlink": "I",
    "st_uid": "I",
    "st_gid": "I",
    "st_size": "q",
    "st_blocks": "q",
    "st_blksize": "I",
    "st_atime": "q",
    "st_mtime": "q",
    "st_ctime": "q",
}


def check_stat(stat: Mapping[str, Any]) -> None:
    """Refuse a stat mapping the kernel could not take: a field that is not an ``int`` in
    its range (``st_size`` from 0 to 2**63-1, ``st_mode`` 32 bits, ...) or a mode
    without a file type (``0o644`` where ``stat.S_IFREG | 0o644`` was meant). The kernel
    would answer ``EIO`` without a word, or show a truncated value.

    The dispatcher checks the size and the mode of every routed answer; this says
    what is wrong, and checks the rest where the binding could not pack it.

    :raises DefuseError: naming the field and the value.
    """
    for name, code in _STAT_FIELDS.items():
        value = stat.get(name, 0)
        try:
            struct.pack("=" + code, value)
        except struct.error:
            kind = type(value).__name__
            raise DefuseError(
                f"getattr() gave {name}={value!r}: "
                + ("out of range" if isinstance(value, int) else f"an int, not {kind}")
            ) from None
    if stat.get("st_size", 0) < 0:
        raise DefuseError(f"getattr() gave st_size={stat['st_size']!r}: a size is never negative")
    if stat.get("st_mode", 0) >> 12 not in FILE_TYPES:
        raise DefuseError(
            f"getattr() gave st_mode={stat.get('st_mode', 0):#o}, which has no file type: "
            "use stat.S_IFREG | mode, or attributes.file()"
        )


def as_data(result: Any) -> bytes:
    """``read``'s and ``getxattr``'s answer: ``bytes``, or ``str`` as UTF-8."""
    return as_bytes(result, "read")


def as_count(result: Any, size: int) -> int:
    """``write``'s answer when not ``None``: the number of bytes written, 0 to ``size``."""
    if type(result) is int and 0 <= result <= size:
        return result
    raise DefuseError(
        f"write() must return None or the number of bytes written (0 to {size}), not {result!r}"
    )


def as_handle(result: Any) -> int:
    """``open``'s, ``create``'s and ``opendir``'s answer: a handle from 0 to 2**64-1;
    ``None`` is 0."""
    if result is None:
        return 0
    if type(result) is int and 0 <= result < 1 << 64:
        return result
    raise DefuseError(f"a file handle is None or an int from 0 to 2**64-1, not {result!r}")


def as_text(result: Any) -> str:
    """``readlink``'s answer: ``str``, or ``bytes`` decoded as file names are."""
    if isinstance(result, bytes):
        return result.decode("utf-8", "surrogateescape")
    if isinstance(result, str):
        return result
    raise DefuseError(f"readlink() must return str, not {type(result).__name__}")


def as_statvfs(result: Any) -> dict[str, int]:
    """``statfs``'s answer: a mapping of ``f_*`` fields, all ``int``."""
    if isinstance(result, Mapping) and all(
        isinstance(key, str) and key.startswith("f_") and type(value) is int and value >= 0
        for key, value in result.items()
    ):
        return dict(result)
    raise DefuseError(f"statfs() must return a mapping of f_* fields to ints, not {result!r}")


def as_xattr_names(result: Any) -> list[str]:
    """``listxattr``'s answer: the names, all ``str``."""
    names = list(result)
    for name in names:
        if not isinstance(name, str) or not name:
            raise DefuseError(f"listxattr() gave {name!r}; attribute names are non-empty str")
    return names


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


def _nothing(result: Any) -> None:
    """What an operation that answers nothing gives back, whatever the method returned."""
    return None


#: How each kind of answer of :data:`~defuse2.operations.RESULTS` is converted and
#: checked (``attributes`` and ``count`` take a second argument).
CONVERTERS: dict[str, Callable[..., Any]] = {
    "attributes": as_stat,
    "names": as_names,
    "text": as_text,
    "handle": as_handle,
    "data": as_data,
    "count": as_count,
    "statvfs": as_statvfs,
    "xattr_names": as_xattr_names,
    "nothing": _nothing,
}
