"""File attributes: what :manpage:`stat(2)` reports about a path.

Where this sits: a resource's ``getattr`` returns an :class:`Attributes` value (or a plain
mapping); the dispatcher turns it into the ``st_*`` mapping that the binding copies into
libfuse's ``struct stat``. Fields left as ``None`` are filled in by the filesystem: the
mount owner's uid/gid and the time the filesystem started.

The builders cover the common cases::

    attributes.file(size=20, mode=0o444)
    attributes.directory()
    attributes.symlink("target.txt")
"""

from __future__ import annotations

import stat as _stat
from typing import NamedTuple

#: The block size reported in ``st_blksize``: the unit in which tools like ``cp`` read.
BLOCK_SIZE = 4096


class Attributes(NamedTuple):
    """The attributes of one path, with the file type bits in :attr:`mode`.

    An immutable value (a named tuple, so building one is cheap on the hot path).

    :param mode: type and permission bits, e.g. ``stat.S_IFREG | 0o644``.
    :param size: length in bytes (for a symlink, the length of its target).
    :param nlink: number of hard links; directories count ``2 + subdirectories``.
    :param uid: owner; ``None`` means the user who mounted the filesystem.
    :param gid: group; ``None`` means the group of that user.
    :param atime_ns: last access, in nanoseconds since the epoch (``None``: start time).
    :param mtime_ns: last content change (``None``: start time).
    :param ctime_ns: last attribute change (``None``: start time).
    :param ino: inode number; 0 lets libfuse choose.
    """

    mode: int
    size: int = 0
    nlink: int = 1
    uid: int | None = None
    gid: int | None = None
    atime_ns: int | None = None
    mtime_ns: int | None = None
    ctime_ns: int | None = None
    ino: int = 0

    @property
    def is_dir(self) -> bool:
        """Whether this describes a directory."""
        return _stat.S_ISDIR(self.mode)

    def with_changes(self, **changes: int | None) -> Attributes:
        """A copy with some fields replaced, e.g. ``attrs.with_changes(size=0)``."""
        return self._replace(**changes)  # type: ignore[arg-type]

    def as_stat(self, uid: int, gid: int, time_ns: int) -> dict[str, int]:
        """The fusepy ``st_*`` mapping, with ``None`` fields taken from the arguments."""
        return {
            "st_mode": self.mode,
            "st_size": self.size,
            "st_nlink": self.nlink,
            "st_uid": uid if self.uid is None else self.uid,
            "st_gid": gid if self.gid is None else self.gid,
            "st_atime": time_ns if self.atime_ns is None else self.atime_ns,
            "st_mtime": time_ns if self.mtime_ns is None else self.mtime_ns,
            "st_ctime": time_ns if self.ctime_ns is None else self.ctime_ns,
            "st_ino": self.ino,
            "st_blksize": BLOCK_SIZE,
            "st_blocks": (self.size + 511) // 512,
        }


def file(
    size: int = 0,
    mode: int = 0o444,
    *,
    nlink: int = 1,
    uid: int | None = None,
    gid: int | None = None,
    atime_ns: int | None = None,
    mtime_ns: int | None = None,
    ctime_ns: int | None = None,
    ino: int = 0,
) -> Attributes:
    """Attributes of a regular file; ``mode`` holds only the permission bits."""
    return Attributes(
        _stat.S_IFREG | (mode & 0o7777), size, nlink, uid, gid, atime_ns, mtime_ns, ctime_ns, ino
    )


def directory(
    mode: int = 0o555,
    *,
    nlink: int = 2,
    uid: int | None = None,
    gid: int | None = None,
    atime_ns: int | None = None,
    mtime_ns: int | None = None,
    ctime_ns: int | None = None,
    ino: int = 0,
) -> Attributes:
    """Attributes of a directory; ``mode`` holds only the permission bits."""
    return Attributes(
        _stat.S_IFDIR | (mode & 0o7777), 0, nlink, uid, gid, atime_ns, mtime_ns, ctime_ns, ino
    )


def symlink(
    target: str,
    *,
    uid: int | None = None,
    gid: int | None = None,
    atime_ns: int | None = None,
    mtime_ns: int | None = None,
    ctime_ns: int | None = None,
    ino: int = 0,
) -> Attributes:
    """Attributes of a symbolic link to ``target`` (its size is the target's length)."""
    size = len(target.encode("utf-8", "surrogateescape"))
    return Attributes(_stat.S_IFLNK | 0o777, size, 1, uid, gid, atime_ns, mtime_ns, ctime_ns, ino)
