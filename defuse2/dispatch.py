"""The dispatcher: every FUSE operation, from path to answer.

Where this sits: kernel -> libfuse -> binding -> mount adapter -> **dispatcher** ->
resource or store. The mount adapter and the in-process test client drive the same
dispatcher, so what passes in-process passes mounted.

For each operation on a path:

1. the path is matched against the routes (cached per path);
2. matched, and the resource defines the operation: the resource answers, and its return
   value is turned into what the binding expects (``str`` -> bytes, ``None`` -> all of
   ``data`` written, :class:`~defuse2.attributes.Attributes` -> a stat mapping, ...; the
   conversions are in :mod:`defuse2.answers`);
3. matched, and the resource lacks the operation: a default, never a silent success --
   a change is ``EROFS``; ``getattr`` is derived from the resource's shape; ``readlink``
   is ``EINVAL``; ``read`` on a file without ``read`` is ``ENOTSUP``;
4. not matched: the store answers.

An exception from a resource becomes an errno here, by the one boundary
(:func:`defuse2.errors.errno_for`): an :class:`OSError` passes through as its errno
(``raise FileNotFoundError(path)`` is ``ENOENT``); anything else is logged with the
operation, path and route, and becomes ``EIO``. A store's exceptions go up unchanged
and meet the same function where the mount or the test client called in.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import attributes
from .answers import MISSING, as_count, as_names, as_stat, as_text, fail
from .attributes import Attributes
from .dispatch_xattrs import XattrOperations
from .errors import DefuseError, errno_for
from .operations import ARGUMENTS, MUTATING
from .resources import as_bytes
from .routing import Found, Route
from .store.base import Buffer, Context

if TYPE_CHECKING:
    from .filesystem import FileSystem

log = logging.getLogger("defuse2")


#: Operations that, for a path no route serves, go to the store's method of the same
#: name with the same arguments, and answer what it answers.
HANDED_ON = ("getattr", "read", "release", "flush", "fsync", "find_xattr")

#: Inode numbers given to routed paths whose ``getattr`` reports none (``st_ino`` 0) start
#: here, far above the store's own numbers, so ``stat`` shows each path a stable inode.
ROUTED_INODES = 1 << 48


class Dispatcher(XattrOperations):
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
        idle: frozenset[str] = getattr(self.store, "no_op_operations", frozenset())
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

    def _convert(
        self, op: str, found: Found, path: str, convert: Callable[[Any], Any], result: Any
    ) -> Any:
        """Turn a resource's return value into the binding's; a wrong one is ``EIO``."""
        try:
            return convert(result)
        except (DefuseError, TypeError, ValueError) as error:
            raise self._failed(op, path, found[0], error) from error

    def _resource(self, op: str, found: Found, path: str, args: tuple[Any, ...]) -> Any:
        """The resource's answer (user errors become ``EIO``, logged), or the default
        for an operation it lacks."""
        route, values = found
        invoke = route.invokers.get(op)
        if invoke is not None:
            try:
                return invoke(values, path, self._context, *args)
            except Exception as error:
                raise self._failed(op, path, route, error) from error
        if op in MUTATING:
            raise fail(errno.EROFS, path)
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
            except Exception as error:
                raise self._failed("getattr", path, route, error) from error
        if not stat_result["st_ino"]:
            stat_result["st_ino"] = self._inodes.get(path) or self._inode(path)  # type: ignore
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
        names = dict.fromkeys(self._convert("readdir", found, path, as_names, listed))
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
        return result or 0

    def releasedir(self, path: str | None, fh: int) -> None:
        """:manpage:`closedir(3)`."""
        found = self._routes.match(path)
        if found is None:
            self.store.releasedir(path, fh)
            return
        self._resource("releasedir", found, path, (fh,))  # type: ignore[arg-type]

    def _store_has(self, path: str) -> bool:
        try:
            self.store.getattr(path)
        except OSError:
            return False
        return True

    # -- reading ------------------------------------------------------------------------
    def readlink(self, path: str) -> str:
        """:manpage:`readlink(2)`; ``EINVAL`` for a resource that is not a link."""
        found = self._routes.match(path)
        if found is None:
            return self.store.readlink(path)
        result = self._resource("readlink", found, path, ())
        if result is MISSING:
            raise fail(errno.EINVAL, path)
        return self._convert("readlink", found, path, as_text, result)  # type: ignore[no-any-return]

    def open(self, path: str, flags: int) -> int:
        """:manpage:`open(2)`; opening a read-only resource for writing is ``EROFS``."""
        found = self._routes.match(path)
        if found is None:
            return self.store.open(path, flags, ctx=self._context())
        result = self._resource("open", found, path, (flags,))
        if result is MISSING:
            if flags & os.O_ACCMODE != os.O_RDONLY and "write" not in found[0].invokers:
                raise fail(errno.EROFS, path)
            return 0
        return result or 0

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
        if result is None:
            return len(data)
        if type(result) is int:
            return result
        return self._convert("write", found, path, as_count, result)  # type: ignore

    def create(self, path: str, mode: int, flags: int = 0) -> int:
        """:manpage:`open(2)` with ``O_CREAT``."""
        if self._routes.match(path) is None:  # the common case, called directly
            try:
                return self.store.create(path, mode, flags, ctx=self._context())
            except FileNotFoundError:
                pass  # perhaps in a directory that routes imply: _make sees to it
        return self._make("create", path, (mode, flags), (path, mode, flags)) or 0

    def mknod(self, path: str, mode: int, dev: int) -> None:
        """:manpage:`mknod(2)`."""
        self._make("mknod", path, (mode, dev), (path, mode, dev))

    def mkdir(self, path: str, mode: int) -> None:
        """:manpage:`mkdir(2)`."""
        if self._routes.match(path) is None:  # the common case, called directly
            try:
                return self.store.mkdir(path, mode, ctx=self._context())
            except FileNotFoundError:
                pass  # perhaps in a directory that routes imply: _make sees to it
        self._make("mkdir", path, (mode,), (path, mode))

    def symlink(self, target: str, source: str) -> None:
        """:manpage:`symlink(2)`: make ``target``, a link to ``source``."""
        self._make("symlink", target, (target, source), (target, source))

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        """:manpage:`rename(2)`; between a resource and the store it is ``EXDEV``."""
        if (self._routes.match(old) is None) != (self._routes.match(new) is None):
            raise fail(errno.EXDEV, new)
        self._make("rename", new, (old, new, flags), (old, new, flags), served_by=old)

    def link(self, target: str, source: str) -> None:
        """:manpage:`link(2)`: make ``target``, a new name of ``source``."""
        if (self._routes.match(target) is None) != (self._routes.match(source) is None):
            raise fail(errno.EXDEV, target)
        self._make("link", target, (target, source), (target, source))

    def _make(
        self,
        op: str,
        made: str,
        args: tuple[Any, ...],
        store_args: tuple[Any, ...],
        served_by: str | None = None,
    ) -> Any:
        """An operation that makes the name ``made``, by the store or by the resource
        serving ``served_by`` (default: ``made``), or ``EROFS``.

        The store may not have seen a directory that routes imply (``/users/ann`` for
        ``/users/<name>/profile.json``); if the operation fails with ``ENOENT`` for that
        reason, the directories are made in the store and the operation runs again.
        """
        path = made if served_by is None else served_by
        found = self._routes.match(path)
        try:
            if found is None:
                return getattr(self.store, op)(*store_args, ctx=self._context())
            return self._resource(op, found, path, args)
        except FileNotFoundError:
            if not self._make_store_parents(made):
                raise
        return self._make(op, made, args, store_args, served_by)  # the parents are there now

    def _make_store_parents(self, path: str) -> bool:
        """Make the routed directories above ``path`` in the store; whether any were made."""
        missing: list[str] = []
        parent = os.path.dirname(path)
        while parent != "/" and not self._store_has(parent):
            found = self._routes.match(parent)
            if found is None or not self._is_dir(parent):
                return False
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            self.store.mkdir(directory, 0o755)
        return bool(missing)

    def _routed(self, op: str, path: str | None, args: tuple[Any, ...]) -> bool:
        """Whether a resource serves ``path``; if so, it has answered ``op`` (``EROFS`` for
        a change it lacks). Otherwise the caller asks the store, directly: a call with
        ``*args`` and a keyword costs more than the rest of the dispatch."""
        found = self._routes.match(path)
        if found is None:
            return False
        self._resource(op, found, path, args)  # type: ignore[arg-type]
        return True

    def unlink(self, path: str) -> None:
        """:manpage:`unlink(2)`."""
        if not self._routed("unlink", path, ()):
            self.store.unlink(path, ctx=self._context())

    def rmdir(self, path: str) -> None:
        """:manpage:`rmdir(2)`."""
        if not self._routed("rmdir", path, ()):
            self.store.rmdir(path, ctx=self._context())

    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> None:
        """:manpage:`chmod(2)`."""
        if not self._routed("chmod", path, (mode, fh)):
            self.store.chmod(path, mode, fh, ctx=self._context())

    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> None:
        """:manpage:`chown(2)`."""
        if not self._routed("chown", path, (uid, gid, fh)):
            self.store.chown(path, uid, gid, fh, ctx=self._context())

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        """:manpage:`truncate(2)`."""
        if not self._routed("truncate", path, (length, fh)):
            self.store.truncate(path, length, fh, ctx=self._context())

    def utimens(
        self, path: str | None, times: tuple[int, int] | None = None, fh: int | None = None
    ) -> None:
        """:manpage:`utimensat(2)`: ``times`` is (atime, mtime) in ns, ``None`` for now."""
        if not self._routed("utimens", path, (times, fh)):
            self.store.utimens(path, times, fh, ctx=self._context())

    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fh: int) -> None:
        """:manpage:`fallocate(2)`."""
        if not self._routed("fallocate", path, (mode, offset, size, fh)):
            self.store.fallocate(path, mode, offset, size, fh, ctx=self._context())

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


def _served_by(route: Route) -> str:
    return f"route {route.rule} ({route.name})"
