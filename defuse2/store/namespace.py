"""The tree of names: path walks, directory entries, links, and freeing inodes.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**namespace** -> inodes. One short lock (:attr:`Namespace.lock`) guards every directory's
entries; it is held for the length of one path operation and never across a data copy.

Walks follow symlinks met *before* the last component (as the kernel would) and never
the last one: the store answers like :manpage:`lstat(2)`. Under a mount the kernel
resolves symlinks itself, so only in-process callers rely on this. Search permission on
the components is not checked (the kernel does it under ``default_permissions``).

Names starting with ``.fuse_hidden`` are libfuse's stand-ins for files unlinked while
open (see :data:`HIDDEN_PREFIX`): the tree keeps them, but nobody sees them.

Node accounting (the ``max_nodes`` cap, like ``tmpfs``'s ``nr_inodes``): every inode
costs one node, and every extra hard link to a non-directory one more, so the cap also
bounds the number of names. An unlinked inode keeps its node until its last handle is
released.

Byte accounting: an inode holds :data:`~defuse2.store.quota.NODE_COST` in its
``extra`` (with its symlink target and xattrs), given back when it is freed; each entry
costs :func:`entry_cost` of its name. Whoever enters a name reserves that first (a
``rename`` charges it even past the limit: renaming must work on a full filesystem);
:meth:`Namespace.detach` gives it back.
"""

from __future__ import annotations

import errno
import itertools
import stat
import threading

from defuse2.store.inode import Inode
from defuse2.store.pathcache import PathCache
from defuse2.store.paths import NAME_MAX, byte_length, check_name, fail, split
from defuse2.store.quota import ENTRY_COST, Quota

#: Symlinks followed in one walk before ``ELOOP`` (Linux ``MAXSYMLINKS``).
MAX_SYMLINKS = 40

#: libfuse renames a file that is unlinked while open to ``.fuse_hidden<numbers>`` and
#: unlinks that name at the last release. Such names are not listed, do not keep a
#: directory from being removed, and do not count in ``st_nlink``.
HIDDEN_PREFIX = ".fuse_hidden"


def is_hidden(name: str) -> bool:
    """Whether ``name`` is one libfuse gave a file unlinked while open."""
    return name.startswith(HIDDEN_PREFIX)


def entry_cost(name: str) -> int:
    """Quota bytes of a directory entry named ``name``."""
    return ENTRY_COST + (len(name) if name.isascii() else byte_length(name))


def visible(directory: Inode) -> list[str]:
    """The names of ``directory`` that are listed (namespace lock held)."""
    assert directory.children is not None
    if not directory.hidden_entries:
        return list(directory.children)
    return [name for name in directory.children if not is_hidden(name)]


