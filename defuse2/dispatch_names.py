"""The dispatcher's operations on names: ``create``, ``mknod``, ``mkdir``, ``symlink``,
``rename``, ``link``, ``unlink``, ``rmdir``.

Where this sits: kernel -> libfuse -> binding -> mount adapter -> **dispatcher**; these
operations of :class:`~defuse2.dispatch.Dispatcher` live here, beside it. A name is made
or removed by the store, or by the resource whose route serves it; a resource that lacks
the operation is read-only (``EROFS``). ``rename`` and ``link`` between a resource and
the store are ``EXDEV``, as between two filesystems: ``mv`` then copies.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from .answers import fail
from .dispatch_part import DispatcherPart
from .routing import Found


class NameOperations(DispatcherPart):
    """The operations of :class:`~defuse2.dispatch.Dispatcher` that make or remove names."""

    def create(self, path: str, mode: int, flags: int = 0) -> int:
        """:manpage:`open(2)` with ``O_CREAT``."""
        found = self._routes.match(path)
        if found is None:  # the common case, called directly
            try:
                return self.store.create(path, mode, flags, ctx=self._context())
            except FileNotFoundError:
                pass  # perhaps in a directory that routes imply: _make sees to it
        fh: int = self._make("create", path, (mode, flags), (path, mode, flags))
        if found is not None:
            self._keep_what_was_made(found, path, mode)
        return fh

    def mknod(self, path: str, mode: int, dev: int) -> None:
        """:manpage:`mknod(2)`."""
        self._make("mknod", path, (mode, dev), (path, mode, dev))
        found = self._routes.match(path)
        if found is not None:
            self._keep_what_was_made(found, path, mode)

    def _keep_what_was_made(self, found: Found, path: str, mode: int) -> None:
        """A writable resource that lacks ``chmod`` or ``chown`` may not keep the mode
        or the owner a new file was given: defuse2 keeps them where ``getattr`` differs."""
        invokers = found[0].invokers
        if "write" not in invokers:
            return
        ctx = self._context()
        mode_kept = "chmod" not in invokers
        # a caller other than the mount's owner, whom a resource's files belong to
        owner_kept = "chown" not in invokers and (ctx.uid, ctx.gid) != (self._uid, self._gid)
        if mode_kept or owner_kept:
            current = self.getattr(path)
            self._kept.created(path, mode, current, ctx, mode_kept=mode_kept, owner_kept=owner_kept)

    def mkdir(self, path: str, mode: int) -> None:
        """:manpage:`mkdir(2)`."""
        if self._routes.match(path) is None:  # the common case, called directly
            try:
                return self.store.mkdir(path, mode, ctx=self._context())
            except FileNotFoundError:
                pass  # perhaps in a directory that routes imply: _make sees to it
        self._make("mkdir", path, (mode,), (path, mode))

    def symlink(self, target: str, source: str) -> None:
        """:manpage:`symlink(2)`: make ``target``, a link to ``source``."""
        self._make("symlink", target, (target, source), (target, source))

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        """:manpage:`rename(2)`; between a resource and the store it is ``EXDEV``."""
        routed = self._routes.match(old) is not None
        if routed != (self._routes.match(new) is not None):
            raise fail(errno.EXDEV, new)
        self._make("rename", new, (old, new, flags), (old, new, flags), served_by=old)
        if routed and self._kept_by_path:
            self._kept.moved(old, new)

    def link(self, target: str, source: str) -> None:
        """:manpage:`link(2)`: make ``target``, a new name of ``source``."""
        if (self._routes.match(target) is None) != (self._routes.match(source) is None):
            raise fail(errno.EXDEV, target)
        self._make("link", target, (target, source), (target, source))

    def unlink(self, path: str) -> None:
        """:manpage:`unlink(2)`."""
        if not self._routed("unlink", path, ()):
            self.store.unlink(path, ctx=self._context())
        elif self._kept_by_path:
            self._kept.removed(path)
            self._names_changed(path)

    def rmdir(self, path: str) -> None:
        """:manpage:`rmdir(2)`."""
        if not self._routed("rmdir", path, ()):
            self.store.rmdir(path, ctx=self._context())
        elif self._kept_by_path:
            self._kept.removed(path)
            self._names_changed(path)

    def _names_changed(self, *paths: str) -> None:
        """A resource made or removed ``paths``: their directories' kept ``mtime`` moves,
        as a directory's does when its names change."""
        if self._kept_by_path:
            for path in paths:
                self._kept.modified(os.path.dirname(path))

    def _make(
        self,
        op: str,
        made: str,
        args: tuple[Any, ...],
        store_args: tuple[Any, ...],
        served_by: str | None = None,
    ) -> Any:
        """An operation that makes the name ``made``, by the store or by the resource
        serving ``served_by`` (default: ``made``), or ``EROFS``.

        The store may not have seen a directory that routes imply (``/users/ann`` for
        ``/users/<name>/profile.json``); if the operation fails with ``ENOENT`` for that
        reason, the directories are made in the store and the operation runs again.
        """
        path = made if served_by is None else served_by
        found = self._routes.match(path)
        try:
            if found is None:
                return getattr(self.store, op)(*store_args, ctx=self._context())
            result = self._resource(op, found, path, args)
            self._names_changed(made, path)
            return result
        except FileNotFoundError:
            if not self._make_store_parents(made):
                raise
        return self._make(op, made, args, store_args, served_by)  # the parents are there now

    def _make_store_parents(self, path: str) -> bool:
        """Make the routed directories above ``path`` in the store; whether any were made."""
        missing: list[str] = []
        parent = os.path.dirname(path)
        while parent != "/" and not self._store_has(parent):
            found = self._routes.match(parent)
            if found is None or not self._is_dir(parent):
                return False
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            self.store.mkdir(directory, 0o755)
        return bool(missing)

    def _store_has(self, path: str) -> bool:
        try:
            self.store.getattr(path)
        except OSError:
            return False
        return True
