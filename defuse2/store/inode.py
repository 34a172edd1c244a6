"""One file, directory, symlink or special node of the store, and its ``stat``.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**inode**. An :class:`Inode` is what names point at: hard links are several directory
entries holding the same object, so they share content and metadata by construction.

Locking: ``lock`` guards the content, the size, the times, the mode, owner, xattrs and
the open count. The tree (directory ``children``, ``parent``, ``nlink``) is guarded by
the store's namespace lock; ``nlink`` is changed under both. Locks are always taken in
the order namespace -> inode -> quota, and never two inode locks at once.

The :manpage:`stat(2)` mapping is built once and kept (:attr:`Inode.cached_stat`) until
something it shows changes: whoever changes a field that ``stat`` reports calls
:meth:`Inode.changed` before letting go of the lock. The kept mapping is shared and never
changed in place, so it may be read without the lock. Only the :data:`MAX_KEPT_STATS`
inodes whose mappings were built last keep theirs (about 560 bytes each), so a store of
many files does not pay that for every file.
"""

from __future__ import annotations

import stat
import threading
from collections import deque

from defuse2.store.content import Content
from defuse2.store.paths import byte_length

#: ``st_blksize``: the unit in which tools like ``cp`` read and write.
BLKSIZE = 4096

#: Size reported per directory entry, as ``tmpfs`` does (``BOGO_DIRENT_SIZE``).
DIRENT_SIZE = 20

#: The file type bits of ``st_mode`` (what :func:`stat.S_IFMT` keeps).
FILE_TYPE = 0o170000

#: How many inodes (of all stores in the process) keep their ``stat`` mapping at once.
MAX_KEPT_STATS = 1 << 14

#: The inodes that built a kept mapping, oldest first (one inode may be here twice).
_kept: deque[Inode] = deque()


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
        "is_dir",
        "children",
        "parent",
        "content",
        "target",
        "xattrs",
        "extra",
        "opens",
        "hidden",
        "hidden_entries",
        "freed",
        "lock",
        "cached_stat",
    )

    def __init__(self, ino: int, mode: int, uid: int, gid: int, now: int) -> None:
        kind = mode & FILE_TYPE
        self.ino = ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.rdev = 0
        self.atime = self.mtime = self.ctime = now
        #: Whether this is a directory (its type never changes).
        self.is_dir = is_dir = kind == stat.S_IFDIR
        #: directories: ``2 + subdirectories`` while linked, 0 once removed.
        self.nlink = 2 if is_dir else 1
        self.children: dict[str, Inode] | None = {} if is_dir else None
        #: directories only: the directory holding this one (the root holds itself).
        self.parent: Inode = self
        self.content: Content | None = Content() if kind == stat.S_IFREG else None
        self.target: str | None = None
        self.xattrs: dict[str, bytes] | None = None
        #: quota bytes held besides content: the node itself, a symlink's target, xattrs.
        self.extra = 0
        self.opens = 0
        #: names of this (non-directory) inode that libfuse hid (``.fuse_hidden*``).
        self.hidden = 0
        #: directories: how many of the entries have such hidden names.
        self.hidden_entries = 0
        self.freed = False
        self.lock = threading.Lock()
        #: the mapping :meth:`stat` gave, until :meth:`changed`; ``None``: build it anew.
        self.cached_stat: dict[str, int] | None = None

    @property
    def is_symlink(self) -> bool:
        """Whether this is a symbolic link."""
        return stat.S_ISLNK(self.mode)

    def cost(self) -> int:
        """Quota bytes this inode holds (its names are charged apart, per entry)."""
        content = self.content
        return self.extra + (content.cost() if content is not None else 0)

    def changed(self) -> None:
        """Forget the kept ``stat`` mapping; call with ``lock`` held after a change."""
        self.cached_stat = None

    def stat(self) -> dict[str, int]:
        """The :manpage:`stat(2)` mapping (shared: never change it); call with ``lock`` held."""
        cached = self.cached_stat
        if cached is None:
            cached = self.cached_stat = self.fresh_stat()
            _kept.append(self)
            while len(_kept) > MAX_KEPT_STATS:
                _kept.popleft().cached_stat = None  # the oldest builds it anew if asked
        return cached

    def fresh_stat(self) -> dict[str, int]:
        """The :manpage:`stat(2)` mapping built from the fields now; ``lock`` held."""
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
