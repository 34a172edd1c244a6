"""Resources: the classes users write, one per kind of path.

Where this sits: the dispatcher matches a path to a route, and the route's resource
answers the FUSE operation with a method of the same name (``getattr``, ``read``,
``readdir``, ...). A method names the arguments it wants -- route variables, the
operation's own arguments under fusepy's names, ``path`` and ``ctx`` -- and gets exactly
those. An operation the resource does not define gets a safe default: read-only resources
answer ``EROFS`` to every change, never a silent success.

Besides :class:`Resource` (declare operations one by one) there are shapes that cover the
common cases with a single method:

- :class:`ContentFile`: ``content()`` returns the whole file; size and slicing are derived;
- :class:`Directory`: ``entries()`` returns the names; attributes are derived;
- :class:`StoreResource`: every operation goes to the store at the same path, so a
  subclass overrides only what it changes (validate a ``write``, log an ``unlink``).
"""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from . import attributes
from .attributes import Attributes
from .errors import DefuseError
from .signatures import call_with

if TYPE_CHECKING:
    from .filesystem import FileSystem
    from .store.base import Context, Store

_handles = itertools.count(1)


class Resource:
    """Base class of routed resources: define the FUSE operations you serve.

    One instance serves every path of its routes; it can reach the filesystem as
    :attr:`filesystem` and the store behind unrouted paths as :attr:`store`.
    """

    #: Whether content can change without a write through this filesystem (a clock, a
    #: view of a database). Dynamic files are read with ``direct_io`` so the kernel never
    #: serves a stale size or stale pages from its cache.
    dynamic: ClassVar[bool] = False

    #: Helper methods that receive injected arguments like operations do.
    injected: ClassVar[tuple[str, ...]] = ()

    filesystem: FileSystem

    @property
    def store(self) -> Store:
        """The store behind the filesystem's unrouted paths."""
        return self.filesystem.store


class ContentFile(Resource):
    """A read-only file whose whole content comes from :meth:`content`.

    Size and slicing are derived. The content is computed once per :manpage:`open(2)`, so a
    reader sees one consistent version even while it changes.
    """

    #: Permission bits of the file.
    mode: ClassVar[int] = 0o444
    injected = ("content",)

    @property
    def _open_contents(self) -> dict[int, bytes]:
        """Content snapshots of the open handles, by handle number."""
        snapshots: dict[int, bytes] = vars(self).setdefault("_snapshots", {})
        return snapshots

    def content(self, **variables: Any) -> bytes | str:
        """The file's content; name the route variables (and ``path``, ``ctx``) you need."""
        raise NotImplementedError(f"{type(self).__name__} must define content()")

    def _content(self, path: str, ctx: Context, variables: Mapping[str, Any]) -> bytes:
        data = call_with(self.content, variables, path=path, ctx=ctx)
        return as_bytes(data, "content")

    def getattr(self, path: str, ctx: Context, fh: int | None, **variables: Any) -> Attributes:
        """:manpage:`stat(2)`: a regular file as long as its content."""
        data = self._open_contents.get(fh) if fh else None
        if data is None:
            data = self._content(path, ctx, variables)
        return attributes.file(size=len(data), mode=self.mode)

    def open(self, path: str, ctx: Context, flags: int, **variables: Any) -> int:
        """:manpage:`open(2)`: read-only; takes a snapshot of the content for this handle."""
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        fh = next(_handles)
        self._open_contents[fh] = self._content(path, ctx, variables)
        return fh

    def read(
        self, path: str, ctx: Context, size: int, offset: int, fh: int, **variables: Any
    ) -> bytes:
        """:manpage:`pread(2)`: a slice of the content."""
        data = self._open_contents.get(fh)
        if data is None:
            data = self._content(path, ctx, variables)
        return data[offset : offset + size]

    def release(self, fh: int) -> None:
        """:manpage:`close(2)` of the last descriptor: forget the snapshot."""
        self._open_contents.pop(fh, None)


