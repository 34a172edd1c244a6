"""WritableFile: a file read by one method and saved by another, like a document.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> **a WritableFile** -> the
author's ``content()`` and ``save()``. The author says what the file holds and what to do
with new content; the shape gives the tools that write files what they expect of one:

- an open file is a copy of the content, loaded at the first ``open`` and shared by
  every descriptor open on it, as a file on a disk is;
- ``write`` at any offset (a gap reads as zeros), ``O_APPEND`` (always at the end),
  ``truncate`` and ``ftruncate`` to any length, ``open(O_TRUNC)``;
- the copy is saved at each ``close`` (``flush``: a failed save fails the ``close`` with
  its errno), at ``fsync``, at ``truncate`` by path, and at the last close if still
  unsaved;
- ``stat`` shows the size of an unsaved copy, and the time of the last save as
  ``mtime``; ``touch``, ``chmod``, ``cp -p`` and ``tar x`` set times and modes that
  defuse2 keeps for the file (see the operations reference);
- ``create`` saves an empty file at once; ``unlink`` calls ``delete()``; ``rename`` to a
  name the same resource serves saves the content under the new name and deletes the
  old one, so editors that write a temporary file and rename it over the original work
  where the route serves the temporary name too (``EXDEV`` elsewhere).

An open file keeps its whole content in memory: this is for documents, not for files of
gigabytes (use the store, or a :class:`~defuse2.Resource` that writes in place).
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
from .store.base import RENAME_EXCHANGE, RENAME_NOREPLACE

if TYPE_CHECKING:
    from .store.base import Context


@dataclass(eq=False)
class _OpenFile:
    """The copy of one file's content that its open descriptors share."""

    path: str
    variables: Mapping[str, Any]
    data: bytearray
    ctx: Any = field(repr=False)
    dirty: bool = False
    #: its name was unlinked or replaced: it is never saved again
    gone: bool = False
    handles: int = 0


