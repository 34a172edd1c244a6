"""libfuse's mount and session, driven from Python instead of ``fuse_main()``.

Where this sits: kernel -> libfuse -> **session** -> binding callbacks -> adapter. The
bindings hand their ``struct fuse_operations`` to libfuse's ``fuse_main_real()``, which
mounts, daemonizes, installs signal handlers, runs a loop and tears everything down in
one call that Python cannot step into. :func:`serve` does the same steps, in the order a
filesystem that waits on slow resources needs:

1. ``fuse_new()`` and ``fuse_mount()`` with the binding's options;
2. libfuse's own loop (``fuse_loop()``, or ``fuse_loop_mt()`` with ``threads``) reads and
   answers requests in C, one at a time; :mod:`defuse2.readers` adds reader threads,
   only while calls are slow, that read from the same session;
3. once the loop has ended (the mount was unmounted), every extra reader is out of
   libfuse *before* ``fuse_unmount()`` closes the device and ``fuse_destroy()`` frees the
   session; a reader still held by a hung method keeps them from running at all.

There is no ``fuse_daemonize()`` (:mod:`defuse2.serving` forks in Python, before any
thread exists) and no libfuse signal handler (Python's own handlers stop the mount).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("defuse2.mount")

#: ``-o`` options of libfuse's loop (``fuse_parse_cmdline()``), not of ``fuse_new()``.
LOOP_OPTIONS = frozenset({"max_idle_threads", "max_threads", "clone_fd"})


class FuseArgs(ctypes.Structure):
    """``struct fuse_args``."""

    _fields_ = [
        ("argc", ctypes.c_int),
        ("argv", ctypes.POINTER(ctypes.c_char_p)),
        ("allocated", ctypes.c_int),
    ]


class FuseBuf(ctypes.Structure):
    """``struct fuse_buf`` (libfuse 2.9 and 3)."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("flags", ctypes.c_int),
        ("mem", ctypes.c_void_p),
        ("fd", ctypes.c_int),
        ("pos", ctypes.c_int64),
    ]


class _LoopConfigV1(ctypes.Structure):
    """``struct fuse_loop_config`` of libfuse 3.2 to 3.11."""

    _fields_ = [("clone_fd", ctypes.c_int), ("max_idle_threads", ctypes.c_uint)]


def _function(library: Any, name: str, restype: Any, *argtypes: Any) -> Any:
    """A fresh foreign function (the binding's own, typed its way, stay as they are)."""
    function = library[name]
    function.restype = restype
    function.argtypes = list(argtypes)
    return function


_void_p = ctypes.c_void_p
_buf_p = ctypes.POINTER(FuseBuf)


def _versioned(library: Any, name: str, version: str, restype: Any, *argtypes: Any) -> Any:
    """``name`` at symbol version ``version``: ``dlsym()`` may answer an older one
    (libfuse 2's plain ``fuse_new`` is its 2.2 compatibility entry)."""
    libc = ctypes.CDLL(None)
    libc.dlvsym.restype = _void_p
    libc.dlvsym.argtypes = [_void_p, ctypes.c_char_p, ctypes.c_char_p]
    address = libc.dlvsym(library._handle, name.encode(), version.encode())
    if not address:
        return _function(library, name, restype, *argtypes)
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


