"""Mount a filesystem with FUSE: mount(), mounted(), and the binding's gaps closed.

Where this sits: kernel -> libfuse -> binding (mfusepy or fusepy) -> **mount** ->
adapter -> dispatcher -> resources and store. This is the only module that imports a
binding, and it imports it lazily, the first time something is mounted. The adapter
(:mod:`defuse2.adapter`) has one explicit method per FUSE operation; here it gets
fusepy's ``Operations`` base where needed, and the binding's ``FUSE`` class is
subclassed (:mod:`defuse2.binding`) to close a few gaps and to cost less per callback:

- ``renameat2(2)`` flags reach ``rename`` (mfusepy drops them), so ``RENAME_NOREPLACE`` and
  ``RENAME_EXCHANGE`` are honoured or refused with ``EINVAL``, never turned into a plain
  rename. libfuse 2 speaks an older kernel protocol: there the kernel refuses the flags.
- On libfuse 3, ``ftruncate`` (and any attribute change the kernel sends with a file
  handle) passes that handle on (mfusepy drops it).
- An exception that escapes the dispatcher becomes ``EIO`` and is logged (the bindings
  would answer ``EINVAL``).
- Names that are not UTF-8 arrive as lone surrogates (``surrogateescape``) on both
  bindings; fusepy 3.0.1 decodes strictly, so it gets a codec that does the same.
- ``open`` sets what the kernel may cache of the file (:mod:`defuse2.caching`):
  ``direct_io`` for a dynamic path (every ``read`` reaches the resource), ``keep_cache``
  for the store's files (the kernel is their only writer).
- ``struct stat`` is written with one precompiled ``struct.pack_into``
  (:mod:`defuse2.cstat`) instead of one ctypes write per field; ``write`` hands on a view
  of libfuse's buffer instead of a copy; ``readdir`` hands libfuse names only.
- Who is asking (``fuse_get_context()``) is read in one ``struct.unpack_from``; each
  serving thread's struct is fetched once and only read per request.
- Mounting and serving go through :mod:`defuse2.session` instead of libfuse's
  ``fuse_main_real()``, served from a thread of its own (:mod:`defuse2.serving`).

Defaults (each can be changed by passing the option; ``False`` removes one). The speed
figures are from ``benchmarks/suite.py``:

- ``default_permissions``: the kernel checks modes and owners against what ``getattr``
  reports, exactly as on a disk filesystem.
- libfuse's single-threaded loop (``-s``), in C, and spare reader threads that join it
  only while a call is slow (:mod:`defuse2.readers`): a slow or hung resource method
  holds back only its own request, and the loop costs what the single-threaded one
  does. ``threads=True`` (``-o threads``) runs libfuse's threaded loop instead, whose
  worker threads keep their Python thread state (:mod:`defuse2.threadstate`); it costs
  more per request and adds nothing but libfuse's own thread pool.
- ``fsname=defuse2``: what ``df`` and ``/proc/mounts`` show as the source.
- libfuse 2 only: ``big_writes`` and ``max_write=131072`` (libfuse 2 otherwise writes in
  4 KiB requests; libfuse 3 already negotiates large writes).
- ``writeback_cache`` (libfuse 3 only, off by default): the kernel gathers writes and
  sends them later; a full store is then reported by ``fsync``/``close`` (see the
  "Speed" page of the documentation).
- libfuse 3 only, for ``-o threads``: ``max_idle_threads=100000``, which is libfuse's
  own "keep idle threads" default spelled out (libfuse 3.14.0 warns about its internal
  value).
- xattrs are registered when the filesystem implements them; then the kernel asks
  ``getxattr("security.capability")`` before every ``write``, except on libfuse 3.17
  and later, where defuse2 takes over clearing capabilities and setuid/setgid bits
  (``FUSE_CAP_HANDLE_KILLPRIV_V2``, :mod:`defuse2.caching`) and the kernel asks once
  per file. ``xattrs=False`` (``-o xattrs=no``) leaves them out.
- Files unlinked while open: libfuse's own scheme. It renames such a file to
  ``.fuse_hiddenXXXX`` in the same directory and removes that name at the last close;
  the store hides those names. (``hard_remove`` would leave ``fstat``/``fchmod`` on the
  descriptor without a path: the kernel sends no handle with them.) One case stays out
  of reach of libfuse's high-level API: once the *directory* of such a file is removed
  too, ``fstat`` on its descriptor answers ``ESTALE`` (libfuse 3) or ``ENOENT``
  (libfuse 2); ``read``, ``write`` and ``close`` keep working.
- ``use_ino``: ``stat`` shows the inode numbers the filesystem reports (the store's own;
  a stable number per routed path), so hard links share one ``st_ino`` as on a disk.
- Attribute and entry timeouts per reply (:mod:`defuse2.replytimeouts`): 60 s for the
  paths of an exclusive store (the ``MemoryStore``; only the kernel changes them), 1 s
  for routed paths and other stores (libfuse's default), 0 for dynamic resources and for
  files with more than one hard link; ``attr_timeout`` replaces 60 and 1 s. libfuse's
  high-level API gives each name of a hard-linked file its own kernel inode, so a change
  made through one name would otherwise stay invisible through the other. libfuse 3
  hands its live configuration to ``init``; libfuse 2.9 keeps it in its ``struct fuse``,
  where :mod:`defuse2.libfuse2_config` finds it (and checks it) on x86-64. libfuse 2
  cannot tell the kernel to forget what it cached before a ``link(2)``: the old name of
  a new hard link may show ``st_nlink`` 1 until its attributes expire (up to 1 s),
  unless something refreshed them (a write does).

The working directory stays as it was (libfuse's ``fuse_daemonize()``, not called here,
would change it to ``/``; the adapter changes back to it as ``init`` arrives). Before
the loop starts, glibc's ``M_TOP_PAD`` is raised to 16 MiB so that 128 KiB request
buffers do not grow and trim the heap on every request (sequential reads measured
1.1-1.8x faster).
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import functools
import importlib
import logging
import os
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .adapter import Operations, operations_class
from .binding import fuse_class
from .invalidation import invalidator
from .libfuse2_config import find_config
from .lifecycle import StartError
from .mountinfo import is_mounted as is_mounted
from .mountinfo import mount_entry
from .options import check_options
from .preflight import MountError as MountError
from .preflight import check_access, check_mountpoint
from .serving import Serving, daemonize, stop_signals
from .session import MountFailed
from .store.base import Context

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .filesystem import FileSystem

log = logging.getLogger("defuse2.mount")

#: The bindings defuse2 runs on; the first is the default (env ``DEFUSE2_BINDING``).
BINDINGS = ("mfusepy", "fusepy")

#: Names the fusepy ``Operations`` base class would register although we never implement.
_FUSEPY_EXTRAS = ("bmap", "ioctl", "fsyncdir", "lock")

_SURROGATE_CODEC = "defuse2_utf8_surrogateescape"


# -- choosing and loading a binding --------------------------------------------------------


def binding_name(binding: str | None = None) -> str:
    """The binding to use: ``binding``, else env ``DEFUSE2_BINDING``, else ``"mfusepy"``."""
    name = binding or os.environ.get("DEFUSE2_BINDING") or BINDINGS[0]
    if name not in BINDINGS:
        raise MountError(f"unknown binding {name!r}; choose one of {', '.join(BINDINGS)}")
    return name


def _import_binding(name: str) -> Any:
    """Import ``name`` lazily; for mfusepy pick libfuse 2 or 3 from ``DEFUSE2_LIBFUSE``."""
    wanted = os.environ.get("DEFUSE2_LIBFUSE", "")
    if wanted not in ("", "2", "3"):
        raise MountError(f"DEFUSE2_LIBFUSE must be 2 or 3, not {wanted!r}")
    if name == "fusepy":
        if wanted == "3":
            raise MountError("fusepy 3.0.1 runs on libfuse 2 only; use binding='mfusepy'")
        try:
            return importlib.import_module("fuse")
        except (ImportError, OSError) as exc:
            raise MountError(f"cannot load fusepy: {exc}") from exc
    explicit = os.environ.get("FUSE_LIBRARY_PATH") or os.environ.get("FUSE_LIBRARY_NAME")
    if "mfusepy" not in sys.modules and not explicit:
        # mfusepy reads the library name once, at import; keep it out of child processes.
        os.environ["FUSE_LIBRARY_NAME"] = "fuse" if wanted == "2" else "fuse3"
        try:
            module = importlib.import_module("mfusepy")
        except (ImportError, OSError, AttributeError) as exc:
            raise MountError(f"cannot load mfusepy: {exc}") from exc
        finally:
            del os.environ["FUSE_LIBRARY_NAME"]
    else:
        module = importlib.import_module("mfusepy")
    loaded = str(module.fuse_version_major)
    if wanted and not explicit and loaded != wanted:
        raise MountError(
            f"this process already runs mfusepy on libfuse {loaded}; libfuse {wanted} "
            "needs a new process (one libfuse per process)"
        )
    return module


def libfuse_major(binding: str | None = None) -> int:
    """The libfuse major version (2 or 3) that ``binding`` runs on in this process."""
    name = binding_name(binding)
    module = _import_binding(name)
    return 2 if name == "fusepy" else int(module.fuse_version_major)


def _search_codec(name: str) -> codecs.CodecInfo | None:
    if name != _SURROGATE_CODEC:
        return None

    def encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
        return codecs.utf_8_encode(text, "surrogateescape")

    def decode(data: Any, errors: str = "strict") -> tuple[str, int]:
        return codecs.utf_8_decode(data, "surrogateescape", True)

    return codecs.CodecInfo(encode, decode, name=_SURROGATE_CODEC)


codecs.register(_search_codec)


# -- who is asking -------------------------------------------------------------------------


class _FuseContext(ctypes.Structure):
    """``struct fuse_context`` of libfuse >= 2.8 (both majors), with ``umask``."""

    _fields_ = [
        ("fuse", ctypes.c_void_p),
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("pid", ctypes.c_int32),
        ("private_data", ctypes.c_void_p),
        ("umask", ctypes.c_uint32),
    ]


def _fields_unpacker(structure: type[ctypes.Structure], fields: str) -> Callable[[Any], Any]:
    """``unpack_from`` of ``fields`` (``"uid:I gid:I"``) of a ctypes ``structure``, at
    their offsets: one C call answers the tuple that one field read each would build."""
    layout, end = "=", 0
    for field in fields.split():
        name, code = field.split(":")
        offset = getattr(structure, name).offset
        layout += f"{offset - end}x{code}"
        end = offset + struct.calcsize(f"={code}")
    return struct.Struct(layout).unpack_from


def _context_function(
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

    unpack = _fields_unpacker(_FuseContext, "uid:I gid:I pid:i umask:I")
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


def _libfuse_context(library: Any, *, single_threaded: bool = False) -> Callable[[], Context]:
    """:func:`_context_function` over libfuse's own ``fuse_get_context()``."""
    get = library["fuse_get_context"]  # a fresh function object: the binding's stays as is
    get.argtypes = []
    get.restype = ctypes.POINTER(_FuseContext)
    has_umask = library.fuse_version() >= 28
    return _context_function(get, has_umask=has_umask, single_threaded=single_threaded)