class Namespace:
    """The directory tree of one store, its inode numbers and its quota.

    :param quota: the budget every allocation is reserved from.
    :param uid: owner of the root directory.
    :param gid: group of the root directory.
    :param now: creation time of the root directory, in ns.
    """

    def __init__(self, quota: Quota, uid: int, gid: int, now: int) -> None:
        self.lock = threading.Lock()
        self.quota = quota
        self._inode_numbers = itertools.count(1)
        quota.reserve(nodes=1)
        self.root = Inode(next(self._inode_numbers), stat.S_IFDIR | 0o755, uid, gid, now)
        #: Plain paths already walked; :meth:`PathCache.get` is safe without the lock.
        self.paths = PathCache(self.root)

    def new_inode(self, mode: int, uid: int, gid: int, now: int) -> Inode:
        """A fresh inode with a never-reused number (the node is already reserved)."""
        return Inode(next(self._inode_numbers), mode, uid, gid, now)

    # -- walking (namespace lock held) ---------------------------------------------------
    def walk(self, path: str) -> tuple[Inode, str | None]:
        """The directory holding the last component of ``path``, and that component.

        The component is ``None`` for ``/``; it may be ``.`` or ``..``.

        :raises OSError: ``ENOENT`` for a missing directory on the way, ``ENOTDIR`` for a
            non-directory, ``ELOOP`` for too many symlinks, ``ENAMETOOLONG`` for a name on
            the way, ``EINVAL``.
        """
        if type(path) is str and path.isascii():
            head, slash, name = path.rpartition("/")
            directory = self.paths.get(head or "/") if slash else None
            if (
                directory is not None
                and directory.children is not None
                and name not in ("", ".", "..")
                and "\0" not in name
            ):
                return directory, name  # what the walk below finds, one dict lookup away
        directory, last, plain = self._walk(path)
        if plain and directory is not self.root:  # next time, the fast way above
            self.paths.add(path[: path.rindex("/")], directory.parent, directory)
        return directory, last

    def _walk(self, path: str) -> tuple[Inode, str | None, bool]:
        """:meth:`walk`, and whether ``path`` is plain (see :mod:`~defuse2.store.pathcache`)."""
        parts = split(path)
        if not parts:
            return self.root, None, False
        node = self.root
        pending = parts[-2::-1]
        followed = 0
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            if name == "..":
                node = node.parent
                continue
            check_name(name)
            assert node.children is not None
            child = node.children.get(name)
            if child is None:
                raise fail(errno.ENOENT, path)
            if child.target is not None:
                followed += 1
                if followed > MAX_SYMLINKS:
                    raise fail(errno.ELOOP, path)
                if child.target.startswith("/"):
                    node = self.root
                pending.extend(part for part in reversed(child.target.split("/")) if part)
                continue
            if child.children is None:
                raise fail(errno.ENOTDIR, path)
            node = child
        plain = not followed and path.count("/") == len(parts)
        return node, parts[-1], plain and "." not in parts and ".." not in parts

    def lookup(self, path: str) -> Inode:
        """The inode ``path`` names, without following a final symlink.

        :raises OSError: ``ENOENT``, ``ENOTDIR`` (also for a trailing ``/`` after a
            non-directory), and the errors of :meth:`walk`.
        """
        node = self.paths.get(path)
        if node is not None:
            return node
        directory, name, plain = self._walk(path)
        if name is None:
            return directory
        node = self.child(directory, name)
        if node is None:
            raise fail(errno.ENOENT, path)
        if path.endswith("/") and not node.is_dir:
            raise fail(errno.ENOTDIR, path)
        if plain:
            self.paths.add(path, directory, node)
        return node

    def find(self, path: str) -> Inode | None:
        """:meth:`lookup` that answers ``None`` where it would raise ``ENOENT`` or ``ENOTDIR``.

        A plain path is answered without an exception, one component at a time from the
        longest remembered prefix; other paths go through :meth:`lookup`.
        """
        node = self.paths.get(path)
        if node is not None:
            return node
        if path.isascii() and "\0" not in path:
            names: list[str] = []
            head = path
            while True:  # up to the longest remembered prefix ("/" always is)
                head, slash, name = head.rpartition("/")
                if not slash or name in ("", ".", "..") or len(name) > NAME_MAX:
                    break  # not plain: lookup() below answers
                names.append(name)
                node = self.paths.get(head or "/")
                if node is not None:
                    break
            while node is not None and names:  # and down again, one entry at a time
                children = node.children
                if children is None:
                    if node.target is None:  # not a directory (ENOTDIR)
                        return None
                    break  # a symlink on the way: lookup() below follows it
                node = children.get(names.pop())
                if node is None:
                    return None
            if node is not None and not names:
                return node
        try:  # a symlink on the way, or a path that is not plain
            return self.lookup(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def child(self, directory: Inode, name: str) -> Inode | None:
        """Entry ``name`` of ``directory`` (``.`` and ``..`` included), or ``None``."""
        assert directory.children is not None
        node = directory.children.get(name)
        if node is None:  # no entry is named "." or "..", nor is any name too long
            if name == ".":
                return directory
            if name == "..":
                return directory.parent
            check_name(name)
        return node

    @staticmethod
    def is_ancestor(ancestor: Inode, node: Inode) -> bool:
        """Whether directory ``ancestor`` is ``node`` or lies on its way to the root."""
        while True:
            if node is ancestor:
                return True
            if node.parent is node:
                return False
            node = node.parent

    # -- changing entries (namespace lock held) ------------------------------------------
    def attach(self, directory: Inode, name: str, node: Inode, now: int) -> None:
        """Enter ``node`` as ``name`` in ``directory`` (a new name or a move); the caller
        has reserved :func:`entry_cost` of ``name``."""
        assert directory.children is not None
        directory.children[name] = node
        is_dir = node.is_dir
        hidden = name.startswith(HIDDEN_PREFIX)
        if hidden:
            directory.hidden_entries += 1
        lock = directory.lock
        lock.acquire()  # not ``with``: half the cost, on every create
        try:
            if is_dir:
                directory.nlink += 1
            directory.mtime = directory.ctime = now
            directory.changed()
        finally:
            lock.release()
        if is_dir:
            node.parent = directory
        elif hidden:
            with node.lock:
                node.hidden += 1
                node.changed()

    def detach(self, directory: Inode, name: str, now: int) -> Inode:
        """Remove entry ``name`` from ``directory`` and return the node it named; its
        :func:`entry_cost` goes back to the quota."""
        assert directory.children is not None
        node = directory.children.pop(name)
        self.quota.release(entry_cost(name))
        self.paths.forget(directory, name, node)
        is_dir = node.is_dir
        hidden = name.startswith(HIDDEN_PREFIX)
        if hidden:
            directory.hidden_entries -= 1
        lock = directory.lock
        lock.acquire()  # not ``with``: half the cost, on every unlink
        try:
            if is_dir:
                directory.nlink -= 1
            if not hidden or is_dir:  # a hidden file left the visible tree when hidden
                directory.mtime = directory.ctime = now
            directory.changed()
        finally:
            lock.release()
        if hidden and not is_dir:
            with node.lock:
                node.hidden -= 1
                node.changed()
        return node

    def drop_hidden(self, directory: Inode, now: int) -> None:
        """Unlink the hidden names in ``directory`` before it is removed."""
        assert directory.children is not None
        for name in [name for name in directory.children if is_hidden(name)]:
            self.unlinked(self.detach(directory, name, now), now, touch=False)

    def unlinked(self, node: Inode, now: int, *, touch: bool = True) -> None:
        """Account for one name of ``node`` gone (after :meth:`detach`).

        ``touch=False`` for a hidden name: its change time was set when it was hidden.
        """
        lock = node.lock
        lock.acquire()  # not ``with``: half the cost, on every unlink
        try:
            if touch:
                node.ctime = now
            node.changed()
            if node.is_dir:
                node.nlink = 0
            else:
                node.nlink -= 1
                if node.nlink > 0:
                    self.quota.release(nodes=1)
                    return
            self.free_if_unused(node)
        finally:
            lock.release()

    def free_if_unused(self, node: Inode) -> None:
        """Give back ``node``'s memory and quota once no name and no handle holds it.

        Call with ``node.lock`` held.
        """
        if node.nlink > 0 or node.opens > 0 or node.freed:
            return
        node.freed = True
        content = node.content
        if content is None:
            self.quota.release(node.extra, 1)
        else:
            self.quota.release(node.extra + content.cost(), 1)
            content.chunks.clear()
            content.allocated = 0
        node.xattrs = None
        node.extra = 0
        node.changed()
