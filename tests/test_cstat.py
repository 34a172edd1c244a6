"""``struct stat`` packed in one step writes exactly what the binding's ``set_st_attrs`` writes.

Each case fills a buffer full of garbage both ways -- the binding's way (``memset`` to
zero, then ``set_st_attrs``) and :func:`defuse2.cstat.stat_filler`'s -- and compares the
two structs byte for byte and field by field, on the bindings' own ``c_stat`` classes and
on the layouts of other machines.
"""

from __future__ import annotations

import ctypes
import stat
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from defuse2 import DefuseError, FileSystem
from defuse2.answers import check_stat
from defuse2.assembly import prepare
from defuse2.bindings import import_binding
from defuse2.cstat import packed_layout, stat_filler
from defuse2.mount import MountError
from defuse2.store.base import Context

NOW = 1_700_000_000_123_456_789

FILE = {
    "st_mode": stat.S_IFREG | 0o644,
    "st_ino": 5,
    "st_nlink": 1,
    "st_uid": 1000,
    "st_gid": 100,
    "st_size": 123,
    "st_atime": NOW,
    "st_mtime": NOW + 1,
    "st_ctime": NOW + 2,
    "st_blocks": 8,
    "st_blksize": 4096,
    "st_rdev": 0,
}
DIRECTORY = {**FILE, "st_mode": stat.S_IFDIR | 0o755, "st_nlink": 3, "st_size": 4096}
SYMLINK = {**FILE, "st_mode": stat.S_IFLNK | 0o777, "st_size": len("target/of/link")}
DEVICE = {**FILE, "st_mode": stat.S_IFCHR | 0o600, "st_rdev": (1 << 8) | 3, "st_dev": 42}

CASES: dict[str, Mapping[str, Any]] = {
    "file": FILE,
    "directory": DIRECTORY,
    "symlink": SYMLINK,
    "device": DEVICE,
    "no st_dev, no st_rdev": {k: v for k, v in FILE.items() if k != "st_rdev"},
    "largest values": {
        **FILE,
        "st_ino": 2**64 - 1,
        "st_nlink": 2**64 - 1,
        "st_uid": 2**32 - 1,
        "st_gid": 2**32 - 1,
        "st_size": 2**63 - 1,
        "st_blocks": 2**63 - 1,
        "st_atime": 2**63 - 1,
    },
    "negative times": {**FILE, "st_atime": -1, "st_mtime": -(10**9), "st_ctime": -(10**9) - 1},
    "negative size": {**FILE, "st_size": -1},
    "uid -1 (wraps)": {**FILE, "st_uid": -1, "st_gid": -1},
    "out of range (wraps)": {**FILE, "st_uid": 2**32 + 7, "st_size": 2**64 + 1, "st_ino": -2},
    "float times": {**FILE, "st_atime": 1.5e18, "st_mtime": 2.9},
    "bool": {**FILE, "st_nlink": True},
    "only a mode": {"st_mode": stat.S_IFREG | 0o600},
    "empty": {},
    "keys c_stat lacks": {**FILE, "st_birthtime": NOW, "st_flags": 1, "anything": 3},
    "a mapping, not a dict": types.MappingProxyType(FILE),
}


def _bindings() -> Iterator[tuple[str, Any]]:
    for name in ("mfusepy", "fusepy"):
        try:
            yield name, import_binding(name)
        except MountError:
            continue


#: The bindings this machine can load, by name.
BINDINGS = dict(_bindings())
pytestmark = pytest.mark.skipif(not BINDINGS, reason="no FUSE binding can be loaded")


# Layouts of other machines, as the bindings declare them: filled by our packer the same.
class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class I686Stat(ctypes.Structure):
    _fields_ = [
        ("st_dev", ctypes.c_ulonglong),
        ("__pad1", ctypes.c_ushort),
        ("__st_ino", ctypes.c_uint32),
        ("st_mode", ctypes.c_uint32),
        ("st_nlink", ctypes.c_uint),
        ("st_uid", ctypes.c_uint32),
        ("st_gid", ctypes.c_uint32),
        ("st_rdev", ctypes.c_ulonglong),
        ("__pad2", ctypes.c_ushort),
        ("st_size", ctypes.c_longlong),
        ("st_blksize", ctypes.c_int32),
        ("st_blocks", ctypes.c_longlong),
        ("st_atimespec", Timespec),
        ("st_mtimespec", Timespec),
        ("st_ctimespec", Timespec),
        ("st_ino", ctypes.c_ulonglong),
    ]


class Aarch64Stat(ctypes.Structure):
    _fields_ = [
        ("st_dev", ctypes.c_uint64),
        ("st_ino", ctypes.c_ulong),
        ("st_mode", ctypes.c_uint32),
        ("st_nlink", ctypes.c_uint),
        ("st_uid", ctypes.c_uint32),
        ("st_gid", ctypes.c_uint32),
        ("st_rdev", ctypes.c_uint64),
        ("__pad1", ctypes.c_ulong),
        ("st_size", ctypes.c_int64),
        ("st_blksize", ctypes.c_int),
        ("__pad2", ctypes.c_int),
        ("st_blocks", ctypes.c_long),
        ("st_atimespec", Timespec),
        ("st_mtimespec", Timespec),
        ("st_ctimespec", Timespec),
        ("__reserved", ctypes.c_ulong),
    ]