# -- the adapter for a binding --------------------------------------------------------------


def _adapter_class(
    dispatcher: Dispatcher,
    binding: str,
    *,
    xattrs: bool,
    trace: Callable[[str], None] | None,
) -> type[Operations]:
    """The adapter class for ``binding``; fusepy's ``Operations`` is mixed in there."""
    if binding == "fusepy":
        base = _import_binding("fusepy").Operations
        return operations_class(
            dispatcher, bases=(base,), unregister=_FUSEPY_EXTRAS, xattrs=xattrs, trace=trace
        )
    return operations_class(dispatcher, xattrs=xattrs, trace=trace)


# -- the binding's FUSE class, with the gaps closed ----------------------------------------

_fuse_classes: dict[str, type] = {}


def _fuse_class(binding: str) -> type:
    """The binding's ``FUSE`` class with defuse2's callbacks (built once per binding)."""
    if binding not in _fuse_classes:
        _fuse_classes[binding] = fuse_class(_import_binding(binding))
    return _fuse_classes[binding]


# -- options -------------------------------------------------------------------------------


def parse_options(text: str) -> dict[str, str | bool]:
    """Turn a libfuse ``-o`` string (``"allow_other,max_read=65536"``) into keywords."""
    options: dict[str, str | bool] = {}
    for item in text.split(","):
        if item := item.strip():
            key, sep, value = item.partition("=")
            options[key] = value if sep else True
    return options


