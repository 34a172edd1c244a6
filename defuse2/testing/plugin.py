"""The pytest plugin: fixtures for a filesystem, a test client over it, and a mount.

Where this sits: on top of everything, in the test run. pytest loads the package
``defuse2.testing`` through the ``pytest11`` entry point ``defuse2``, and finds these
hooks and fixtures there. Override ``defuse2_filesystem`` in a ``conftest.py`` to test
your own filesystem; the other two follow it.

What it adds to pytest:

- the marker ``mount``: the test needs a real FUSE mount. It is skipped, with the
  reason, where the binding it will use cannot mount. ``@pytest.mark.mount(binding=
  "fusepy", trace=True)`` chooses the binding and tracing of the ``defuse2_mount``
  fixture for that test.
- the ini setting ``defuse2_require_fuse``: ``no`` (the default) skips such tests,
  ``ci`` fails them when the environment variable ``CI`` is set (for a CI that must
  mount), ``yes`` always fails them.
- the options ``--defuse2-binding``, ``--defuse2-libfuse`` and ``--defuse2-trace``: the
  binding, libfuse major and tracing of every ``defuse2_mount``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .client import TestClient
from .gate import require_fuse

if TYPE_CHECKING:
    from ..filesystem import FileSystem

_POLICIES = ("no", "ci", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("defuse2", "defuse2 filesystems")
    group.addoption(
        "--defuse2-binding",
        choices=("mfusepy", "fusepy"),
        help="binding of defuse2_mount (default: env DEFUSE2_BINDING, else mfusepy)",
    )
    group.addoption(
        "--defuse2-libfuse",
        choices=("2", "3"),
        help="libfuse major for mfusepy (default: env DEFUSE2_LIBFUSE, else 3)",
    )
    group.addoption(
        "--defuse2-trace",
        action="store_true",
        help="trace the FUSE callbacks of every defuse2_mount (shown with a failing test)",
    )
    parser.addini(
        "defuse2_require_fuse",
        "when a test marked 'mount' cannot mount: no = skip it, ci = fail it when the "
        "environment variable CI is set, yes = fail it",
        default="no",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mount(binding=None, trace=False): the test needs a real FUSE mount (skipped where "
        "FUSE is unusable, see defuse2_require_fuse); the arguments choose the binding and "
        "tracing of its defuse2_mount",
    )
    policy = str(config.getini("defuse2_require_fuse")).strip().lower()
    if policy not in _POLICIES:
        raise pytest.UsageError(
            f"defuse2_require_fuse = {policy!r}: choose one of {', '.join(_POLICIES)}"
        )
    libfuse = config.getoption("defuse2_libfuse")
    if libfuse:  # read when mfusepy is first imported: one libfuse per process
        previous = os.environ.get("DEFUSE2_LIBFUSE")
        os.environ["DEFUSE2_LIBFUSE"] = libfuse

        def restore() -> None:
            if previous is None:
                os.environ.pop("DEFUSE2_LIBFUSE", None)
            else:
                os.environ["DEFUSE2_LIBFUSE"] = previous

        config.add_cleanup(restore)


def fuse_required(config: pytest.Config) -> bool:
    """Whether a test that cannot mount fails (instead of skipping) in this run."""
    policy = str(config.getini("defuse2_require_fuse")).strip().lower()
    return policy == "yes" or (policy == "ci" and bool(os.environ.get("CI")))


def _mount_settings(item: pytest.Item) -> dict[str, Any]:
    """The binding and tracing of a test's mount: its marker's, else the command line's."""
    marker = item.get_closest_marker("mount")
    chosen = dict(marker.kwargs) if marker is not None else {}
    unknown = set(chosen) - {"binding", "trace"}
    if unknown or (marker is not None and marker.args):
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.mount takes the keywords binding and trace only"
        )
    return {
        "binding": chosen.get("binding") or item.config.getoption("defuse2_binding"),
        "trace": bool(chosen.get("trace") or item.config.getoption("defuse2_trace")),
    }


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("mount") is not None:
        require_fuse(_mount_settings(item)["binding"], required=fuse_required(item.config))


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
def defuse2_mount(request: pytest.FixtureRequest, defuse2_filesystem: FileSystem) -> Iterator[Path]:
    """``defuse2_filesystem`` really mounted for the test, as a :class:`pathlib.Path`.

    Skips where FUSE is unusable (or fails, see ``defuse2_require_fuse``). The binding
    and tracing come from the test's ``mount`` marker, else from ``--defuse2-binding``
    and ``--defuse2-trace``; trace lines are ``INFO`` records of the logger
    ``defuse2.trace``, which pytest captures (``caplog``) and shows when the test fails.
    """
    settings = _mount_settings(request.node)
    require_fuse(settings["binding"], required=fuse_required(request.config))
    mountpoint = tempfile.mkdtemp(prefix="defuse2-mount-")
    try:
        with defuse2_filesystem.mounted(mountpoint, **settings):
            yield Path(mountpoint)
    finally:
        os.rmdir(mountpoint)