class NetbsdStat(ctypes.Structure):
    """A field the packer does not know (``st_flags``): the binding's way is kept."""

    _fields_ = [
        ("st_dev", ctypes.c_uint64),
        ("st_mode", ctypes.c_uint32),
        ("st_ino", ctypes.c_uint64),
        ("st_nlink", ctypes.c_uint32),
        ("st_uid", ctypes.c_uint32),
        ("st_gid", ctypes.c_uint32),
        ("st_rdev", ctypes.c_uint64),
        ("st_atimespec", Timespec),
        ("st_mtimespec", Timespec),
        ("st_ctimespec", Timespec),
        ("st_birthtimespec", Timespec),
        ("st_size", ctypes.c_int64),
        ("st_blocks", ctypes.c_int64),
        ("st_blksize", ctypes.c_uint32),
        ("st_flags", ctypes.c_uint32),
    ]


def _layouts() -> Iterator[Any]:
    for name, module in BINDINGS.items():
        yield pytest.param(module.c_stat, module.set_st_attrs, id=f"{name}-c_stat")
    if BINDINGS:
        set_st_attrs = next(iter(BINDINGS.values())).set_st_attrs
        for layout in (I686Stat, Aarch64Stat, NetbsdStat):
            yield pytest.param(layout, set_st_attrs, id=layout.__name__)


def _fill(
    layout: type[ctypes.Structure], fill: Callable[[Any, Mapping[str, Any]], None], attrs: Any
) -> tuple[bytes, BaseException | None]:
    """The struct's bytes after ``fill`` on a buffer full of garbage, and what it raised."""
    st = layout()
    ctypes.memset(ctypes.byref(st), 0xAB, ctypes.sizeof(st))
    try:
        fill(ctypes.pointer(st), attrs)
    except Exception as exc:  # compared with what the binding raises
        return bytes(st), exc
    return bytes(st), None


def _fields(layout: type[ctypes.Structure], data: bytes) -> dict[str, Any]:
    st = layout.from_buffer_copy(data)
    fields = {}
    for name, *_ in layout._fields_:
        value = getattr(st, name)
        if isinstance(value, ctypes.Structure):
            value = (value.tv_sec, value.tv_nsec)  # type: ignore[attr-defined]
        elif isinstance(value, ctypes.Array):
            value = list(value)
        fields[name] = value
    return fields


#: Values the kernel cannot take: the binding would write them wrapped or truncated;
#: defuse2 refuses them (then the errno boundary answers ``EIO``, logged).
REFUSED = {"uid -1 (wraps)", "out of range (wraps)", "float times", "negative size"}


@pytest.mark.parametrize(("layout", "set_st_attrs"), list(_layouts()))
@pytest.mark.parametrize("case", list(CASES))
def test_packed_struct_equals_set_st_attrs(
    layout: type[ctypes.Structure], set_st_attrs: Callable[..., None], case: str
) -> None:
    def the_bindings_way(buf: Any, attributes: Mapping[str, Any]) -> None:
        ctypes.memset(buf, 0, ctypes.sizeof(layout))
        set_st_attrs(buf.contents, attributes, use_ns=True)

    attrs = CASES[case]
    expected, expected_error = _fill(layout, the_bindings_way, attrs)
    packed, error = _fill(layout, stat_filler(layout, set_st_attrs), attrs)
    if isinstance(error, DefuseError):
        # refused where the layout could not hold a value; the kernel could not either
        assert case in REFUSED or case == "largest values", case
        with pytest.raises(DefuseError):
            check_stat(attrs)
        return
    if packed_layout(layout) is not None:  # packed in one step: never written wrapped
        assert case not in REFUSED - {"negative size"}, case
    assert type(error) is type(expected_error)
    if expected_error is None:
        assert _fields(layout, packed) == _fields(layout, expected)
        assert packed == expected


def test_the_bindings_layouts_are_packed_in_one_step() -> None:
    for name, module in BINDINGS.items():
        assert packed_layout(module.c_stat) is not None, name
        assert stat_filler(module.c_stat, module.set_st_attrs).__name__ == "fill"
    assert packed_layout(I686Stat) is not None
    assert packed_layout(Aarch64Stat) is not None


def test_a_layout_with_an_unknown_field_keeps_the_bindings_way() -> None:
    assert packed_layout(NetbsdStat) is None
    set_st_attrs = next(iter(BINDINGS.values())).set_st_attrs
    assert stat_filler(NetbsdStat, set_st_attrs).__name__ == "fill_slowly"


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("path", [b"/", b"/file", b"/dir", b"/link"])
def test_getattr_callback_writes_what_the_binding_would(binding: str, path: bytes) -> None:
    """defuse2's C-facing getattr against the binding's own, on one unmounted FUSE object."""
    module = BINDINGS[binding]
    fs = FileSystem()
    fs.store.mkdir("/dir", 0o755)
    fs.store.symlink("/link", "dir")
    fs.store.release("/file", fs.store.create("/file", 0o100640))
    prepared = prepare(fs, binding=binding, context=lambda: Context(0, 0, 1))
    fuse = object.__new__(prepared.fuse_class)
    fuse.operations, fuse.raw_fi, fuse.use_ns = prepared.operations, False, True
    fuse.encoding, fuse.errors = "utf-8", "surrogateescape"

    def call(method: Callable[..., int], *args: Any) -> bytes:
        st = module.c_stat()
        ctypes.memset(ctypes.byref(st), 0xAB, ctypes.sizeof(st))
        assert method(path, ctypes.pointer(st), *args) == 0
        return bytes(st)

    expected = call(module.FUSE.fgetattr.__get__(fuse), None)
    variants = {"fgetattr": (None,), "getattr_fuse_3": (None,), "getattr_fuse_2": (), "getattr": ()}
    called = 0
    for name, extra in variants.items():
        if name in vars(prepared.fuse_class) or name in vars(prepared.fuse_class.__base__):
            assert call(getattr(fuse, name), *extra) == expected, name
            called += 1
    assert called >= 2
