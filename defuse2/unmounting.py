"""Ending a mount: ``fusermount -u``, lazily if busy, and aborting a connection.

Where this sits: beside the stack. A FUSE mount ends when the kernel lets go of it:
``fusermount3 -u`` (``fusermount -u`` for libfuse 2) asks politely and fails while a
process has a file open or its working directory inside; ``-z`` detaches the mount at
once and lets the kernel finish it when the last user leaves. Neither helps while a
request waits on a server that will not answer: then the connection itself is ended
through the kernel's ``fusectl`` filesystem (:func:`abort_connection`), and every
waiting request fails with ``ENOTCONN`` at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess

from .mountinfo import is_mounted

#: Where the kernel's ``fusectl`` filesystem shows one directory per FUSE connection.
CONNECTIONS = "/sys/fs/fuse/connections"


def abort_connection(device: str | None) -> bool:
    """End a FUSE connection through ``fusectl``: every request waiting on it fails at
    once. ``fusectl`` is mounted first if it is not (root only). Whether that worked.

    :param device: ``major:minor`` of the mount (:class:`~defuse2.mountinfo.MountEntry`).
    """
    if device is None:
        return False
    abort = f"{CONNECTIONS}/{device.partition(':')[2]}/abort"
    if not os.path.exists(abort) and os.geteuid() == 0 and not os.path.ismount(CONNECTIONS):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["mount", "-t", "fusectl", "fusectl", CONNECTIONS], capture_output=True, timeout=5
            )
    try:
        with open(abort, "w") as control:
            control.write("1")
    except OSError:
        return False
    return True


def unmount(mountpoint: str | os.PathLike[str], *, major: int = 3, timeout: float = 10.0) -> bool:
    """Unmount ``mountpoint`` with ``fusermount3 -u`` or ``fusermount -u``, lazily if busy.

    :param major: libfuse major of the mount; picks which ``fusermount`` to try first.
    :return: whether the mount point is free afterwards.
    """
    path = os.path.abspath(mountpoint)
    names = ("fusermount", "fusermount3") if major == 2 else ("fusermount3", "fusermount")
    tools = [tool for tool in map(shutil.which, names) if tool]
    attempts = [[tool, "-u", path] for tool in tools] + [[tool, "-u", "-z", path] for tool in tools]
    for command in attempts:
        if not is_mounted(path):
            return True
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if is_mounted(path) and os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(os.fsencode(path), 2)  # MNT_DETACH
    return not is_mounted(path)
