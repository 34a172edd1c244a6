"""Real tools on the stores beyond memory: ``cp -a``, ``rsync -a`` and ``tar x``.

Each runs, as a user would, against one filesystem mounted with the same routes over a
:class:`~defuse2.DirectoryStore` on a host directory and over an
:class:`~defuse2.store.fsspec_store.FsspecStore` on a local S3-API server; a tree goes
in and comes back out with the same content (checksums), modes and times.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3server import s3_filesystem

from defuse2 import DirectoryStore, FileSystem, Resource, attributes
from defuse2.store.fsspec_store import FsspecStore

pytestmark = pytest.mark.mount

_roots = itertools.count()


def make_source(root: Path) -> Path:
    """A tree with empty, small and multi-MiB files, modes and times of its own."""
    source = root / "source"
    (source / "a" / "b").mkdir(parents=True)
    (source / "empty-dir").mkdir()
    files = {
        "a/zero": b"",
        "a/one": b"1",
        "a/b/text.txt": b"line of text\n" * 8000,
        "a/b/random.bin": os.urandom(3 << 20),
        "run.sh": b"#!/bin/sh\necho hello\n",
        "private": b"secret",
    }
    for name, content in files.items():
        (source / name).write_bytes(content)
    os.chmod(source / "run.sh", 0o755)
    os.chmod(source / "private", 0o600)
    for number, path in enumerate(sorted(source.rglob("*"), reverse=True)):
        os.utime(path, ns=(1_600_000_000_000_000_000 + number, 1_500_000_000_123_456_789 + number))
    os.utime(source, ns=(1_600_000_000_000_000_000, 1_500_000_000_000_000_000))
    return source


def describe(root: Path) -> dict[str, Any]:
    """Each path under ``root``: its kind and mode, mtime and, for a file, its size and
    SHA-256 (a directory's size is the host filesystem's business)."""
    found: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        content = None
        if path.is_file():
            content = st.st_size, hashlib.sha256(path.read_bytes()).hexdigest()
        found[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, content)
    return found


def filesystem(store: Any) -> FileSystem:
    """The routes both stores serve: one generated file beside the stored ones."""
    fs = FileSystem(store=store)

    @fs.route("/README")
    class Readme(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=11, mode=0o444)

        def read(self, size: int, offset: int) -> bytes:
            return b"read me.\n\n"[offset : offset + size] + b"\n"[: max(0, size - 10)]

    return fs


@pytest.fixture(params=["directory", "s3"])
def mounted(
    request: pytest.FixtureRequest, tmp_path: Path, mountpoint: str
) -> Iterator[tuple[Path, Any]]:
    """``(mount, check)``: the filesystem mounted over one store; ``check(relative)``
    gives what the store itself holds at a path after unmount."""
    if request.param == "directory":
        data = tmp_path / "data"
        data.mkdir()
        store: Any = DirectoryStore(data)

        def stored(relative: str) -> bytes:
            return (data / relative).read_bytes()

    else:
        backend = s3_filesystem(request.getfixturevalue("s3_endpoint"), "tools")
        root = f"tools/t{next(_roots)}"
        store = FsspecStore(backend, root)

        def stored(relative: str) -> bytes:
            return backend.cat_file(f"{root}/{relative}")  # type: ignore[no-any-return]

    checks: list[Any] = []
    with filesystem(store).mounted(mountpoint, threads=True) as mnt:
        yield mnt, checks.append
    for relative, content in checks:
        assert stored(relative) == content, relative


def run(*command: str | Path) -> None:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    assert done.returncode == 0, f"{command}: {done.stderr}"


def test_cp_a_round_trips_a_tree(mounted: tuple[Path, Any], tmp_path: Path) -> None:
    mnt, check = mounted
    source = make_source(tmp_path)
    run("cp", "-a", source, mnt / "copy")
    assert describe(mnt / "copy") == describe(source)
    run("cp", "-a", mnt / "copy", tmp_path / "back")
    assert describe(tmp_path / "back") == describe(source)
    assert (mnt / "README").read_bytes() == b"read me.\n\n\n"[:11]
    check(("copy/a/b/random.bin", (source / "a/b/random.bin").read_bytes()))


def test_rsync_a_copies_and_then_has_nothing_to_do(
    mounted: tuple[Path, Any], tmp_path: Path
) -> None:
    if shutil.which("rsync") is None:
        pytest.fail("rsync is missing: .ci/run installs it")
    mnt, check = mounted
    source = make_source(tmp_path)
    run("rsync", "-a", f"{source}/", f"{mnt / 'synced'}/")
    assert describe(mnt / "synced") == describe(source)
    again = subprocess.run(
        ["rsync", "-a", "--itemize-changes", f"{source}/", f"{mnt / 'synced'}/"],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""  # sizes, times and modes all kept: nothing to send
    check(("synced/a/b/text.txt", (source / "a/b/text.txt").read_bytes()))


def test_tar_x_unpacks_into_the_mount(mounted: tuple[Path, Any], tmp_path: Path) -> None:
    mnt, check = mounted
    source = make_source(tmp_path)
    archive = tmp_path / "source.tar"
    run("tar", "--format=posix", "-c", "-f", archive, "-C", tmp_path, "source")  # ns times
    (mnt / "unpacked").mkdir()
    run("tar", "-x", "-f", archive, "-C", mnt / "unpacked")
    assert describe(mnt / "unpacked" / "source") == describe(source)
    check(("unpacked/source/run.sh", (source / "run.sh").read_bytes()))
