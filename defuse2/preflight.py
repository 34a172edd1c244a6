"""Checks made before mounting, each failure with the fix in its message.

Where this sits: in front of libfuse. When libfuse cannot mount, it prints its own message
and returns a bare status; the common causes are found here first and explained:

- the mount point is missing, not a directory, already a mount point, a *stale* mount
  ("Transport endpoint is not connected": its server exited without unmounting), or not
  empty. libfuse 3 would mount over a non-empty directory and hide its files, libfuse 2
  refuses; defuse2 refuses on both unless ``nonempty`` is passed.
- ``/dev/fuse`` is missing or cannot be opened (no ``fuse`` module, a container started
  without the device).
- a user other than root mounts without a setuid ``fusermount``/``fusermount3``, or asks
  for ``allow_other``/``allow_root`` while ``/etc/fuse.conf`` lacks ``user_allow_other``.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Mapping

from .errors import DefuseError
from .mountinfo import is_stale, mount_entry


class MountError(DefuseError):
    """A filesystem could not be mounted (bad mount point, no FUSE, the loop died)."""


def check_mountpoint(path: str, *, nonempty: bool = False) -> None:
    """Refuse a mount point that is missing, mounted (live or stale) or not empty.

    :param nonempty: allow a directory that has entries (they stay hidden while mounted).
    :raises MountError: with what to do instead.
    """
    entry = mount_entry(path)
    if entry is not None:
        if is_stale(path):
            raise MountError(
                f"{path} is a stale FUSE mount: the filesystem served there has exited "
                "without unmounting (Transport endpoint is not connected). Clear it with "
                f"'defuse2 umount {path}', then mount again"
            )
        raise MountError(
            f"{path} is already a mount point ({entry.fstype}, source {entry.source!r}); "
            f"unmount it first ('defuse2 umount {path}') or choose another directory"
        )
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise MountError(f"mount point {path} does not exist (create it: mkdir {path})") from None
    except OSError as exc:
        hint = ""
        if exc.errno == errno.ENOTCONN:
            hint = "; a stale FUSE mount above it must be cleared first ('defuse2 umount DIR')"
        raise MountError(f"cannot use {path} as a mount point: {exc.strerror}{hint}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise MountError(f"mount point {path} is not a directory")
    if not nonempty:
        with os.scandir(path) as entries:
            names = sorted(entry.name for entry in entries)
        if names:
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            count = f"{len(names)} {'entry' if len(names) == 1 else 'entries'}"
            raise MountError(
                f"mount point {path} is not empty ({count}: {shown}); a mount "
                "would hide them until it ends. Use an empty directory, or pass the option "
                "nonempty (-o nonempty, or nonempty=True) to mount over them"
            )


def check_access(
    options: Mapping[str, object],
    *,
    major: int,
    euid: int | None = None,
    device: str = "/dev/fuse",
    fuse_conf: str = "/etc/fuse.conf",
) -> None:
    """Refuse a mount that libfuse would fail for want of ``/dev/fuse`` or permission.

    :param options: the mount's ``-o`` options (``allow_other`` is looked for).
    :param major: libfuse major of the mount; picks ``fusermount3`` or ``fusermount``.
    :param euid: the user mounting (default: this process's effective user).
    :raises MountError: with what to do instead.
    """
    euid = os.geteuid() if euid is None else euid
    if not os.path.exists(device):
        raise MountError(
            f"{device} does not exist: load the fuse kernel module (modprobe fuse), or "
            "start the container with --device /dev/fuse"
        )
    if euid == 0:
        try:
            os.close(os.open(device, os.O_RDWR))
        except OSError as exc:
            raise MountError(
                f"cannot open {device}: {exc.strerror}. In a container, start it with "
                "--device /dev/fuse --cap-add SYS_ADMIN"
            ) from None
        return
    tool = "fusermount3" if major == 3 else "fusermount"
    found = shutil.which(tool)
    if found is None:
        package = "fuse3" if major == 3 else "fuse (or libfuse2's fusermount)"
        raise MountError(f"a user other than root mounts through {tool}; install {package}")
    info = os.stat(found)
    if not (info.st_mode & stat.S_ISUID and info.st_uid == 0):
        raise MountError(
            f"{found} is not setuid root, so only root can mount; as root: chmod u+s {found}"
        )
    for wanted in ("allow_other", "allow_root"):
        if options.get(wanted) not in (None, False) and not _user_allow_other(fuse_conf):
            raise MountError(
                f"{wanted} needs 'user_allow_other' in {fuse_conf} when a user other than "
                f"root mounts; as root: echo user_allow_other >> {fuse_conf}"
            )


def _user_allow_other(fuse_conf: str) -> bool:
    """Whether ``fuse_conf`` has a ``user_allow_other`` line (not commented out)."""
    try:
        with open(fuse_conf, encoding="utf-8", errors="replace") as conf:
            return any(line.split("#")[0].strip() == "user_allow_other" for line in conf)
    except OSError:
        return False
