"""The operations a resource may define, declared for type checkers and IDEs.

Generated from defuse2/operations.py by ``python -m defuse2.generate``: do not edit.

Where this sits: :class:`~defuse2.Resource` derives from :class:`DeclaredOperations`.
At run time the class is empty -- a resource defines only the operations it serves,
and defuse2 registers only those -- but type checkers see one stub per operation, with
what it may return. Each takes ``*args, **kwargs``: a method names only the arguments
it wants (see the operations reference), and any such override type-checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .attributes import Attributes


class DeclaredOperations:
    """The FUSE operations, as a resource may define them."""

    if TYPE_CHECKING:

        def getattr(self, *args: Any, **kwargs: Any) -> Attributes | Mapping[str, Any]:
            """:manpage:`stat(2)`: the attributes of a path: type, mode, size, owner, times.

            May ask for ``fh``, ``path``, ``ctx`` and the route's variables. Returns: An
            :class:`~defuse2.Attributes` value, a ``st_*`` mapping (times in ns), or a mapping of
            :class:`~defuse2.Attributes` fields.
            """

        def readlink(self, *args: Any, **kwargs: Any) -> str | bytes:
            """:manpage:`readlink(2)`: the target of a symbolic link.

            May ask for ``path``, ``ctx`` and the route's variables. Returns: ``str`` (or
            ``bytes``).
            """

        def mknod(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`mknod(2)`: make a file, FIFO or device node.

            May ask for ``mode``, ``dev``, ``path``, ``ctx`` and the route's variables. Returns:
            ``None``.
            """

        def mkdir(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`mkdir(2)`: make a directory.

            May ask for ``mode``, ``path``, ``ctx`` and the route's variables. Returns: ``None``.
            """

        def unlink(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`unlink(2)`: remove a name.

            May ask for ``path``, ``ctx`` and the route's variables. Returns: ``None``.
            """

        def rmdir(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`rmdir(2)`: remove an empty directory.

            May ask for ``path``, ``ctx`` and the route's variables. Returns: ``None``.
            """

        def symlink(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`symlink(2)`: make ``target``, a symbolic link whose content is ``source``.

            May ask for ``target``, ``source``, ``path``, ``ctx`` and the route's variables.
            Returns: ``None``.
            """

        def rename(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`rename(2)`: move ``old`` to ``new`` (``flags``: :manpage:`renameat2(2)`'s
            ``RENAME_NOREPLACE``, ``RENAME_EXCHANGE``).

            May ask for ``old``, ``new``, ``flags``, ``path``, ``ctx`` and the route's variables.
            Returns: ``None``.
            """

        def link(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`link(2)`: make ``target``, a new name of ``source``.

            May ask for ``target``, ``source``, ``path``, ``ctx`` and the route's variables.
            Returns: ``None``.
            """

        def chmod(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`chmod(2)`: change the permission bits.

            May ask for ``mode``, ``fh``, ``path``, ``ctx`` and the route's variables. Returns:
            ``None``.
            """

        def chown(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`chown(2)`: change the owner and group (``-1`` keeps one).

            May ask for ``uid``, ``gid``, ``fh``, ``path``, ``ctx`` and the route's variables.
            Returns: ``None``.
            """

        def truncate(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`truncate(2)`: set the size: cut, or extend with zeros.

            May ask for ``length``, ``fh``, ``path``, ``ctx`` and the route's variables. Returns:
            ``None``.
            """

        def open(self, *args: Any, **kwargs: Any) -> int | None:
            """:manpage:`open(2)`: open a file, with the ``flags`` the caller gave.

            May ask for ``flags``, ``path``, ``ctx`` and the route's variables. Returns: A handle
            (an ``int`` from 0 to 2**64-1) passed as ``fh`` to the calls on this open file, or
            ``None`` (0).
            """

        def read(self, *args: Any, **kwargs: Any) -> bytes | str:
            """:manpage:`pread(2)`: up to ``size`` bytes at ``offset``.

            May ask for ``size``, ``offset``, ``fh``, ``path``, ``ctx`` and the route's variables.
            Returns: ``bytes`` or ``str`` (UTF-8); more than ``size`` is cut. Fewer means the end of
            the file.
            """

        def write(self, *args: Any, **kwargs: Any) -> int | None:
            """:manpage:`pwrite(2)`: write ``data`` (``bytes``) at ``offset``.

            May ask for ``data``, ``offset``, ``fh``, ``path``, ``ctx`` and the route's variables.
            Returns: ``None`` (all of ``data`` was written) or the number of bytes written, from 0
            to ``len(data)``.
            """

        def statfs(self, *args: Any, **kwargs: Any) -> Mapping[str, int]:
            """:manpage:`statvfs(3)`: capacity and use of the filesystem.

            May ask for ``path``, ``ctx`` and the route's variables. Returns: A mapping of ``f_*``
            fields of :manpage:`statvfs(3)`.
            """

        def flush(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`close(2)`: each ``close`` of a descriptor (``dup`` makes several).

            May ask for ``fh``, ``path``, ``ctx`` and the route's variables. Returns: ``None``. An
            error fails the ``close`` that caused it: report a failed save here.
            """

        def release(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`close(2)`: the last ``close`` of an open file: forget ``fh``.

            May ask for ``fh``, ``path``, ``ctx`` and the route's variables. Returns: ``None``;
            errors reach nobody.
            """

        def fsync(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`fsync(2)`: make the file durable (``datasync``: data only).

            May ask for ``datasync``, ``fh``, ``path``, ``ctx`` and the route's variables. Returns:
            ``None``.
            """

        def setxattr(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`setxattr(2)`: set the extended attribute ``name`` (``options``:
            ``XATTR_CREATE``, ``XATTR_REPLACE``).

            May ask for ``name``, ``value``, ``options``, ``path``, ``ctx`` and the route's
            variables. Returns: ``None``.
            """

        def getxattr(self, *args: Any, **kwargs: Any) -> bytes | str:
            """:manpage:`getxattr(2)`: the value of the extended attribute ``name``.

            May ask for ``name``, ``path``, ``ctx`` and the route's variables. Returns: ``bytes`` or
            ``str``.
            """

        def listxattr(self, *args: Any, **kwargs: Any) -> Iterable[str]:
            """:manpage:`listxattr(2)`: the names of the extended attributes.

            May ask for ``path``, ``ctx`` and the route's variables. Returns: Names (``str``).
            """

        def removexattr(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`removexattr(2)`: remove the extended attribute ``name``.

            May ask for ``name``, ``path``, ``ctx`` and the route's variables. Returns: ``None``.
            """

        def opendir(self, *args: Any, **kwargs: Any) -> int | None:
            """:manpage:`opendir(3)`: open a directory for listing.

            May ask for ``path``, ``ctx`` and the route's variables. Returns: A handle passed as
            ``fh`` to ``readdir`` and ``releasedir``, or ``None`` (0).
            """

        def readdir(self, *args: Any, **kwargs: Any) -> Iterable[str | tuple[str, Any]]:
            """:manpage:`readdir(3)`: the names in a directory.

            May ask for ``fh``, ``path``, ``ctx`` and the route's variables. Returns: Names, or
            ``(name, attributes)`` pairs; ``.`` and ``..`` are added, and so are the static routes
            below and what the store holds there.
            """

        def releasedir(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`closedir(3)`: close a directory handle.

            May ask for ``fh``, ``path``, ``ctx`` and the route's variables. Returns: ``None``.
            """

        def access(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`access(2)`: whether the caller may read, write or run a path (``amode``:
            ``os.R_OK``, ``W_OK``, ``X_OK``).

            May ask for ``amode``, ``path``, ``ctx`` and the route's variables. Returns: ``None`` to
            allow; raise ``PermissionError`` to refuse.
            """

        def create(self, *args: Any, **kwargs: Any) -> int | None:
            """:manpage:`open(2)`: create and open a new file (``open`` with ``O_CREAT``).

            May ask for ``mode``, ``flags``, ``path``, ``ctx`` and the route's variables. Returns: A
            handle, as from ``open``.
            """

        def utimens(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`utimensat(2)`: set the access and modification times.

            May ask for ``times``, ``fh``, ``path``, ``ctx`` and the route's variables. Returns:
            ``None``.
            """

        def fallocate(self, *args: Any, **kwargs: Any) -> None:
            """:manpage:`fallocate(2)`: reserve space, or punch a hole (``mode``).

            May ask for ``mode``, ``offset``, ``size``, ``fh``, ``path``, ``ctx`` and the route's
            variables. Returns: ``None``.
            """
