"""Is FUSE usable here? The gate in front of every test that really mounts.

Where this sits: outside the stack, in front of it. A mount needs the whole of
kernel -> libfuse -> binding: ``/dev/fuse``, the ``fusermount`` helper, the libfuse that
the binding loads, and the permission to mount. :func:`fuse_unavailable_reason` checks
each for the binding a mount will use (mfusepy on libfuse 3 unless
``DEFUSE2_LIBFUSE=2``; fusepy on libfuse 2), then mounts a tiny filesystem with it for
real, once per process. :func:`require_fuse` turns the answer into pytest's: skip with the
reason, or fail when told that FUSE is required (the plugin's ``defuse2_require_fuse``
setting), so a CI without FUSE can never look green.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib.util
import os
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path

from .script import script_mount

_PROBE = """
import errno, importlib, stat, sys
mfusepy = importlib.import_module(sys.argv[2])  # mfusepy, or fusepy's fuse
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


def _probe_mount(module: str, library: str, major: int) -> str | None:
    """Mount a two-entry filesystem with ``module`` on libfuse ``library``; None if it works."""
    mountpoint = tempfile.mkdtemp(prefix="defuse2-probe-")
    log = mountpoint + ".log"
    env = dict(os.environ, FUSE_LIBRARY_NAME=library)
    env.pop("FUSE_LIBRARY_PATH", None)
    argv = [sys.executable, "-c", _PROBE, mountpoint, module]
    try:
        with script_mount(argv, mountpoint, log, timeout=15, env=env, major=major):
            if os.listdir(mountpoint) != ["probe"]:
                return f"a test mount with lib{library} did not list its file"
            return None
    except RuntimeError:
        detail = Path(log).read_text(errors="replace")
        return f"a test mount with lib{library} failed: {detail.strip()[-300:]}"
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(log)
        os.rmdir(mountpoint)


def fuse_unavailable_reason(binding: str | None = None) -> str | None:
    """Why a mount with ``binding`` cannot run here, or None when it can.

    :param binding: ``"mfusepy"`` or ``"fusepy"``; default: env ``DEFUSE2_BINDING``,
        else mfusepy. mfusepy is checked on the libfuse that env ``DEFUSE2_LIBFUSE``
        names (default 3), fusepy on libfuse 2.

    Checks ``/dev/fuse``, the ``fusermount`` of that libfuse, that the library and the
    binding load, and that a tiny filesystem really mounts with them (then unmounts
    it). Each answer is computed once per process.
    """
    name = binding or os.environ.get("DEFUSE2_BINDING") or "mfusepy"
    major = "2" if name == "fusepy" else os.environ.get("DEFUSE2_LIBFUSE") or "3"
    return _unavailable_reason(name, major)


@cache
def _unavailable_reason(binding: str, major: str) -> str | None:
    if binding not in ("mfusepy", "fusepy"):
        return f"unknown binding {binding!r} (choose mfusepy or fusepy)"
    if not sys.platform.startswith("linux"):
        return f"FUSE tests need Linux, not {sys.platform}"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        return f"/dev/fuse cannot be opened: {exc}"
    library, tool = ("fuse3", "fusermount3") if major == "3" else ("fuse", "fusermount")
    if shutil.which(tool) is None:
        return f"{tool} is not installed"
    found = ctypes.util.find_library(library)
    try:
        ctypes.CDLL(found or f"lib{library}.so")
    except OSError as exc:
        return f"lib{library} cannot be loaded: {exc}"
    module = "mfusepy" if binding == "mfusepy" else "fuse"
    if importlib.util.find_spec(module) is None:
        return f"{binding} is not installed"
    return _probe_mount(module, library, int(major))


def require_fuse(binding: str | None = None, *, required: bool = False) -> None:
    """Skip the running test when a mount with ``binding`` cannot run here.

    :param required: fail the test instead of skipping it (in a CI that must mount).
    """
    import pytest

    reason = fuse_unavailable_reason(binding)
    if reason is not None:
        if required:
            pytest.fail(f"FUSE is required here: {reason}", pytrace=False)
        pytest.skip(f"FUSE is not usable: {reason}")
