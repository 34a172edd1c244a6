"""Shared test setup: the FUSE gate, mountpoints, a tmpfs, and mounts through the CLI.

The gate: a test marked ``@pytest.mark.mount`` needs a real FUSE mount. The plugin
(:mod:`defuse2.testing`) checks the default binding; this suite mounts with every binding
(mfusepy on libfuse 3 and 2, fusepy), so here libfuse 2 is checked too. Where FUSE is
unusable such tests are skipped with the reason, except when the environment variable
``CI`` is set: pyproject.toml sets ``defuse2_require_fuse = "ci"``, so there they fail,
and a CI without FUSE can never look green.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Running from a checkout that is not installed: load the plugin by hand.
    manager = config.pluginmanager
    if not manager.has_plugin("defuse2") and not manager.has_plugin("defuse2.testing"):
        manager.import_plugin("defuse2.testing")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("mount") is not None:
        from defuse2.testing import require_fuse
        from defuse2.testing.plugin import fuse_required

        require_fuse("fusepy", required=fuse_required(item.config))  # libfuse 2


@pytest.fixture
def mountpoint() -> Iterator[str]:
    """A fresh empty directory to mount on; removed afterwards (unmounted if need be)."""
    path = tempfile.mkdtemp(prefix="defuse2-mnt-")
    try:
        yield path
    finally:
        if os.path.ismount(path):
            subprocess.run(["fusermount3", "-u", "-z", path], capture_output=True)
        os.rmdir(path)


@pytest.fixture(scope="session")
def tmpfs_root() -> Iterator[str]:
    """A real tmpfs for the session (a plain directory where mounting is not allowed)."""
    path = tempfile.mkdtemp(prefix="defuse2-tmpfs-")
    command = ["mount", "-t", "tmpfs", "-o", "size=512m,mode=0755", "tmpfs", path]
    mounted = shutil.which("mount") is not None and (
        subprocess.run(command, capture_output=True).returncode == 0
    )
    try:
        yield path
    finally:
        if mounted:
            if subprocess.run(["umount", path], capture_output=True).returncode:
                subprocess.run(["umount", "-l", path], capture_output=True)
            os.rmdir(path)
        else:
            shutil.rmtree(path)


@pytest.fixture(scope="session")
def cli_mount(tmpfs_root: str, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """``cli_mount("mfusepy-fuse3")``: the session's mount of ``conformance.apps:fs``.

    ``cli_mount("directory-mfusepy-fuse3")`` mounts it with ``--store`` on a directory
    of the session's tmpfs, ``fsspec-...`` on fsspec's memory filesystem, ``s3-...`` on
    the local S3-API server; ``cli_mount("routed-mfusepy-fuse3")`` mounts
    ``conformance.routed:fs``, made of routed resources only. Started on first use
    through ``python -m defuse2 mount``, unmounted at session end.
    """
    from conformance.conftest import split_target
    from conformance.targets import MOUNTS, CliMount

    specs = {name: (binding, libfuse) for name, binding, libfuse in MOUNTS}
    started: dict[str, str] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> str:
            if name not in started:
                store, mount_name = split_target(name)
                binding, libfuse = specs[mount_name]
                extra: list[str] = []
                env: dict[str, str] = {}
                app = "conformance.routed:fs" if store == "routed" else "conformance.apps:fs"
                if store == "directory":
                    served = tempfile.mkdtemp(prefix=f"{name}-", dir=tmpfs_root)
                    os.chmod(served, 0o755)  # the mount's root: other users pass (run_as)
                    extra = ["--store", served]
                elif store == "fsspec":
                    extra = ["--store", f"memory://conformance-{name}"]
                elif store == "s3":
                    from s3server import s3_filesystem, storage_options

                    endpoint = request.getfixturevalue("s3_endpoint")
                    s3_filesystem(endpoint, "conformance")
                    extra = ["--store", f"s3://conformance/{name}"]
                    env = {"FSSPEC_S3": json.dumps(storage_options(endpoint))}
                started[name] = stack.enter_context(
                    CliMount(app, binding, libfuse, *extra, env=env)
                )
            return started[name]

        yield get


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a real S3-API server (moto's) on 127.0.0.1, for the whole session."""
    from s3server import s3_server

    with s3_server() as endpoint:
        yield endpoint
