"""The adapter: one explicit method per FUSE operation, each handing on to the dispatcher.

Where this sits: kernel -> libfuse -> binding (mfusepy or fusepy) -> **adapter** ->
dispatcher -> resources and store. The binding calls these methods with fusepy's
arguments (``use_ns``: times in integer nanoseconds); each passes them to the
:class:`~defuse2.dispatch.Dispatcher` unchanged. No binding is imported here:
:mod:`defuse2.mount` builds the class for a binding with :func:`operations_class` and
subclasses the binding's ``FUSE`` class.

Only the operations a filesystem implements are registered with libfuse: the others are
``None`` on the class, which both bindings skip. The kernel then learns ``ENOSYS`` once
and never asks again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import caching
from .answers import none_if_absent
from .operations import OPERATIONS as TABLE
from .operations import XATTRS
from .replytimeouts import ReplyTimeouts
from .store.base import UTIME_OMIT

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .invalidation import Invalidator

#: Every operation the adapter can register: those of the table, in libfuse's spelling.
OPERATIONS = frozenset(TABLE)

#: libfuse renames a file unlinked while open to a name starting with this.
HIDDEN_PREFIX = "/.fuse_hidden"

#: The extended-attribute operations (left out with ``xattrs=False``).
XATTR_OPERATIONS = XATTRS

_FORMAT, _DIRECTORY = stat.S_IFMT(0o177777), stat.S_IFDIR

#: The operations whose method here only hands its arguments on (all but ``getattr``).
PASS_THROUGH = OPERATIONS - {"getattr"}


class Operations:
    """The object handed to the binding: one method per FUSE operation.

    Each method passes its arguments, in fusepy's vocabulary, to the dispatcher. Build it
    with :func:`operations_class`, which leaves out what the filesystem does not implement.
    An instance that is not traced calls the dispatcher's methods directly for every
    operation but ``getattr``, and, for a filesystem without routes, the store's methods
    for those the dispatcher would only hand on to it
    (:meth:`~defuse2.dispatch.Dispatcher.store_operations`): these methods are then the
    documentation of each call.
    """

    use_ns = True  # times as integer nanoseconds, both ways
    flag_utime_omit_ok = 1  # libfuse 2: pass UTIME_NOW/UTIME_OMIT through to utimens
    # libfuse 2: when a handle's path cannot be resolved any more (its directory was
    # removed while it was open), call with path=None instead of failing with ENOENT.
    # libfuse 3 does that by itself; its own ``nullpath_ok`` would mean "never a path".
    flag_nullpath_ok = 1

    #: Seconds the kernel may cache attributes and names: libfuse's default, or the
    #: mount's ``attr_timeout`` option.
    timeout = 1.0
    #: Seconds for the paths of an exclusive store, where only the kernel changes them;
    #: the mount's ``attr_timeout`` where it gives one (:mod:`defuse2.caching`).
    store_timeout = caching.STORE_TIMEOUT
    #: Whether :meth:`getattr` may set the timeout of each reply (set by the mount).
    per_reply_timeouts = False
    #: libfuse 2: finds its live configuration inside a callback, or ``None``
    #: (:func:`defuse2.libfuse2_config.find_config`; set by the mount).
    find_libfuse2_config: Callable[[], Any] | None = None
    #: Has the kernel forget a path's attributes and pages (libfuse 3; set by the mount).
    invalidator: Invalidator | None = None
    #: The names of files with several hard links, once the invalidator is attached.
    hard_links: caching.HardLinks | None = None
    #: ``hard_links.names`` (empty without them): a write tests it, cheaply.
    linked_names: Mapping[str, int] = {}
    #: Whether the kernel keeps written data and sends it later (``-o writeback_cache``).
    writeback = False
    #: Whether the kernel checks permissions before it asks (``default_permissions``).
    kernel_checks_permissions = False

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.initialized = threading.Event()  # set once libfuse has mounted and started
        self.directory = os.getcwd()
        self._timeouts: ReplyTimeouts | None = None
        self._dynamic = True  # whether any path may be dynamic; known once mounted
        self._exclusive = False  # whether only the mount changes the store; known then
        # A registered method that only hands on (not traced, not overridden) becomes the
        # dispatcher's own bound method on this instance: one Python call less per callback.
        # Where the dispatcher would only hand on to the store in turn (no routes at all,
        # and routes cannot change while mounted), it becomes the store's own method.
        store_operations: dict[str, Any] = getattr(dispatcher, "store_operations", dict)()
        for name in (*PASS_THROUGH, "find_xattr"):
            handed_on = "getxattr" if name == "find_xattr" else name
            if getattr(type(self), handed_on, None) is getattr(Operations, handed_on):
                with contextlib.suppress(AttributeError):
                    setattr(self, name, store_operations.get(name) or getattr(dispatcher, name))
        #: what :meth:`getattr` asks: the store itself where the dispatcher only hands on
        self._getattr: Callable[..., Mapping[str, int]] = dispatcher.getattr
        if type(self).getattr is Operations.getattr:
            self._getattr = store_operations.get("getattr", dispatcher.getattr)
        #: whether the store serves every path (no routes): no path needs matching
        self._all_stored = bool(store_operations)

    def _started(self) -> None:
        # libfuse changes to "/" before serving, even in the foreground: go back, so
        # relative paths in the filesystem's code (and the caller's) keep working.
        with contextlib.suppress(OSError):
            os.chdir(self.directory)
        self._dynamic = getattr(self.dispatcher, "has_dynamic_routes", True)
        plain = self._timeouts is None and self.hard_links is None
        if plain and type(self).getattr is Operations.getattr:
            # No per-reply timeouts: getattr only hands on, so it is handed on directly.
            setattr(self, "getattr", self._getattr)  # noqa: B010 (a method)
        self.initialized.set()

    def init(self, path: str) -> None:
        """libfuse 2 (fusepy): the filesystem is mounted and about to be served."""
        self.init_with_config(None, None)

    def init_with_config(self, conn: Any, config: Any) -> None:
        """The filesystem is mounted and about to be served (mfusepy; libfuse 2 without
        ``config``, fusepy without either).

        ``config`` is libfuse's live configuration: it reads ``attr_timeout`` and
        ``entry_timeout`` from it as it builds each reply, after the callback returns
        (:mod:`defuse2.replytimeouts`). libfuse 2 keeps its own where only
        :attr:`find_libfuse2_config` finds it.
        """
        self._exclusive = caching.is_exclusive(getattr(self.dispatcher, "store", None))
        if not self._exclusive:
            self.store_timeout = self.timeout
        if config is None and self.per_reply_timeouts and self.find_libfuse2_config:
            config = self.find_libfuse2_config()
        if self.per_reply_timeouts and config is not None:
            self._timeouts = ReplyTimeouts(config, max(self.timeout, self.store_timeout))
        if conn is not None:
            caching.negotiate(conn, getattr(self.dispatcher, "store", None), self.writeback)
        if self.invalidator is not None:
            self.invalidator.attach()
            invalidate = functools.partial(self.invalidator.invalidate, wait=caching.HARD_LINK_WAIT)
            self.hard_links = caching.HardLinks(invalidate)
            self.linked_names = self.hard_links.names
        self._started()

    def destroy(self, path: str) -> None:
        """The filesystem is being unmounted: the kernel is told nothing more."""
        if self.invalidator is not None:
            self.invalidator.close()

    def getattr(self, path: str | None, fh: int | None = None) -> Mapping[str, int]:
        """:manpage:`stat(2)`; on libfuse 3 it also sets how long the answer may be cached.

        The paths of an exclusive store get :attr:`store_timeout` (60 s), other paths
        :attr:`timeout` (1 s). Dynamic resources, files with several hard links and files
        unlinked while open get 0 s: the kernel asks again on every ``stat``, so no name
        shows attributes that changed through another (and libfuse's own ``st_nlink``
        correction for a hidden, unlinked file, made only in its ``getattr`` replies, is
        always the one seen).
        """
        attributes = self._getattr(path, fh)
        hard_links, timeouts = self.hard_links, self._timeouts
        if hard_links is None and timeouts is None:
            return attributes
        linked = attributes["st_nlink"] > 1 and attributes["st_mode"] & _FORMAT != _DIRECTORY
        if hard_links is not None and (linked or hard_links.names):
            hard_links.saw(path, attributes)
        if timeouts is None:
            return attributes
        if path is None or HIDDEN_PREFIX in path:
            # A file unlinked while open, asked about through libfuse's hidden name:
            # libfuse's getattr reply counts that name off st_nlink once more.
            attributes = {**attributes, "st_nlink": attributes["st_nlink"] + 1}
            timeouts.choose(0.0)
        elif linked:
            timeouts.choose(0.0)  # another name of the file may change it
        elif self._all_stored:
            timeouts.choose(self.store_timeout)
        else:
            timeouts.choose(self._routed_timeout(path))
        return attributes

    def _routed_timeout(self, path: str) -> float:
        """How long the kernel may keep the attributes and the name of ``path``, in a
        filesystem with routes."""
        if self._dynamic and self.dispatcher.is_dynamic(path):
            return 0.0
        if self.store_timeout != self.timeout and self.dispatcher.describe(path)[0] == "store":
            return self.store_timeout
        return self.timeout

    def readdir(self, path: str | None, fh: int | None) -> list[str]:
        """:manpage:`readdir(3)`."""
        return self.dispatcher.readdir(path, fh)

    def readlink(self, path: str) -> str:
        """:manpage:`readlink(2)`."""
        return self.dispatcher.readlink(path)

    def mknod(self, path: str, mode: int, dev: int) -> None:
        """:manpage:`mknod(2)`."""
        self.dispatcher.mknod(path, mode, dev)

    def mkdir(self, path: str, mode: int) -> None:
        """:manpage:`mkdir(2)`."""
        self.dispatcher.mkdir(path, mode)

    def unlink(self, path: str) -> None:
        """:manpage:`unlink(2)`."""
        self.dispatcher.unlink(path)

    def rmdir(self, path: str) -> None:
        """:manpage:`rmdir(2)`."""
        self.dispatcher.rmdir(path)

    def symlink(self, target: str, source: str) -> None:
        """:manpage:`symlink(2)`: ``target`` is the new link, ``source`` its content."""
        self.dispatcher.symlink(target, source)

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        """:manpage:`rename(2)` and :manpage:`renameat2(2)`."""
        self.dispatcher.rename(old, new, flags)

    def link(self, target: str, source: str) -> None:
        """:manpage:`link(2)`: ``target`` is the new name of ``source``."""
        self.dispatcher.link(target, source)

    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> None:
        """:manpage:`chmod(2)`."""
        self.dispatcher.chmod(path, mode, fh)

    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> None:
        """:manpage:`chown(2)`."""
        self.dispatcher.chown(path, uid, gid, fh)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        """:manpage:`truncate(2)`."""
        self.dispatcher.truncate(path, length, fh)

    def utimens(
        self, path: str | None, times: tuple[int, int] | None = None, fh: int | None = None
    ) -> None:
        """:manpage:`utimensat(2)`."""
        self.dispatcher.utimens(path, times, fh)

    def open(self, path: str, flags: int) -> int:
        """:manpage:`open(2)`."""
        return self.dispatcher.open(path, flags)

    def page_cache(self, path: str) -> tuple[bool, bool]:
        """How the kernel may cache the content of the file opened at ``path`` now:
        ``(direct_io, keep_cache)``, as :mod:`defuse2.caching` explains."""
        if self._dynamic and self.dispatcher.is_dynamic(path):
            return True, False
        if not self._exclusive or not (
            self._all_stored or self.dispatcher.describe(path)[0] == "store"
        ):
            return False, False
        return False, self._getattr(path, None)["st_nlink"] == 1

    def is_kernel_mtime(self, times: tuple[int, int] | None) -> bool:
        """Whether a ``utimens`` refused for lack of permission is the kernel's own.

        With the writeback cache the kernel keeps a written file's ``mtime`` and sends it
        when the file is closed, as the process that wrote (any writer, not only the
        owner). Under ``default_permissions`` the kernel has already refused the same
        change to a caller who may not make it, so a refused one setting ``mtime`` alone
        is the kernel's: the store set ``mtime`` itself as the data arrived.
        """
        return (
            self.writeback
            and self.kernel_checks_permissions
            and times is not None
            and times[0] == UTIME_OMIT
        )

    def caches_listing(self, path: str) -> bool:
        """Whether the kernel may keep the listing of the directory opened at ``path``
        (``cache_readdir``): a directory of an exclusive store, see :mod:`defuse2.caching`."""
        return self._exclusive and (
            self._all_stored or self.dispatcher.describe(path)[0] == "store"
        )

    def create(self, path: str, mode: int, flags: int = 0) -> int:
        """:manpage:`open(2)` with ``O_CREAT``."""
        return self.dispatcher.create(path, mode, flags)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        """:manpage:`pread(2)`."""
        return self.dispatcher.read(path, size, offset, fh)

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        """:manpage:`pwrite(2)`."""
        return self.dispatcher.write(path, data, offset, fh)

    def flush(self, path: str | None, fh: int) -> None:
        """Each :manpage:`close(2)` of a descriptor."""
        self.dispatcher.flush(path, fh)

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        """:manpage:`fsync(2)`."""
        self.dispatcher.fsync(path, datasync, fh)

    def release(self, path: str | None, fh: int) -> None:
        """The last :manpage:`close(2)` of an open file."""
        self.dispatcher.release(path, fh)

    def opendir(self, path: str) -> int:
        """:manpage:`opendir(3)`."""
        return self.dispatcher.opendir(path)

    def releasedir(self, path: str | None, fh: int) -> None:
        """:manpage:`closedir(3)`."""
        self.dispatcher.releasedir(path, fh)

    def access(self, path: str, amode: int) -> None:
        """:manpage:`access(2)`."""
        self.dispatcher.access(path, amode)

    def statfs(self, path: str) -> Mapping[str, int]:
        """:manpage:`statvfs(3)`."""
        return self.dispatcher.statfs(path)

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """:manpage:`getxattr(2)`."""
        return self.dispatcher.getxattr(path, name)

    def find_xattr(self, path: str, name: str) -> bytes | None:
        """:meth:`getxattr`, but ``None`` where it raises ``ENODATA`` ("no such attribute").

        The kernel asks for ``security.capability`` before every ``write``; answering that
        nearly every file has none costs no exception this way.
        """
        return none_if_absent(self.getxattr, path, name)

    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> None:
        """:manpage:`setxattr(2)`."""
        self.dispatcher.setxattr(path, name, value, options)

    def listxattr(self, path: str) -> list[str]:
        """:manpage:`listxattr(2)`."""
        return self.dispatcher.listxattr(path)

    def removexattr(self, path: str, name: str) -> None:
        """:manpage:`removexattr(2)`."""
        self.dispatcher.removexattr(path, name)

    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fh: int) -> None:
        """:manpage:`fallocate(2)`."""
        self.dispatcher.fallocate(path, mode, offset, size, fh)


def operations_class(
    dispatcher: Dispatcher,
    *,
    bases: tuple[type, ...] = (),
    unregister: Iterable[str] = (),
    xattrs: bool = True,
    trace: bool | Callable[[str], None] = False,
) -> type[Operations]:
    """The adapter class for ``dispatcher``: :class:`Operations` minus what it lacks.

    :param bases: further base classes (fusepy's ``Operations``, whose ``__call__``
        dispatches to our explicit methods).
    :param unregister: more names to set to ``None`` (what such a base would register).
    :param xattrs: ``False`` leaves the xattr operations out even when implemented: the
        kernel then stops asking ``getxattr("security.capability")`` before every write.
    :param trace: ``True`` (lines go to the ``defuse2.trace`` logger) or a line sink:
        every registered method is then wrapped by :func:`defuse2.trace.traced`.
        ``False`` wraps nothing.
    """
    implemented = OPERATIONS & frozenset(dispatcher.operations)
    if not xattrs:
        implemented -= XATTR_OPERATIONS
    namespace: dict[str, Any] = {name: None for name in OPERATIONS - implemented}
    namespace.update({name: None for name in unregister})
    if trace:
        from .trace import traced

        sink = None if trace is True else trace
        for name in implemented:
            namespace[name] = traced(name, getattr(Operations, name), dispatcher, sink)
    return type("DefuseOperations", (Operations, *bases), namespace)