class Session:
    """A mounted libfuse filesystem: its ``struct fuse``, session and device.

    Built by :func:`serve`; :mod:`defuse2.readers` reads from it with :meth:`receive`
    and :meth:`process`.
    """

    def __init__(self, library: Any, major: int, fuse: int, channel: int | None) -> None:
        self.library = library
        self.major = major
        self.fuse = fuse  # struct fuse *
        self.channel = channel  # libfuse 2: struct fuse_chan *
        get_session = _function(library, "fuse_get_session", _void_p, _void_p)
        self.pointer: int = get_session(fuse)  # struct fuse_session *
        self.buffer_size = 0
        if major == 2:
            bufsize = _function(library, "fuse_chan_bufsize", ctypes.c_size_t, _void_p)
            self.buffer_size = int(bufsize(channel))
            self._receive = _function(
                library, "fuse_session_receive_buf", ctypes.c_int, _void_p, _buf_p,
                ctypes.POINTER(_void_p),
            )  # fmt: skip
            self._process = _function(
                library, "fuse_session_process_buf", None, _void_p, _buf_p, _void_p
            )
        else:
            self._receive = _function(
                library, "fuse_session_receive_buf", ctypes.c_int, _void_p, _buf_p
            )
            self._process = _function(library, "fuse_session_process_buf", None, _void_p, _buf_p)
        self._exit = _function(library, "fuse_session_exit", None, _void_p)
        self._get_context = _function(library, "fuse_get_context", _void_p)
        self._interrupted = _function(library, "fuse_interrupted", ctypes.c_int)

    def new_buffer(self) -> tuple[FuseBuf, Any]:
        """A request buffer for one reader thread, and what keeps its memory alive."""
        buffer = FuseBuf()
        if self.major == 2:  # libfuse 2 reads into the caller's memory
            memory = ctypes.create_string_buffer(self.buffer_size)
            buffer.mem = ctypes.addressof(memory)
            return buffer, memory
        return buffer, None  # libfuse 3 allocates it in the first receive

    def receive(self, buffer: FuseBuf, memory: Any) -> int:
        """Wait for the next request (the GIL is released): its size, or ``-errno``;
        0 once the filesystem is unmounted."""
        if self.major == 2:
            buffer.mem, buffer.size, buffer.flags = ctypes.addressof(memory), self.buffer_size, 0
            channel = _void_p(self.channel)
            return int(self._receive(self.pointer, ctypes.byref(buffer), ctypes.byref(channel)))
        return int(self._receive(self.pointer, ctypes.byref(buffer)))

    def process(self, buffer: FuseBuf) -> None:
        """Answer the request in ``buffer``: the callbacks run in this thread."""
        if self.major == 2:
            self._process(self.pointer, ctypes.byref(buffer), _void_p(self.channel))
        else:
            self._process(self.pointer, ctypes.byref(buffer))

    def free_buffer(self, buffer: FuseBuf) -> None:
        """Give back what libfuse 3 allocated for ``buffer``."""
        if self.major == 3 and buffer.mem:
            ctypes.CDLL(None).free(_void_p(buffer.mem))
            buffer.mem = None

    def serving_here(self) -> bool:
        """Whether the calling thread has served a request of libfuse (it has a context)."""
        return bool(self._get_context())

    def interrupted(self) -> bool:
        """Whether the request the calling thread serves was interrupted: the kernel sent
        ``FUSE_INTERRUPT`` for it (its caller got a signal). ``False`` on a thread that
        serves no request (libfuse 2 would read through a null pointer there)."""
        return self.serving_here() and bool(self._interrupted())

    def exit(self) -> None:
        """Ask libfuse's loop to end after the request it is serving."""
        self._exit(self.pointer)


def _split_options(argv: Sequence[bytes]) -> tuple[list[bytes], bool, dict[str, int], bytes]:
    """Our own ``fuse_parse_cmdline()``: (arguments for ``fuse_new()``, single-threaded,
    the loop's own options, mount point), from the binding's ``argv``."""
    arguments: list[bytes] = []
    single = False
    loop: dict[str, int] = {}
    mountpoint = b""
    items = list(argv[1:])
    while items:
        item = items.pop(0)
        if item == b"-s":
            single = True
        elif item == b"-f":
            pass  # always in the foreground here
        elif item == b"-o" and items:
            kept = []
            for option in re.split(rb"(?<!\\),", items.pop(0)):
                key, _, value = option.decode(errors="replace").partition("=")
                if key in LOOP_OPTIONS:
                    loop[key] = int(value or 1)
                else:
                    kept.append(option)
            if not any(option.startswith(b"subtype=") for option in kept):
                kept.append(b"subtype=" + os.path.basename(argv[0]))  # libfuse's default
            arguments += [b"-o", b",".join(kept)]
        elif item.startswith(b"-"):
            arguments.append(item)  # -d
        else:
            mountpoint = item
    return arguments, single, loop, mountpoint


def _arguments(program: bytes, arguments: list[bytes]) -> tuple[FuseArgs, Any]:
    argv = (ctypes.c_char_p * (len(arguments) + 2))(program, *arguments, None)
    return FuseArgs(len(arguments) + 1, argv, 0), argv


class MountFailed(Exception):
    """libfuse could not mount (it printed why on stderr); ``args[0]`` is a status."""


