"""How a snapshot becomes tar records, and how the records read back.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
archive -> **tarformat**. The archive is POSIX ``pax``, which GNU tar, bsdtar and
Python's :mod:`tarfile` read:

- modes, uid and gid in the ustar header (pax records past its limits); atime, mtime and
  ctime with nanoseconds as pax ``atime``/``mtime``/``ctime`` records;
- names of any length and any bytes (pax ``path``/``linkpath``, with
  ``hdrcharset=BINARY`` for names that are not UTF-8);
- symlinks, hard links (naming the first path), FIFOs and device nodes as such;
- extended attributes as ``SCHILY.xattr.<name>`` records, with ``%`` and ``=`` in the
  name written ``%25`` and ``%3D`` (GNU tar's form, read by GNU tar and bsdtar); a
  name that is not UTF-8 as ``LIBARCHIVE.xattr.<percent-encoded name>`` with a base64
  value (bsdtar's form: GNU tar skips it with a warning);
- files with holes as GNU sparse members, format 1.0 (``GNU.sparse.major=1``): the
  member's data starts with a map of the data regions and holds only those, so a
  terabyte-sized file holding one byte takes one block. GNU tar, bsdtar and
  :mod:`tarfile` restore the holes; a tar that knows no sparse members extracts the
  map and data under the name ``GNUSparseFile.0/<number>``. A file without holes is a
  plain member.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import tarfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, cast

from defuse2.store.paths import encode
from defuse2.store.snapshot import Entry, Snapshot

BLOCK = tarfile.BLOCKSIZE
SCHILY = "SCHILY.xattr."
LIBARCHIVE = "LIBARCHIVE.xattr."
#: How names and text records are written: UTF-8, other bytes kept as they are.
ENCODING, ERRORS = "utf-8", "surrogateescape"
_LARGEST_OCTAL_SIZE = 8**11 - 1
#: What GNU tar escapes in an xattr name, and how.
_UNESCAPE = {"%25": "%", "%3D": "="}
_ESCAPED = re.compile("|".join(_UNESCAPE))


class Sink(Protocol):
    """Where an archive is written: a binary file, or a compressor in front of one."""

    def write(self, data: bytes | memoryview, /) -> object: ...


@dataclass
class Totals:
    """What went into an archive: entries, bytes of file data, bytes of archive."""

    entries: int = 0
    data_bytes: int = 0
    archive_bytes: int = 0


def seconds(ns: int) -> str:
    """A time in ns as a pax decimal number of seconds."""
    return f"{Decimal(ns).scaleb(-9):f}"


def nanoseconds(text: str) -> int:
    """A pax decimal number of seconds as ns."""
    return int(Decimal(text).scaleb(9))


# -- extended attributes -------------------------------------------------------------------


def xattr_records(xattrs: dict[str, bytes]) -> dict[str, str]:
    """The pax records that hold ``xattrs`` (see the module docstring)."""
    records = {}
    for name, value in xattrs.items():
        if _is_utf8(name):
            keyword = name.replace("%", "%25").replace("=", "%3D")
            records[SCHILY + keyword] = value.decode(ENCODING, ERRORS)
        else:
            keyword = urllib.parse.quote_from_bytes(encode(name), safe="")
            records[LIBARCHIVE + keyword] = base64.b64encode(value).decode("ascii")
    return records


def xattrs_of(member: tarfile.TarInfo) -> dict[str, bytes]:
    """The extended attributes a member's records hold, in either form.

    :raises ValueError: for a ``LIBARCHIVE.xattr`` value that is not base64.
    """
    found = {}
    for key, value in member.pax_headers.items():
        if key.startswith(SCHILY):
            name = _ESCAPED.sub(lambda match: _UNESCAPE[match[0]], key[len(SCHILY) :])
            found[name] = value.encode(ENCODING, ERRORS)
        elif key.startswith(LIBARCHIVE):
            name = urllib.parse.unquote_to_bytes(key[len(LIBARCHIVE) :]).decode(ENCODING, ERRORS)
            try:
                found[name] = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
            except binascii.Error:
                raise ValueError(f"{member.name}: xattr {name!r} is not base64") from None
    return found


def _is_utf8(text: str) -> bool:
    try:
        text.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


# -- writing -------------------------------------------------------------------------------


def write_archive(snapshot: Snapshot, stream: Sink) -> Totals:
    """Write every entry of ``snapshot``, then the end-of-archive marker, to ``stream``."""
    totals = Totals()
    for number, entry in enumerate(snapshot.entries):
        info = _info(entry)
        if entry.kind != stat.S_IFREG or entry.link_to is not None:
            totals.archive_bytes += _write(stream, header(info, 0))
        else:
            regions = list(entry.regions())
            if regions == ([(0, entry.size)] if entry.size else []):  # no holes
                totals.archive_bytes += _write(stream, header(info, entry.size))
                prefix = b""
            else:
                prefix = sparse_map(regions, entry.size)
                info.pax_headers = {**info.pax_headers, **_sparse_records(info.name, entry.size)}
                info.name = f"GNUSparseFile.0/{number}"
                stored = len(prefix) + sum(length for _, length in regions)
                totals.archive_bytes += _write(stream, header(info, stored))
            totals.archive_bytes += _write_data(stream, entry, prefix, regions)
            totals.data_bytes += sum(length for _, length in regions)
        totals.entries += 1
    end = bytes(2 * BLOCK)
    totals.archive_bytes += _write(stream, end)
    record = tarfile.RECORDSIZE
    totals.archive_bytes += _write(stream, bytes(-totals.archive_bytes % record))
    return totals


def sparse_map(regions: list[tuple[int, int]], size: int) -> bytes:
    """The map at the start of a GNU sparse 1.0 member's data, padded to a block.

    It ends with an empty region at the file's size, as GNU tar writes it (and needs it:
    GNU tar 1.34 leaves the last region out of the file otherwise).
    """
    regions = [*regions, (size, 0)]
    text = f"{len(regions)}\n" + "".join(f"{offset}\n{length}\n" for offset, length in regions)
    data = text.encode("ascii")
    return data + bytes(-len(data) % BLOCK)


def _sparse_records(name: str, size: int) -> dict[str, str]:
    return {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(size),
    }


def _info(entry: Entry) -> tarfile.TarInfo:
    """The header of ``entry`` (its size is set by :func:`_header`)."""
    info = tarfile.TarInfo(entry.path)
    info.mode = stat.S_IMODE(entry.mode)
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = entry.mtime // 10**9
    info.pax_headers = {
        "mtime": seconds(entry.mtime),
        "atime": seconds(entry.atime),
        "ctime": seconds(entry.ctime),
    }
    if entry.link_to is not None:
        info.type, info.linkname = tarfile.LNKTYPE, entry.link_to
        return info
    info.pax_headers.update(xattr_records(entry.xattrs))
    kind = entry.kind
    if kind == stat.S_IFDIR:
        info.type = tarfile.DIRTYPE
    elif kind == stat.S_IFLNK:
        info.type, info.linkname = tarfile.SYMTYPE, entry.target or ""
    elif kind == stat.S_IFIFO:
        info.type = tarfile.FIFOTYPE
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        info.type = tarfile.CHRTYPE if kind == stat.S_IFCHR else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(entry.rdev), os.minor(entry.rdev)
    return info


def header(info: tarfile.TarInfo, size: int) -> bytes:
    """The records of ``info`` with ``size`` in its ustar header.

    Past 8 GiB the size is written in base 256, as GNU tar does: a pax ``size`` record
    would contradict a sparse member's ``GNU.sparse.realsize`` for :mod:`tarfile`.
    """
    info.size = size if size <= _LARGEST_OCTAL_SIZE else 0
    records = info.tobuf(tarfile.PAX_FORMAT, ENCODING, ERRORS)
    if size <= _LARGEST_OCTAL_SIZE:
        return records
    buffer = bytearray(records)
    header = memoryview(buffer)[-BLOCK:]
    header[124:136] = b"\x80" + size.to_bytes(11, "big")  # GNU's base-256 number
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    header.release()
    return bytes(buffer)


def _write_data(stream: Sink, entry: Entry, prefix: bytes, regions: list[tuple[int, int]]) -> int:
    """Write the sparse map (if any), the regions' bytes and the padding."""
    written = _write(stream, prefix)
    for offset, length in regions:
        for piece in entry.pieces(offset, length):
            written += _write(stream, piece)
    return written + _write(stream, bytes(-written % BLOCK))


def _write(stream: Sink, data: bytes | memoryview) -> int:
    stream.write(data)
    return len(data)


# -- reading -------------------------------------------------------------------------------


def data_regions(member: tarfile.TarInfo) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of the data a regular member holds; the rest are holes."""
    sparse = cast("list[tuple[int, int]] | None", member.sparse)
    if sparse is not None:
        for offset, length in sparse:
            if length:
                yield offset, length
    elif member.size:
        yield 0, member.size
