"""The backend of an FsspecStore, and its files while the mount has them open.

Where this sits: kernel -> libfuse -> binding -> dispatcher -> FsspecStore -> **open
files** -> fsspec -> the backend (S3, GCS, memory, ...). An object store reads ranges of
an object and writes whole objects; a file opened through the mount is therefore:

- **read** from the backend through an fsspec file (``fs.open(..., "rb")``) with its
  cache (``"readahead"``: each request asks for ``block_size`` bytes more than the
  kernel's 128 KiB, so a sequential read costs one request per block; ``"blockcache"``
  keeps several blocks, for random reads);
- **written** into a :class:`~defuse2.store.spool.Spool` (memory up to a size, then an
  anonymous temporary file), holding the whole new content: an existing file is first
  downloaded, unless it was opened with ``O_TRUNC`` or created. The spool is uploaded
  whole, in one ``put`` or a multipart upload, at ``flush`` (each :manpage:`close(2)`),
  ``fsync`` and ``release``: an upload that fails makes ``close`` fail, so the writer
  learns of it.

All handles of one path share one :class:`RemoteFile`, so what one descriptor wrote is
what another reads before any upload. A file unlinked (or replaced by ``rename``) while
open is downloaded first and lives on in the spool, never uploaded again.
"""

from __future__ import annotations

import errno
import itertools
import threading
import time
from datetime import datetime
from typing import Any

from .base import Buffer
from .paths import fail
from .spool import DEFAULT_LIMIT, Spool, copy_to

#: Bytes an fsspec file asks the backend for at a time when reading. Each request costs
#: a round trip whatever its size: with 16 MiB, sequential reads through the mount
#: match s3fs's own (``benchmarks/fsspec_s3.py``); a small file is one request.
DEFAULT_BLOCK_SIZE = 16 << 20

#: The keys fsspec backends use for a modification time, most specific first.
_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")


class Backend:
    """An fsspec filesystem under a root, and how to read and write whole files there.

    :param fs: an ``fsspec.AbstractFileSystem``.
    :param root: the backend path that is the store's ``/`` (``"bucket/prefix"``).
    """

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        cache_type: str = "readahead",
        spool_limit: int = DEFAULT_LIMIT,
        spool_directory: str | None = None,
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.block_size = block_size
        self.cache_type = cache_type
        self.spool_limit = spool_limit
        self.spool_directory = spool_directory

    def path(self, path: str) -> str:
        """The backend path of store path ``path``."""
        return self.root + path if path != "/" else self.root or self.fs.root_marker

    def name(self, info: dict[str, Any]) -> str:
        """The last component of a listed entry's name."""
        return str(info["name"]).rstrip("/").rpartition("/")[2]

    def info(self, path: str) -> dict[str, Any]:
        """``fs.info`` of ``path``, bypassing the backend's own listing cache."""
        return self.fs.info(self.path(path), refresh=True)  # type: ignore[no-any-return]

    def listing(self, path: str) -> list[dict[str, Any]]:
        """``fs.ls`` of directory ``path`` with details, bypassing any listing cache."""
        return self.fs.ls(self.path(path), detail=True, refresh=True)  # type: ignore[no-any-return]

    def new_spool(self) -> Spool:
        return Spool(self.spool_limit, self.spool_directory)

    def download(self, path: str, spool: Spool) -> None:
        """Fill ``spool`` with the whole object at ``path``."""
        with self.fs.open(self.path(path), "rb", block_size=self.block_size) as source:
            spool.fill(source)

    def upload(self, path: str, spool: Spool) -> None:
        """Replace the object at ``path`` with the spool's content."""
        if spool.on_disk:
            with self.fs.open(self.path(path), "wb", block_size=max(self.block_size, 5 << 20)) as f:
                copy_to(spool, f)
        else:
            self.fs.pipe_file(self.path(path), spool.content())

    def reader(self, path: str, size: int) -> Any:
        """An fsspec file to read ``path`` (of ``size`` bytes) through its block cache."""
        return self.fs.open(
            self.path(path),
            "rb",
            block_size=self.block_size,
            cache_type=self.cache_type,
            size=size,
        )


def mtime_ns(info: dict[str, Any], default: int) -> int:
    """The modification time fsspec reports for an entry, in ns (``default`` if none)."""
    for key in _TIME_KEYS:
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, datetime):
            return int(value.timestamp() * 1_000_000) * 1000
        if isinstance(value, int | float):
            return int(value * 1_000_000) * 1000
    return default