class WritableFile(ContentFile):
    """A file whose content comes from :meth:`content` and goes to :meth:`save`.

    Define both, naming the route variables you need (``path`` and ``ctx`` too);
    define :meth:`delete` to allow ``rm`` and renames. A name whose ``content()`` raises
    ``FileNotFoundError`` holds no file; creating it calls ``save`` with ``b""``.
    """

    #: Permission bits of the file.
    mode = 0o644
    injected = {"content": (), "save": ("data",), "delete": ()}

    @required
    def save(self, *args: Any, **variables: Any) -> None:
        """Keep ``data`` (``bytes``), the file's whole new content; name ``data`` and the
        route variables you need. Raise an :class:`OSError` to refuse it: the ``close``
        that saves fails with its errno."""
        raise NotImplementedError(f"{type(self).__name__} must define save()")

    def delete(self, *args: Any, **variables: Any) -> None:
        """Forget the file (``rm``); without it the file cannot be removed (``EROFS``)."""
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    # -- the open files -----------------------------------------------------------------
    @property
    def _state(self) -> _State:
        state: _State = vars(self).setdefault("_open_state", _State())
        return state

    def _save(self, path: str, variables: Mapping[str, Any], data: bytes, ctx: Any) -> None:
        call_with(self.save, variables, data=data, path=path, ctx=ctx)
        self._state.saved_at[path] = time.time_ns()
        self._remember_size(path, len(data))

    def _flush(self, opened: _OpenFile) -> None:
        if opened.dirty and not opened.gone:
            self._save(opened.path, opened.variables, bytes(opened.data), opened.ctx)
            opened.dirty = False

    def _load(self, path: str, ctx: Context, variables: Mapping[str, Any]) -> bytes:
        return as_bytes(call_with(self.content, variables, path=path, ctx=ctx), "content")

    def _open(
        self, path: str, ctx: Context, variables: Mapping[str, Any], data: bytes | None, flags: int
    ) -> int:
        """A new handle on the open file of ``path`` (opened with ``data``, or loaded)."""
        state = self._state
        with state.lock:
            opened = state.files.get(path)
        if opened is None:
            loaded = self._load(path, ctx, variables) if data is None else data
            with state.lock:
                opened = state.files.setdefault(
                    path, _OpenFile(path, dict(variables), bytearray(loaded), ctx)
                )
        fh = next(handles)
        with state.lock:
            opened.handles += 1
            state.handles[fh] = (opened, bool(flags & os.O_APPEND))
        return fh

    def _opened(self, fh: int | None, path: str) -> _OpenFile | None:
        """The open file of handle ``fh``, else of ``path``; ``None``: not open."""
        found = self._state.handles.get(fh) if fh else None
        return found[0] if found is not None else self._state.files.get(path)

    # -- operations ---------------------------------------------------------------------
    def getattr(self, path: str, ctx: Context, fh: int | None, **variables: Any) -> Attributes:
        """:manpage:`stat(2)`: the size of the open copy, else of the content."""
        opened = self._opened(fh, path)
        size = len(opened.data) if opened is not None else self._size(path, ctx, None, variables)
        saved = self._state.saved_at.get(path)
        return attributes.file(
            size=size, mode=self.mode, atime_ns=saved, mtime_ns=saved, ctime_ns=saved
        )

    def open(self, path: str, ctx: Context, flags: int, **variables: Any) -> int:
        """:manpage:`open(2)`: a handle on the open copy (with ``O_TRUNC`` not loaded:
        defuse2 empties it with :meth:`truncate`)."""
        return self._open(path, ctx, variables, b"" if flags & os.O_TRUNC else None, flags)

    def create(self, path: str, ctx: Context, mode: int, flags: int, **variables: Any) -> int:
        """:manpage:`open(2)` with ``O_CREAT``: an empty file, saved at once."""
        self._save(path, variables, b"", ctx)
        self._forget(path)  # an older open file of that name is not this one
        return self._open(path, ctx, variables, b"", flags)

    def read(
        self, path: str, ctx: Context, size: int, offset: int, fh: int, **variables: Any
    ) -> bytes:
        """:manpage:`pread(2)`: from the open copy."""
        opened = self._opened(fh, path)
        if opened is None:
            return super().read(path, ctx, size, offset, fh, **variables)
        return bytes(opened.data[offset : offset + size])

    def write(self, data: bytes, offset: int, fh: int, path: str) -> int:
        """:manpage:`pwrite(2)`: into the open copy (at its end with ``O_APPEND``)."""
        found = self._state.handles.get(fh)
        if found is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF), path)
        opened, append = found
        buffer = opened.data
        if append:
            offset = len(buffer)
        elif offset > len(buffer):
            buffer.extend(bytes(offset - len(buffer)))
        buffer[offset : offset + len(data)] = data
        opened.dirty = True
        return len(data)

    def truncate(
        self, path: str, ctx: Context, length: int, fh: int | None, **variables: Any
    ) -> None:
        """:manpage:`truncate(2)`: of the open copy, saved at its close; by path, of the
        file, saved at once."""
        opened = self._opened(fh, path)
        if opened is None:
            data = bytearray(self._load(path, ctx, variables))
            _resize(data, length)
            self._save(path, variables, bytes(data), ctx)
            return
        _resize(opened.data, length)
        opened.dirty = True
        if fh is None:
            self._flush(opened)

    def flush(self, fh: int) -> None:
        """Each :manpage:`close(2)`: save the copy; a failed save fails the ``close``."""
        found = self._state.handles.get(fh)
        if found is not None:
            self._flush(found[0])

    def fsync(self, fh: int) -> None:
        """:manpage:`fsync(2)`: save the copy."""
        self.flush(fh)

    def release(self, fh: int) -> None:
        """The last :manpage:`close(2)` of a handle: the last one saves what is still
        unsaved and forgets the copy."""
        state = self._state
        with state.lock:
            found = state.handles.pop(fh, None)
            if found is None:
                last = None
            else:
                opened = found[0]
                opened.handles -= 1
                last = opened if opened.handles == 0 else None
                if last is not None and state.files.get(opened.path) is opened:
                    del state.files[opened.path]
        if found is None:
            super().release(fh)
        elif last is not None:
            self._flush(last)

    def unlink(self, path: str, ctx: Context, **variables: Any) -> None:
        """:manpage:`unlink(2)`: :meth:`delete`; an open copy is never saved again."""
        call_with(self.delete, variables, path=path, ctx=ctx)
        self._forget(path)
        self._state.saved_at.pop(path, None)

    def rename(self, old: str, new: str, flags: int, ctx: Context, **variables: Any) -> None:
        """:manpage:`rename(2)`: save the content as ``new``, then delete ``old``.

        ``new`` must be a name this resource serves (``EXDEV`` otherwise, as between two
        filesystems: ``mv`` then copies). ``RENAME_NOREPLACE`` refuses an existing
        ``new`` (``EEXIST``); ``RENAME_EXCHANGE`` swaps the two contents. The open
        copies follow the files to their new names.
        """
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == (
            RENAME_NOREPLACE | RENAME_EXCHANGE
        ):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), old)
        found = self.filesystem.url_map.match(new)
        if found is None or found[0].resource is not self:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), new)
        new_variables = found[1]
        content = self._load(old, ctx, variables)
        if flags:
            try:
                replaced: bytes | None = self._load(new, ctx, new_variables)
            except FileNotFoundError:
                replaced = None
            if replaced is not None and flags & RENAME_NOREPLACE:
                raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), new)
            if flags & RENAME_EXCHANGE:
                if replaced is None:
                    raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), new)
                self._save(new, new_variables, content, ctx)
                self._save(old, variables, replaced, ctx)
                self.renamed(old, new, exchange=True)
                return
        if type(self).delete is WritableFile.delete:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), old)
        self._save(new, new_variables, content, ctx)
        call_with(self.delete, variables, path=old, ctx=ctx)
        self.renamed(old, new)

    def renamed(self, old: str, new: str, *, exchange: bool = False) -> None:
        """``old`` -- this resource's file, or a directory above its files -- is now
        ``new`` (and, with ``exchange``, ``new`` is now ``old``): the open copies follow.
        For a subclass whose ``rename`` moves directories itself."""
        state = self._state
        if not exchange:
            self._forget(new)
        with state.lock:
            moving = {
                path: opened
                for path, opened in state.files.items()
                if _under(path, old) or (exchange and _under(path, new))
            }
            for path in moving:
                del state.files[path]
        tables = (state.saved_at, self._sizes)
        moved_keys = [
            [p for p in t if _under(p, old) or (exchange and _under(p, new))] for t in tables
        ]
        values = [{p: t.pop(p) for p in keys} for t, keys in zip(tables, moved_keys, strict=True)]
        for path, opened in moving.items():
            target = _moved(path, old, new, exchange)
            match = self.filesystem.url_map.match(target)
            opened.path, opened.variables = target, dict(match[1]) if match else {}
            with state.lock:
                state.files[target] = opened
        for table, kept in zip(tables, values, strict=True):
            table.update((_moved(p, old, new, exchange), value) for p, value in kept.items())

    def _forget(self, path: str) -> None:
        """``path`` no longer names what is open under it."""
        state = self._state
        with state.lock:
            opened = state.files.pop(path, None)
        if opened is not None:
            opened.gone = True
        self._sizes.pop(path, None)


class _State:
    """A WritableFile's open files: by path and by handle."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, _OpenFile] = {}
        self.handles: dict[int, tuple[_OpenFile, bool]] = {}
        self.saved_at: dict[str, int] = {}


def _under(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or below it."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _moved(path: str, old: str, new: str, exchange: bool) -> str:
    """Where ``path`` is after ``old`` became ``new`` (and ``new`` ``old``, exchanged)."""
    if _under(path, old):
        return new + path[len(old) :]
    return old + path[len(new) :] if exchange else path


def _resize(data: bytearray, length: int) -> None:
    if length < len(data):
        del data[length:]
    else:
        data.extend(bytes(length - len(data)))