class Directory(Resource):
    """A directory whose names come from :meth:`entries`.

    Its own entries are read-only; new names made in it (``mkdir``, ``touch``) go to the
    store and are listed with the rest, so it is writable (mode ``0o755``) by default.
    """

    #: Permission bits of the directory.
    mode: ClassVar[int] = 0o755
    injected = ("entries",)

    def entries(self, **variables: Any) -> Iterable[str | tuple[str, Any]]:
        """The names in the directory (``.`` and ``..`` are added for you)."""
        return ()

    def getattr(self) -> Attributes:
        """:manpage:`stat(2)`: a directory."""
        return attributes.directory(mode=self.mode)

    def readdir(self, path: str, ctx: Context, **variables: Any) -> Iterable[Any]:
        """:manpage:`readdir(3)`: the names from :meth:`entries`."""
        result: Iterable[Any] = call_with(self.entries, variables, path=path, ctx=ctx)
        return result


class ImpliedDirectory(Directory):
    """A directory that exists because routes live below it (``/users`` for
    ``/users/<name>/profile.json``); it lists the static routes and the store's names."""


class FunctionFile(ContentFile):
    """A :class:`ContentFile` made from a function, for ``@fs.file("/motd")``."""

    def __init__(self, function: Callable[..., bytes | str], mode: int, dynamic: bool) -> None:
        self.content = function  # type: ignore[method-assign]
        self.mode = mode  # type: ignore[misc]
        self.dynamic = dynamic  # type: ignore[misc]
        self.__name__ = getattr(function, "__name__", "file")


class FunctionDirectory(Directory):
    """A :class:`Directory` made from a function, for ``@fs.directory("/users")``."""

    def __init__(self, function: Callable[..., Iterable[Any]]) -> None:
        self.entries = function  # type: ignore[method-assign]
        self.__name__ = getattr(function, "__name__", "directory")


