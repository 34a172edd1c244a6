"""One file, directory, symlink or special node of the store, and its ``stat``.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**inode**. An :class:`Inode` is what names point at: hard links are several directory
entries holding the same object, so they share content and metadata by construction.

Locking: ``lock`` guards the content, the size, the times, the mode, owner, xattrs and
the open count. The tree (directory ``children``, ``parent``, ``nlink``) is guarded by
the store's namespace lock; ``nlink`` is changed under both. Locks are always taken in
the order namespace -> inode -> quota, and never two inode locks at once.
"""

from __future__ import annotations

import stat
import threading

from defuse2.store.content import Content
from defuse2.store.paths import byte_length

#: ``st_blksize``: the unit in which tools like ``cp`` read and write.
BLKSIZE = 4096

#: Size reported per directory entry, as ``tmpfs`` does (``BOGO_DIRENT_SIZE``).
DIRENT_SIZE = 20


class Inode:
    """A node of the tree with its metadata; see the module docstring for locking."""

    __slots__ = (
        "ino",
        "mode",
        "uid",
        "gid",
        "rdev",
        "nlink",
        "atime",
        "mtime",
        "ctime",
        "children",
        "parent",
        "content",
        "target",
        "xattrs",
        "extra",
        "opens",
        "hidden",
        "freed",
        "lock",
    )

    def __init__(self, ino: int, mode: int, uid: int, gid: int, now: int) -> None:
        self.ino = ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.rdev = 0
        self.atime = self.mtime = self.ctime = now
        #: directories: ``2 + subdirectories`` while linked, 0 once removed.
        self.nlink = 2 if stat.S_ISDIR(mode) else 1
        self.children: dict[str, Inode] | None = {} if stat.S_ISDIR(mode) else None
        #: directories only: the directory holding this one (the root holds itself).
        self.parent: Inode = self
        self.content: Content | None = Content() if stat.S_ISREG(mode) else None
        self.target: str | None = None
        self.xattrs: dict[str, bytes] | None = None
        #: quota bytes held besides content: symlink target, xattr names and values.
        self.extra = 0
        self.opens = 0
        #: names of this (non-directory) inode that libfuse hid (``.fuse_hidden*``).
        self.hidden = 0
        self.freed = False
        self.lock = threading.Lock()

    @property
    def is_dir(self) -> bool:
        """Whether this is a directory."""
        return self.children is not None

    @property
    def is_regular(self) -> bool:
        """Whether this is a regular file."""
        return self.content is not None or stat.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        """Whether this is a symbolic link."""
        return stat.S_ISLNK(self.mode)

    def cost(self) -> int:
        """Quota bytes this inode holds."""
        content = self.content
        return self.extra + (content.allocated if content is not None else 0)

    def stat(self) -> dict[str, int]:
        """The :manpage:`stat(2)` mapping; call with ``lock`` held."""
        blocks = 0
        if self.children is not None:
            size = DIRENT_SIZE * (len(self.children) + 2)
        elif self.content is not None:
            size = self.content.size
            blocks = (self.content.allocated + 511) // 512
        elif self.target is not None:
            size = byte_length(self.target)
        else:
            size = 0
        return {
            "st_mode": self.mode,
            "st_ino": self.ino,
            "st_nlink": self.nlink - self.hidden,
            "st_uid": self.uid,
            "st_gid": self.gid,
            "st_size": size,
            "st_atime": self.atime,
            "st_mtime": self.mtime,
            "st_ctime": self.ctime,
            "st_blocks": blocks,
            "st_blksize": BLKSIZE,
            "st_rdev": self.rdev,
        }