class RemoteFile:
    """One backend file while it is open through the mount; shared by its handles.

    Every method but :meth:`detach` is called with :attr:`lock` held.

    :param path: the store path (``None`` once unlinked).
    :param size: its size now.
    :param in_backend: whether an object exists at ``path`` in the backend.
    """

    def __init__(self, backend: Backend, path: str, size: int, *, in_backend: bool) -> None:
        self.backend = backend
        self.lock = threading.Lock()
        self.path: str | None = path
        self.size = size
        self.in_backend = in_backend
        self.mtime_ns = time.time_ns()
        self.handles = 0
        self.unlinked = False
        self.dirty = False
        self._spool: Spool | None = None
        self._reader: Any = None

    def make_empty(self) -> None:
        """New content: nothing (a created file, ``O_TRUNC``), uploaded at the next flush."""
        self._close_reader()
        if self._spool is None:
            self._spool = self.backend.new_spool()
        self._spool.truncate(0)
        self.size = 0
        self._changed()

    def read(self, size: int, offset: int) -> bytes:
        if self._spool is not None:
            return self._spool.pread(size, offset)
        if offset >= self.size:
            return b""
        if self._reader is None:
            assert self.path is not None
            self._reader = self.backend.reader(self.path, self.size)
        self._reader.seek(offset)
        return self._reader.read(size)  # type: ignore[no-any-return]

    def write(self, data: Buffer, offset: int) -> int:
        written = self._loaded().pwrite(data, offset)
        self.size = self._loaded().size
        self._changed()
        return written

    def truncate(self, length: int) -> None:
        if length == 0:
            self.make_empty()
            return
        self._loaded().truncate(length)
        self.size = length
        self._changed()

    def flush(self) -> bool:
        """Upload the content if it changed since the last upload (and has a name);
        whether it did."""
        if not self.dirty or self.unlinked or self._spool is None:
            return False
        assert self.path is not None
        self.backend.upload(self.path, self._spool)
        self.dirty = False
        self.in_backend = True
        return True

    def detach(self) -> None:
        """The name goes (unlink, or replaced by rename): keep the content in the spool,
        for the handles still open, and never upload it."""
        with self.lock:
            if self.in_backend and self._spool is None and self.path is not None:
                self._loaded()
            self.unlinked = True
            self.dirty = False
            self.in_backend = False

    def close(self) -> None:
        """The last handle is released: drop the spool and the reader."""
        self._close_reader()
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _loaded(self) -> Spool:
        """The spool, filled from the backend first if the file has not been changed."""
        if self._spool is None:
            spool = self.backend.new_spool()
            if self.in_backend and self.size:
                assert self.path is not None
                try:
                    self.backend.download(self.path, spool)
                except BaseException:
                    spool.close()
                    raise
                if spool.size != self.size:  # changed in the backend since it was opened
                    spool.close()
                    raise fail(errno.ESTALE, self.path)
            self._close_reader()
            self._spool = spool
        return self._spool

    def _changed(self) -> None:
        self.dirty = not self.unlinked
        self.mtime_ns = time.time_ns()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class OpenFiles:
    """The files open through the mount: each by its path (one :class:`RemoteFile`
    for all the handles of a path) and by handle."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: path -> the file open there
        self.by_path: dict[str, RemoteFile] = {}
        self._handles: dict[int, RemoteFile] = {}
        self._next_handle = itertools.count(1)

    def opened(self, file: RemoteFile) -> tuple[int, RemoteFile]:
        """A new handle of ``file``, or of the file open at its path already."""
        assert file.path is not None
        with self.lock:
            file = self.by_path.setdefault(file.path, file)
            handle = next(self._next_handle)
            self._handles[handle] = file
            file.handles += 1
        return handle, file

    def handle(self, fh: int) -> RemoteFile:
        """The file of handle ``fh`` (``EBADF`` if none)."""
        try:
            return self._handles[fh]
        except KeyError:
            raise fail(errno.EBADF) from None

    def closed(self, fh: int) -> RemoteFile | None:
        """Forget handle ``fh``; the file, if that was its last handle."""
        with self.lock:
            file = self._handles.pop(fh)
            file.handles -= 1
            if file.handles:
                return None
            if file.path is not None and self.by_path.get(file.path) is file:
                del self.by_path[file.path]
        return file

    def take(self, path: str) -> RemoteFile | None:
        """The file open at ``path``, which no longer goes by that name."""
        with self.lock:
            return self.by_path.pop(path, None)

    def rename(self, file: RemoteFile, new: str) -> None:
        """``file`` now goes by ``new``."""
        with self.lock:
            if file.path is not None and self.by_path.get(file.path) is file:
                del self.by_path[file.path]
            self.by_path[new] = file
            file.path = new
