"""An index from paths to inodes, in front of the namespace's walks.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
namespace -> **path cache**. Under a mount every request names its file by a full path,
and the same paths come again and again (``lookup``, ``getattr``, ``open``, ``write``
...). A walk costs a dict lookup and a name check per component; the cache answers a
path it has seen with one dict lookup.

It holds only *plain* paths: absolute, without empty, ``.`` or ``..`` components, without
a trailing ``/``, and with no symlink on the way -- exactly what the kernel sends. A plain
path names one entry (a directory and a name in it), which makes keeping the cache right
simple:

- adding a name never changes what a cached path names: nothing to do;
- removing the entry ``name`` of ``directory`` (``unlink``, ``rename``, a hidden name
  dropped with its directory) drops the one key that spells it;
- removing or moving a directory changes every path below it: the whole cache is dropped
  (``rmdir`` and directory renames are rare next to lookups).

Misses are not remembered. Past :data:`MAX_PATHS` entries, or :data:`MAX_PATH_BYTES`
characters of paths (paths deep in a tree can be long), the cache starts over: its
memory stays bounded whatever the tree.

Locking: :meth:`PathCache.add` and :meth:`PathCache.forget` run under the namespace lock.
:meth:`PathCache.get` may run without it (one atomic dict lookup): a reader racing with
an ``unlink`` either sees the node, as if it came just before, or misses and walks under
the lock.
"""

from __future__ import annotations

from collections.abc import Callable

from defuse2.store.inode import Inode

#: Most paths remembered at once (about 150 bytes each besides the path string).
MAX_PATHS = 1 << 16

#: Most characters of paths remembered at once.
MAX_PATH_BYTES = 8 << 20


class PathCache:
    """Plain path -> inode, kept right by :meth:`forget` (see the module docstring).

    :param root: the root directory, always cached as ``/``.
    """

    def __init__(self, root: Inode) -> None:
        self._root = root
        self._nodes: dict[str, Inode] = {"/": root}
        self._length = 0  # characters of the paths added since the cache started over
        #: Each directory that holds a cached path (or is one) -> its own path, ``""``
        #: for the root, so a child's key is ``prefix + "/" + name``.
        self._prefixes: dict[Inode, str] = {root: ""}
        #: The inode a plain path names, or ``None``; safe without the namespace lock. (The
        #: dict is only ever changed in place, so this stays right for the cache's life.)
        self.get: Callable[[str | None], Inode | None] = self._nodes.get  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self._nodes)

    def add(self, path: str, directory: Inode, node: Inode) -> None:
        """Remember that plain ``path`` names ``node``, an entry of ``directory``
        (and that the path before its last ``/`` names ``directory``)."""
        self._length += 2 * len(path)  # the path, and (at most) its directory's
        if len(self._nodes) >= MAX_PATHS or self._length > MAX_PATH_BYTES:
            self.clear()
            self._length = 2 * len(path)
        prefix = path[: path.rindex("/")]
        self._prefixes[directory] = prefix
        if prefix:
            self._nodes[prefix] = directory
        self._nodes[path] = node
        if node.children is not None:
            self._prefixes[node] = path

    def forget(self, directory: Inode, name: str, node: Inode) -> None:
        """Entry ``name`` of ``directory``, naming ``node``, is being removed."""
        if node.children is not None:
            self.clear()
            return
        prefix = self._prefixes.get(directory)
        if prefix is not None:
            self._nodes.pop(f"{prefix}/{name}", None)

    def clear(self) -> None:
        """Forget every path but ``/``."""
        self._length = 0
        self._nodes.clear()
        self._nodes["/"] = self._root
        self._prefixes.clear()
        self._prefixes[self._root] = ""
