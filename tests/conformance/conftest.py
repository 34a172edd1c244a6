"""The ``t`` fixture: one conformance test, once per target."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .targets import MOUNTS, OsApi, Target, fresh_dir, remove_tree

#: Stores mounted through the CLI besides the default memory store: name -> the prefix
#: of their target ids (``directory-mfusepy-fuse3``).
MOUNTED_STORES = ["directory"]

TARGETS = [
    "tmpfs",
    "client",
    "directory",
    *[pytest.param(name, marks=pytest.mark.mount) for name, _, _ in MOUNTS],
    *[
        pytest.param(f"{store}-{name}", marks=pytest.mark.mount)
        for store in MOUNTED_STORES
        for name, _, _ in MOUNTS
    ],
]


def split_target(name: str) -> tuple[str, str]:
    """``("directory", "mfusepy-fuse3")`` for ``directory-mfusepy-fuse3``; the store of
    a plain mount id is ``memory``."""
    for store in MOUNTED_STORES:
        if name.startswith(f"{store}-"):
            return store, name.removeprefix(f"{store}-")
    return "memory", name


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
    if name == "directory":
        from defuse2 import FileSystem
        from defuse2.store.directory import DirectoryStore
        from defuse2.testing import TestClient

        directory = fresh_dir(tmpfs_root)
        try:
            client = TestClient(FileSystem(store=DirectoryStore(directory)))
            client.mkdir("/t")
            yield Target(name, client, "/t", store="directory")
        finally:
            remove_tree(directory)
        return
    if name == "tmpfs":
        yield from _directory_target(name, tmpfs_root, store="host")
        return
    from .apps import QUOTA

    store, mount_name = split_target(name)
    binding, libfuse = {mount: (b, major) for mount, b, major in MOUNTS}[mount_name]
    mount = request.getfixturevalue("cli_mount")(name)
    yield from _directory_target(
        name, mount, quota=QUOTA if store == "memory" else None, rename_flags=libfuse != "2",
        mount=mount, binding=binding, libfuse=libfuse, store=store,
    )  # fmt: skip


def _directory_target(name: str, parent: str, **details: object) -> Iterator[Target]:
    """A :class:`Target` on a fresh directory under ``parent``, driven by :mod:`os`."""
    root = fresh_dir(parent)
    try:
        yield Target(name, OsApi(), root, **details)  # type: ignore[arg-type]
    finally:
        remove_tree(root)
