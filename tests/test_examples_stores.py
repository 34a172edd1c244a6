"""The examples that run over the stores beyond memory, mounted as a user runs them.

``markdown`` over a host directory (``--store DIR``), ``s3_index`` over a
bucket of a local S3-API server (``--store s3://...``). Each is also used in-process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from s3server import s3_filesystem, storage_options

from defuse2 import DirectoryStore
from defuse2.store.fsspec_store import FsspecStore
from defuse2.testing import script_mount

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mount_command(example: str, mountpoint: Path, *options: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / f"{example}.py"), str(mountpoint), "--foreground",
            *options]  # fmt: skip


# -- markdown ---------------------------------------------------------------------------


def test_markdown_renders_every_markdown_file(tmp_path: Path) -> None:
    example = load("markdown")
    example.fs.store = DirectoryStore(tmp_path)
    client = example.fs.test_client()
    client.makedirs("/notes/2026")
    client.write_text("/notes/2026/plans.md", "# Plans\n\n- write\n- **test**\n\nSee `ls`.\n")
    assert sorted(client.listdir("/notes/2026")) == ["plans.html", "plans.md"]
    assert client.read_text("/notes/2026/plans.html") == (
        "<h1>Plans</h1>\n<ul><li>write</li><li><strong>test</strong></li></ul>\n"
        "<p>See <code>ls</code>.</p>\n"
    )
    assert example.render("```\na < b\n\nc\n```\ntext *here*") == (
        "<pre><code>a &lt; b\n\nc</code></pre>\n<p>text <em>here</em></p>\n"
    )
    assert not client.exists("/notes/2026/other.html")  # no Markdown, no view


@pytest.mark.mount
def test_markdown_mounted_over_a_directory(tmp_path: Path) -> None:
    notes, mountpoint = tmp_path / "notes", tmp_path / "m"
    notes.mkdir()
    mountpoint.mkdir()
    (notes / "old.md").write_text("# Old\n")
    command = mount_command("markdown", mountpoint, "--store", str(notes))
    with script_mount(command, mountpoint, tmp_path / "log") as run:
        assert sorted(os.listdir(mountpoint)) == ["old.html", "old.md"]
        (mountpoint / "plans.md").write_text("# Plans\n\nWrite *more* notes.\n")
        assert (mountpoint / "plans.html").read_text() == (
            "<h1>Plans</h1>\n<p>Write <em>more</em> notes.</p>\n"
        )
        with open(mountpoint / "plans.md", "a") as markdown:  # writes to the source work
            markdown.write("\n- and lists\n")
        assert (mountpoint / "plans.html").read_text().endswith("<ul><li>and lists</li></ul>\n")
        (notes / "old.md").write_text("# Changed on the disk\n")  # behind the mount's back
        assert (mountpoint / "old.html").read_text() == "<h1>Changed on the disk</h1>\n"
        os.rename(mountpoint / "old.md", mountpoint / "new.md")
        assert sorted(os.listdir(mountpoint)) == ["new.html", "new.md", "plans.html", "plans.md"]
        with pytest.raises(OSError):
            (mountpoint / "plans.html").write_text("views are read-only")
    assert run.returncode == 0
    assert sorted(os.listdir(notes)) == ["new.md", "plans.md"]  # the views are not stored
    assert (notes / "plans.md").read_text().endswith("- and lists\n")


# -- s3_index ----------------------------------------------------------------------------


def test_s3_index_lists_every_stored_file() -> None:
    import fsspec

    example = load("s3_index")
    backend, root = fsspec.filesystem("memory"), "/bucket-index-test"
    backend.pipe_file(f"{root}/2026/beach.jpg", b"x" * 12345)
    example.fs.store = FsspecStore(backend, root)
    client = example.fs.test_client()
    try:
        assert client.read_text("/INDEX.txt") == "     12345  2026/beach.jpg\n"
        client.write_bytes("/notes.txt", b"hi")
        assert client.read_text("/INDEX.txt").splitlines()[-1] == "         2  notes.txt"
    finally:
        backend.rm(root, recursive=True)


@pytest.mark.mount
def test_s3_index_mounted_over_s3(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_filesystem(s3_endpoint, "photos")
    bucket.pipe_file("photos/2026/beach.jpg", b"b" * 12345)
    monkeypatch.setenv("FSSPEC_S3", json.dumps(storage_options(s3_endpoint)))
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    command = mount_command("s3_index", mountpoint, "-o", "threads", "--store", "s3://photos")
    with script_mount(command, mountpoint, tmp_path / "log", timeout=30) as run:
        assert sorted(os.listdir(mountpoint)) == ["2026", "INDEX.txt"]
        assert (mountpoint / "INDEX.txt").read_text() == "     12345  2026/beach.jpg\n"
        (mountpoint / "2026" / "city.jpg").write_bytes(b"c" * 67890)
        (mountpoint / "empty").mkdir()
        assert (mountpoint / "INDEX.txt").read_text() == (
            "     12345  2026/beach.jpg\n     67890  2026/city.jpg\n"
        )
        assert (mountpoint / "2026" / "city.jpg").read_bytes() == b"c" * 67890
    assert run.returncode == 0
    assert bucket.cat_file("photos/2026/city.jpg") == b"c" * 67890
    assert bucket.isdir("photos/empty")  # kept by its marker object


# -- the "Choosing a store" guide ------------------------------------------------------------


def test_choosing_a_store_guide(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = importlib.util.spec_from_file_location(
        "docs_stores", EXAMPLES.parent / "docs" / "code" / "stores.py"
    )
    assert guide is not None and guide.loader is not None
    stores = importlib.util.module_from_spec(guide)
    guide.loader.exec_module(stores)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "defuse2-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "defuse2-test-secret")
    s3_filesystem(s3_endpoint, "guide")
    filesystems = {
        "memory": stores.in_memory(),
        "disk": stores.on_disk(tmp_path),
        "bucket": stores.in_a_bucket(s3_endpoint, "guide"),
    }
    for name, fs in filesystems.items():
        client = fs.test_client()
        client.write_text("/hello.txt", f"hello from {name}\n")
        assert client.read_text("/hello.txt") == f"hello from {name}\n"
    assert (tmp_path / "hello.txt").read_text() == "hello from disk\n"
    bucket = s3_filesystem(s3_endpoint, "guide")
    assert bucket.cat_file("guide/data/hello.txt") == b"hello from bucket\n"
