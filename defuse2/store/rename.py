"""``rename`` with the POSIX rules and the ``renameat2`` flags, as one atomic step.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**rename** -> namespace. The whole check-and-move happens under the namespace lock, so
no reader ever sees the target missing or both names at once. The checks come in the
order Linux makes them, so the errno is the one ``tmpfs`` gives:

=================================================  ===============
case                                               errno
=================================================  ===============
unknown flag, ``RENAME_WHITEOUT``,                 ``EINVAL``
``RENAME_NOREPLACE | RENAME_EXCHANGE``
missing parent on either side                      ``ENOENT``
a parent on either side is not a directory         ``ENOTDIR``
``/``, ``.`` or ``..`` as the last component       ``EBUSY``
source missing                                     ``ENOENT``
``RENAME_NOREPLACE`` and the target exists         ``EEXIST``
``RENAME_EXCHANGE`` and the target is missing      ``ENOENT``
directory into its own subtree                     ``EINVAL``
target is an ancestor of the source                ``ENOTEMPTY``
source and target are the same inode               success, no-op
no write permission on a parent                    ``EACCES``
sticky parent, caller owns neither                 ``EPERM``
directory over a non-directory                     ``ENOTDIR``
non-directory over a directory                     ``EISDIR``
directory over a non-empty directory               ``ENOTEMPTY``
=================================================  ===============

A replaced target loses its name like after ``unlink``: its data lives on for open
handles. The quota is charged the new name's bytes and given the old name's back; a
rename is never refused for space (it must work on a full filesystem, and libfuse hides
a file unlinked while open by renaming it), so a longer name may take the store up to
254 bytes past its quota, until something is removed. Times: both parents get mtime and
ctime, the moved (and replaced or exchanged) inodes get ctime.
"""

from __future__ import annotations

import errno

from defuse2.store.base import RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, Context
from defuse2.store.inode import Inode
from defuse2.store.namespace import Namespace, entry_cost, visible
from defuse2.store.paths import check_name, fail
from defuse2.store.permissions import W, X, may_delete, require


def check_flags(flags: int) -> None:
    """Refuse flags that cannot be honoured with ``EINVAL``."""
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT):
        raise fail(errno.EINVAL)
    if flags & RENAME_WHITEOUT:
        raise fail(errno.EINVAL)
    if flags & RENAME_NOREPLACE and flags & RENAME_EXCHANGE:
        raise fail(errno.EINVAL)


def rename(namespace: Namespace, old: str, new: str, flags: int, ctx: Context, now: int) -> None:
    """Move ``old`` to ``new`` (see the module docstring); namespace lock NOT held."""
    check_flags(flags)
    exchange = bool(flags & RENAME_EXCHANGE)
    with namespace.lock:
        old_dir, old_name = namespace.walk(old)
        new_dir, new_name = namespace.walk(new)
        if old_name in (None, ".", ".."):
            raise fail(errno.EBUSY, old)
        if new_name in (None, ".", ".."):
            raise fail(errno.EEXIST if flags & RENAME_NOREPLACE else errno.EBUSY, new)
        assert old_name is not None and new_name is not None
        assert old_dir.children is not None and new_dir.children is not None
        check_name(old_name)
        check_name(new_name)
        source = old_dir.children.get(old_name)
        if source is None:
            raise fail(errno.ENOENT, old)
        target = new_dir.children.get(new_name)
        if target is not None and flags & RENAME_NOREPLACE:
            raise fail(errno.EEXIST, new)
        if target is None and exchange:
            raise fail(errno.ENOENT, new)
        if not source.is_dir and new.endswith("/"):
            raise fail(errno.ENOTDIR, new)
        if source.is_dir and namespace.is_ancestor(source, new_dir):
            raise fail(errno.EINVAL, old)
        if target is not None and target.is_dir and namespace.is_ancestor(target, old_dir):
            raise fail(errno.EINVAL if exchange else errno.ENOTEMPTY, new)
        if source is target:
            return
        may_delete(old_dir, source, ctx, is_dir=source.is_dir)
        if target is None:
            require(new_dir, ctx, W | X)
        else:
            may_delete(new_dir, target, ctx, is_dir=target.is_dir if exchange else source.is_dir)
        if new_dir is not old_dir:
            if source.is_dir:
                require(source, ctx, W)
            if exchange and target is not None and target.is_dir:
                require(target, ctx, W)
        if exchange:
            assert target is not None
            _exchange(namespace, old_dir, old_name, source, new_dir, new_name, target, now)
            return
        if target is not None and target.is_dir and visible(target):
            raise fail(errno.ENOTEMPTY, new)
        namespace.detach(old_dir, old_name, now)
        if target is not None:
            if target.is_dir:
                namespace.drop_hidden(target, now)
            namespace.detach(new_dir, new_name, now)
            namespace.unlinked(target, now)
        namespace.quota.charge(entry_cost(new_name))  # never refused: see the docstring
        namespace.attach(new_dir, new_name, source, now)
        with source.lock:
            source.ctime = now
            source.changed()


def _exchange(
    namespace: Namespace,
    old_dir: Inode,
    old_name: str,
    source: Inode,
    new_dir: Inode,
    new_name: str,
    target: Inode,
    now: int,
) -> None:
    """Swap two entries atomically (``RENAME_EXCHANGE``); namespace lock held."""
    namespace.detach(old_dir, old_name, now)
    namespace.detach(new_dir, new_name, now)
    namespace.quota.charge(entry_cost(old_name) + entry_cost(new_name))  # as before
    namespace.attach(old_dir, old_name, target, now)
    namespace.attach(new_dir, new_name, source, now)
    for node in (source, target):
        with node.lock:
            node.ctime = now
            node.changed()
