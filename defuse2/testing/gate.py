"""Is FUSE usable here? The gate in front of every test that really mounts.

Where this sits: outside the stack, in front of it. A mount needs the whole of
kernel -> libfuse -> binding: ``/dev/fuse``, the ``fusermount`` helpers, libfuse 2 and 3,
and the permission to mount. :func:`fuse_unavailable_reason` checks each, then mounts a
tiny filesystem for real, once per process. :func:`require_fuse` turns the answer into
pytest's: skip with the reason, or fail when the environment variable ``CI`` is set, so a
CI without FUSE can never look green.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import cache

_PROBE = """
import errno, stat, sys
import mfusepy
class Probe(mfusepy.Operations):
    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
        if path == "/probe":
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1}
        raise mfusepy.FuseOSError(errno.ENOENT)
    def readdir(self, path, fh):
        return [".", "..", "probe"]
mfusepy.FUSE(Probe(), sys.argv[1], foreground=True)
"""


def _probe_mount(library: str, unmount: str) -> str | None:
    """Mount a two-entry filesystem with libfuse ``library``; None if it works."""
    mountpoint = tempfile.mkdtemp(prefix="defuse2-probe-")
    env = dict(os.environ, FUSE_LIBRARY_NAME=library)
    env.pop("FUSE_LIBRARY_PATH", None)
    process = subprocess.Popen(
        [sys.executable, "-c", _PROBE, mountpoint],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mountpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()  # it may still run (a timeout): end it before reading its output
                process.wait()
                detail = process.stderr.read().decode(errors="replace") if process.stderr else ""
                return f"a test mount with lib{library} failed: {detail.strip()[-300:]}"
            time.sleep(0.02)
        if os.listdir(mountpoint) != ["probe"]:
            return f"a test mount with lib{library} did not list its file"
        return None
    finally:
        if os.path.ismount(mountpoint):
            done = subprocess.run([unmount, "-u", mountpoint], capture_output=True)
            if done.returncode:
                subprocess.run([unmount, "-u", "-z", mountpoint], capture_output=True)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
        os.rmdir(mountpoint)


@cache
def fuse_unavailable_reason() -> str | None:
    """Why real FUSE mounts cannot run here, or None when they can.

    Checks ``/dev/fuse``, ``fusermount`` and ``fusermount3``, that libfuse 2 and 3 load,
    and that a tiny filesystem really mounts with each (then unmounts it). The answer is
    computed once per process.
    """
    if not sys.platform.startswith("linux"):
        return f"FUSE tests need Linux, not {sys.platform}"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        return f"/dev/fuse cannot be opened: {exc}"
    for tool in ("fusermount", "fusermount3"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    for library in ("fuse", "fuse3"):
        found = ctypes.util.find_library(library)
        try:
            ctypes.CDLL(found or f"lib{library}.so")
        except OSError as exc:
            return f"lib{library} cannot be loaded: {exc}"
    if importlib.util.find_spec("mfusepy") is None:
        return "mfusepy is not installed"
    return _probe_mount("fuse3", "fusermount3") or _probe_mount("fuse", "fusermount")


def require_fuse() -> None:
    """Skip the running test without FUSE, or fail it when env ``CI`` is set."""
    import pytest

    reason = fuse_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"FUSE is required in CI: {reason}", pytrace=False)
        pytest.skip(f"FUSE is not usable: {reason}")
