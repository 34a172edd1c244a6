"""libfuse 2's live timeouts, found in its ``struct fuse``, for per-reply timeouts.

Where this sits: kernel -> libfuse 2 -> binding -> adapter (``getattr``) -> **here**.
libfuse 3 hands the high-level API's configuration to ``init``, and reads its
``attr_timeout`` and ``entry_timeout`` as it builds each reply, after the callback has
returned: setting them in ``getattr`` chooses the timeouts of that reply. libfuse 2 reads
them the same way, from the ``struct fuse_config`` inside its ``struct fuse``, but hands
that to nobody. Without it, the kernel caches a hard-linked file's attributes under each
of its names (libfuse gives each name a kernel inode of its own) for the mount's whole
``attr_timeout``, so a ``chmod`` through one name stays unseen through the other.

:func:`find_config` reads the ``struct fuse *`` from ``fuse_get_context()`` inside a
callback and looks for the configuration where libfuse 2.9's layout puts it on this
machine. It is used only if what it finds there is exactly the configuration the mount
asked for (the three timeouts and ``use_ino``); anything else (another libfuse 2 build,
another ABI) gives ``None``, and replies keep the mount's timeouts, as before.
"""

from __future__ import annotations

import ctypes
import platform
from typing import Any


class Timeouts(ctypes.Structure):
    """The start of libfuse 2.9's ``struct fuse_config``."""

    _fields_ = [
        ("uid", ctypes.c_uint),
        ("gid", ctypes.c_uint),
        ("umask", ctypes.c_uint),
        ("entry_timeout", ctypes.c_double),
        ("negative_timeout", ctypes.c_double),
        ("attr_timeout", ctypes.c_double),
        ("ac_attr_timeout", ctypes.c_double),
        ("ac_attr_timeout_set", ctypes.c_int),
        ("remember", ctypes.c_int),
        ("nopath", ctypes.c_int),
        ("debug", ctypes.c_int),
        ("hard_remove", ctypes.c_int),
        ("use_ino", ctypes.c_int),
    ]


class _NodeTable(ctypes.Structure):
    _fields_ = [
        ("array", ctypes.c_void_p),
        ("use", ctypes.c_size_t),
        ("size", ctypes.c_size_t),
        ("split", ctypes.c_size_t),
    ]


class _Fuse(ctypes.Structure):
    """libfuse 2.9's ``struct fuse``, up to its configuration."""

    _fields_ = [
        ("se", ctypes.c_void_p),
        ("name_table", _NodeTable),
        ("id_table", _NodeTable),
        ("lru_table", ctypes.c_void_p * 2),
        ("ctr", ctypes.c_uint64),
        ("generation", ctypes.c_uint),
        ("hidectr", ctypes.c_uint),
        ("lock", ctypes.c_byte * 40),  # pthread_mutex_t of glibc on x86-64
        ("conf", Timeouts),
    ]


class _Context(ctypes.Structure):
    _fields_ = [("fuse", ctypes.c_void_p)]


def find_config(library: Any, *, entry: float, negative: float, attr: float) -> Any | None:
    """libfuse 2's live ``struct fuse_config`` of the mount being served, or ``None``.

    Call inside a callback (``init``). ``entry``, ``negative`` and ``attr`` are the
    timeouts the mount was given (libfuse's defaults: 1, 0, 1); the configuration is
    trusted only if it holds exactly those and ``use_ino``.

    :param library: libfuse 2's ``CDLL``.
    """
    if platform.machine() != "x86_64" or library.fuse_version() != 29:
        return None  # the layout below is libfuse 2.9's on x86-64
    get_context = library["fuse_get_context"]  # a fresh function object
    get_context.argtypes = []
    get_context.restype = ctypes.POINTER(_Context)
    context = get_context()
    if not context or not context.contents.fuse:
        return None
    config = _Fuse.from_address(context.contents.fuse).conf
    found = (config.entry_timeout, config.negative_timeout, config.attr_timeout)
    if found != (entry, negative, attr) or config.use_ino != 1 or config.hard_remove != 0:
        return None
    return config