def serve(
    library: Any,
    major: int,
    argv: Sequence[bytes],
    operations: Any,
    size: int,
    *,
    opened: Callable[[Session], Callable[[], None]],
) -> int:
    """Mount and serve until unmounted, as ``fuse_main_real()`` would: its status.

    :param argv: the binding's arguments (``fuse -f [-s] -o OPTIONS MOUNTPOINT``).
    :param operations: a pointer to the binding's ``struct fuse_operations``.
    :param opened: called with the new session before the loop starts; it returns what
        to call once the loop has ended and before the session is torn down (where the
        extra readers are waited for).
    :raises MountFailed: ``fuse_new()`` or ``fuse_mount()`` failed.
    """
    arguments, single, loop_options, mountpoint = _split_options(argv)
    args, keep = _arguments(argv[0], arguments)
    channel: int | None = None
    if major == 2:
        mount = _function(library, "fuse_mount", _void_p, ctypes.c_char_p, ctypes.POINTER(FuseArgs))
        channel = mount(mountpoint, ctypes.byref(args))
        if not channel:
            raise MountFailed(4)
        new = _versioned(
            library, "fuse_new", "FUSE_2.6", _void_p, _void_p, ctypes.POINTER(FuseArgs),
            _void_p, ctypes.c_size_t, _void_p,
        )  # fmt: skip
        fuse = new(channel, ctypes.byref(args), operations, size, None)
        if not fuse:
            _function(library, "fuse_unmount", None, ctypes.c_char_p, _void_p)(mountpoint, channel)
            raise MountFailed(3)
    else:
        # libfuse 3.17 and later export fuse_new only under symbol versions (the header
        # picks one): 3.1's is the call every libfuse 3 since 3.1 answers.
        new = _versioned(
            library, "fuse_new", "FUSE_3.1", _void_p, ctypes.POINTER(FuseArgs), _void_p,
            ctypes.c_size_t, _void_p,
        )  # fmt: skip
        fuse = new(ctypes.byref(args), operations, size, None)
        if not fuse:
            raise MountFailed(3)
        if _function(library, "fuse_mount", ctypes.c_int, _void_p, ctypes.c_char_p)(
            fuse, mountpoint
        ):
            _function(library, "fuse_destroy", None, _void_p)(fuse)
            raise MountFailed(4)
    session = Session(library, major, fuse, channel)
    ended = opened(session)
    try:
        status = _loop(library, major, fuse, single, loop_options)
    finally:
        ended()  # every extra reader is out of libfuse now
    if major == 2:
        _function(library, "fuse_unmount", None, ctypes.c_char_p, _void_p)(mountpoint, channel)
    else:
        _function(library, "fuse_unmount", None, _void_p)(fuse)
    _function(library, "fuse_destroy", None, _void_p)(fuse)
    _function(library, "fuse_opt_free_args", None, ctypes.POINTER(FuseArgs))(ctypes.byref(args))
    del keep  # the arguments' memory, in use until here
    return 8 if status else 0


def _loop(library: Any, major: int, fuse: int, single: bool, options: dict[str, int]) -> int:
    """Run libfuse's own loop until the filesystem is unmounted: its result.

    :param options: ``max_threads``, ``max_idle_threads``, ``clone_fd`` of the threaded
        loop (libfuse 3; libfuse 2 has none).
    """
    if single:
        return int(_function(library, "fuse_loop", ctypes.c_int, _void_p)(fuse))
    if major == 2:
        return int(_function(library, "fuse_loop_mt", ctypes.c_int, _void_p)(fuse))
    idle = options.get("max_idle_threads")
    if not hasattr(library, "fuse_loop_cfg_create"):  # libfuse 3.2 to 3.11
        legacy = _LoopConfigV1(options.get("clone_fd", 0), 10 if idle is None else idle)
        loop = _function(
            library, "fuse_loop_mt", ctypes.c_int, _void_p, ctypes.POINTER(_LoopConfigV1)
        )
        return int(loop(fuse, ctypes.byref(legacy)))
    config = _function(library, "fuse_loop_cfg_create", _void_p)()
    try:
        for name, value in (("idle_threads", idle), ("max_threads", options.get("max_threads"))):
            if value is not None:
                setter = f"fuse_loop_cfg_set_{name}"
                _function(library, setter, None, _void_p, ctypes.c_uint)(config, value)
        if "clone_fd" in options:
            _function(library, "fuse_loop_cfg_set_clone_fd", None, _void_p, ctypes.c_uint)(
                config, options["clone_fd"]
            )
        loop = _function(library, "fuse_loop_mt", ctypes.c_int, _void_p, _void_p)
        return int(loop(fuse, config))
    finally:
        _function(library, "fuse_loop_cfg_destroy", None, _void_p)(config)
