"""``FsspecStore``: unrouted paths are objects of any fsspec filesystem (S3, GCS, ...).

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> **FsspecStore**
-> fsspec -> the backend. The same routes that run over memory or a directory run over
an object store::

    import s3fs
    fs = FileSystem(store=FsspecStore(s3fs.S3FileSystem(), "my-bucket/data"))

or on the command line, with any fsspec URL: ``--store s3://my-bucket/data``.

POSIX is mapped onto object storage as far as it honestly goes (the "Choosing a store"
guide has the table of what works where):

- files are read through fsspec's block cache and written whole: the new content is
  assembled locally (``spool.py``) and uploaded at each ``close`` and at
  ``fsync``, whose failure the writer sees (``fsspec_files.py``);
- directories are prefixes, empty ones kept by a marker object where the backend has
  no directories of its own; names, attributes and listings are cached for
  ``cache_seconds`` (``fsspec_catalog.py``);
- renaming a file copies then deletes it; renaming a directory would copy each object
  under it, not atomically: ``EXDEV``, so ``mv`` does that copy itself, visibly;
- what an object store cannot keep is refused with the errno Linux gives for a
  filesystem without it: hard links, symlinks, FIFOs, sockets and devices ``EPERM``
  (:manpage:`link(2)`, :manpage:`symlink(2)`, :manpage:`mknod(2)`), extended attributes
  and ``fallocate`` ``EOPNOTSUPP`` (the mount does not register them: the kernel
  answers, and asks nothing before each write), ``RENAME_EXCHANGE`` ``EINVAL``, names
  that are not UTF-8 ``EILSEQ``;
- modes, owners and times are kept in memory while mounted
  (``fsspec_metadata.py``), so ``cp -a``, ``rsync -a`` and ``tar x`` work;
- ``statfs`` reports a nominal 1 PiB; the backend's limits show as failed uploads.

The store is not ``exclusive`` (:mod:`defuse2.caching`): other clients change the
backend, so the kernel keeps no file pages from one ``open`` to the next. Every backend
call blocks its thread; the serving loop brings in spare threads while a call is slow
(``defuse2.readers``), so a slow backend holds up only the requests that wait for it.
With many requests waiting on the network at once, ``-o threads`` serves them all in
parallel from the start.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from typing import Any, Literal

from ..errors import DefuseError
from .base import RENAME_NOREPLACE, Buffer, Context, Stat
from .fsspec_catalog import DIRECTORY, Catalog, is_utf8
from .fsspec_catalog import MARKER as MARKER
from .fsspec_files import DEFAULT_BLOCK_SIZE, Backend, OpenFiles, RemoteFile, mtime_ns
from .fsspec_metadata import AttributeOperations, Metadata
from .namespace import HIDDEN_PREFIX
from .paths import check_name, fail
from .spool import DEFAULT_LIMIT

#: What ``statfs`` reports: a nominal capacity, object stores having none.
NOMINAL_BYTES = 1 << 50
_BLOCK = 4096


class FsspecStore(AttributeOperations):
    """A store whose files are the objects of an fsspec filesystem under ``root``.

    :param fs: an ``fsspec.AbstractFileSystem`` instance.
    :param root: the backend path that becomes ``/`` (``"bucket/prefix"`` for S3).
    :param block_size: bytes per read request to the backend.
    :param cache_type: fsspec's read cache for open files: ``"readahead"`` (sequential
        reads), ``"blockcache"`` (random ones), ``"none"``...
    :param spool_limit: bytes of a file being written kept in memory; beyond, a
        temporary file in ``spool_directory`` (default: the system's).
    :param cache_seconds: how long a backend answer (attributes, listings) is reused.
    :param metadata: ``"session"``: modes, owners and times set through the mount are
        kept in memory while the store lives; ``"fixed"``: changing them is ``EPERM``.
    :param file_mode: the permission bits files show, ``directory_mode`` directories.
    :param directory_markers: whether empty directories need marker objects
        (:data:`~defuse2.store.fsspec_store.MARKER`); ``None``: found out at the first
        ``mkdir``.
    """

    #: The mount registers none of these: the kernel then answers ``EOPNOTSUPP`` itself,
    #: and never asks for ``security.capability`` before a write.
    unsupported_operations = frozenset(
        {"getxattr", "setxattr", "listxattr", "removexattr", "fallocate"}
    )

    #: ``write`` asks who is asking only for a file with setuid or setgid bits.
    lazy_context_operations = frozenset({"write"})

    #: A write or truncation by anyone but root, and any ``chown``, clears setuid and
    #: setgid (in the session's metadata); there are no capabilities to drop.
    clears_privileges = True

    def __init__(
        self,
        fs: Any,
        root: str = "",
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        cache_type: str = "readahead",
        spool_limit: int = DEFAULT_LIMIT,
        spool_directory: str | None = None,
        cache_seconds: float = 1.0,
        metadata: Literal["session", "fixed"] = "session",
        file_mode: int = 0o644,
        directory_mode: int = 0o755,
        directory_markers: bool | None = None,
    ) -> None:
        if metadata not in ("session", "fixed"):
            raise DefuseError(f'metadata must be "session" or "fixed", not {metadata!r}')
        self.backend = Backend(
            fs, root, block_size=block_size, cache_type=cache_type,
            spool_limit=spool_limit, spool_directory=spool_directory,
        )  # fmt: skip
        self.fs = fs
        self.root = self.backend.root
        self.directory_markers = directory_markers
        self._uid, self._gid = os.geteuid(), os.getegid()
        self.file_mode, self.directory_mode = file_mode & 0o7777, directory_mode & 0o7777
        self._catalog = Catalog(self.backend, cache_seconds, time.time_ns())
        self._metadata = Metadata(
            metadata, self._uid, self._gid, self.file_mode, self.directory_mode
        )
        self._files = OpenFiles()
        self._open = self._files.by_path  # path -> the file open there

    def __repr__(self) -> str:
        return f"<FsspecStore {type(self.fs).__name__} {self.root!r}>"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FsspecStore:
        """The store for an fsspec URL (``"s3://bucket/prefix"``, ``"memory://data"``);
        ``options`` go to the store, the backend's come from fsspec's configuration."""
        import fsspec  # type: ignore[import-untyped]

        fs, root = fsspec.core.url_to_fs(url)
        return cls(fs, root, **options)

    # -- attributes -------------------------------------------------------------------
    def getattr(self, path: str | None, fh: int | None = None) -> Stat:
        """Attributes, from the open file, the catalog, or the backend's ``info``."""
        if fh:
            by_handle = self._files.handle(fh)
            return self._file_stat(by_handle.path or path, by_handle)
        assert path is not None
        file = self._open.get(path)
        if file is not None:
            return self._file_stat(path, file)
        info = self._catalog.info(path)
        if info["type"] == "directory":
            mtime = self._catalog.directory_mtime(path)
            return self._stat(path, stat.S_IFDIR | self.directory_mode, 0, mtime)
        size = int(info.get("size") or 0)
        mtime = self._metadata.modified_at(path, mtime_ns(info, 0))
        return self._stat(path, stat.S_IFREG | self.file_mode, size, mtime)

    def _file_stat(self, path: str | None, file: RemoteFile) -> dict[str, int]:
        st = self._stat(path, stat.S_IFREG | self.file_mode, file.size, file.mtime_ns)
        if file.unlinked:
            st["st_nlink"] = 0
        return st

    def _stat(self, path: str | None, mode: int, size: int, mtime: int) -> dict[str, int]:
        st = {
            "st_mode": mode, "st_ino": self._catalog.inode(path),
            "st_nlink": 2 if stat.S_ISDIR(mode) else 1, "st_uid": self._uid,
            "st_gid": self._gid, "st_size": size, "st_blksize": _BLOCK,
            "st_blocks": (size + 511) // 512,
            "st_atime": mtime, "st_mtime": mtime, "st_ctime": mtime,
        }  # fmt: skip
        return self._metadata.apply(path, st)

    def _path_of(self, path: str | None, fh: int | None) -> str:
        """The path that ``path`` or handle ``fh`` names now."""
        if fh:
            path = self._files.handle(fh).path or path
        assert path is not None
        return path

    def _parent(self, path: str) -> Stat:
        """The attributes of the directory of ``path``."""
        return self.getattr(path.rpartition("/")[0] or "/")

    def _is_dir(self, path: str) -> bool:
        if path in self._open:
            return False
        return bool(self._catalog.info(path)["type"] == "directory")

    def statfs(self, path: str) -> Stat:
        """A nominal :data:`NOMINAL_BYTES` free: object stores have no capacity."""
        blocks = NOMINAL_BYTES // _BLOCK
        return {
            "f_bsize": _BLOCK, "f_frsize": _BLOCK, "f_blocks": blocks, "f_bfree": blocks,
            "f_bavail": blocks, "f_files": blocks, "f_ffree": blocks, "f_favail": blocks,
            "f_flag": 0, "f_namemax": 255,
        }  # fmt: skip

    # -- directories ------------------------------------------------------------------
    def readdir(self, path: str, fh: int | None = None) -> list[str]:
        """Names in directory ``path``: the backend's listing, files being written, and
        directories emptied through the store; markers and hidden names left out."""
        names = self._catalog.names(path)
        prefix = path.rstrip("/") + "/"
        for other in [*self._open, *self._catalog.kept]:
            if other.startswith(prefix) and "/" not in other[len(prefix) :]:
                names.add(other[len(prefix) :])
        return sorted(name for name in names if not name.startswith(HIDDEN_PREFIX))

    def find_names(self, path: str) -> list[str] | None:
        """:meth:`readdir`, but ``None`` where ``path`` is no directory of the store."""
        try:
            return self.readdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def opendir(self, path: str, *, ctx: Context | None = None) -> int:
        """Check that ``path`` is a directory; no handle is needed."""
        if not self._is_dir(path):
            raise fail(errno.ENOTDIR, path)
        return 0

    def releasedir(self, path: str | None, fh: int) -> None:
        """Nothing to release."""

    def mkdir(self, path: str, mode: int, *, ctx: Context | None = None) -> None:
        """Make a directory: a real one, or a marker object in it."""
        self._check_name(path)
        full = self.backend.path(path)
        if self.directory_markers is None:
            self.directory_markers = self._needs_markers(full)
        elif not self.directory_markers:
            self.fs.mkdir(full, create_parents=False)
        if self.directory_markers:
            self.fs.pipe_file(f"{full}/{MARKER}", b"")
        self._catalog.kept.discard(path)
        self._catalog.added(path, DIRECTORY)
        self._metadata.created(path, stat.S_IFDIR, mode & 0o7777, ctx, self._parent(path))

    def _needs_markers(self, full: str) -> bool:
        """Make ``full`` with ``fs.mkdir``; whether the backend kept it (else markers)."""
        self.fs.mkdir(full, create_parents=False)
        try:
            return bool(self.fs.info(full, refresh=True)["type"] != "directory")
        except FileNotFoundError:
            return True

    def rmdir(self, path: str, *, ctx: Context | None = None) -> None:
        """Remove an empty directory (its marker, or the backend's directory)."""
        if path == "/":
            raise fail(errno.EBUSY, path)
        if not self._is_dir(path):
            raise fail(errno.ENOTDIR, path)
        if self.readdir(path):
            raise fail(errno.ENOTEMPTY, path)
        full = self.backend.path(path)
        with contextlib.suppress(FileNotFoundError):
            if self.directory_markers:
                self.fs.rm_file(f"{full}/{MARKER}")
            else:
                self.fs.rmdir(full)
        self._removed(path)

    # -- names --------------------------------------------------------------------------
    def unlink(self, path: str, *, ctx: Context | None = None) -> None:
        """Remove a file; handles still open keep its content (downloaded first)."""
        file = self._files.take(path)
        if file is not None:
            try:
                file.detach()
            except BaseException:
                self._files.rename(file, path)
                raise
            in_backend = not _hidden(path) and self._catalog.holds_file(path)
        else:
            if self._is_dir(path):
                raise fail(errno.EISDIR, path)
            in_backend = True
        if in_backend:
            try:
                self.fs.rm_file(self.backend.path(path))
            except FileNotFoundError:
                if file is None:
                    raise fail(errno.ENOENT, path) from None
        self._removed(path)

    def _removed(self, path: str, *, renamed: bool = False) -> None:
        """``path`` is gone (or, ``renamed``, carries on under another name)."""
        keep_parent = self.directory_markers is not False
        self._catalog.removed(path, keep_parent=keep_parent, keep_inode=renamed)
        self._changed_directory(path)
        if not renamed:
            self._metadata.drop(path)

    def rename(self, old: str, new: str, flags: int = 0, *, ctx: Context | None = None) -> None:
        """Move a file (copy, then delete); a directory is ``EXDEV``."""
        if flags & ~RENAME_NOREPLACE:
            raise fail(errno.EINVAL, new)
        source = self._open.get(old)
        if source is None and self._is_dir(old):
            raise fail(errno.EXDEV, old)
        self._check_name(new)
        target = self._open.get(new)
        exists = target is not None or self._catalog.exists(new)
        if target is None and exists and self._is_dir(new):
            raise fail(errno.EISDIR, new)
        if exists and flags & RENAME_NOREPLACE:
            raise fail(errno.EEXIST, new)
        if _hidden(new):  # libfuse hides a file unlinked while open
            self._hide(old, new)
            return
        if target is not None:
            self._files.take(new)
            target.detach()
        if source is None or source.in_backend:
            self.fs.mv(self.backend.path(old), self.backend.path(new))
        if source is not None:
            self._files.rename(source, new)
        info = self._catalog.info(old) if source is None else _file_info(source)
        shown = self._metadata.modified_at(old, mtime_ns(info, 0))
        self._catalog.move(old, new)
        self._metadata.move(old, new)
        self._catalog.added(new, info)
        if source is None or source.in_backend:  # the copy is an upload of ours
            self._metadata.uploaded(new, shown)
        self._removed(old, renamed=True)

    def _hide(self, old: str, hidden: str) -> None:
        """``old`` is unlinked while open: it lives on as ``hidden``, in the store only."""
        file = self._open.get(old)
        if file is None:
            raise fail(errno.ENOENT, old)
        in_backend = file.in_backend
        file.detach()
        if in_backend:
            self.fs.rm_file(self.backend.path(old))
        self._files.rename(file, hidden)
        self._catalog.move(old, hidden)
        self._metadata.move(old, hidden)
        self._removed(old, renamed=True)

    def link(self, target: str, source: str, *, ctx: Context | None = None) -> None:
        """Hard links: an object store has none (``EPERM``, :manpage:`link(2)`)."""
        raise fail(errno.EPERM, target)

    def symlink(self, target: str, source: str, *, ctx: Context | None = None) -> None:
        """Symlinks: an object store has none (``EPERM``, :manpage:`symlink(2)`)."""
        raise fail(errno.EPERM, target)

    def readlink(self, path: str) -> str:
        """There are no symlinks: ``EINVAL`` for whatever exists."""
        self.getattr(path)
        raise fail(errno.EINVAL, path)

    def mknod(self, path: str, mode: int, dev: int, *, ctx: Context | None = None) -> None:
        """An empty regular file; other kinds are ``EPERM`` (:manpage:`mknod(2)`)."""
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise fail(errno.EPERM, path)
        self._check_name(path)
        self.fs.pipe_file(self.backend.path(path), b"")
        self._catalog.added(path, {"type": "file", "size": 0, "mtime": time.time()})
        self._metadata.created(path, stat.S_IFREG, mode & 0o7777, ctx, self._parent(path))

    def _check_name(self, path: str) -> None:
        """A new name: not too long, UTF-8, not the marker's; its directory changes now."""
        name = path.rpartition("/")[2]
        check_name(name)
        if not is_utf8(name):
            raise fail(errno.EILSEQ, path)
        if name == MARKER:
            raise fail(errno.EPERM, path)
        self._changed_directory(path)

    def _changed_directory(self, path: str) -> None:
        """The directory of ``path`` changes now: its ``mtime`` moves."""
        now = self._catalog.touch(path)
        self._metadata.modified(path.rpartition("/")[0] or "/", now)

    # -- file contents ------------------------------------------------------------------
    def create(self, path: str, mode: int, flags: int = 0, *, ctx: Context | None = None) -> int:
        """Create and open a file; it reaches the backend at its first flush."""
        if self._catalog.exists(path) and not self._is_dir(path) or path in self._open:
            if flags & os.O_EXCL:
                raise fail(errno.EEXIST, path)
            return self.open(path, flags, ctx=ctx)
        self._check_name(path)
        handle, file = self._files.opened(RemoteFile(self.backend, path, 0, in_backend=False))
        with file.lock:
            file.make_empty()
        self._metadata.created(path, stat.S_IFREG, mode & 0o7777, ctx, self._parent(path))
        return handle

    def open(self, path: str, flags: int, *, ctx: Context | None = None) -> int:
        """Open a file; ``O_TRUNC`` empties it (uploaded at the next flush)."""
        file = self._open.get(path)
        if file is None:
            info = self._catalog.info(path)
            if info["type"] == "directory":
                raise fail(errno.EISDIR, path)
            file = RemoteFile(self.backend, path, int(info.get("size") or 0), in_backend=True)
        handle, file = self._files.opened(file)
        if flags & os.O_TRUNC:
            with file.lock:
                file.make_empty()
            self._metadata.modified(path, file.mtime_ns)
            self._metadata.written(path, ctx)
        return handle

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        """Up to ``size`` bytes at ``offset``: from the spool, or through the cache."""
        file = self._files.handle(fh)
        with file.lock:
            return file.read(size, offset)

    def write(
        self, path: str | None, data: Buffer, offset: int, fh: int, *, ctx: Any = None
    ) -> int:
        """Write into the spool (downloading an unchanged file first)."""
        file = self._files.handle(fh)
        with file.lock:
            written = file.write(data, offset)
        if file.path is not None:
            self._metadata.modified(file.path, file.mtime_ns)
            self._metadata.written(file.path, ctx)
        return written

    def truncate(
        self, path: str | None, length: int, fh: int | None = None, *, ctx: Context | None = None
    ) -> None:
        """Set the size: through the open file, or by rewriting the object."""
        file = self._files.handle(fh) if fh else self._open.get(path) if path else None
        if file is None:
            assert path is not None
            if self._is_dir(path):
                raise fail(errno.EISDIR, path)
            handle = self.open(path, os.O_WRONLY)
            try:
                self.truncate(path, length, handle, ctx=ctx)
            finally:
                self.release(path, handle)
            return
        with file.lock:
            file.truncate(length)
        if file.path is not None:
            self._metadata.modified(file.path, file.mtime_ns)
            self._metadata.written(file.path, ctx)

    def fallocate(
        self,
        path: str | None,
        mode: int,
        offset: int,
        size: int,
        fh: int,
        *,
        ctx: Context | None = None,
    ) -> None:
        """Objects have no allocation: ``EOPNOTSUPP`` (:manpage:`fallocate(2)`)."""
        raise fail(errno.EOPNOTSUPP, path)

    def flush(self, path: str | None, fh: int) -> None:
        """Upload what was written since the last upload (each :manpage:`close(2)`)."""
        file = self._files.handle(fh)
        with file.lock:
            uploaded = file.flush()
        if uploaded and file.path is not None:
            self._uploaded(file)

    def _uploaded(self, file: RemoteFile) -> None:
        """The backend holds ``file`` now; its times stay those the mount showed."""
        assert file.path is not None
        self._catalog.added(file.path, _file_info(file))
        self._metadata.uploaded(file.path, file.mtime_ns)

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        """Upload now: after ``fsync`` the backend holds the content."""
        self.flush(path, fh)

    def release(self, path: str | None, fh: int) -> None:
        """Upload what is left, and drop the file's local state with its last handle."""
        file = self._files.handle(fh)
        try:
            with file.lock:
                uploaded = file.flush()
            if uploaded and file.path is not None:
                self._uploaded(file)
        finally:
            if self._files.closed(fh) is not None:
                with file.lock:
                    file.close()

    # -- extended attributes: none (ENOTSUP) -----------------------------------------------
    def getxattr(self, path: str, name: str) -> bytes:
        raise fail(errno.ENOTSUP, path)

    def setxattr(self, path: str, name: str, value: bytes, options: int, **_: Any) -> None:
        raise fail(errno.ENOTSUP, path)

    def listxattr(self, path: str) -> list[str]:
        raise fail(errno.ENOTSUP, path)

    def removexattr(self, path: str, name: str, **_: Any) -> None:
        raise fail(errno.ENOTSUP, path)


def _file_info(file: RemoteFile) -> dict[str, Any]:
    """The ``info`` the backend holds for ``file`` once uploaded."""
    return {"type": "file", "size": file.size, "mtime": file.mtime_ns / 1e9}


def _hidden(path: str) -> bool:
    """Whether the last component of ``path`` is one of libfuse's hidden names."""
    return path.rpartition("/")[2].startswith(HIDDEN_PREFIX)