def fuse_options(options: Mapping[str, object], *, major: int) -> dict[str, object]:
    """The ``-o`` options of a mount: defuse2's defaults updated with ``options``.

    A value of ``True`` is a flag (``allow_other``), ``False`` or ``None`` removes a
    default (``default_permissions=False``), anything else is ``key=value``.
    """
    merged: dict[str, object] = {
        "fsname": "defuse2",
        "default_permissions": True,
        "nothreads": True,
        "use_ino": True,
    }
    if major == 2:
        merged.update(big_writes=True, max_write=131072)
    else:
        # libfuse's own default ("unlimited"), spelled out: libfuse 3.14.0 warns about
        # its internal value on every mount otherwise.
        merged.update(max_idle_threads=100000)
    merged.update(options)
    if "threads" in merged:
        merged["nothreads"] = not _is_true(merged.pop("threads"))
    if major == 3 or not _is_true(merged.get("nonempty", False)):
        # defuse2 checks the mount point itself; libfuse 3 has no such option.
        merged.pop("nonempty", None)
    return {key: value for key, value in merged.items() if value is not False and value is not None}


def _is_true(value: object) -> bool:
    """``True``, or a string from ``-o`` such as ``yes``/``1``/``on``."""
    if isinstance(value, str):
        return value.strip().lower() in ("", "1", "yes", "true", "on")
    return bool(value)


