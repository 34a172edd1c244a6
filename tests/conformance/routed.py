"""A filesystem made of routed resources only: a tree of dicts behind one route.

The conformance suite's routed target. Every path but ``/`` is served by ``Node``, a
:class:`~defuse2.WritableFile` over two plain containers, written with defuse2's public
resource API alone: file contents, symlink targets and directories in plain containers.
What it leaves out -- hard links, special files, extended attributes, a quota, inode
numbers that follow a rename -- is listed in ``GAPS["routed"]`` (``targets.py``), and the
checks that need it skip; the rest must behave as on tmpfs.

Mounted by the CLI as ``conformance.routed:fs``; the test client builds a fresh one per
test.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import time
from typing import Any

from defuse2 import Attributes, Context, Directory, FileSystem, WritableFile, attributes
from defuse2.store.base import RENAME_EXCHANGE, RENAME_NOREPLACE

#: The longest name, and the longest symlink content, in bytes.
NAME_MAX, PATH_MAX = 255, 4096


def fail(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def check_name(path: str) -> None:
    """``ENAMETOOLONG`` for a name longer than :data:`NAME_MAX` bytes, as tmpfs says."""
    if len(os.fsencode(posixpath.basename(path))) > NAME_MAX:
        raise fail(errno.ENAMETOOLONG, path)


class Tree:
    """The data: file contents by path, symlink targets, each directory's mode and times."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self.directories: dict[str, dict[str, int]] = {"/": self.new_directory(0o755)}

    @staticmethod
    def new_directory(mode: int) -> dict[str, int]:
        now = time.time_ns()
        return {"mode": mode & 0o7777, "mtime": now, "ctime": now}

    def names(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return [
            path[len(prefix) :]
            for path in [*self.directories, *self.files, *self.links]
            if path.startswith(prefix) and path != prefix and "/" not in path[len(prefix) :]
        ]

    def touch_parent(self, path: str) -> None:
        """A name was made or removed in ``path``'s directory: its times move."""
        parent = self.directories[posixpath.dirname(path)]
        parent["mtime"] = parent["ctime"] = time.time_ns()

    def kind(self, path: str) -> dict[str, Any] | None:
        """The container ``path`` is in, or ``None``."""
        for kind in (self.files, self.links, self.directories):
            if path in kind:
                return kind  # type: ignore[return-value]
        return None

    def rename(self, old: str, new: str, flags: int) -> None:
        """Move ``old`` (and everything below it) to ``new``, as :manpage:`rename(2)`."""
        source, target = self.kind(old), self.kind(new)
        if source is None:
            raise fail(errno.ENOENT, old)
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == (
            RENAME_NOREPLACE | RENAME_EXCHANGE
        ):
            raise fail(errno.EINVAL, old)
        if target is not None and flags & RENAME_NOREPLACE:
            raise fail(errno.EEXIST, new)
        if flags & RENAME_EXCHANGE:
            if target is None:
                raise fail(errno.ENOENT, new)
            moved = {**self.take(old), **self.take(new)}
            for path, (kind, value) in moved.items():
                swapped = (
                    new + path[len(old) :] if self.under(path, old) else old + path[len(new) :]
                )
                kind[swapped] = value
        else:
            if posixpath.dirname(new) not in self.directories:
                raise fail(errno.ENOENT, new)
            if source is self.directories and target is not None:
                if target is not self.directories:
                    raise fail(errno.ENOTDIR, new)
                if self.names(new):
                    raise fail(errno.ENOTEMPTY, new)
            if source is not self.directories and target is self.directories:
                raise fail(errno.EISDIR, new)
            if target is not None:
                self.take(new)
            for path, (kind, value) in self.take(old).items():
                kind[new + path[len(old) :]] = value
        self.touch_parent(old)
        self.touch_parent(new)

    @staticmethod
    def under(path: str, top: str) -> bool:
        return path == top or path.startswith(top + "/")

    def take(self, top: str) -> dict[str, tuple[dict[str, Any], Any]]:
        """Remove ``top`` and everything below it; what was there, by path."""
        taken = {}
        for kind in (self.files, self.links, self.directories):
            for path in [p for p in kind if self.under(p, top)]:
                taken[path] = (kind, kind.pop(path))
        return taken

    def check_new(self, path: str) -> None:
        """Refuse to make ``path`` unless its directory exists and the name is free."""
        check_name(path)
        parent = posixpath.dirname(path)
        if parent not in self.directories:
            raise fail(errno.ENOTDIR if parent in self.files else errno.ENOENT, path)
        if path in self.files or path in self.directories or path in self.links:
            raise fail(errno.EEXIST, path)


def make_filesystem() -> FileSystem:
    """A new routed filesystem over an empty tree."""
    tree = Tree()
    fs = FileSystem()

    @fs.route("/")
    class Root(Directory):
        def entries(self) -> list[str]:
            return tree.names("/")

    @fs.route("/<path:rest>")
    class Node(WritableFile):
        """A file of ``tree.files``, or a directory of ``tree.directories``."""

        def content(self, path: str) -> bytes:
            if path in tree.directories:
                raise fail(errno.EISDIR, path)
            try:
                return tree.files[path]
            except KeyError:
                raise fail(errno.ENOENT, path) from None

        def save(self, data: bytes, path: str) -> None:
            if path not in tree.files:
                tree.check_new(path)
                tree.touch_parent(path)
            tree.files[path] = data

        def delete(self, path: str) -> None:
            if path in tree.links:
                del tree.links[path]
            elif path in tree.files:
                del tree.files[path]
            else:
                raise fail(errno.ENOENT, path)
            tree.touch_parent(path)

        def symlink(self, target: str, source: str) -> None:
            if len(os.fsencode(source)) >= PATH_MAX:
                raise fail(errno.ENAMETOOLONG, target)
            tree.check_new(target)
            tree.links[target] = source
            tree.touch_parent(target)

        def readlink(self, path: str) -> str:
            try:
                return tree.links[path]
            except KeyError:
                raise fail(errno.EINVAL, path) from None

        def getattr(self, path: str, ctx: Context, fh: int | None, **variables: Any) -> Attributes:
            check_name(path)
            if path in tree.links:
                return attributes.symlink(tree.links[path])
            directory = tree.directories.get(path)
            if directory is None:
                return super().getattr(path, ctx, fh, **variables)
            subdirectories = sum(
                1 for name in tree.names(path) if f"{path}/{name}" in tree.directories
            )
            return attributes.directory(
                mode=directory["mode"],
                nlink=2 + subdirectories,
                mtime_ns=directory["mtime"],
                ctime_ns=directory["ctime"],
            )

        def readdir(self, path: str) -> list[str]:
            if path not in tree.directories:
                raise fail(errno.ENOTDIR, path)
            return tree.names(path)

        def mknod(self, path: str, mode: int) -> None:
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise fail(errno.EPERM, path)  # no FIFOs, sockets or devices
            self.save(b"", path)

        def mkdir(self, path: str, mode: int) -> None:
            tree.check_new(path)
            tree.directories[path] = tree.new_directory(mode)
            tree.touch_parent(path)

        def rmdir(self, path: str) -> None:
            if path not in tree.directories:
                raise fail(errno.ENOTDIR if path in tree.files else errno.ENOENT, path)
            if tree.names(path):
                raise fail(errno.ENOTEMPTY, path)
            del tree.directories[path]
            tree.touch_parent(path)

        def rename(self, old: str, new: str, flags: int, ctx: Context, **variables: Any) -> None:
            if old in tree.files and new not in tree.directories:
                super().rename(old, new, flags, ctx, **variables)  # a file: the shape's own
                return
            tree.rename(old, new, flags)
            self.renamed(old, new, exchange=bool(flags & RENAME_EXCHANGE))  # open files follow

    return fs


fs = make_filesystem()
