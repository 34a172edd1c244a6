"""What is mounted where, read from ``/proc/self/mountinfo`` without asking the filesystems.

Where this sits: beside the stack. Before a mount, defuse2 looks here to refuse a mount
point that is already one; ``defuse2 umount`` looks here to tell a live FUSE mount from a
*stale* one, whose server has exited while the kernel still holds the mount (every access
then fails with ``ENOTCONN``, "Transport endpoint is not connected"). Reading
``mountinfo`` never touches the mounted filesystem, so it cannot hang on a dead server.
"""

from __future__ import annotations

import codecs
import errno
import os
import threading
from typing import NamedTuple


class MountEntry(NamedTuple):
    """One line of ``/proc/self/mountinfo``, the fields defuse2 reads."""

    #: ``major:minor`` of the mounted device; a FUSE mount's minor names its connection
    #: in ``/sys/fs/fuse/connections``.
    device: str
    #: ``fuse`` (libfuse 2 and 3), ``fuse.NAME`` with a subtype, ``tmpfs``...
    fstype: str
    #: what ``df`` shows as the source (``defuse2`` unless ``fsname=`` says otherwise).
    source: str

    @property
    def is_fuse(self) -> bool:
        """Whether this is a FUSE mount (``fuse``, ``fuse.*`` or ``fuseblk``)."""
        return self.fstype in ("fuse", "fuseblk") or self.fstype.startswith("fuse.")


def unescape(field: str) -> str:
    """Undo the octal escapes (``\\040`` for a space) of ``/proc/self/mountinfo``."""
    if "\\" not in field:
        return field
    raw = field.encode("utf-8", "surrogateescape")
    return codecs.escape_decode(raw)[0].decode("utf-8", "surrogateescape")


def mount_entry(mountpoint: str | os.PathLike[str]) -> MountEntry | None:
    """What is mounted on ``mountpoint`` (the topmost mount), or None."""
    path = os.path.abspath(mountpoint)
    found = None
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as info:
        for line in info:
            fields = line.split(" ")
            if unescape(fields[4]) == path:
                after = fields[fields.index("-", 6) + 1 :]
                found = MountEntry(fields[2], after[0], unescape(after[1]))
    return found


def is_mounted(mountpoint: str | os.PathLike[str]) -> bool:
    """Whether something is mounted on ``mountpoint`` (without asking that filesystem)."""
    try:
        return mount_entry(mountpoint) is not None
    except OSError:
        return os.path.ismount(os.path.abspath(mountpoint))


def is_stale(mountpoint: str | os.PathLike[str], *, timeout: float = 2.0) -> bool:
    """Whether ``mountpoint`` is a FUSE mount whose server is gone (``ENOTCONN``).

    Asks the mount with one ``statfs`` (the kernel answers ``stat`` from its cache, but
    always asks the server for ``statfs``), in a helper thread, so a server that is
    alive but hung costs ``timeout`` seconds, not forever (it counts as not stale).
    """
    entry = mount_entry(mountpoint)
    if entry is None or not entry.is_fuse:
        return False
    answer: list[int] = []

    def probe() -> None:
        try:
            os.statvfs(mountpoint)
            answer.append(0)
        except OSError as exc:
            answer.append(exc.errno or 0)

    thread = threading.Thread(target=probe, name="defuse2 stale-mount probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer) and answer[0] in (errno.ENOTCONN, errno.ECONNABORTED)