# -- mounting ------------------------------------------------------------------------------


#: Where the kernel's ``fusectl`` filesystem shows one directory per FUSE connection.
CONNECTIONS = "/sys/fs/fuse/connections"


def _abort_connection(device: str | None) -> bool:
    """End a FUSE connection through ``fusectl``: every request waiting on it fails at
    once. ``fusectl`` is mounted first if it is not (root only). Whether that worked."""
    if device is None:
        return False
    abort = f"{CONNECTIONS}/{device.partition(':')[2]}/abort"
    if not os.path.exists(abort) and os.geteuid() == 0 and not os.path.ismount(CONNECTIONS):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["mount", "-t", "fusectl", "fusectl", CONNECTIONS], capture_output=True, timeout=5
            )
    try:
        with open(abort, "w") as control:
            control.write("1")
    except OSError:
        return False
    return True


def unmount(mountpoint: str | os.PathLike[str], *, major: int = 3, timeout: float = 10.0) -> bool:
    """Unmount ``mountpoint`` with ``fusermount3 -u`` or ``fusermount -u``, lazily if busy.

    :param major: libfuse major of the mount; picks which ``fusermount`` to try first.
    :return: whether the mount point is free afterwards.
    """
    path = os.path.abspath(mountpoint)
    names = ("fusermount", "fusermount3") if major == 2 else ("fusermount3", "fusermount")
    tools = [tool for tool in map(shutil.which, names) if tool]
    attempts = [[tool, "-u", path] for tool in tools] + [[tool, "-u", "-z", path] for tool in tools]
    for command in attempts:
        if not is_mounted(path):
            return True
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if is_mounted(path) and os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(os.fsencode(path), 2)  # MNT_DETACH
    return not is_mounted(path)


