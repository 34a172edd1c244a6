"""Mount a filesystem with FUSE: mount(), mounted(), and the binding's gaps closed.

Where this sits: kernel -> libfuse -> binding (mfusepy or fusepy) -> **mount** ->
adapter -> dispatcher -> resources and store. This is the only module that imports a
binding, and it imports it lazily, the first time something is mounted. The adapter
(:mod:`defuse2.adapter`) has one explicit method per FUSE operation; here it gets
fusepy's ``Operations`` base where needed, and the binding's ``FUSE`` class is
subclassed (:mod:`defuse2.callbacks`) to close a few gaps and to cost less per callback:

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

The options a mount gets by default, and why each, are listed in
:mod:`defuse2.mount_options`; how the pieces are put together, in
:mod:`defuse2.assembly`.

The working directory stays as it was (libfuse's ``fuse_daemonize()``, not called here,
would change it to ``/``; the adapter changes back to it as ``init`` arrives). Before
the loop starts, glibc's ``M_TOP_PAD`` is raised to 16 MiB so that 128 KiB request
buffers do not grow and trim the heap on every request (sequential reads measured
1.1-1.8x faster).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .adapter import Operations
from .assembly import prepare
from .bindings import BINDINGS as BINDINGS
from .bindings import binding_name as binding_name
from .bindings import libfuse_major as libfuse_major
from .lifecycle import StartError
from .mount_options import fuse_options as fuse_options
from .mount_options import is_true
from .mount_options import parse_options as parse_options
from .mountinfo import is_mounted as is_mounted
from .mountinfo import mount_entry
from .preflight import MountError as MountError
from .preflight import check_access, check_mountpoint
from .serving import Serving, daemonize, stop_signals
from .session import MountFailed
from .unmounting import CONNECTIONS as CONNECTIONS
from .unmounting import abort_connection
from .unmounting import unmount as unmount

if TYPE_CHECKING:
    from .filesystem import FileSystem


def _pad_heap() -> None:
    """glibc: keep 16 MiB spare at the heap top (``mallopt(M_TOP_PAD)``), once per process."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(-2, 16 << 20)  # M_TOP_PAD


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
    fuse_class, operations, arguments, major = prepare(
        filesystem,
        trace=trace,
        binding=binding,
        options=options,
        unchecked_options=unchecked_options,
    )
    check_mountpoint(mountpoint, nonempty=is_true(options.get("nonempty", False)))
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
        abort=lambda: abort_connection(device[0] if device else None),
        warn_after=filesystem.runner.timeout,
    )
    return serving, operations


def _trace_seen(trace: bool | Callable[[str], None]) -> contextlib.AbstractContextManager[None]:
    """:func:`defuse2.trace.logging_on` for a mount traced through the logger."""
    if trace is not True:
        return contextlib.nullcontext()
    from .trace import logging_on

    return logging_on()


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
    :param trace: ``True`` emits one line per callback, as an ``INFO`` record of the
        logger ``defuse2.trace``; printed on stderr if logging is not configured
        (:func:`defuse2.trace.logging_on`). A callable receives each line instead.
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
            stack.enter_context(_trace_seen(trace))
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
    :param trace: as for :func:`mount`.
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
    with _trace_seen(trace), _hooks(filesystem, operations):
        serving.start(timeout=timeout)
        try:
            yield Path(path)
        finally:
            serving.stop()
    if serving.failure is not None and not isinstance(serving.failure, MountFailed):
        raise serving.failure
