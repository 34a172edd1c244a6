"""The pytest plugin: fixtures for a filesystem, a test client over it, and a mount.

Where this sits: on top of everything, in the test run. pytest loads the package
``defuse2.testing`` through the ``pytest11`` entry point ``defuse2``, and finds these
fixtures there. Override ``defuse2_filesystem`` in a ``conftest.py`` to test your own
filesystem; the other two follow it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .client import TestClient
from .gate import require_fuse

if TYPE_CHECKING:
    from ..filesystem import FileSystem


@pytest.fixture
def defuse2_filesystem() -> FileSystem:
    """The filesystem under test; override this fixture in your ``conftest.py``."""
    from ..filesystem import FileSystem

    return FileSystem()


@pytest.fixture
def defuse2_client(defuse2_filesystem: FileSystem) -> TestClient:
    """A :class:`TestClient` over ``defuse2_filesystem``."""
    return TestClient(defuse2_filesystem)


@pytest.fixture
def defuse2_mount(defuse2_filesystem: FileSystem) -> Iterator[Path]:
    """``defuse2_filesystem`` really mounted (skips without FUSE; fails in CI)."""
    require_fuse()
    mountpoint = tempfile.mkdtemp(prefix="defuse2-mount-")
    try:
        with defuse2_filesystem.mounted(mountpoint):
            yield Path(mountpoint)
    finally:
        os.rmdir(mountpoint)
