"""The ``t`` fixture: one conformance test, once per target."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .targets import MOUNTS, OsApi, Target, fresh_dir, remove_tree

TARGETS = [
    "tmpfs",
    "client",
    "passthrough",
    *[pytest.param(name, marks=pytest.mark.mount) for name, _, _ in MOUNTS],
]


@pytest.fixture(params=TARGETS)
def t(request: pytest.FixtureRequest, tmpfs_root: str) -> Iterator[Target]:
    """A fresh empty directory on one target, behind the ``os``-like interface."""
    name = request.param
    if name == "client":
        from defuse2.testing import TestClient

        from .apps import QUOTA, make_filesystem

        client = TestClient(make_filesystem())
        client.mkdir("/t")
        yield Target(name, client, "/t", quota=QUOTA)
        return
    if name == "passthrough":
        from defuse2 import FileSystem
        from defuse2.testing import TestClient

        from .passthrough import PassthroughStore

        directory = fresh_dir(tmpfs_root)
        try:
            client = TestClient(FileSystem(store=PassthroughStore(directory)))  # type: ignore[arg-type]
            client.mkdir("/t")
            yield Target(name, client, "/t")
        finally:
            remove_tree(directory)
        return
    if name == "tmpfs":
        parent, quota, mount = tmpfs_root, None, None
    else:
        from .apps import QUOTA

        parent = mount = request.getfixturevalue("cli_mount")(name)
        quota = QUOTA
    spec = {mount_name: (binding, libfuse) for mount_name, binding, libfuse in MOUNTS}
    binding, libfuse = spec.get(name, (None, None))
    root = fresh_dir(parent)
    try:
        yield Target(
            name, OsApi(), root, quota=quota, rename_flags=libfuse != "2", mount=mount,
            binding=binding, libfuse=libfuse,
        )  # fmt: skip
    finally:
        remove_tree(root)
