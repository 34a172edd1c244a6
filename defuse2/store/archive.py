"""Snapshot and restore: a store's tree to a tar archive and back, safely.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**archive**. :meth:`MemoryStore.export_tar` and :meth:`MemoryStore.import_tar` call the
two functions here; the CLI's ``--save``/``--load`` use them so data can outlive a mount.
The format is in :mod:`defuse2.store.tarformat`.

A save never harms the previous snapshot: the archive is written to a temporary file
beside the target (``.NAME.XXXX.partial``), flushed to disk with :manpage:`fsync(2)`, and
only then renamed over the target (a symlink target is followed: the link stays). If
anything fails on the way (a full disk, a crash, a kill) the target is as it was, and
the temporary file is removed where the process can still do it. The tree is taken in
one instant (:mod:`defuse2.store.snapshot`) and written while the store serves on, so a
store can be saved while it is mounted.

A restore is all or nothing (:mod:`defuse2.store.restore`); an archive that is not a tar
archive, or is damaged or cut short, raises :class:`DamagedArchive` with a one-line
reason and changes nothing.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import lzma
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

from defuse2.store.base import Context
from defuse2.store.namespace import Namespace
from defuse2.store.paths import fail
from defuse2.store.restore import DamagedArchive, restore
from defuse2.store.snapshot import capture
from defuse2.store.tarformat import BLOCK, ENCODING, ERRORS, Sink, Totals, write_archive

__all__ = ["ArchiveSummary", "DamagedArchive", "check_save_target", "export_tar", "import_tar"]

Target = str | os.PathLike[str] | BinaryIO

#: What reading a damaged or foreign file raises, besides :class:`tarfile.TarError`.
_DAMAGE = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


@dataclass(frozen=True)
class ArchiveSummary:
    """What a save or a restore moved.

    :param entries: files, directories, links and other nodes.
    :param data_bytes: bytes of file data (holes not counted).
    :param archive_bytes: the size of the archive as written (before compression), or 0
        where it is not known.
    :param seconds: how long it took.
    """

    entries: int
    data_bytes: int
    archive_bytes: int
    seconds: float

    def __str__(self) -> str:
        text = f"{self.entries} entries, {_size(self.data_bytes)} of data"
        if self.archive_bytes:
            text += f" ({_size(self.archive_bytes)} archive)"
        return f"{text}, {self.seconds:.2f} s"


def _size(nbytes: int) -> str:
    """``"512 bytes"``, ``"1.5 MiB"``."""
    if nbytes < 1024:
        return f"{nbytes} bytes"
    value = float(nbytes)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


# -- saving --------------------------------------------------------------------------------


def export_tar(namespace: Namespace, target: Target, root: str = "/") -> ArchiveSummary:
    """Write ``root`` and everything under it to ``target`` as a pax tar archive.

    :param target: a path (``.gz``, ``.tgz``, ``.bz2``, ``.xz`` compress; written
        atomically, see the module docstring) or a binary file object open for writing
        (written as a stream, not closed).
    :param root: the directory to save.
    :raises OSError: ``ENOENT``/``ENOTDIR`` for ``root``; the errors of writing
        ``target`` (a path is then left as it was).
    """
    started = time.monotonic()
    snapshot = capture(namespace, root)
    try:
        if isinstance(target, str | os.PathLike):
            totals = _write_atomically(os.fspath(target), lambda out: write_archive(snapshot, out))
        else:
            totals = write_archive(snapshot, target)
    finally:
        snapshot.release()
    return _summary(totals, started)


def check_save_target(path: str | os.PathLike[str]) -> None:
    """Refuse, before anything is mounted, a path that :func:`export_tar` could not write.

    :raises OSError: ``EISDIR`` for a directory, ``EINVAL`` for something that is not a
        regular file, and what creating a file beside it raises (``ENOENT`` for a missing
        directory, ``EACCES``, ``EROFS``...), with the path.
    """
    final = os.path.realpath(path)
    if os.path.isdir(final):
        raise fail(errno.EISDIR, os.fspath(path))
    if os.path.lexists(final) and not os.path.isfile(final):
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    try:
        descriptor, probe = tempfile.mkstemp(".partial", *_beside(final))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None
    os.close(descriptor)
    os.unlink(probe)


def _beside(final: str) -> tuple[str, str]:
    """The prefix and the directory of the temporary file of a save to ``final``."""
    directory, name = os.path.split(final)
    return f".{name}.", directory


def _write_atomically(path: str, write: Callable[[Sink], Totals]) -> Totals:
    """Call ``write`` on a temporary file beside ``path``, then put it in its place."""
    final = os.path.realpath(path)
    try:
        mode = os.stat(final).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~Context.current().umask
    descriptor, temporary = tempfile.mkstemp(".partial", *_beside(final))
    try:
        with open(descriptor, "wb", buffering=1 << 20) as raw:
            os.fchmod(raw.fileno(), mode)
            with _compressing(raw, final) as stream:
                totals = write(stream)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(os.path.dirname(final))
    return totals


def _compressing(raw: BinaryIO, final: str) -> contextlib.AbstractContextManager[Sink]:
    """``raw``, behind the compressor that the suffix of ``final`` names, if any
    (``.gz``/``.tgz``, ``.bz2``/``.tbz``, ``.xz``); closing it leaves ``raw`` open."""
    suffix = os.path.splitext(final)[1].lower()
    if suffix in (".gz", ".tgz"):
        return gzip.GzipFile(fileobj=raw, mode="wb")
    if suffix in (".bz2", ".tbz"):
        return bz2.BZ2File(raw, "wb")
    if suffix == ".xz":
        return lzma.LZMAFile(raw, "wb")
    return contextlib.nullcontext(raw)


def _sync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (where the filesystem allows it)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _summary(totals: Totals, started: float) -> ArchiveSummary:
    elapsed = time.monotonic() - started
    return ArchiveSummary(totals.entries, totals.data_bytes, totals.archive_bytes, elapsed)


# -- restoring -----------------------------------------------------------------------------


def import_tar(namespace: Namespace, source: Target, root: str = "/") -> ArchiveSummary:
    """Add the tree in the tar archive ``source`` under the directory ``root``.

    :param source: a path (compression detected) or a binary file object open for
        reading (one that cannot seek is first copied to a temporary file).
    :param root: an existing directory of the store; the archive's ``.`` member sets
        its metadata, the other members land below it, directories merging with ones
        that exist.
    :raises DamagedArchive: for a file that is not a tar archive, or a damaged or
        truncated one.
    :raises OSError: ``ENOSPC`` when the archive does not fit the quota or the node
        cap; ``EEXIST`` when a non-directory is in the way; ``ENOTDIR``; ``EINVAL``
        for a member name with ``..``; ``ENAMETOOLONG``; ``E2BIG``/``ERANGE``/
        ``ENOTSUP`` for bad xattrs; the errors of opening ``source``.
        On any error the store is left as it was.
    """
    started = time.monotonic()
    with _reading(source) as (archive, archive_bytes):
        try:
            archive.getmembers()  # every header, before anything changes
            _check_end(archive)
            totals = restore(namespace, archive, root)
        except (*_DAMAGE, ValueError) as exc:
            if isinstance(exc, DamagedArchive):
                raise
            raise DamagedArchive(_damage(exc)) from None
        except OSError as exc:
            if exc.errno is None:  # bz2 and lzma report bad data so
                raise DamagedArchive(_damage(exc)) from None
            raise
    totals.archive_bytes = archive_bytes
    return _summary(totals, started)


@contextlib.contextmanager
def _reading(source: Target) -> Iterator[tuple[tarfile.TarFile, int]]:
    """The archive open for reading, and its size where known."""
    with contextlib.ExitStack() as stack:
        name: str | None = None
        fileobj: IO[bytes] | None = None
        size = 0
        if isinstance(source, str | os.PathLike):
            name = os.fspath(source)
            size = os.stat(name).st_size
        elif hasattr(source, "seekable") and source.seekable():
            fileobj = source
        else:
            fileobj = stack.enter_context(tempfile.TemporaryFile())
            shutil.copyfileobj(source, fileobj)
            fileobj.seek(0)
        try:
            archive = tarfile.open(  # noqa: SIM115 - closed below
                name, "r:*", fileobj, encoding=ENCODING, errors=ERRORS
            )
        except _DAMAGE as exc:
            raise DamagedArchive(_damage(exc)) from None
        with archive:
            yield archive, size


def _check_end(archive: tarfile.TarFile) -> None:
    """Refuse an archive whose members end without the end-of-archive blocks (it was cut
    short: tarfile takes that for the end), or whose compressed stream is cut short or
    fails its checksum past the last member."""
    fileobj = archive.fileobj
    assert fileobj is not None
    fileobj.seek(archive.offset)
    end = fileobj.read(BLOCK)
    if len(end) < BLOCK or any(end):
        raise DamagedArchive("it ends before its end-of-archive marker (cut short?)")
    while fileobj.read(1 << 20):  # to the end of the stream, where compressors check
        pass


def _damage(exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, tarfile.ReadError) and "open" in detail:
        return "not a tar archive (or a compressed one of a kind not recognised)"
    return f"damaged archive: {detail}"
