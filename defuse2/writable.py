"""WritableFile: a file read by one method and saved by another, like a document.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> **a WritableFile** -> the
author's ``content()`` and ``save()``. The author says what the file holds and what to do
with new content; the shape gives the tools that write files what they expect of one:

- each open handle edits its own copy of the content, loaded at ``open``;
- ``write`` at any offset (holes read as zeros), ``O_APPEND`` (always at the end),
  ``truncate`` and ``ftruncate`` to any length, ``open(O_TRUNC)``;
- the copy is saved at ``close`` (``flush``, so a failed save fails the ``close`` with
  its errno), at ``fsync``, and at the last close if still unsaved;
- ``stat`` shows the size of an unsaved copy to the writer, and the time of the last
  save as ``mtime``; ``touch``, ``chmod``, ``cp -p`` and ``tar x`` set times and modes that
  defuse2 keeps for the file (see the operations reference);
- ``create`` saves an empty file at once; ``unlink`` calls ``delete()``; ``rename`` within
  the names the route serves saves the content under the new name and deletes the old
  one, so editors that write a temporary file and rename it over the original work
  where the route serves the temporary name too.

Each open handle keeps a whole copy in memory: this is for documents, not for files of
gigabytes (use the store, or a :class:`~defuse2.Resource` that writes in place).
Handles opened together do not see each other's unsaved writes; the last to close wins.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import attributes
from .attributes import Attributes
from .resources import ContentFile, as_bytes, handles, required
from .signatures import call_with

if TYPE_CHECKING:
    from .store.base import Context


@dataclass(eq=False)
class _Copy:
    """One open handle's copy of the content."""

    path: str
    variables: Mapping[str, Any]
    data: bytearray
    append: bool
    dirty: bool = False
    #: the name it was opened by was unlinked or replaced: never saved again
    gone: bool = False
    ctx: Any = field(default=None, repr=False)


