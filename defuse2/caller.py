"""Who is asking: the uid, gid, pid and umask of the process a request serves.

Where this sits: libfuse -> binding -> callbacks -> adapter -> dispatcher, which asks
for the caller's :class:`~defuse2.store.base.Context` when a store creates a file (its
owner) or checks a permission. libfuse's high-level API answers
``fuse_get_context()``: a pointer to a ``struct fuse_context`` that libfuse keeps per
serving thread and refills before each request. It is read here the short way: the
struct is fetched once per thread and its four fields are read in one
``struct.unpack_from`` per request, instead of one ctypes field access each.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from collections.abc import Callable
from typing import Any

from .store.base import Context


class FuseContext(ctypes.Structure):
    """``struct fuse_context`` of libfuse >= 2.8 (both majors), with ``umask``."""

    _fields_ = [
        ("fuse", ctypes.c_void_p),
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("pid", ctypes.c_int32),
        ("private_data", ctypes.c_void_p),
        ("umask", ctypes.c_uint32),
    ]


def fields_unpacker(structure: type[ctypes.Structure], fields: str) -> Callable[[Any], Any]:
    """``unpack_from`` of ``fields`` (``"uid:I gid:I"``) of a ctypes ``structure``, at
    their offsets: one C call answers the tuple that one field read each would build."""
    layout, end = "=", 0
    for field in fields.split():
        name, code = field.split(":")
        offset = getattr(structure, name).offset
        layout += f"{offset - end}x{code}"
        end = offset + struct.calcsize(f"={code}")
    return struct.Struct(layout).unpack_from


def context_function(
    get: Callable[[], Any], *, has_umask: bool = True, single_threaded: bool = False
) -> Callable[[], Context]:
    """A zero-argument callable: the :class:`Context` of the request being served.

    libfuse keeps one ``struct fuse_context`` per serving thread and refills it before each
    request, so a thread's struct is fetched once, in its first request (before any,
    ``get`` answers ``NULL``), and only its fields are read per call: in one variable when
    one thread serves, in a ``threading.local`` when several may (spare readers,
    :mod:`defuse2.readers`; libfuse's threaded loop, whose worker threads keep their
    Python thread state, :mod:`defuse2.threadstate`).

    :param get: a foreign function returning a pointer to ``struct fuse_context``.
    :param single_threaded: only one thread ever serves.
    """
    new = tuple.__new__  # Context(...) without its Python-level __new__
    if not has_umask:  # libfuse < 2.8

        def context_without_umask() -> Context:
            current = get().contents
            return new(Context, (current.uid, current.gid, current.pid, 0o022))

        return context_without_umask

    unpack = fields_unpacker(FuseContext, "uid:I gid:I pid:i umask:I")
    if not single_threaded:
        local = threading.local()

        def thread_context() -> Context:
            try:
                return new(Context, unpack(local.current))
            except AttributeError:
                local.current = get().contents
                return new(Context, unpack(local.current))

        return thread_context

    current = None  # the serving thread's struct, once a request has shown it

    def kept_context() -> Context:
        nonlocal current
        if current is None:
            current = get().contents
        return new(Context, unpack(current))

    return kept_context


def libfuse_context(library: Any, *, single_threaded: bool = False) -> Callable[[], Context]:
    """:func:`context_function` over libfuse's own ``fuse_get_context()``."""
    get = library["fuse_get_context"]  # a fresh function object: the binding's stays as is
    get.argtypes = []
    get.restype = ctypes.POINTER(FuseContext)
    has_umask = library.fuse_version() >= 28
    return context_function(get, has_umask=has_umask, single_threaded=single_threaded)
