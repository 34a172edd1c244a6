"""Which binding serves a mount, loaded the first time something is mounted.

Where this sits: kernel -> libfuse -> **binding** (mfusepy or fusepy) -> callbacks ->
adapter. defuse2 runs on two bindings of libfuse's high-level API: mfusepy, on libfuse 3
or 2, and fusepy 3.0.1, on libfuse 2. Nothing imports a binding before a mount needs one,
so ``import defuse2`` works where FUSE is missing, and the choice can still be made by
the environment:

- ``DEFUSE2_BINDING``: ``mfusepy`` (the default) or ``fusepy``;
- ``DEFUSE2_LIBFUSE``: ``2`` or ``3``, the libfuse mfusepy loads (default: 3).

One process holds one libfuse: mfusepy loads its library once, at import, so asking for
the other major later is refused with a message that says so.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from .preflight import MountError

#: The bindings defuse2 runs on; the first is the default (env ``DEFUSE2_BINDING``).
BINDINGS = ("mfusepy", "fusepy")


def binding_name(binding: str | None = None) -> str:
    """The binding to use: ``binding``, else env ``DEFUSE2_BINDING``, else ``"mfusepy"``."""
    name = binding or os.environ.get("DEFUSE2_BINDING") or BINDINGS[0]
    if name not in BINDINGS:
        raise MountError(f"unknown binding {name!r}; choose one of {', '.join(BINDINGS)}")
    return name


def import_binding(name: str) -> Any:
    """Import ``name`` lazily; for mfusepy pick libfuse 2 or 3 from ``DEFUSE2_LIBFUSE``."""
    wanted = os.environ.get("DEFUSE2_LIBFUSE", "")
    if wanted not in ("", "2", "3"):
        raise MountError(f"DEFUSE2_LIBFUSE must be 2 or 3, not {wanted!r}")
    if name == "fusepy":
        if wanted == "3":
            raise MountError("fusepy 3.0.1 runs on libfuse 2 only; use binding='mfusepy'")
        try:
            return importlib.import_module("fuse")
        except (ImportError, OSError) as exc:
            raise MountError(f"cannot load fusepy: {exc}") from exc
    explicit = os.environ.get("FUSE_LIBRARY_PATH") or os.environ.get("FUSE_LIBRARY_NAME")
    if "mfusepy" not in sys.modules and not explicit:
        # mfusepy reads the library name once, at import; keep it out of child processes.
        os.environ["FUSE_LIBRARY_NAME"] = "fuse" if wanted == "2" else "fuse3"
        try:
            module = importlib.import_module("mfusepy")
        except (ImportError, OSError, AttributeError) as exc:
            raise MountError(f"cannot load mfusepy: {exc}") from exc
        finally:
            del os.environ["FUSE_LIBRARY_NAME"]
    else:
        module = importlib.import_module("mfusepy")
    loaded = str(module.fuse_version_major)
    if wanted and not explicit and loaded != wanted:
        raise MountError(
            f"this process already runs mfusepy on libfuse {loaded}; libfuse {wanted} "
            "needs a new process (one libfuse per process)"
        )
    return module


def libfuse_major(binding: str | None = None) -> int:
    """The libfuse major version (2 or 3) that ``binding`` runs on in this process."""
    name = binding_name(binding)
    module = import_binding(name)
    return 2 if name == "fusepy" else int(module.fuse_version_major)