def _pad_heap() -> None:
    """glibc: keep 16 MiB spare at the heap top (``mallopt(M_TOP_PAD)``), once per process."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(-2, 16 << 20)  # M_TOP_PAD


class _Prepared(NamedTuple):
    """Everything a mount needs but the mount point: what :func:`_prepare` returns."""

    fuse_class: type
    operations: Operations
    arguments: dict[str, Any]  # the FUSE class's keywords: encoding and -o options
    major: int


def _prepare(
    filesystem: FileSystem,
    *,
    trace: bool | Callable[[str], None] = False,
    binding: str | None = None,
    options: Mapping[str, object] | None = None,
    unchecked_options: Mapping[str, object] | None = None,
    context: Callable[[], Context] | None = None,
) -> _Prepared:
    """The adapter and the FUSE class for ``filesystem`` on ``binding``; nothing mounted.

    :param context: who is asking; default: libfuse's ``fuse_get_context()``.
    """
    name = binding_name(binding)
    module = _import_binding(name)
    major = 2 if name == "fusepy" else int(module.fuse_version_major)
    check_options(options or {}, major=major)
    settings = fuse_options({**(options or {}), **(unchecked_options or {})}, major=major)
    if context is None:  # per thread: slow calls bring spare reader threads
        context = _libfuse_context(module._libfuse)
    dispatcher = filesystem.dispatcher(context=context)
    sink: Callable[[str], None] | None = None
    if trace:
        from .trace import stderr_sink

        sink = stderr_sink if trace is True else trace
    xattrs = _is_true(settings.pop("xattrs", True))
    writeback = _is_true(settings.pop("writeback_cache", False))
    adapter = _adapter_class(dispatcher, name, xattrs=xattrs, trace=sink)
    encoding = {"encoding": _SURROGATE_CODEC} if name == "fusepy" else {"errors": "surrogateescape"}

    operations = adapter(dispatcher)
    operations.per_reply_timeouts = True  # safe with several threads (replytimeouts)
    if major == 2:
        operations.find_libfuse2_config = functools.partial(
            find_config,
            module._libfuse,
            entry=float(settings.get("entry_timeout", 1.0)),  # type: ignore[arg-type]
            negative=float(settings.get("negative_timeout", 0.0)),  # type: ignore[arg-type]
            attr=float(settings.get("attr_timeout", 1.0)),  # type: ignore[arg-type]
        )
    operations.invalidator = invalidator(module._libfuse, major)
    operations.writeback = writeback
    operations.kernel_checks_permissions = bool(settings.get("default_permissions"))
    if "attr_timeout" in settings:  # the caller's timeout is the base of the per-reply ones
        operations.timeout = float(settings["attr_timeout"])  # type: ignore[arg-type]
        operations.store_timeout = operations.timeout
    return _Prepared(_fuse_class(name), operations, {**encoding, **settings}, major)


def _serving(
    filesystem: FileSystem,
    mountpoint: str,
    *,
    trace: bool | Callable[[str], None],
    binding: str | None,
    options: Mapping[str, object],
    unchecked_options: Mapping[str, object] | None,
) -> tuple[Serving, Operations]:
    """Check, then prepare a mount of ``filesystem`` on ``mountpoint``, ready to start, and
    its adapter. Mount point, options and permissions are checked before anything runs."""
    fuse_class, operations, arguments, major = _prepare(
        filesystem,
        trace=trace,
        binding=binding,
        options=options,
        unchecked_options=unchecked_options,
    )
    check_mountpoint(mountpoint, nonempty=_is_true(options.get("nonempty", False)))
    check_access(arguments, major=major)

    def fuse(opened: Callable[[Any], Callable[[], None]]) -> None:
        _pad_heap()
        fuse_class(operations, mountpoint, opened=opened, **arguments)

    device: list[str] = []

    def is_live() -> bool:
        if not device:
            with contextlib.suppress(OSError):
                entry = mount_entry(mountpoint)
                if entry is not None:
                    device.append(entry.device)
        return bool(device)

    serving = Serving(
        fuse,
        mountpoint,
        initialized=operations.initialized,
        unmount=lambda: unmount(mountpoint, major=major, timeout=5.0),
        is_mounted=is_live,
        abort=lambda: _abort_connection(device[0] if device else None),
        warn_after=filesystem.runner.timeout,
    )
    return serving, operations


@contextlib.contextmanager
def _hooks(filesystem: FileSystem, operations: Operations) -> Iterator[None]:
    """:meth:`FileSystem.serving` for this mount: its start hooks run before, its stop
    hooks after; a failing start hook fails the mount with :class:`MountError`."""
    try:
        with filesystem.serving(operations.invalidator):
            yield
    except StartError as error:  # raised by the start hooks only
        raise MountError(str(error)) from error


def mount(
    filesystem: FileSystem,
    mountpoint: str | os.PathLike[str],
    foreground: bool = True,
    *,
    trace: bool | Callable[[str], None] = False,
    binding: str | None = None,
    unchecked_options: Mapping[str, object] | None = None,
    **options: object,
) -> None:
    """Mount ``filesystem`` on ``mountpoint`` and serve it until it is unmounted.

    ``SIGINT``/``SIGTERM``/``SIGHUP`` (Ctrl-C, ``kill``) unmount and return within about
    a second, even while resource methods hang (:mod:`defuse2.serving`); only when this
    runs in the main thread, where Python receives signals.

    :param foreground: serve from this process; ``False`` forks first, as libfuse does:
        the calling process exits once the mount is live (with status 1 and the reason
        if it failed), and the call returns in the child when the mount ends.
    :param trace: ``True`` prints one line per callback to stderr; a callable receives
        each line instead.
    :param binding: ``"mfusepy"`` (default, env ``DEFUSE2_BINDING``) or ``"fusepy"``.
        mfusepy runs on libfuse 3 unless env ``DEFUSE2_LIBFUSE=2``.
    :param options: libfuse ``-o`` options, see :func:`fuse_options`. A name that
        neither libfuse 2 nor 3 knows is refused (:class:`~defuse2.options.OptionError`),
        with the nearest right names. ``nonempty=True`` allows a mount point that has
        entries (they stay hidden while mounted), on both libfuse majors.
    :param unchecked_options: options passed on to libfuse without that check.
    :raises MountError: the mount point is unusable or libfuse failed.
    """
    path = os.path.abspath(mountpoint)
    serving, operations = _serving(
        filesystem,
        path,
        trace=trace,
        binding=binding,
        options=options,
        unchecked_options=unchecked_options,
    )
    report = None if foreground else daemonize()  # hooks and threads belong to the child
    requested = threading.Event()
    with stop_signals(requested.set), contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_hooks(filesystem, operations))
            serving.start(timeout=30.0)
        except BaseException as exc:
            if report is not None:
                report(exc)
            raise
        if report is not None:
            report(None)
        try:
            serving.wait(requested)
        finally:
            serving.stop()
    if serving.failure is not None and not isinstance(serving.failure, MountFailed):
        raise serving.failure


@contextlib.contextmanager
def mounted(
    filesystem: FileSystem,
    mountpoint: str | os.PathLike[str],
    *,
    timeout: float = 10.0,
    trace: bool | Callable[[str], None] = False,
    binding: str | None = None,
    unchecked_options: Mapping[str, object] | None = None,
    **options: object,
) -> Iterator[Path]:
    """Mount ``filesystem`` in a background thread for the duration of a ``with`` block.

    Waits until the mount is live, yields its path, and always unmounts on exit, even
    while a resource method hangs (then that method's thread is left to finish alone)::

        with fs.mounted(tmp_path) as root:
            assert (root / "motd").read_text() == "hello\\n"

    :param timeout: seconds to wait for the mount to appear.
    :raises MountError: the mount point is unusable, libfuse failed, or the mount did
        not appear within ``timeout``.
    """
    path = os.path.abspath(mountpoint)
    serving, operations = _serving(
        filesystem,
        path,
        trace=trace,
        binding=binding,
        options=options,
        unchecked_options=unchecked_options,
    )
    with _hooks(filesystem, operations):
        serving.start(timeout=timeout)
        try:
            yield Path(path)
        finally:
            serving.stop()
    if serving.failure is not None and not isinstance(serving.failure, MountFailed):
        raise serving.failure
