"""What the kernel may cache: the requests it no longer sends, and what stays correct.

Each test mounts ``caching_app:fs`` through the CLI on every binding with libfuse's debug
log on, and counts the FUSE requests a few system calls cause
(:mod:`kernel_requests`): counts are exact on a busy machine too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kernel_requests import RequestLog

pytestmark = pytest.mark.mount

CONFIGS = [("mfusepy", "3"), ("mfusepy", "2"), ("fusepy", "2")]
CONFIG_IDS = [f"{binding}-libfuse{major}" for binding, major in CONFIGS]
MiB = 1 << 20


@pytest.fixture(scope="module", params=CONFIGS, ids=CONFIG_IDS)
def mounted(request: pytest.FixtureRequest) -> Iterator[RequestLog]:
    """``caching_app:fs`` mounted with its requests logged, shared by a configuration."""
    with RequestLog("caching_app:fs", *request.param) as log:
        yield log


def pwrite(path: str, data: bytes, offset: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def test_a_file_read_again_after_a_write_through_the_kernel_is_read_from_memory(
    mounted: RequestLog,
) -> None:
    path = str(mounted.root / "reread.bin")
    with open(path, "wb") as handle:
        handle.write(bytes(MiB))
    read(path)
    with mounted.count() as requests:
        for offset in (0, 4096 * 7, MiB - 1):
            pwrite(path, b"\x01", offset)
            data = read(path)
            assert data[offset] == 1
    assert requests["WRITE"] == 3
    assert requests["READ"] == 0
    assert read(path).count(b"\x01") == 3


def test_a_routed_file_is_read_again_at_each_open(mounted: RequestLog) -> None:
    routed, control = str(mounted.root / "routed.txt"), str(mounted.root / "control")
    pwrite(control, b"first\n", 0)
    assert read(routed) == b"first\n"
    with mounted.count() as requests:
        pwrite(control, b"other\n", 0)
        assert read(routed) == b"other\n"
    assert requests["READ"] == 1


def test_a_dynamic_file_is_read_at_each_read(mounted: RequestLog) -> None:
    dynamic, control = str(mounted.root / "dynamic.txt"), str(mounted.root / "control")
    pwrite(control, b"first\n", 0)
    with open(dynamic, "rb") as handle:
        assert handle.read() == b"first\n"
        pwrite(control, b"other\n", 0)
        with mounted.count() as requests:
            assert os.pread(handle.fileno(), 6, 0) == b"other\n"
    assert requests["READ"] == 1


def test_each_open_of_a_hard_linked_file_reads_it_again(mounted: RequestLog) -> None:
    first, second = str(mounted.root / "first"), str(mounted.root / "second")
    with open(first, "wb") as handle:
        handle.write(b"a" * 8192)
    os.link(first, second)
    assert read(second) == b"a" * 8192
    pwrite(first, b"changed", 0)
    assert read(second)[:7] == b"changed"


def test_a_descriptor_on_one_name_reads_what_was_written_through_another(
    mounted: RequestLog, request: pytest.FixtureRequest
) -> None:
    if "libfuse2" in request.node.callspec.id:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="libfuse 2's high-level API cannot tell the kernel to drop the "
                "pages of the other name (documented in docs/performance.rst)",
            )
        )
    first, second = str(mounted.root / "one"), str(mounted.root / "two")
    with open(first, "wb") as handle:
        handle.write(b"a" * 8192)
    os.link(first, second)
    with open(second, "rb") as reader:
        assert reader.read() == b"a" * 8192
        pwrite(first, b"changed", 0)
        assert os.pread(reader.fileno(), 7, 0) == b"changed"
