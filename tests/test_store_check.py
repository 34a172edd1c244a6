"""``--store URL`` is checked before anything is mounted (:mod:`defuse2.store.fsspec_check`).

The command runs as a user runs it, a script ending in ``fs.main()`` in a process of its
own (``examples/s3_index.py``), against the local S3-API server, or against a port of
127.0.0.1 nobody listens on.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from s3server import s3_filesystem, storage_options

from defuse2.store.fsspec_check import TIMEOUT, StoreUnreachable, check_root
from defuse2.testing import script_mount

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "s3_index.py"


def refused(tmp_path: Path, url: str, options: dict[str, Any]) -> tuple[str, float]:
    """Run the example on ``--store url``; its one line of error, and the seconds it took.
    It must exit 2 with the mount point left unmounted."""
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {"FSSPEC_S3": json.dumps(options), "AWS_CONFIG_FILE": os.devnull}
    env |= {"AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), str(mountpoint), "--store", url],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    took = time.monotonic() - started
    assert not os.path.ismount(mountpoint)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0], took


def test_a_missing_bucket_is_refused(tmp_path: Path, s3_endpoint: str) -> None:
    line, _ = refused(tmp_path, "s3://no-such-bucket/data", storage_options(s3_endpoint))
    assert line == (
        f"defuse2: error: --store s3://no-such-bucket/data: no such bucket 'no-such-bucket' "
        f"at the endpoint {s3_endpoint}: create it first (aws s3 mb s3://BUCKET, or the "
        "provider's console) or correct the URL"
    )


def test_missing_credentials_are_refused(tmp_path: Path, s3_endpoint: str) -> None:
    s3_filesystem(s3_endpoint, "private")
    line, _ = refused(tmp_path, "s3://private", {"endpoint_url": s3_endpoint})
    assert line.startswith("defuse2: error: --store s3://private: no credentials found: set them")


def test_an_endpoint_nobody_answers_at_is_refused_in_seconds(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port of 127.0.0.1 that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    options = {"key": "k", "secret": "s", "endpoint_url": endpoint}
    line, took = refused(tmp_path, "s3://bucket/data", options)
    assert line.startswith("defuse2: error: --store s3://bucket/data: ")
    # the client's retries end in a connection error, or the check's timeout comes first
    assert (f"cannot reach the endpoint {endpoint}" in line) or (
        f"no answer for {TIMEOUT:g} s from the endpoint {endpoint}" in line
    )
    assert took < TIMEOUT + 15  # interpreter start-up on a busy machine; not the hang


def test_a_backend_that_hangs_is_refused_after_the_timeout() -> None:
    release = threading.Event()

    class Hanging:
        root_marker = ""

        def info(self, path: str) -> dict[str, Any]:
            release.wait(20)
            return {"type": "directory"}

    started = time.monotonic()
    try:
        with pytest.raises(StoreUnreachable, match=r"no answer for 0.2 s from the Hanging"):
            check_root(Hanging(), "bucket", "hang://bucket", timeout=0.2)
    finally:
        release.set()
    assert time.monotonic() - started < 10  # while info() would hang 20 s


@pytest.mark.mount
def test_a_prefix_not_there_yet_mounts_as_an_empty_directory(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_filesystem(s3_endpoint, "fresh")
    monkeypatch.setenv("FSSPEC_S3", json.dumps(storage_options(s3_endpoint)))
    mountpoint = tmp_path / "m"
    mountpoint.mkdir()
    command = [sys.executable, str(EXAMPLE), str(mountpoint), "--store", "s3://fresh/new/prefix"]
    with script_mount(command, mountpoint, tmp_path / "log", timeout=30) as run:
        assert os.listdir(mountpoint) == ["INDEX.txt"]
        (mountpoint / "first.txt").write_bytes(b"made")
    assert run.returncode == 0
    assert bucket.cat_file("fresh/new/prefix/first.txt") == b"made"
