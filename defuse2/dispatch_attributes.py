"""The dispatcher's changes of attributes: ``chmod``, ``chown``, ``truncate``,
``utimens``, ``fallocate``.

Where this sits: kernel -> libfuse -> binding -> mount adapter -> **dispatcher**; these
operations of :class:`~defuse2.dispatch.Dispatcher` live here, beside it. A path no
route serves has the store's attributes. A resource answers what it defines; for one
that defines ``write`` but not ``utimens``, ``chmod`` or ``chown``, defuse2 keeps the
times, mode and owner itself (:mod:`defuse2.kept`), so ``touch``, ``cp -p`` and ``tar x``
work and ``stat`` shows what they set; a read-only resource refuses them (``EROFS``).
"""

from __future__ import annotations

import functools
from typing import Any

from .dispatch_part import DispatcherPart


class AttributeOperations(DispatcherPart):
    """The operations of :class:`~defuse2.dispatch.Dispatcher` that change attributes."""

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
        elif self._kept_by_path:
            self._kept.modified(path, self._context, functools.partial(self.getattr, path))  # type: ignore[arg-type]

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

    def _keep(self, op: str, path: str, args: tuple[Any, ...]) -> None:
        """``utimens``, ``chmod`` or ``chown`` of a writable resource that lacks it: kept
        by defuse2 (:mod:`defuse2.kept`), with POSIX's permission rules."""
        current, ctx = self.getattr(path), self._context()
        if op == "utimens":
            self._kept.utimens(path, args[0], current, ctx)
        elif op == "chmod":
            self._kept.chmod(path, args[0], current, ctx)
        else:
            self._kept.chown(path, args[0], args[1], current, ctx)