class WritableFile(ContentFile):
    """A file whose content comes from :meth:`content` and goes to :meth:`save`.

    Define both, naming the route variables you need; define :meth:`delete` to allow
    ``rm`` and renames. ``content()`` raises ``FileNotFoundError`` for a name that holds
    nothing: such a name can be created (``save`` is then called with ``b""``).
    """

    #: Permission bits of the file.
    mode = 0o644
    injected = {"content": (), "save": ("data",), "delete": ()}

    @required
    def save(self, *args: Any, **variables: Any) -> None:
        """Keep ``data`` (``bytes``), the file's whole new content; name ``data`` and the
        route variables you need. Raise an :class:`OSError` to refuse it: ``close``
        fails with its errno."""
        raise NotImplementedError(f"{type(self).__name__} must define save()")

    def delete(self, *args: Any, **variables: Any) -> None:
        """Forget the file (``rm``); without it the file cannot be removed (``EROFS``)."""
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    # -- the copies ---------------------------------------------------------------------
    @property
    def _copies(self) -> dict[int, _Copy]:
        copies: dict[int, _Copy] = vars(self).setdefault("_open_copies", {})
        return copies

    @property
    def _lock(self) -> threading.Lock:
        lock: threading.Lock = vars(self).setdefault("_copies_lock", threading.Lock())
        return lock

    @property
    def _saved_at(self) -> dict[str, int]:
        saved: dict[str, int] = vars(self).setdefault("_save_times", {})
        return saved

    def _copies_of(self, path: str) -> list[_Copy]:
        with self._lock:
            return [copy for copy in self._copies.values() if copy.path == path and not copy.gone]

    def _save(self, path: str, variables: Mapping[str, Any], data: bytes, ctx: Any) -> None:
        call_with(self.save, variables, data=data, path=path, ctx=ctx)
        self._saved_at[path] = time.time_ns()
        self._remember_size(path, len(data))

    def _flush(self, copy: _Copy) -> None:
        if copy.dirty and not copy.gone:
            self._save(copy.path, copy.variables, bytes(copy.data), copy.ctx)
            copy.dirty = False

    def _load(self, path: str, ctx: Context, variables: Mapping[str, Any]) -> bytes:
        return as_bytes(call_with(self.content, variables, path=path, ctx=ctx), "content")

    # -- operations ---------------------------------------------------------------------
    def getattr(self, path: str, ctx: Context, fh: int | None, **variables: Any) -> Attributes:
        """:manpage:`stat(2)`: the size of the copy being written, else of the content."""
        copy = self._copies.get(fh) if fh else None
        if copy is None:
            unsaved = [copy for copy in self._copies_of(path) if copy.dirty]
            copy = unsaved[-1] if unsaved else None
        size = len(copy.data) if copy is not None else self._size(path, ctx, None, variables)
        saved = self._saved_at.get(path)
        return attributes.file(
            size=size, mode=self.mode, atime_ns=saved, mtime_ns=saved, ctime_ns=saved
        )

    def open(self, path: str, ctx: Context, flags: int, **variables: Any) -> int:
        """:manpage:`open(2)`: a copy of the content for this handle (empty with
        ``O_TRUNC``, which defuse2 completes with :meth:`truncate`)."""
        data = b"" if flags & os.O_TRUNC else self._load(path, ctx, variables)
        return self._add(path, variables, data, flags, ctx)

    def _add(
        self, path: str, variables: Mapping[str, Any], data: bytes, flags: int, ctx: Context
    ) -> int:
        fh = next(handles)
        copy = _Copy(path, dict(variables), bytearray(data), bool(flags & os.O_APPEND), ctx=ctx)
        with self._lock:
            self._copies[fh] = copy
        return fh

    def create(self, path: str, ctx: Context, mode: int, flags: int, **variables: Any) -> int:
        """:manpage:`open(2)` with ``O_CREAT``: an empty file, saved at once."""
        self._save(path, variables, b"", ctx)
        return self._add(path, variables, b"", flags, ctx)

    def read(
        self, path: str, ctx: Context, size: int, offset: int, fh: int, **variables: Any
    ) -> bytes:
        """:manpage:`pread(2)`: from this handle's copy."""
        copy = self._copies.get(fh)
        if copy is None:
            return super().read(path, ctx, size, offset, fh, **variables)
        return bytes(copy.data[offset : offset + size])

    def write(self, data: bytes, offset: int, fh: int, path: str) -> int:
        """:manpage:`pwrite(2)`: into this handle's copy (at its end with ``O_APPEND``)."""
        copy = self._copies.get(fh)
        if copy is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF), path)
        buffer = copy.data
        if copy.append:
            offset = len(buffer)
        elif offset > len(buffer):
            buffer.extend(bytes(offset - len(buffer)))
        buffer[offset : offset + len(data)] = data
        copy.dirty = True
        return len(data)

    def truncate(
        self, path: str, ctx: Context, length: int, fh: int | None, **variables: Any
    ) -> None:
        """:manpage:`truncate(2)`: of this handle's copy, or of the file and every open
        copy of it (saved at once)."""
        copy = self._copies.get(fh) if fh else None
        targets = [copy] if copy is not None else self._copies_of(path)
        for target in targets:
            _resize(target.data, length)
            target.dirty = True
        if copy is None:
            data = bytearray(self._load(path, ctx, variables))
            _resize(data, length)
            self._save(path, variables, bytes(data), ctx)
            for target in targets:
                target.dirty = False

    def flush(self, fh: int) -> None:
        """Each :manpage:`close(2)`: save the copy; a failed save fails the ``close``."""
        copy = self._copies.get(fh)
        if copy is not None:
            self._flush(copy)

    def fsync(self, fh: int) -> None:
        """:manpage:`fsync(2)`: save the copy."""
        self.flush(fh)

    def release(self, fh: int) -> None:
        """The last :manpage:`close(2)`: save what is still unsaved, forget the copy."""
        with self._lock:
            copy = self._copies.pop(fh, None)
        if copy is None:
            super().release(fh)
            return
        self._flush(copy)

    def unlink(self, path: str, ctx: Context, **variables: Any) -> None:
        """:manpage:`unlink(2)`: :meth:`delete`; open copies are never saved again."""
        call_with(self.delete, variables, path=path, ctx=ctx)
        self._forget(path)

    def rename(self, old: str, new: str, flags: int, ctx: Context, **variables: Any) -> None:
        """:manpage:`rename(2)`: save the content as ``new``, then delete ``old``.

        ``new`` must be a name this resource serves (``EXDEV`` otherwise, as between two
        filesystems: ``mv`` then copies); ``RENAME_NOREPLACE`` and ``RENAME_EXCHANGE``
        are refused (``EINVAL``), never turned into a plain rename. Open copies follow
        the file to its new name.
        """
        if flags:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), old)
        found = self.filesystem.url_map.match(new)
        if found is None or found[0].resource is not self:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), new)
        if type(self).delete is WritableFile.delete:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), old)
        new_variables = found[1]
        self._save(new, new_variables, self._load(old, ctx, variables), ctx)
        call_with(self.delete, variables, path=old, ctx=ctx)
        self._forget(new)
        with self._lock:
            for copy in self._copies.values():
                if copy.path == old and not copy.gone:
                    copy.path, copy.variables = new, dict(new_variables)
        self._saved_at[new] = self._saved_at.pop(old, time.time_ns())
        self._sizes.pop(old, None)

    def _forget(self, path: str) -> None:
        """``path`` no longer names what its open copies hold."""
        for copy in self._copies_of(path):
            copy.gone = True
        self._saved_at.pop(path, None)
        self._sizes.pop(path, None)


def _resize(data: bytearray, length: int) -> None:
    if length < len(data):
        del data[length:]
    else:
        data.extend(bytes(length - len(data)))
