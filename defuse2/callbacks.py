"""The callbacks libfuse calls: defuse2's subclass of the binding's ``FUSE`` class.

Where this sits: kernel -> libfuse -> binding -> **callbacks** -> adapter -> dispatcher.
A binding's ``FUSE`` class hands libfuse one C callback per operation; each turns the C
arguments into fusepy's (a ``bytes`` path into ``str``, a ``fuse_file_info`` into its
handle, a C buffer into ``bytes``), calls the adapter, and writes the answer back.
The bindings' callbacks are generic (fusepy looks each operation up by name and decodes
paths with a codec written in Python; both fill ``struct stat`` field by field). The
ones here do the same conversions the short way, for defuse2's adapter only, and close
the gaps listed in :mod:`defuse2.mount`. Paths are decoded as UTF-8 with
``surrogateescape``: names that are not UTF-8 arrive as lone surrogates.

This module imports no binding: :func:`fuse_class` is given the imported module.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import sys
import threading
import types
from collections.abc import Callable
from itertools import repeat
from typing import Any, cast

from . import session
from .adapter import HIDDEN_PREFIX
from .caching import HARD_LINK_WAIT
from .cstat import stat_filler
from .errors import errno_for
from .session import Session
from .threadstate import KeptThreadStates

log = logging.getLogger("defuse2.mount")

ENCODING, ERRORS = "utf-8", "surrogateescape"

#: Writes up to this size are copied out of libfuse's buffer; larger ones are viewed.
SMALL_WRITE = 4096

string_at, memmove = ctypes.string_at, ctypes.memmove
c_char, c_void_p, addressof = ctypes.c_char, ctypes.c_void_p, ctypes.addressof

#: ``fuse_fill_dir_t`` without argtypes: its arguments are handed over as C values.
UNTYPED_FILLER = ctypes.CFUNCTYPE(ctypes.c_int)


def guarded_call(fuse: Any, func: Callable[..., Any], *args: Any) -> int:
    """Run one callback and turn its outcome into libfuse's ``0``/``-errno`` convention.

    It is every callback's ``_wrapper``. Whatever escapes the adapter -- a store's
    ``FileNotFoundError(path)``, a bug, even ``SystemExit`` raised by a filesystem's code
    -- meets the errno boundary (:func:`~defuse2.errors.errno_for`): an errno, or ``EIO``
    and a log line, and the loop serves on. (The bindings would answer ``EINVAL``, or
    stop the loop.) Only a failing ``init`` stops the mount: it never started.
    """
    try:
        return func(*args) or 0
    except BaseException as exc:
        if func.__name__.startswith("init"):
            raise
        op, path = _operation(func.__name__), _decoded(args[0] if args else None)
        served_by = fuse.operations.dispatcher.served_by
        return -errno_for(exc, op, path, lambda: served_by(path if isinstance(path, str) else None))


def _operation(callback: str) -> str:
    """The operation a callback serves: ``getattr`` for ``fgetattr`` or ``getattr_2``."""
    if callback[-2:] in ("_2", "_3"):
        callback = callback[:-2]
    return {"fgetattr": "getattr", "ftruncate": "truncate"}.get(callback, callback)


def _decoded(path: Any) -> Any:
    return path.decode(ENCODING, ERRORS) if isinstance(path, bytes) else path


def thread_keeping_call(states: KeptThreadStates) -> Callable[..., int]:
    """:func:`guarded_call` for libfuse's threaded loop: the worker's thread state is kept first."""
    flag, keep = states.flag, states.keep

    def call(fuse: Any, func: Callable[..., Any], *args: Any) -> int:
        if not flag.kept:
            # A libfuse worker has no Python frame below its callback; a Python thread
            # answering requests too (a spare reader) has.
            keep(foreign=sys._getframe().f_back is None)
        return guarded_call(fuse, func, *args)

    return call


_serving = threading.local()  # .serve: what fuse_main_real() does in this thread


def _replace_main(module: Any) -> None:
    """Make the binding's call of ``fuse_main_real()`` run :func:`defuse2.session.serve`
    (for the :class:`FUSE` built here; any other caller gets libfuse's)."""
    owner = module if hasattr(module, "fuse_main_real") else module._libfuse  # mfusepy, fusepy
    original = owner.fuse_main_real
    if getattr(original, "defuse2", False):
        return

    def fuse_main_real(argc: int, argv: Any, operations: Any, size: int, data: Any) -> int:
        serve = getattr(_serving, "serve", None)
        if serve is None:
            return int(original(argc, argv, operations, size, data))
        return int(serve([argv[index] for index in range(argc)], operations, size))

    fuse_main_real.defuse2 = True  # type: ignore[attr-defined]
    owner.fuse_main_real = fuse_main_real


def _fh(fip: Any) -> int | None:
    return int(fip.contents.fh) if fip else None


def _id(value: int) -> int:
    """``(uid_t)-1`` arrives as 4294967295: turn it back into -1 ("leave unchanged")."""
    return -1 if value == 0xFFFFFFFF else value


def _times(buf: Any) -> tuple[int, int] | None:
    """The (atime, mtime) nanoseconds of a ``struct timespec[2]``; ``None``: now."""
    if not buf:
        return None
    atime, mtime = buf.contents.actime, buf.contents.modtime
    return atime.tv_sec * 10**9 + atime.tv_nsec, mtime.tv_sec * 10**9 + mtime.tv_nsec


def _writeback_open(opener: Callable[[int], int], flags: int) -> int:
    """Open with ``opener(flags)`` as the writeback cache needs it: readable, because the
    kernel reads the rest of a page it writes part of, and without ``O_APPEND``, because
    the kernel appends itself and sends each write with its offset. A file the caller
    may write but not read is opened write-only, as asked."""
    flags &= ~os.O_APPEND
    if flags & os.O_ACCMODE != os.O_WRONLY:
        return opener(flags)
    try:
        return opener(flags & ~os.O_ACCMODE | os.O_RDWR)
    except PermissionError:
        return opener(flags)


class Callbacks:
    """defuse2's callbacks, one method per C callback, for a binding's ``FUSE`` class.

    Mixed in before the binding's own ``FUSE`` class by :func:`fuse_class`, which also
    sets the attributes below for that binding. Each method takes libfuse's C arguments
    as the binding hands them over (``bytes`` paths, pointers to ``fuse_file_info``,
    ``struct stat`` and buffers) and answers ``0`` or a count; an exception becomes
    ``-errno`` in :func:`guarded_call`, the binding's ``_wrapper`` of every callback.
    """

    _wrapper = guarded_call

    #: The binding's module (mfusepy or fusepy), its libfuse library and major version.
    binding: Any
    library: Any
    major: int
    #: Writes an :class:`os.stat_result`-like answer into the binding's ``struct stat``.
    fill: Callable[[Any, Any], None]
    #: The extra C arguments of ``fuse_fill_dir_t`` after the name's stat: its offset,
    #: and on libfuse 3 its flags.
    zeros: tuple[Any, ...]
    #: libfuse hands ``cache_readdir`` on from the high-level API (3.16 and later).
    lists_cache: bool
    #: The adapter (:class:`~defuse2.adapter.Operations`), set by the binding's class.
    operations: Any

    def __init__(
        self,
        operations: Any,
        mountpoint: str,
        *,
        opened: Callable[[Session], Callable[[], None]],
        **options: Any,
    ) -> None:
        # Mounts, serves until unmounted, and returns (the bindings work so), through
        # defuse2.session instead of libfuse's fuse_main_real().
        def serve(argv: list[bytes], operations: Any, size: int) -> int:
            return session.serve(self.library, self.major, argv, operations, size, opened=opened)

        states = None if options.get("nothreads") else KeptThreadStates()
        if states is not None:  # libfuse's threaded loop calls from its own threads
            self._wrapper = types.MethodType(thread_keeping_call(states), self)  # type: ignore[method-assign]
        _serving.serve = serve
        try:
            super().__init__(operations, mountpoint, foreground=True, **options)  # type: ignore[call-arg]
        finally:
            del _serving.serve
            if states is not None:
                states.release()

    # -- attributes and directories, in libfuse 2 and 3 spellings ---------------------
    def fgetattr(self, path: bytes | None, buf: Any, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        self.fill(buf, self.operations.getattr(decoded, fip.contents.fh if fip else None))
        return 0

    def getattr_2(self, path: bytes | None, buf: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        self.fill(buf, self.operations.getattr(decoded, None))
        return 0

    def readdir_2(self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any) -> int:
        # Names only, with no struct stat: libfuse then reports "inode unknown" to the
        # kernel (with use_ino, a zeroed stat would give inode 0, which readdir(3)
        # skips), and each name costs one call instead of two. The filler is called
        # through a prototype without argtypes, its arguments ready as C values: each
        # name then costs ctypes no conversion but its own. map() drives the calls
        # from C (any() stops at the first 1: libfuse's buffer is full): 17 % less
        # server time per name than a Python loop.
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        names = self.operations.readdir(decoded, fip.contents.fh)
        add = UNTYPED_FILLER(cast(int, c_void_p.from_buffer(filler).value))
        count = len(names)
        encoded = map(str.encode, names, repeat(ENCODING, count), repeat(ERRORS, count))
        extra = [repeat(value, count) for value in (None, *self.zeros)]
        any(map(add, repeat(c_void_p(buf), count), encoded, *extra))  # 1: buffer full
        return 0

    def readdir_3(
        self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int
    ) -> int:
        return self.readdir_2(path, buf, filler, offset, fip)

    def opendir(self, path: bytes, fip: Any) -> int:
        fi = fip.contents
        decoded = path.decode(ENCODING, ERRORS)
        fi.fh = self.operations.opendir(decoded)
        if self.lists_cache and self.operations.caches_listing(decoded):
            # The kernel keeps the listing in its page cache (libfuse >= 3.16 hands
            # these on from the high-level API) and drops it when the directory
            # changes through the mount.
            fi.cache_readdir = fi.keep_cache = 1
        return 0

    def releasedir(self, path: bytes | None, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        self.operations.releasedir(decoded, fip.contents.fh)
        return 0

    def readlink(self, path: bytes, buf: Any, size: int) -> int:
        target = self.operations.readlink(path.decode(ENCODING, ERRORS))
        data = target.encode(ENCODING, ERRORS)[: size - 1] + b"\0"  # truncated, terminated
        memmove(buf, data, len(data))
        return 0

    def access(self, path: bytes, amode: int) -> int:
        self.operations.access(path.decode(ENCODING, ERRORS), amode)
        return 0

    # -- names ----------------------------------------------------------------------
    def mknod(self, path: bytes, mode: int, dev: int) -> int:
        self.operations.mknod(path.decode(ENCODING, ERRORS), mode, dev)
        return 0

    def mkdir(self, path: bytes, mode: int) -> int:
        self.operations.mkdir(path.decode(ENCODING, ERRORS), mode)
        return 0

    def unlink(self, path: bytes) -> int:
        self.operations.unlink(path.decode(ENCODING, ERRORS))
        return 0

    def rmdir(self, path: bytes) -> int:
        self.operations.rmdir(path.decode(ENCODING, ERRORS))
        return 0

    def symlink(self, source: bytes, target: bytes) -> int:
        self.operations.symlink(target.decode(ENCODING, ERRORS), source.decode(ENCODING, ERRORS))
        return 0

    def rename_2(self, old: bytes, new: bytes) -> int:
        self.operations.rename(old.decode(ENCODING, ERRORS), new.decode(ENCODING, ERRORS))
        return 0

    def rename_3(self, old: bytes, new: bytes, flags: int) -> int:
        # mfusepy drops the renameat2(2) flags; here they reach the dispatcher.
        self.operations.rename(old.decode(ENCODING, ERRORS), new.decode(ENCODING, ERRORS), flags)
        return 0

    def link(self, source: bytes, target: bytes) -> int:
        operations = self.operations
        old = source.decode(ENCODING, ERRORS)
        operations.link(target.decode(ENCODING, ERRORS), old)
        if operations.hard_links is not None:
            # libfuse gives the new name its own kernel inode; the kernel keeps the old
            # name's cached attributes (st_nlink 1) for up to attr_timeout. Tell it to
            # forget them, so both names show the new link count at once, and note
            # that the old name now shares its content with another.
            operations.hard_links.saw(old, operations.getattr(old))
            operations.invalidator.invalidate(old, wait=HARD_LINK_WAIT)
        return 0

    # -- metadata: libfuse 3 passes the handle of f*() calls (mfusepy drops it) -------
    def chmod_2(self, path: bytes | None, mode: int) -> int:
        return self.chmod_3(path, mode, None)

    def chmod_3(self, path: bytes | None, mode: int, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        self.operations.chmod(decoded, mode, _fh(fip))
        return 0

    def chown_2(self, path: bytes | None, uid: int, gid: int) -> int:
        return self.chown_3(path, uid, gid, None)

    def chown_3(self, path: bytes | None, uid: int, gid: int, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        self.operations.chown(decoded, _id(uid), _id(gid), _fh(fip))
        return 0

    def truncate_2(self, path: bytes | None, length: int) -> int:
        return self.truncate_3(path, length, None)

    def truncate_3(self, path: bytes | None, length: int, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        operations = self.operations
        operations.truncate(decoded, length, _fh(fip))
        if operations.linked_names:  # a file with several names was seen
            operations.hard_links.changed(decoded)
        return 0

    def ftruncate(self, path: bytes | None, length: int, fip: Any) -> int:
        return self.truncate_3(path, length, fip)

    def utimens_2(self, path: bytes | None, buf: Any) -> int:
        return self.utimens_3(path, buf, None)

    def utimens_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        times = _times(buf)
        try:
            self.operations.utimens(decoded, times, _fh(fip))
        except PermissionError:
            if not self.operations.is_kernel_mtime(times):
                raise
        return 0

    # -- files ----------------------------------------------------------------------
    def open(self, path: bytes, fip: Any) -> int:
        fi = fip.contents
        decoded = path.decode(ENCODING, ERRORS)
        operations = self.operations
        try:
            if operations.writeback:
                fi.fh = _writeback_open(functools.partial(operations.open, decoded), fi.flags)
            else:
                fi.fh = operations.open(decoded, fi.flags)
        except FileNotFoundError:
            if HIDDEN_PREFIX not in decoded:
                raise
            # Threads: libfuse handed out the hidden name of a file being replaced,
            # and the last close of its old version removed it meanwhile. ESTALE
            # makes the kernel look the name up again and open what is there now.
            return -errno.ESTALE
        # direct_io: the content changes by itself, no page cache; keep_cache: the
        # kernel is its only writer, the pages it holds stay good.
        fi.direct_io, fi.keep_cache = operations.page_cache(decoded)
        return 0

    def create(self, path: bytes, mode: int, fip: Any) -> int:
        # fusepy drops the open flags; mfusepy inspects our signature on every call.
        fi = fip.contents
        decoded = path.decode(ENCODING, ERRORS)
        operations = self.operations
        if operations.writeback:
            opener = functools.partial(operations.create, decoded, mode)
            fi.fh = _writeback_open(opener, fi.flags)
        else:
            fi.fh = operations.create(decoded, mode, fi.flags)
        fi.direct_io, fi.keep_cache = operations.page_cache(decoded)
        return 0

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        data = self.operations.read(decoded, size, offset, fip.contents.fh)
        count = len(data)
        if count > size:
            count = size
        if count:
            memmove(buf, data, count)
        return count

    def write(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        # Above 4 KiB, a view of libfuse's buffer, valid during this call, instead of a
        # copy (the store copies what it keeps; a routed resource is given bytes).
        # Below, copying costs less than building the view.
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        if size > SMALL_WRITE:
            data: Any = memoryview((c_char * size).from_address(addressof(buf.contents)))
        else:
            data = string_at(buf, size)
        operations = self.operations
        written: int = operations.write(decoded, data, offset, fip.contents.fh)
        if operations.linked_names:  # a file with several names was seen
            operations.hard_links.changed(decoded)
        return written

    def fallocate(self, path: bytes | None, mode: int, offset: int, size: int, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        operations = self.operations
        operations.fallocate(decoded, mode, offset, size, fip.contents.fh)
        if operations.linked_names:  # a file with several names was seen
            operations.hard_links.changed(decoded)
        return 0

    def flush(self, path: bytes | None, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        self.operations.flush(decoded, fip.contents.fh)
        return 0

    def fsync(self, path: bytes | None, datasync: int, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        self.operations.fsync(decoded, datasync, fip.contents.fh)
        return 0

    def release(self, path: bytes | None, fip: Any) -> int:
        decoded = None if path is None else path.decode(ENCODING, ERRORS)
        self.operations.release(decoded, fip.contents.fh)
        return 0

    # -- extended attributes --------------------------------------------------------
    def getxattr(self, path: bytes, name: bytes, value: Any, size: int, *position: int) -> int:
        decoded = path.decode(ENCODING, ERRORS), name.decode(ENCODING, ERRORS)
        data = self.operations.find_xattr(*decoded)
        if data is None:
            return -errno.ENODATA  # the common answer, without an exception
        count = len(data)
        if not value:
            return count  # the caller asks for the size
        if count > size:
            return -errno.ERANGE
        memmove(value, data, count)
        return count

    def setxattr(
        self, path: bytes, name: bytes, value: Any, size: int, options: int, *position: int
    ) -> int:
        decoded = path.decode(ENCODING, ERRORS), name.decode(ENCODING, ERRORS)
        self.operations.setxattr(*decoded, string_at(value, size), options, *position)
        return 0

    def removexattr(self, path: bytes, name: bytes) -> int:
        self.operations.removexattr(path.decode(ENCODING, ERRORS), name.decode(ENCODING, ERRORS))
        return 0


def fuse_class(module: Any) -> type:
    """The ``FUSE`` class of ``module`` (mfusepy or fusepy) with defuse2's callbacks."""
    major = int(getattr(module, "fuse_version_major", 2))
    _replace_main(module)
    # The operations whose C signature changed between libfuse 2 and 3 go by the names
    # each binding calls: fusepy's plain ones, mfusepy's ``*_fuse_2`` and ``*_fuse_3``.
    changed = ("getattr", "readdir", "rename", "chmod", "chown", "truncate", "utimens")
    if hasattr(module.FUSE, "getattr_fuse_3"):  # mfusepy
        names = {f"{op}_fuse_{n}": f"{op}_{n}" for op in changed for n in (2, 3)}
        names["getattr_fuse_3"] = "fgetattr"
    else:  # fusepy: libfuse 2 only
        names = {op: f"{op}_2" for op in changed}
    namespace: dict[str, Any] = {
        name: getattr(Callbacks, ours) for name, ours in names.items() if hasattr(Callbacks, ours)
    }
    namespace.update(
        binding=module,
        library=module._libfuse,
        major=major,
        fill=staticmethod(stat_filler(module.c_stat, module.set_st_attrs)),
        # fuse_fill_dir_t(buf, name, stat, off_t offset[, enum fuse_fill_dir_flags on 3])
        zeros=(ctypes.c_int64(0), ctypes.c_int(0)) if major == 3 else (ctypes.c_int64(0),),
        # libfuse 3.5+ declares cache_readdir; the high-level API hands it on from 3.16 on.
        lists_cache=any(field[0] == "cache_readdir" for field in module.fuse_file_info._fields_),
    )
    return type("FUSE", (Callbacks, module.FUSE), namespace)
