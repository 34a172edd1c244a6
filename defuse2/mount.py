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
- Who is asking (``fuse_get_context()``) is read in one ``struct.unpack_from``; in the
  single-threaded loop libfuse's struct is fetched once and only read per request.

Defaults (each can be changed by passing the option; ``False`` removes one). The speed
figures are from ``benchmarks/suite.py``:

- ``default_permissions``: the kernel checks modes and owners against what ``getattr``
  reports, exactly as on a disk filesystem.
- single-threaded loop (libfuse's ``-s``): Python runs one callback at a time anyway,
  and the threaded loop measured 2-3x slower for ``stat``/``create``/``unlink``. Pass
  ``threads=True`` (``-o threads``) when resources block on the network or a database.
- ``fsname=defuse2``: what ``df`` and ``/proc/mounts`` show as the source.
- libfuse 2 only: ``big_writes`` and ``max_write=131072`` (libfuse 2 otherwise writes in
  4 KiB requests; libfuse 3 already negotiates large writes).
- ``writeback_cache`` (libfuse 3 only, off by default): the kernel gathers writes and
  sends them later; a full store is then reported by ``fsync``/``close`` (see the
  "Speed" page of the documentation).
- libfuse 3 only: ``max_idle_threads=100000``, which is libfuse's own "keep idle threads"
  default spelled out (libfuse 3.14.0 prints a warning about its internal value).
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
- Attribute and entry timeouts per reply (libfuse 3, single-threaded loop): 1 s for most
  paths (libfuse's default), 0 for dynamic resources and for files with more than one
  hard link. libfuse's high-level API gives each name of a hard-linked file its own kernel
  inode, so a change made through one name would otherwise stay invisible through the
  other for up to a second. On libfuse 2 there is no such hook: hard-linked files can show
  attributes up to 1 s old through their other names.

libfuse changes the working directory to ``/`` before it serves, even in the foreground;
the adapter changes it back as the first request (``init``) arrives, so relative paths in a
filesystem's code keep working. Before the loop starts, glibc's ``M_TOP_PAD`` is raised to
16 MiB so that 128 KiB request buffers do not grow and trim the heap on every request
(sequential reads measured 1.1-1.8x faster).
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import importlib
import logging
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .adapter import Operations, operations_class
from .binding import fuse_class
from .invalidation import invalidator
from .mountinfo import is_mounted as is_mounted
from .mountinfo import mount_entry
from .options import check_options
from .preflight import MountError as MountError
from .preflight import check_access, check_mountpoint
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

    :param get: a foreign function returning a pointer to ``struct fuse_context``.
    :param single_threaded: the loop serves every request from one thread. libfuse keeps
        one ``struct fuse_context`` per serving thread and refills it before each request,
        so the struct is then fetched once, in the first request (before any, ``get``
        answers ``NULL``), and only its fields are read per call. The threaded loop of
        libfuse 3 ends idle threads, and a new thread gets a new struct: there ``get`` is
        asked every time.
    """
    new = tuple.__new__  # Context(...) without its Python-level __new__
    if not has_umask:  # libfuse < 2.8

        def context_without_umask() -> Context:
            current = get().contents
            return new(Context, (current.uid, current.gid, current.pid, 0o022))

        return context_without_umask

    unpack = _fields_unpacker(_FuseContext, "uid:I gid:I pid:i umask:I")
    if not single_threaded:

        def context() -> Context:
            return new(Context, unpack(get().contents))

        return context

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


def _abort_connection(device: str | None) -> bool:
    """Abort a FUSE connection through fusectl (when mounted); whether that worked."""
    if device is None:
        return False
    try:
        with open(f"/sys/fs/fuse/connections/{device.partition(':')[2]}/abort", "w") as abort:
            abort.write("1")
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
    single_threaded = bool(settings.get("nothreads"))
    if context is None:
        context = _libfuse_context(module._libfuse, single_threaded=single_threaded)
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
    operations.per_reply_timeouts = major == 3 and single_threaded
    operations.invalidator = invalidator(module._libfuse, major)
    operations.writeback = writeback
    operations.kernel_checks_permissions = bool(settings.get("default_permissions"))
    if "attr_timeout" in settings:  # the caller's timeout is the base of the per-reply ones
        operations.timeout = float(settings["attr_timeout"])  # type: ignore[arg-type]
    return _Prepared(_fuse_class(name), operations, {**encoding, **settings}, major)


def _fuse_runner(
    filesystem: FileSystem,
    mountpoint: str,
    *,
    foreground: bool,
    trace: bool | Callable[[str], None],
    binding: str | None,
    options: Mapping[str, object],
    unchecked_options: Mapping[str, object] | None,
) -> tuple[Operations, Callable[[], None], int]:
    """Check, then prepare a mount: the adapter, a callable that runs the FUSE loop, the
    libfuse major. Mount point, options and permissions are checked before anything runs."""
    fuse_class, operations, arguments, major = _prepare(
        filesystem,
        trace=trace,
        binding=binding,
        options=options,
        unchecked_options=unchecked_options,
    )
    check_mountpoint(mountpoint, nonempty=_is_true(options.get("nonempty", False)))
    check_access(arguments, major=major)

    def run() -> None:
        _pad_heap()
        try:
            fuse_class(operations, mountpoint, foreground=foreground, **arguments)
        except RuntimeError as exc:
            if operations.initialized.is_set():
                # libfuse 3 reports a loop ended by SIGINT/SIGTERM as status 8.
                log.debug("the FUSE loop of %s ended with status %s", mountpoint, exc)
                return
            raise MountError(
                f"libfuse could not mount {mountpoint} (status {exc}; its own message is on stderr)"
            ) from None

    return operations, run, major


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

    ``SIGINT``/``SIGTERM`` (Ctrl-C, ``kill``) unmount cleanly and return.

    :param foreground: serve from this process; ``False`` daemonizes as libfuse does
        (the call returns in a child process that keeps serving).
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
    _, run, _ = _fuse_runner(
        filesystem,
        path,
        foreground=foreground,
        trace=trace,
        binding=binding,
        options=options,
        unchecked_options=unchecked_options,
    )
    run()


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

    Waits until the mount is live, yields its path, and always unmounts on exit::

        with fs.mounted(tmp_path) as root:
            assert (root / "motd").read_text() == "hello\\n"

    :param timeout: seconds to wait for the mount to appear and, on exit, for the loop
        to end.
    :raises MountError: the mount point is unusable, libfuse failed, or the mount did
        not appear within ``timeout``.
    """
    path = os.path.abspath(mountpoint)
    operations, run, major = _fuse_runner(
        filesystem,
        path,
        foreground=True,
        trace=trace,
        binding=binding,
        options=options,
        unchecked_options=unchecked_options,
    )
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            run()
        except BaseException as exc:  # reported by the waiting thread
            failure.append(exc)

    thread = threading.Thread(target=serve, name=f"defuse2 mount {path}", daemon=True)
    thread.start()
    device: str | None = None
    try:
        deadline = time.monotonic() + timeout
        while not (is_mounted(path) and operations.initialized.wait(0.005)):
            if not thread.is_alive():
                if failure:
                    raise failure[0]
                raise MountError(f"the FUSE loop ended before {path} was mounted")
            if time.monotonic() > deadline:
                raise MountError(f"{path} was not mounted within {timeout} s")
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            entry = mount_entry(path)
            device = entry.device if entry else None
        yield Path(path)
    finally:
        if not unmount(path, major=major, timeout=timeout):
            log.error("could not unmount %s", path)
        thread.join(min(timeout, 2.0))
        if thread.is_alive() and _abort_connection(device):
            # Lazily unmounted while files are still open there: end the connection.
            thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "%s is unmounted, but files opened there are still open; its FUSE loop "
                "ends when they are closed",
                path,
            )
    if failure:
        raise failure[0]