class StoreResource(Resource):
    """A resource that hands every operation to the store at the same path.

    Subclass it and override only what changes; call ``super()`` to carry on::

        @fs.route("/<name>.json")
        class Json(StoreResource):
            def write(self, path, data, offset, fh):
                json.loads(data)              # refuse what is not JSON (-> EIO)
                return super().write(path, data, offset, fh)
    """

    def getattr(self, path: str, fh: int | None) -> dict[str, int]:
        """:manpage:`stat(2)`: a copy of the store's mapping, yours to change."""
        return dict(self.store.getattr(path, fh))

    def readdir(self, path: str, fh: int | None) -> list[str]:
        """:manpage:`readdir(3)`."""
        return self.store.readdir(path, fh)

    def readlink(self, path: str) -> str:
        """:manpage:`readlink(2)`."""
        return self.store.readlink(path)

    def access(self, path: str, amode: int, ctx: Context | None = None) -> None:
        """:manpage:`access(2)`."""
        self.store.access(path, amode, ctx=ctx)

    def mknod(self, path: str, mode: int, dev: int, ctx: Context | None = None) -> None:
        """:manpage:`mknod(2)`."""
        self.store.mknod(path, mode, dev, ctx=ctx)

    def mkdir(self, path: str, mode: int, ctx: Context | None = None) -> None:
        """:manpage:`mkdir(2)`."""
        self.store.mkdir(path, mode, ctx=ctx)

    def unlink(self, path: str, ctx: Context | None = None) -> None:
        """:manpage:`unlink(2)`."""
        self.store.unlink(path, ctx=ctx)

    def rmdir(self, path: str, ctx: Context | None = None) -> None:
        """:manpage:`rmdir(2)`."""
        self.store.rmdir(path, ctx=ctx)

    def symlink(self, target: str, source: str, ctx: Context | None = None) -> None:
        """:manpage:`symlink(2)`: ``target`` is the new link, ``source`` what it points to."""
        self.store.symlink(target, source, ctx=ctx)

    def rename(self, old: str, new: str, flags: int, ctx: Context | None = None) -> None:
        """:manpage:`rename(2)`."""
        self.store.rename(old, new, flags, ctx=ctx)

    def link(self, target: str, source: str, ctx: Context | None = None) -> None:
        """:manpage:`link(2)`: ``target`` is the new name of ``source``."""
        self.store.link(target, source, ctx=ctx)

    def chmod(self, path: str, mode: int, fh: int | None, ctx: Context | None = None) -> None:
        """:manpage:`chmod(2)`."""
        self.store.chmod(path, mode, fh, ctx=ctx)

    def chown(
        self, path: str, uid: int, gid: int, fh: int | None, ctx: Context | None = None
    ) -> None:
        """:manpage:`chown(2)`."""
        self.store.chown(path, uid, gid, fh, ctx=ctx)

    def truncate(self, path: str, length: int, fh: int | None, ctx: Context | None = None) -> None:
        """:manpage:`truncate(2)`."""
        self.store.truncate(path, length, fh, ctx=ctx)

    def utimens(
        self, path: str, times: tuple[int, int] | None, fh: int | None, ctx: Context | None = None
    ) -> None:
        """:manpage:`utimensat(2)`."""
        self.store.utimens(path, times, fh, ctx=ctx)

    def create(self, path: str, mode: int, flags: int, ctx: Context | None = None) -> int:
        """:manpage:`open(2)` with ``O_CREAT``."""
        return self.store.create(path, mode, flags, ctx=ctx)

    def open(self, path: str, flags: int, ctx: Context | None = None) -> int:
        """:manpage:`open(2)`."""
        return self.store.open(path, flags, ctx=ctx)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        """:manpage:`pread(2)`."""
        return self.store.read(path, size, offset, fh)

    def write(
        self, path: str, data: bytes, offset: int, fh: int, ctx: Context | None = None
    ) -> int:
        """:manpage:`pwrite(2)`."""
        return self.store.write(path, data, offset, fh, ctx=ctx)

    def fallocate(
        self, path: str, mode: int, offset: int, size: int, fh: int, ctx: Context | None = None
    ) -> None:
        """:manpage:`fallocate(2)`."""
        self.store.fallocate(path, mode, offset, size, fh, ctx=ctx)

    def flush(self, path: str, fh: int) -> None:
        """:manpage:`close(2)` of one descriptor."""
        self.store.flush(path, fh)

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        """:manpage:`fsync(2)`."""
        self.store.fsync(path, datasync, fh)

    def release(self, path: str, fh: int) -> None:
        """:manpage:`close(2)` of the last descriptor."""
        self.store.release(path, fh)

    def opendir(self, path: str, ctx: Context | None = None) -> int:
        """:manpage:`opendir(3)`."""
        return self.store.opendir(path, ctx=ctx)

    def releasedir(self, path: str, fh: int) -> None:
        """:manpage:`closedir(3)`."""
        self.store.releasedir(path, fh)

    def getxattr(self, path: str, name: str) -> bytes:
        """:manpage:`getxattr(2)`."""
        return self.store.getxattr(path, name)

    def setxattr(
        self, path: str, name: str, value: bytes, options: int, ctx: Context | None = None
    ) -> None:
        """:manpage:`setxattr(2)`."""
        self.store.setxattr(path, name, value, options, ctx=ctx)

    def listxattr(self, path: str) -> list[str]:
        """:manpage:`listxattr(2)`."""
        return self.store.listxattr(path)

    def removexattr(self, path: str, name: str, ctx: Context | None = None) -> None:
        """:manpage:`removexattr(2)`."""
        self.store.removexattr(path, name, ctx=ctx)


def as_bytes(value: Any, what: str) -> bytes:
    """Accept what a ``read`` or ``content`` may return: ``bytes``-like or ``str`` (UTF-8)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise DefuseError(f"{what}() must return bytes or str, not {type(value).__name__}")
