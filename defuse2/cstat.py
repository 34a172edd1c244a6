"""Fill libfuse's ``struct stat`` with one ``struct.pack_into``.

Where this sits: kernel -> libfuse -> binding -> callbacks (:mod:`defuse2.callbacks`, with
**this**) -> adapter -> dispatcher.
Every ``GETATTR`` (and every ``LOOKUP``: each ``stat`` of a name) ends with the binding
copying the dispatcher's ``st_*`` mapping into the ``struct stat`` libfuse passed in.
The bindings do it field by field (``set_st_attrs``: a ctypes attribute write per key,
a ``divmod`` per time), which costs more than the rest of a ``getattr``.

Here the binding's own ``c_stat`` class -- the offset, size and signedness of each of
its fields -- is turned once into a :class:`struct.Struct`, so one ``pack_into`` writes
the whole struct, padding zeroed too. A layout with a field this module does not know
(``st_flags`` on a BSD, say) keeps the binding's ``set_st_attrs``, and so does any
mapping the fast path cannot pack (a missing key, a float time): the result is always
byte for byte what the binding would have written. A value the kernel could not take (an
integer out of range, a size that is not an integer) is refused instead
(:func:`~defuse2.answers.check_stat` raises, and the errno boundary answers ``EIO``,
logged), where the binding would have written it truncated.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .answers import check_stat

#: A function writing a ``st_*`` mapping into the ``struct stat`` a ctypes pointer points to.
StatFiller = Callable[[Any, Mapping[str, Any]], None]

#: Integer fields, read with ``attributes[key]``: the dispatcher always gives these.
REQUIRED = (
    "st_ino",
    "st_nlink",
    "st_mode",
    "st_uid",
    "st_gid",
    "st_size",
    "st_blksize",
    "st_blocks",
)
#: Integer fields that are often absent (then 0, as the binding leaves them).
OPTIONAL = ("st_dev", "st_rdev")
#: ``struct timespec`` fields, filled from nanoseconds (``use_ns``): ``st_atime`` and so on.
TIMES = ("st_atimespec", "st_mtimespec", "st_ctimespec")

_CODES = {1: "b", 2: "h", 4: "i", 8: "q"}


def stat_filler(c_stat: type[ctypes.Structure], set_st_attrs: Callable[..., None]) -> StatFiller:
    """The fastest correct ``fill(buf, attributes)`` for a binding's ``c_stat`` layout.

    :param c_stat: the binding's ``struct stat`` class.
    :param set_st_attrs: the binding's own filler, used when the fast path cannot be.
    """
    size = ctypes.sizeof(c_stat)

    def fill_slowly(buf: Any, attributes: Mapping[str, Any]) -> None:
        ctypes.memset(buf, 0, size)
        set_st_attrs(buf.contents, attributes, use_ns=True)

    found = packed_layout(c_stat)
    if found is None:
        return fill_slowly
    layout, values = found
    source = (
        "def fill(buf, a):\n"
        "    try:\n"
        f"        pack_into(buf.contents, 0, {', '.join(values)})\n"
        "    except KeyError:\n"
        "        fill_slowly(buf, a)\n"
        "    except struct_error:\n"
        "        check_stat(a)\n"
        "        fill_slowly(buf, a)\n"
    )
    namespace: dict[str, Any] = {
        "pack_into": struct.Struct(layout).pack_into,
        "struct_error": struct.error,
        "fill_slowly": fill_slowly,
        "check_stat": check_stat,
        "divmod": divmod,
    }
    exec(source, namespace)  # like namedtuple: code generated once, per layout
    fill: StatFiller = namespace["fill"]
    fill.__doc__ = f"Pack ``a`` into ``buf`` with ``{layout}``; else the binding's way."
    return fill


def packed_layout(c_stat: type[ctypes.Structure]) -> tuple[str, list[str]] | None:
    """The ``struct`` format of ``c_stat`` and the expression of each value, or ``None``."""
    codes, values = ["="], []
    position = 0
    for field in c_stat._fields_:
        name, ctype = field[0], field[1]
        offset = getattr(c_stat, name).offset
        if len(field) > 2 or offset < position:
            return None  # a bit field, or fields out of order
        if offset > position:
            codes.append(f"{offset - position}x")
        if name in REQUIRED or name in OPTIONAL:
            code = _code(ctype)
            if code is None:
                return None
            codes.append(code)
            values.append(f"a[{name!r}]" if name in REQUIRED else f"a.get({name!r}, 0)")
        elif name in TIMES:
            timespec = _timespec_codes(ctype)
            if timespec is None:
                return None
            codes.append(timespec)
            values.append(f"*divmod(a[{name[:-4]!r}], 1000000000)")
        elif name.startswith("_") or "reserved" in name or "pad" in name:
            codes.append(f"{ctypes.sizeof(ctype)}x")
        else:
            return None  # a field set_st_attrs might fill that we do not know
        position = offset + ctypes.sizeof(ctype)
    if ctypes.sizeof(c_stat) > position:
        codes.append(f"{ctypes.sizeof(c_stat) - position}x")
    return "".join(codes), values


def _code(ctype: Any) -> str | None:
    """The ``struct`` code of an integer ctypes type (``q``, ``I``, ...), or ``None``."""
    if not isinstance(ctype, type) or not issubclass(ctype, ctypes._SimpleCData):
        return None
    if getattr(ctype, "_type_", None) not in tuple("bBhHiIlLqQ"):
        return None
    code = _CODES.get(ctypes.sizeof(ctype))
    if code is None:
        return None
    return code if ctype(-1).value < 0 else code.upper()


def _timespec_codes(ctype: Any) -> str | None:
    """The codes of a ``struct timespec`` (``tv_sec``, ``tv_nsec``, no padding), or ``None``."""
    fields: list[tuple[str, Any]] = list(getattr(ctype, "_fields_", ()))
    if [field[0] for field in fields] != ["tv_sec", "tv_nsec"]:
        return None
    (_, seconds), (_, nanoseconds) = fields
    codes = _code(seconds), _code(nanoseconds)
    if None in codes or ctypes.sizeof(ctype) != ctypes.sizeof(seconds) + ctypes.sizeof(nanoseconds):
        return None
    return f"{codes[0]}{codes[1]}"
