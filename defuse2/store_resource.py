"""StoreResource: a resource that hands every operation to the store at the same path.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> **a StoreResource** ->
store. Its files behave exactly like unrouted ones until a subclass overrides an
operation -- to check a ``write``, log an ``unlink``, refuse a name -- and calls
``super()`` to carry on.

Every method has the same shape: ``path``, the operation's arguments in the order of
the operations reference (fusepy's names), then ``ctx: Context | None = None``, who is
asking. An override keeps that signature (so it type-checks) and passes ``ctx`` on;
``super().readdir(path, fh, ctx)`` works like ``super().write(path, data, offset, fh,
ctx)``. The store gets ``ctx`` where its own method takes it (a change, an ``open``, an
``access``) and ignores it elsewhere. Called with ``ctx=None``, the store takes the
process itself as the caller.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .resources import Resource
from .signatures import ignores_context

if TYPE_CHECKING:
    from .store.base import Context


class StoreResource(Resource):
    """A resource that hands every operation to the store at the same path.

    Subclass it and override only what changes; call ``super()`` to carry on::

        @fs.route("/<name>.json")
        class Json(StoreResource):
            def write(
                self, path: str, data: bytes, offset: int, fh: int, ctx: Context | None = None
            ) -> int:
                json.loads(data)              # refuse what is not JSON (-> EIO)
                return super().write(path, data, offset, fh, ctx)
    """

    @ignores_context
    def getattr(
        self, path: str, fh: int | None = None, ctx: Context | None = None
    ) -> dict[str, int]:
        """:manpage:`stat(2)`: a copy of the store's mapping, yours to change."""
        return dict(self.store.getattr(path, fh))

    @ignores_context
    def readdir(self, path: str, fh: int | None = None, ctx: Context | None = None) -> list[str]:
        """:manpage:`readdir(3)`."""
        return self.store.readdir(path, fh)

    @ignores_context
    def readlink(self, path: str, ctx: Context | None = None) -> str:
        """:manpage:`readlink(2)`."""
        return self.store.readlink(path)

    def access(self, path: str, amode: int, ctx: Context | None = None) -> None:
        """:manpage:`access(2)`."""
        self.store.access(path, amode, ctx=ctx)

    @ignores_context
    def statfs(self, path: str, ctx: Context | None = None) -> dict[str, int]:
        """:manpage:`statvfs(3)`."""
        return dict(self.store.statfs(path))

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

    def rename(self, old: str, new: str, flags: int = 0, ctx: Context | None = None) -> None:
        """:manpage:`rename(2)`."""
        self.store.rename(old, new, flags, ctx=ctx)

    def link(self, target: str, source: str, ctx: Context | None = None) -> None:
        """:manpage:`link(2)`: ``target`` is the new name of ``source``."""
        self.store.link(target, source, ctx=ctx)

    def chmod(
        self, path: str, mode: int, fh: int | None = None, ctx: Context | None = None
    ) -> None:
        """:manpage:`chmod(2)`."""
        self.store.chmod(path, mode, fh, ctx=ctx)

    def chown(
        self, path: str, uid: int, gid: int, fh: int | None = None, ctx: Context | None = None
    ) -> None:
        """:manpage:`chown(2)`."""
        self.store.chown(path, uid, gid, fh, ctx=ctx)

    def truncate(
        self, path: str, length: int, fh: int | None = None, ctx: Context | None = None
    ) -> None:
        """:manpage:`truncate(2)`; also ``open(O_TRUNC)`` (see :meth:`open`)."""
        self.store.truncate(path, length, fh, ctx=ctx)

    def utimens(
        self,
        path: str,
        times: tuple[int, int] | None = None,
        fh: int | None = None,
        ctx: Context | None = None,
    ) -> None:
        """:manpage:`utimensat(2)`."""
        self.store.utimens(path, times, fh, ctx=ctx)

    def create(self, path: str, mode: int, flags: int = 0, ctx: Context | None = None) -> int:
        """:manpage:`open(2)` with ``O_CREAT``."""
        return self.store.create(path, mode, flags, ctx=ctx)

    def open(self, path: str, flags: int, ctx: Context | None = None) -> int:
        """:manpage:`open(2)`. ``O_TRUNC`` is left to defuse2, which calls :meth:`truncate`
        once the file is open: an override of ``truncate`` sees every truncation."""
        return self.store.open(path, flags & ~os.O_TRUNC, ctx=ctx)

    @ignores_context
    def read(self, path: str, size: int, offset: int, fh: int, ctx: Context | None = None) -> bytes:
        """:manpage:`pread(2)`."""
        return self.store.read(path, size, offset, fh)

    def write(
        self, path: str, data: bytes, offset: int, fh: int, ctx: Context | None = None
    ) -> int:
        """:manpage:`pwrite(2)`."""
        return self.store.write(path, data, offset, fh, ctx=ctx)

    def fallocate(
        self,
        path: str,
        mode: int,
        offset: int,
        size: int,
        fh: int,
        ctx: Context | None = None,
    ) -> None:
        """:manpage:`fallocate(2)`."""
        self.store.fallocate(path, mode, offset, size, fh, ctx=ctx)

    @ignores_context
    def flush(self, path: str, fh: int, ctx: Context | None = None) -> None:
        """:manpage:`close(2)` of one descriptor."""
        self.store.flush(path, fh)

    @ignores_context
    def fsync(self, path: str, datasync: int, fh: int, ctx: Context | None = None) -> None:
        """:manpage:`fsync(2)`."""
        self.store.fsync(path, datasync, fh)

    @ignores_context
    def release(self, path: str, fh: int, ctx: Context | None = None) -> None:
        """:manpage:`close(2)` of the last descriptor."""
        self.store.release(path, fh)

    def opendir(self, path: str, ctx: Context | None = None) -> int:
        """:manpage:`opendir(3)`."""
        return self.store.opendir(path, ctx=ctx)

    @ignores_context
    def releasedir(self, path: str, fh: int, ctx: Context | None = None) -> None:
        """:manpage:`closedir(3)`."""
        self.store.releasedir(path, fh)

    @ignores_context
    def getxattr(self, path: str, name: str, ctx: Context | None = None) -> bytes:
        """:manpage:`getxattr(2)`."""
        return self.store.getxattr(path, name)

    def setxattr(
        self, path: str, name: str, value: bytes, options: int, ctx: Context | None = None
    ) -> None:
        """:manpage:`setxattr(2)`."""
        self.store.setxattr(path, name, value, options, ctx=ctx)

    @ignores_context
    def listxattr(self, path: str, ctx: Context | None = None) -> list[str]:
        """:manpage:`listxattr(2)`."""
        return self.store.listxattr(path)

    def removexattr(self, path: str, name: str, ctx: Context | None = None) -> None:
        """:manpage:`removexattr(2)`."""
        self.store.removexattr(path, name, ctx=ctx)
