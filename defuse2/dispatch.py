"""The dispatcher: every FUSE operation, from path to answer.

Where this sits: kernel -> libfuse -> binding -> mount adapter -> **dispatcher** ->
resource or store. The mount adapter and the in-process test client drive the same
dispatcher, so what passes in-process passes mounted.

For each operation on a path:

1. the path is matched against the routes (cached per path);
2. matched, and the resource defines the operation: the resource answers, and its return
   value is converted and checked as the operation table says
   (:data:`defuse2.operations.OPERATIONS`; the conversions are in
   :mod:`defuse2.answers`): ``str`` -> bytes, ``None`` -> all of ``data`` written,
   :class:`~defuse2.attributes.Attributes` -> a stat mapping, ... A value the table does
   not allow (a ``write`` of -1 bytes, a size of 2**70) is ``EIO``, logged;
3. matched, and the resource lacks the operation: the table's default, never a silent
   success -- a change is ``EROFS``; ``getattr`` is derived from the resource's shape;
   times, mode and owner of a writable resource are kept by defuse2
   (:mod:`defuse2.kept`);
4. not matched: the store answers.

An exception from a resource becomes an errno here, by the one boundary
(:func:`defuse2.errors.errno_for`): an :class:`OSError` passes through as its errno
(``raise FileNotFoundError(path)`` is ``ENOENT``); anything else is logged with the
operation, path and route, and becomes ``EIO``. A store's exceptions go up unchanged
and meet the same function where the mount or the test client called in.

The operations that make and remove names are in :mod:`defuse2.dispatch_names`, those
that change attributes in :mod:`defuse2.dispatch_attributes`, the extended attributes in
:mod:`defuse2.dispatch_xattrs`.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import attributes
from .answers import (
    CONVERTERS,
    MISSING,
    as_count,
    as_stat,
    check_stat,
    fail,
)
from .answers import (
    FILE_TYPES as KINDS,
)
from .attributes import Attributes
from .dispatch_attributes import AttributeOperations
from .dispatch_names import NameOperations
from .dispatch_xattrs import XattrOperations
from .errors import DefuseError, errno_for
from .kept import KeptMetadata
from .operations import ARGUMENTS, OPERATIONS
from .resources import as_bytes
from .routing import Found, Route
from .store.base import Buffer, Context

if TYPE_CHECKING:
    from .filesystem import FileSystem

#: Operations that, for a path no route serves, go to the store's method of the same
#: name with the same arguments, and answer what it answers.
HANDED_ON = ("getattr", "read", "release", "flush", "fsync", "find_xattr")

#: Inode numbers given to routed paths whose ``getattr`` reports none (``st_ino`` 0) start
#: here, far above the store's own numbers, so ``stat`` shows each path a stable inode.
ROUTED_INODES = 1 << 48

#: Operation -> the conversion and check of a resource's answer (``getattr`` and
#: ``write`` do their own, on the hot path).
_CONVERT = {name: CONVERTERS[op.result] for name, op in OPERATIONS.items()}


class Dispatcher(NameOperations, AttributeOperations, XattrOperations):
    """Answers FUSE operations for one :class:`~defuse2.FileSystem`.

    The methods have the names and arguments of fusepy's ``Operations`` (with
    ``use_ns``): they return what the binding expects and raise :class:`OSError`.

    :param filesystem: the routes and the store.
    :param context: a callable giving the caller's :class:`~defuse2.store.base.Context`;
        the mount passes one that reads ``fuse_get_context()``.
    """

    def __init__(
        self, filesystem: FileSystem, context: Callable[[], Context] | None = None
    ) -> None:
        self._routes = filesystem.url_map
        self.store = filesystem.store
        self._context = context or Context.current
        self._uid = os.getuid()
        self._gid = os.getgid()
        self._time_ns = filesystem.start_time_ns
        #: what a ``getattr`` mapping without some ``st_*`` keys gets for them
        self._stat_defaults = Attributes(mode=0).as_stat(self._uid, self._gid, self._time_ns)
        self._inodes: dict[str, int] = {}
        self._next_inode = itertools.count(ROUTED_INODES)
        self._kept = KeptMetadata()
        self._kept_by_path = self._kept.by_path  # read on the hot path: empty is false
        idle: frozenset[str] = getattr(self.store, "no_op_operations", frozenset())
        idle |= getattr(self.store, "unsupported_operations", frozenset())
        lazy: frozenset[str] = getattr(self.store, "lazy_context_operations", frozenset())
        #: a store ``write`` gets the context function itself, to call only if need be
        self._write_context: Any = self._context if "write" in lazy else None
        self.operations = frozenset(
            op
            for op in ARGUMENTS
            if (hasattr(self.store, op) and op not in idle)
            or any(op in r.invokers for r in self._routes)
        )

    # -- the machinery ------------------------------------------------------------------
    def _failed(self, op: str, path: str | None, route: Route, error: BaseException) -> OSError:
        """The error to answer for an exception from a resource (see
        :func:`~defuse2.errors.errno_for`): its errno, or ``EIO``, logged."""
        return fail(errno_for(error, op, path, _served_by(route)), path)

    def _resource(self, op: str, found: Found, path: str, args: tuple[Any, ...]) -> Any:
        """The resource's answer, converted and checked as the table says (an exception
        or a wrong value is ``EIO``, logged); for an operation it lacks, the table's
        errno, or :data:`~defuse2.answers.MISSING` where the caller derives an answer."""
        route, values = found
        invoke = route.invokers.get(op)
        if invoke is None:
            return self._missing(op, found, path, args)
        try:
            return _CONVERT[op](invoke(values, path, self._context, *args))
        except Exception as error:
            raise self._failed(op, path, route, error) from error

    def _missing(self, op: str, found: Found, path: str, args: tuple[Any, ...]) -> Any:
        """The answer for an operation the resource serving ``path`` lacks."""
        row = OPERATIONS[op]
        if "write" in found[0].invokers:
            if row.kept:
                self._keep(op, path, args)
                return None
            if row.writable_missing_errno:
                raise fail(row.writable_missing_errno, path)
        if row.missing_errno:
            raise fail(row.missing_errno, path)
        return MISSING

    def served_by(self, path: str | None) -> str:
        """Who serves ``path``, as log lines say it: ``route RULE (Resource)`` or ``store``."""
        found = self._routes.match(path)
        return "store" if found is None else _served_by(found[0])

    def describe(self, path: str | None) -> tuple[str, Mapping[str, Any]]:
        """Which route serves ``path`` (its rule, or ``"store"``) and with which values."""
        found = self._routes.match(path)
        return ("store", {}) if found is None else (found[0].rule, found[1])

    @property
    def has_dynamic_routes(self) -> bool:
        """Whether any route serves dynamic content; if not, :meth:`is_dynamic` is ``False``
        for every path. (Routes cannot change while mounted.)"""
        return self._routes.has_dynamic

    def store_operations(self) -> dict[str, Callable[..., Any]]:
        """The store's own methods for the operations the dispatcher would only hand on
        to them (same arguments, same answer): those in :data:`HANDED_ON` the store has,
        when no route serves any path; else none. The mount adapter may call these
        instead of the dispatcher's, one Python call less each (routes cannot change
        while mounted)."""
        if any(True for _ in self._routes):
            return {}
        return {op: getattr(self.store, op) for op in HANDED_ON if hasattr(self.store, op)}

    def is_dynamic(self, path: str | None) -> bool:
        """Whether the content at ``path`` may change behind the kernel's back."""
        if not self._routes.has_dynamic:
            return False
        found = self._routes.match(path)
        return found is not None and found[0].dynamic

    # -- attributes ---------------------------------------------------------------------
    def getattr(self, path: str | None, fh: int | None = None) -> Mapping[str, int]:
        """:manpage:`stat(2)`."""
        found = self._routes.match(path)
        if found is None:
            return self.store.getattr(path, fh)
        route, values = found
        invoke = route.invokers.get("getattr")
        if invoke is None:
            derived = self._derived_attributes(found, path)  # type: ignore[arg-type]
            stat_result = derived.as_stat(self._uid, self._gid, self._time_ns)
        else:
            try:
                result = invoke(values, path, self._context, fh)
                if type(result) is dict and "st_mode" in result:  # completed in a new dict
                    stat_result = {**self._stat_defaults, **result}
                elif type(result) is Attributes:
                    stat_result = result.as_stat(self._uid, self._gid, self._time_ns)
                else:
                    stat_result = as_stat(result, self._stat_defaults)
                # What the binding would pack but the kernel refuses, without a word: a
                # negative size, a mode without a file type. (A value that is not an int
                # or out of range, the binding refuses to pack: check_stat is called.)
                try:
                    bad = stat_result["st_size"] < 0 or stat_result["st_mode"] >> 12 not in KINDS
                except TypeError:
                    bad = True
                if bad:
                    check_stat(stat_result)  # says what is wrong
            except Exception as error:
                raise self._failed("getattr", path, route, error) from error
        if not stat_result["st_ino"]:
            stat_result["st_ino"] = self._inodes.get(path) or self._inode(path)  # type: ignore
        if self._kept_by_path and path in self._kept_by_path:
            self._kept.apply(path, stat_result)
        return stat_result

    def _inode(self, path: str) -> int:
        """A stable inode number for a routed path, given on first sight."""
        inode = self._inodes.get(path)
        if inode is None:
            inode = self._inodes.setdefault(path, next(self._next_inode))
        return inode

    def _derived_attributes(self, found: Found, path: str) -> Attributes:
        """Attributes for a resource without ``getattr``, from what it can do."""
        invokers = found[0].invokers
        writable = 0o200 if {"write", "create", "mkdir"} & invokers.keys() else 0
        if "readdir" in invokers:
            return attributes.directory(mode=0o755)  # the store takes new names in it
        size = 0
        if "read" in invokers:
            size = len(self.read(path, 1 << 62, 0, 0))
        return attributes.file(size=size, mode=0o444 | writable)

    def _is_dir(self, path: str) -> bool:
        return stat.S_ISDIR(self.getattr(path)["st_mode"])

    # -- directories --------------------------------------------------------------------
    def readdir(self, path: str | None, fh: int | None = None) -> list[str]:
        """:manpage:`readdir(3)`: the resource's names, static child routes, the store's."""
        found = self._routes.match(path)
        if found is None:
            stored = self.store.readdir(path, fh)  # type: ignore[arg-type]
            static = self._routes.static_children(path) if path is not None else ()
            if static:
                stored = [*stored, *(name for name in static if name not in stored)]
            return [".", "..", *stored]
        assert path is not None
        listed = self._resource("readdir", found, path, (fh,))
        if listed is MISSING:
            if not self._is_dir(path):
                raise fail(errno.ENOTDIR, path)
            listed = []
        names = dict.fromkeys(listed)
        for more in (self._routes.static_children(path), self._stored_names(path)):
            if more:
                names.update(dict.fromkeys(more))
        return [".", "..", *names]

    def _stored_names(self, path: str) -> Iterable[str]:
        """The store's names in directory ``path``; none if the store has no such directory."""
        find = getattr(self.store, "find_names", None)
        if find is not None:
            return find(path) or ()
        try:
            return self.store.readdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return ()

    def opendir(self, path: str) -> int:
        """:manpage:`opendir(3)`."""
        found = self._routes.match(path)
        if found is None:
            return self.store.opendir(path, ctx=self._context())
        result = self._resource("opendir", found, path, ())
        if result is MISSING:
            if not self._is_dir(path):
                raise fail(errno.ENOTDIR, path)
            return 0
        return result  # type: ignore[no-any-return]

    def releasedir(self, path: str | None, fh: int) -> None:
        """:manpage:`closedir(3)`."""
        found = self._routes.match(path)
        if found is None:
            self.store.releasedir(path, fh)
            return
        self._resource("releasedir", found, path, (fh,))  # type: ignore[arg-type]

    # -- reading ------------------------------------------------------------------------
    def readlink(self, path: str) -> str:
        """:manpage:`readlink(2)`; ``EINVAL`` for a resource that is not a link."""
        found = self._routes.match(path)
        if found is None:
            return self.store.readlink(path)
        return self._resource("readlink", found, path, ())  # type: ignore[no-any-return]

    def open(self, path: str, flags: int) -> int:
        """:manpage:`open(2)`; opening a read-only resource for writing is ``EROFS``.

        With ``O_TRUNC`` (libfuse 3 sends it, and no ``truncate``: ``atomic_o_trunc``),
        the resource's ``truncate`` empties the file once it is open, so a shorter
        rewrite leaves no stale tail; a resource without ``truncate`` is ``EROFS``.
        """
        found = self._routes.match(path)
        if found is None:
            return self.store.open(path, flags, ctx=self._context())
        invokers = found[0].invokers
        if flags & os.O_TRUNC and "truncate" not in invokers:
            raise fail(errno.EROFS, path)
        fh = self._resource("open", found, path, (flags,))
        if fh is MISSING:
            if flags & os.O_ACCMODE != os.O_RDONLY and "write" not in invokers:
                raise fail(errno.EROFS, path)
            fh = 0
        if flags & os.O_TRUNC:
            try:
                self.truncate(path, 0, fh)
            except BaseException:
                self._resource("release", found, path, (fh,))
                raise
        return fh  # type: ignore[no-any-return]

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        """:manpage:`pread(2)`: ``bytes`` or ``str`` from the resource, at most ``size``."""
        found = self._routes.match(path)
        if found is None:
            return self.store.read(path, size, offset, fh)
        route, values = found
        invoke = route.invokers.get("read")
        if invoke is None:
            code = errno.EISDIR if self._is_dir(path) else errno.ENOTSUP  # type: ignore[arg-type]
            raise fail(code, path)
        try:
            data = invoke(values, path, self._context, size, offset, fh)
            if type(data) is not bytes:
                data = as_bytes(data, "read")
        except Exception as error:
            raise self._failed("read", path, route, error) from error
        return data if len(data) <= size else data[:size]

    def statfs(self, path: str) -> Mapping[str, int]:
        """:manpage:`statvfs(3)`: the store's figures, so ``df`` is truthful."""
        found = self._routes.match(path)
        if found is not None and "statfs" in found[0].invokers:
            return self._resource("statfs", found, path, ())  # type: ignore[no-any-return]
        return self.store.statfs("/")

    def access(self, path: str, amode: int) -> None:
        """:manpage:`access(2)`; asking to write a read-only resource is ``EROFS``."""
        found = self._routes.match(path)
        if found is None:
            return self.store.access(path, amode, ctx=self._context())
        if self._resource("access", found, path, (amode,)) is MISSING:
            self.getattr(path)  # exists?
            if amode & os.W_OK and not {"write", "create", "mkdir"} & found[0].invokers.keys():
                raise fail(errno.EROFS, path)
        return None

    # -- writing ------------------------------------------------------------------------
    def write(self, path: str | None, data: Buffer, offset: int, fh: int) -> int:
        """:manpage:`pwrite(2)`: a resource may return ``None``, meaning all of ``data``.

        ``data`` may be any bytes-like object, such as a :class:`memoryview` over the
        binding's buffer that is valid only during the call: the store copies what it
        keeps, and a resource always receives ``bytes``.
        """
        found = self._routes.match(path)
        if found is None:
            ctx = self._write_context or self._context()
            return self.store.write(path, data, offset, fh, ctx=ctx)
        route, values = found
        invoke = route.invokers.get("write")
        if invoke is None:
            raise fail(errno.EROFS, path)
        if type(data) is not bytes:
            data = bytes(data)
        try:
            result = invoke(values, path, self._context, data, offset, fh)
        except Exception as error:
            raise self._failed("write", path, route, error) from error
        if self._kept_by_path:
            self._kept.modified(path, self._context, functools.partial(self.getattr, path))  # type: ignore[arg-type]
        if result is None:
            return len(data)
        if type(result) is int and 0 <= result <= len(data):
            return result
        try:
            return as_count(result, len(data))
        except DefuseError as error:
            raise self._failed("write", path, route, error) from error

    # -- handles --------------------------------------------------------------------------
    def flush(self, path: str | None, fh: int) -> None:
        """Each :manpage:`close(2)` of a descriptor."""
        if not self._routed("flush", path, (fh,)):
            self.store.flush(path, fh)

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        """:manpage:`fsync(2)`."""
        if not self._routed("fsync", path, (datasync, fh)):
            self.store.fsync(path, datasync, fh)

    def release(self, path: str | None, fh: int) -> None:
        """The last :manpage:`close(2)` of an open file."""
        if not self._routed("release", path, (fh,)):
            self.store.release(path, fh)

    def _routed(self, op: str, path: str | None, args: tuple[Any, ...]) -> bool:
        """Whether a resource serves ``path``; if so, it has answered ``op`` (``EROFS`` for
        a change it lacks). Otherwise the caller asks the store, directly: a call with
        ``*args`` and a keyword costs more than the rest of the dispatch."""
        found = self._routes.match(path)
        if found is None:
            return False
        self._resource(op, found, path, args)  # type: ignore[arg-type]
        return True


def _served_by(route: Route) -> str:
    return f"route {route.rule} ({route.name})"
