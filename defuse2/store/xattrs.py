"""Extended attributes of an inode: names, limits, namespaces and quota.

Where this sits: kernel -> libfuse -> binding -> defuse2 dispatcher -> MemoryStore ->
**xattrs**. The rules are Linux's (checked against ``tmpfs``):

- a name must be 1..255 bytes (``ERANGE``) and start with ``user.``, ``trusted.`` or
  ``security.`` (``ENOTSUP`` otherwise, ``system.*`` included: no ACLs here);
- a value may hold up to 64 KiB (``E2BIG``);
- ``user.*`` attributes live only on regular files and directories: setting one on
  anything else is ``EPERM``, reading one gives ``ENODATA``;
- writing ``trusted.*`` and ``security.*`` needs root (``EPERM``); writing ``user.*``
  needs write permission (``EACCES``), and on a sticky directory ownership (``EPERM``);
- absent names give ``ENODATA``; ``XATTR_CREATE`` on a present name ``EEXIST``,
  ``XATTR_REPLACE`` on an absent one ``ENODATA``.

Each attribute costs the quota its name's bytes plus its value's bytes, plus
:data:`XATTR_COST` for the objects that hold them; an inode's first attribute also
:data:`TABLE_COST` for the table that holds them all (given back with the last).
"""

from __future__ import annotations

import errno
import stat

from defuse2.store.base import XATTR_CREATE, XATTR_REPLACE, Context
from defuse2.store.inode import Inode
from defuse2.store.paths import byte_length, fail
from defuse2.store.permissions import W, require
from defuse2.store.quota import Quota

#: Longest name, in bytes (``XATTR_NAME_MAX``).
XATTR_NAME_MAX = 255
#: Largest value, in bytes (``XATTR_SIZE_MAX``).
XATTR_SIZE_MAX = 64 * 1024
#: Namespaces that may be stored.
NAMESPACES = ("user.", "trusted.", "security.")
#: A file's capabilities (:manpage:`capabilities(7)`), which a write, a truncation or a
#: change of owner drops, whoever makes it.
CAPABILITY = "security.capability"


def check_name(name: str) -> None:
    """Refuse a malformed name: ``ERANGE`` for empty or too long, ``ENOTSUP`` namespace."""
    length = byte_length(name)
    if length == 0 or length > XATTR_NAME_MAX:
        raise fail(errno.ERANGE)
    if not name.startswith(NAMESPACES):
        raise fail(errno.ENOTSUP)


#: Bytes charged for each attribute besides its name and value: the two objects and the
#: attribute's slot in the inode's table (about 120 bytes measured).
XATTR_COST = 128

#: Bytes charged for an inode's table of attributes, with its first one (about 230
#: bytes measured).
TABLE_COST = 256


def cost(name: str, value: bytes) -> int:
    """Quota bytes of one attribute."""
    return XATTR_COST + byte_length(name) + len(value)


def _holds_user(inode: Inode) -> bool:
    return stat.S_ISREG(inode.mode) or stat.S_ISDIR(inode.mode)


def get(inode: Inode, name: str) -> bytes:
    """Value of ``name`` (call with ``inode.lock`` held), :manpage:`getxattr(2)`."""
    value = find(inode, name)
    if value is None:
        raise fail(errno.ENODATA)
    return value


def find(inode: Inode, name: str) -> bytes | None:
    """Value of ``name``, or ``None`` where :func:`get` says ``ENODATA`` (lock held).

    :raises OSError: ``ERANGE``/``ENOTSUP`` for a malformed name, as :func:`get`.
    """
    check_name(name)
    value = inode.xattrs.get(name) if inode.xattrs else None
    if value is not None and name.startswith("user.") and not _holds_user(inode):
        return None
    return value


def names(inode: Inode) -> list[str]:
    """All names (call with ``inode.lock`` held), :manpage:`listxattr(2)`."""
    return list(inode.xattrs) if inode.xattrs else []


def check_write(inode: Inode, name: str, ctx: Context) -> None:
    """Permission to set or remove ``name`` on ``inode`` (Linux ``xattr_permission``)."""
    if not name.startswith("user."):
        if ctx.uid != 0:
            raise fail(errno.EPERM)
        return
    if not _holds_user(inode):
        raise fail(errno.EPERM)
    if inode.is_dir and inode.mode & stat.S_ISVTX and ctx.uid not in (0, inode.uid):
        raise fail(errno.EPERM)
    require(inode, ctx, W)


def set_value(inode: Inode, name: str, value: bytes, options: int, quota: Quota) -> None:
    """Store ``value`` as ``name`` (checks done; ``inode.lock`` held), :manpage:`setxattr(2)`.

    :raises OSError: ``EINVAL`` for unknown options, ``EEXIST``/``ENODATA`` for
        ``XATTR_CREATE``/``XATTR_REPLACE``, ``ENOSPC`` when the quota is short.
    """
    if options & ~(XATTR_CREATE | XATTR_REPLACE):
        raise fail(errno.EINVAL)
    xattrs = inode.xattrs
    old = xattrs.get(name) if xattrs else None
    if old is not None and options & XATTR_CREATE:
        raise fail(errno.EEXIST)
    if old is None and options & XATTR_REPLACE:
        raise fail(errno.ENODATA)
    delta = cost(name, value) - (cost(name, old) if old is not None else 0)
    if xattrs is None:
        delta += TABLE_COST
    quota.reserve(delta)
    try:
        if xattrs is None:
            xattrs = inode.xattrs = {}
        xattrs[name] = bytes(value)
    except BaseException:  # a MemoryError: nothing stored, nothing charged
        quota.release(delta)
        raise
    inode.extra += delta


def remove(inode: Inode, name: str, quota: Quota) -> None:
    """Delete ``name`` (``inode.lock`` held), :manpage:`removexattr(2)`; ``ENODATA`` if absent."""
    old = inode.xattrs.pop(name, None) if inode.xattrs else None
    if old is None:
        raise fail(errno.ENODATA)
    freed = cost(name, old)
    if not inode.xattrs:
        inode.xattrs = None
        freed += TABLE_COST
    inode.extra -= freed
    quota.release(freed)


def drop_capability(inode: Inode, quota: Quota) -> None:
    """Forget the file's capabilities, as Linux does on a write, a truncation or a
    :manpage:`chown(2)` (``inode.lock`` held; call only if ``inode.xattrs``)."""
    if CAPABILITY in inode.xattrs:  # type: ignore[operator]
        remove(inode, CAPABILITY, quota)


def check_value(value: bytes) -> None:
    """Refuse a value over :data:`XATTR_SIZE_MAX` with ``E2BIG``."""
    if len(value) > XATTR_SIZE_MAX:
        raise fail(errno.E2BIG)
