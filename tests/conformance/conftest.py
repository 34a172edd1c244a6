"""The ``t`` fixture: one conformance test, once per target."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from . import routed
from .targets import MOUNTS, OsApi, Target, fresh_dir, remove_tree

#: Stores mounted through the CLI besides the default memory store, with the mounts
#: they run on; their target ids are ``STORE-MOUNT`` (``directory-mfusepy-fuse3``).
#: ``fsspec`` is an FsspecStore over fsspec's memory filesystem, ``s3`` one over s3fs
#: and a local S3-API server (one binding: each request is an HTTP round trip).
#: ``routed`` is not a store: a filesystem made of routed resources only
#: (``conformance/routed.py``).
MOUNTED_STORES = {
    "directory": [name for name, _, _ in MOUNTS],
    "fsspec": [name for name, _, _ in MOUNTS],
    "s3": ["mfusepy-fuse3"],
    "routed": [name for name, _, _ in MOUNTS],
}

_fsspec_roots = itertools.count()

TARGETS = [
    "tmpfs",
    "client",
    "directory",
    "fsspec",
    "routed",
    *[pytest.param(name, marks=pytest.mark.mount) for name, _, _ in MOUNTS],
    *[
        pytest.param(
            f"{store}-{name}",
            marks=[pytest.mark.mount, *([pytest.mark.slow] if store == "s3" else [])],
        )
        for store, names in MOUNTED_STORES.items()
        for name in names
    ],
]

#: The kind of store behind each store name (the keys of :data:`~conformance.targets.GAPS`).
STORE_KINDS = {
    "memory": "memory",
    "directory": "directory",
    "fsspec": "fsspec",
    "s3": "s3",
    "routed": "routed",
}


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
    if name == "routed":
        from defuse2.testing import TestClient

        client = TestClient(routed.make_filesystem())
        client.mkdir("/t")
        yield Target(name, client, "/t", store="routed-in-process")
        return
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
    if name == "fsspec":
        import fsspec

        from defuse2 import FileSystem
        from defuse2.store.fsspec_store import FsspecStore
        from defuse2.testing import TestClient

        backend, root = fsspec.filesystem("memory"), f"/conformance-{next(_fsspec_roots)}"
        try:
            client = TestClient(FileSystem(store=FsspecStore(backend, root)))
            client.mkdir("/t")
            yield Target(name, client, "/t", store="fsspec")
        finally:
            if backend.exists(root):
                backend.rm(root, recursive=True)
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
        mount=mount, binding=binding, libfuse=libfuse, store=STORE_KINDS[store],
    )  # fmt: skip


def _directory_target(name: str, parent: str, **details: object) -> Iterator[Target]:
    """A :class:`Target` on a fresh directory under ``parent``, driven by :mod:`os`."""
    root = fresh_dir(parent)
    try:
        yield Target(name, OsApi(), root, **details)  # type: ignore[arg-type]
    finally:
        remove_tree(root)
