"""Show that libfuse 3's timeouts can be chosen per reply (mfusepy, single-threaded).

Where it sits: kernel -> libfuse 3 -> mfusepy -> this ``Operations`` class.

``init_with_config`` receives libfuse's live ``struct fuse_config``; libfuse
reads ``attr_timeout``/``entry_timeout`` from it when it builds each reply,
after the callback returned. Setting them inside ``getattr`` therefore gives
each path its own timeouts: ``/dynamic`` (0 s) is asked again on every
``stat``, ``/static`` (60 s) once. Only safe with ``nothreads``.

Run: ``python benchmarks/live_timeouts.py`` (prints the sizes seen and the
number of getattr calls per path).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from defuse2.testing import script_mount

os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")


def serve(mountpoint: str) -> None:
    import mfusepy

    calls: dict[str, int] = {}

    class Operations(mfusepy.Operations):  # type: ignore[misc]
        use_ns = True
        config: Any = None

        def init_with_config(self, conn: Any, config: Any) -> None:
            self.config = config

        def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
            calls[path] = calls.get(path, 0) + 1
            if self.config is not None:
                timeout = 0.0 if path == "/dynamic" else 60.0
                self.config.attr_timeout = self.config.entry_timeout = timeout
            if path == "/":
                return {"st_mode": 0o40755, "st_nlink": 2}
            if path in ("/dynamic", "/static"):  # the size changes on every call
                return {"st_mode": 0o100444, "st_nlink": 1, "st_size": calls[path]}
            raise OSError(errno.ENOENT, "no such file")

        def destroy(self, path: str) -> None:
            print("getattr calls per path:", calls, file=sys.stderr)

    mfusepy.FUSE(Operations(), mountpoint, foreground=True, nothreads=True)


def main() -> None:
    mountpoint = tempfile.mkdtemp(prefix="defuse2-bench-live-")
    log = mountpoint + ".log"
    try:
        with script_mount([sys.executable, __file__, "--serve", mountpoint], mountpoint, log):
            for name in ("dynamic", "static"):
                sizes = [os.stat(os.path.join(mountpoint, name)).st_size for _ in range(5)]
                print(f"/{name}: st_size over 5 stats = {sizes}")
        sys.stderr.write(Path(log).read_text())  # the server's count, printed as it ended
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(log)
        os.rmdir(mountpoint)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        main()
