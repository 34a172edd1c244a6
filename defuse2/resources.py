"""Resources: the classes users write, one per kind of path.

Where this sits: the dispatcher matches a path to a route, and the route's resource
answers the FUSE operation with a method of the same name (``getattr``, ``read``,
``readdir``, ...; the operations reference lists them all). A method names the
arguments it wants -- route variables, the operation's own arguments under fusepy's
names, ``path`` and ``ctx`` -- and gets exactly those. An operation the resource does not
define gets a safe default: read-only resources answer ``EROFS`` to every change, never
a silent success.

Besides :class:`Resource` (declare operations one by one) there are shapes that cover the
common cases with a single method:

- :class:`ContentFile`: ``content()`` returns the whole file; size and slicing are derived;
- :class:`Directory`: ``entries()`` returns the names; attributes are derived;
- :class:`~defuse2.WritableFile` (:mod:`defuse2.writable`): ``content()`` and ``save()``;
- :class:`~defuse2.StoreResource` (:mod:`defuse2.store_resource`): every operation goes
  to the store at the same path, so a subclass overrides only what it changes.

A shape's helper (``content``, ``entries``) is declared here with ``*args, **variables``,
so that any override type-checks; the one a subclass must define is marked
:func:`required`, and registration refuses a class that does not.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from . import attributes
from .attributes import Attributes
from .declared import DeclaredOperations
from .errors import DefuseError
from .signatures import call_with, parameters

if TYPE_CHECKING:
    from .filesystem import FileSystem
    from .store.base import Context, Store

#: Handles given by the shapes, unique across them.
handles = itertools.count(1)

#: How many sizes a :class:`ContentFile` remembers (the oldest is forgotten first).
SIZE_CACHE = 1 << 16

M = TypeVar("M", bound=Callable[..., Any])


def required(method: M) -> M:
    """Mark a shape's helper as one every subclass must define (see
    :func:`defuse2.signatures.check_route`)."""
    method.required = True  # type: ignore[attr-defined]
    return method


class Resource(DeclaredOperations):
    """Base class of routed resources: define the FUSE operations you serve.

    One instance serves every path of its routes; it can reach the filesystem as
    :attr:`filesystem` and the store behind unrouted paths as :attr:`store`. The
    operations you may define, their arguments and what they may return are in the
    operations reference (type checkers and IDEs see them too).
    """

    #: Whether content can change without a write through this filesystem (a clock, a
    #: view of a database). Dynamic files are read with ``direct_io`` so the kernel never
    #: serves a stale size or stale pages from its cache.
    dynamic: ClassVar[bool] = False

    #: Helper methods that receive injected arguments like operations do, each with the
    #: names it may ask for besides the route variables, ``path`` and ``ctx``.
    injected: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    filesystem: FileSystem

    @property
    def store(self) -> Store:
        """The store behind the filesystem's unrouted paths."""
        return self.filesystem.store

    def is_dynamic(self, path: str) -> bool:
        """Whether ``path``'s content may change behind the kernel's back: the route's
        ``dynamic`` option, else :attr:`dynamic`."""
        found = self.filesystem.url_map.match(path)
        return found[0].dynamic if found is not None else self.dynamic

    def invalidated(self, path: str) -> None:
        """``path``'s content changed elsewhere (:meth:`FileSystem.invalidate` says so):
        forget what this resource remembers about it. Override to drop your own caches;
        the base class remembers nothing."""


class ContentFile(Resource):
    """A read-only file whose whole content comes from :meth:`content`.

    Size and slicing are derived. The content is computed when the file is opened, and
    that version is what the open file reads, even while it changes. ``stat`` needs the
    size: the first time a path is looked at, :meth:`content` runs for it; then the size
    is remembered (and updated by each open) -- except for a dynamic file, or content
    that depends on who asks (a ``content`` that names ``ctx``), computed for every
    ``stat``.
    """

    #: Permission bits of the file.
    mode: ClassVar[int] = 0o444
    injected = {"content": ()}

    @property
    def _open_contents(self) -> dict[int, bytes]:
        """Content snapshots of the open handles, by handle number."""
        snapshots: dict[int, bytes] = vars(self).setdefault("_snapshots", {})
        return snapshots

    @property
    def _sizes(self) -> dict[str, int]:
        """The size of each path looked at (non-dynamic files only)."""
        sizes: dict[str, int] = vars(self).setdefault("_size_cache", {})
        return sizes

    @required
    def content(self, *args: Any, **variables: Any) -> bytes | str:
        """The file's content; name the route variables (and ``path``, ``ctx``) you need."""
        raise NotImplementedError(f"{type(self).__name__} must define content()")

    def _content(self, path: str, ctx: Context, variables: Mapping[str, Any]) -> bytes:
        data = as_bytes(call_with(self.content, variables, path=path, ctx=ctx), "content")
        self._remember_size(path, len(data))
        return data

    def _remember_size(self, path: str, size: int) -> None:
        sizes = self._sizes
        if len(sizes) >= SIZE_CACHE and path not in sizes:
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del sizes[next(iter(sizes))]
        sizes[path] = size

    def invalidated(self, path: str) -> None:
        """Forget the remembered size of ``path``: the next ``stat`` computes it anew."""
        self._sizes.pop(path, None)

    def _size(self, path: str, ctx: Context, fh: int | None, variables: Mapping[str, Any]) -> int:
        """The size ``stat`` reports: the open file's, the remembered one, or a new one."""
        data = self._open_contents.get(fh) if fh else None
        if data is not None:
            return len(data)
        if self._remembers(path):
            size = self._sizes.get(path)
            if size is not None:
                return size
        return len(self._content(path, ctx, variables))

    def _remembers(self, path: str) -> bool:
        """Whether the size of ``path`` may be remembered: not for dynamic content, nor for
        content that depends on who asks (a ``content`` that names ``ctx``)."""
        return not self.is_dynamic(path) and "ctx" not in parameters(self.content)[0]

    def getattr(self, path: str, ctx: Context, fh: int | None, **variables: Any) -> Attributes:
        """:manpage:`stat(2)`: a regular file as long as its content."""
        return attributes.file(size=self._size(path, ctx, fh, variables), mode=self.mode)

    def open(self, path: str, ctx: Context, flags: int, **variables: Any) -> int:
        """:manpage:`open(2)`: read-only; takes a snapshot of the content for this handle."""
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        fh = next(handles)
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
    injected = {"entries": ()}

    def entries(self, *args: Any, **variables: Any) -> Iterable[str | tuple[str, Any]]:
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


def as_bytes(value: Any, what: str) -> bytes:
    """Accept what a ``read`` or ``content`` may return: ``bytes``-like or ``str`` (UTF-8)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise DefuseError(f"{what}() must return bytes or str, not {type(value).__name__}")
