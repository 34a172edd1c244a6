"""FsspecStore: what an object store cannot do, uploads, the spool, directories, speed of
other paths while the backend is slow.

The POSIX behaviour it keeps is the conformance suite's (targets ``fsspec``,
``fsspec-<binding>`` and ``s3-mfusepy-fuse3``); here are its own promises. The memory
backend is fsspec's ``MemoryFileSystem`` (one store shared by the process: every test
uses a root of its own); S3 is s3fs talking to a local S3-API server.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from s3server import s3_filesystem

from conformance.targets import errno_of
from defuse2 import DefuseError, FileSystem, Resource, attributes
from defuse2.store.base import RENAME_EXCHANGE, Context
from defuse2.store.fsspec_store import MARKER, FsspecStore
from defuse2.testing import TestClient

_roots = itertools.count()


@pytest.fixture
def memory() -> Iterator[tuple[Any, str]]:
    """fsspec's memory filesystem and a fresh root in it."""
    backend, root = fsspec.filesystem("memory"), f"/fsspec-test-{next(_roots)}"
    backend.mkdir(root)
    yield backend, root
    backend.rm(root, recursive=True)


@pytest.fixture
def store(memory: tuple[Any, str]) -> FsspecStore:
    return FsspecStore(*memory)


@pytest.fixture
def client(store: FsspecStore) -> TestClient:
    return TestClient(FileSystem(store=store))


# -- what an object store cannot do ---------------------------------------------------------

UNSUPPORTED = [
    ("link", lambda c: c.link("/f", "/hard"), errno.EPERM),
    ("symlink", lambda c: c.symlink("f", "/link"), errno.EPERM),
    ("mknod-fifo", lambda c: c.mknod("/fifo", stat.S_IFIFO | 0o644), errno.EPERM),
    ("getxattr", lambda c: c.getxattr("/f", "user.a"), errno.ENOTSUP),
    ("setxattr", lambda c: c.setxattr("/f", "user.a", b"1"), errno.ENOTSUP),
    ("listxattr", lambda c: c.listxattr("/f"), errno.ENOTSUP),
    ("rename-directory", lambda c: c.rename("/d", "/e"), errno.EXDEV),
    ("rename-exchange", lambda c: c.rename("/f", "/d/g", RENAME_EXCHANGE), errno.EINVAL),
    ("non-utf8-name", lambda c: c.write_bytes("/caf\udce9", b""), errno.EILSEQ),
    ("marker-name", lambda c: c.write_bytes(f"/d/{MARKER}", b""), errno.EPERM),
]


@pytest.mark.parametrize(
    ("operation", "expected"), [c[1:] for c in UNSUPPORTED], ids=[c[0] for c in UNSUPPORTED]
)
def test_what_an_object_store_cannot_do_has_its_errno(
    client: TestClient, operation: Any, expected: int
) -> None:
    client.write_bytes("/f", b"data")
    client.mkdir("/d")
    client.write_bytes("/d/g", b"g")
    assert errno_of(lambda: operation(client)) == expected
    assert sorted(client.listdir("/")) == ["d", "f"]
    assert client.read_bytes("/f") == b"data"


def test_fallocate_is_eopnotsupp(store: FsspecStore) -> None:
    fh = store.create("/f", 0o644)
    try:
        assert errno_of(lambda: store.fallocate("/f", 0, 0, 100, fh)) == errno.EOPNOTSUPP
    finally:
        store.release("/f", fh)


@pytest.mark.mount
@pytest.mark.parametrize("backend", ["memory", "s3"])
def test_unsupported_operations_through_a_mount(
    request: pytest.FixtureRequest, backend: str, mountpoint: str
) -> None:
    if backend == "memory":
        store = FsspecStore(*request.getfixturevalue("memory"))
    else:
        s3 = s3_filesystem(request.getfixturevalue("s3_endpoint"), "unsupported")
        store = FsspecStore(s3, f"unsupported/t{next(_roots)}")
    with FileSystem(store=store).mounted(mountpoint) as mnt:
        (mnt / "f").write_bytes(b"data")
        (mnt / "d").mkdir()
        assert errno_of(lambda: os.link(mnt / "f", mnt / "hard")) == errno.EPERM
        assert errno_of(lambda: os.symlink("f", mnt / "link")) == errno.EPERM
        assert errno_of(lambda: os.mkfifo(mnt / "fifo")) == errno.EPERM
        assert errno_of(lambda: os.rename(mnt / "d", mnt / "e")) == errno.EXDEV
        # not registered: the kernel answers for the store, and asks nothing per write
        assert errno_of(lambda: os.setxattr(mnt / "f", "user.a", b"1")) == errno.EOPNOTSUPP
        assert errno_of(lambda: os.getxattr(mnt / "f", "user.a")) == errno.EOPNOTSUPP
        fd = os.open(mnt / "f", os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, 10_000)  # glibc writes zeros when fallocate cannot
        finally:
            os.close(fd)
        assert os.stat(mnt / "f").st_size == 10_000


# -- uploads ---------------------------------------------------------------------------------


def test_a_file_reaches_the_backend_at_close(store: FsspecStore, memory: tuple[Any, str]) -> None:
    backend, root = memory
    fh = store.create("/new", 0o644)
    store.write("/new", b"hello", 0, fh)
    assert not backend.exists(f"{root}/new")
    assert store.getattr("/new")["st_size"] == 5  # the mount sees it already
    assert store.readdir("/") == ["new"]
    store.flush("/new", fh)
    assert backend.cat_file(f"{root}/new") == b"hello"
    store.write("/new", b"!", 5, fh)
    store.fsync("/new", 0, fh)  # fsync: the backend has it now
    assert backend.cat_file(f"{root}/new") == b"hello!"
    store.release("/new", fh)


class FailingUploads(MemoryFileSystem):  # type: ignore[misc]
    """fsspec's memory filesystem, refusing to store any path with ``refused`` in it."""

    protocol = "failing-uploads"

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        if "refused" in path:
            raise PermissionError(errno.EACCES, "the backend refused the upload", path)
        super().pipe_file(path, value, **kwargs)


@pytest.mark.mount
def test_a_failed_upload_makes_close_fail(mountpoint: str) -> None:
    backend, root = FailingUploads(skip_instance_cache=True), f"/failing-{next(_roots)}"
    backend.mkdir(root)
    with FileSystem(store=FsspecStore(backend, root)).mounted(mountpoint, threads=True) as mnt:
        fd = os.open(mnt / "refused.txt", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"will not be stored")
        with pytest.raises(OSError) as failure:
            os.close(fd)
        assert failure.value.errno == errno.EACCES
        (mnt / "kept.txt").write_bytes(b"stored")
    assert backend.cat_file(f"{root}/kept.txt") == b"stored"
    assert not backend.exists(f"{root}/refused.txt")
    backend.rm(root, recursive=True)


def test_large_files_are_spooled_to_disk(memory: tuple[Any, str], tmp_path: Path) -> None:
    backend, root = memory
    store = FsspecStore(backend, root, spool_limit=64 * 1024, spool_directory=str(tmp_path))
    client = TestClient(FileSystem(store=store))
    data = os.urandom(1_000_000)
    fd = client.open("/big", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for offset in range(0, len(data), 100_000):
            client.pwrite(fd, data[offset : offset + 100_000], offset)
    finally:
        client.close(fd)
    assert backend.cat_file(f"{root}/big") == data
    fd = client.open("/big", os.O_RDWR)  # a write in the middle: downloaded, then uploaded
    try:
        client.pwrite(fd, b"MIDDLE", 500_000)
    finally:
        client.close(fd)
    expected = data[:500_000] + b"MIDDLE" + data[500_006:]
    assert backend.cat_file(f"{root}/big") == expected
    assert client.read_bytes("/big") == expected


def test_a_file_unlinked_while_open_keeps_its_content(
    store: FsspecStore, memory: tuple[Any, str]
) -> None:
    backend, root = memory
    backend.pipe_file(f"{root}/f", b"content")
    fh = store.open("/f", os.O_RDWR)
    store.unlink("/f")
    assert not backend.exists(f"{root}/f")
    assert store.read(None, 100, 0, fh) == b"content"
    store.write(None, b"C", 0, fh)
    store.release(None, fh)
    assert not backend.exists(f"{root}/f")  # never uploaded again


# -- directories -------------------------------------------------------------------------------


def test_directory_markers_keep_empty_directories_on_s3(s3_endpoint: str) -> None:
    backend = s3_filesystem(s3_endpoint, "markers")
    root = f"markers/t{next(_roots)}"
    client = TestClient(FileSystem(store=FsspecStore(backend, root)))
    client.makedirs("/a/b")
    assert backend.exists(f"{root}/a/b/{MARKER}")
    assert client.listdir("/a/b") == []
    again = TestClient(FileSystem(store=FsspecStore(backend, root)))  # a new mount
    assert again.isdir("/a/b") and again.listdir("/a") == ["b"]
    client.write_bytes("/a/b/f", b"x")
    client.unlink("/a/b/f")
    assert client.listdir("/a/b") == []
    client.rmdir("/a/b")
    assert not backend.exists(f"{root}/a/b/{MARKER}")
    assert client.listdir("/a") == []


def test_prefix_directories_stay_while_mounted(memory: tuple[Any, str]) -> None:
    """A directory that is only a prefix would vanish with its last object; the store
    keeps showing it, as POSIX would, until unmount."""
    backend, root = memory
    store = FsspecStore(backend, root, directory_markers=True)
    backend.pipe_file(f"{root}/only/f", b"x")
    client = TestClient(FileSystem(store=store))
    client.unlink("/only/f")
    assert client.isdir("/only") and client.listdir("/only") == []
    client.write_bytes("/only/again", b"y")
    assert backend.cat_file(f"{root}/only/again") == b"y"


# -- modes, owners, times -------------------------------------------------------------------


def test_metadata_is_kept_for_the_session(client: TestClient, store: FsspecStore) -> None:
    client.write_bytes("/f", b"x")
    client.chmod("/f", 0o751)
    client.utime("/f", ns=(10**18, 2 * 10**18))
    if os.geteuid() == 0:
        client.chown("/f", 1234, 5678)
    st = client.stat("/f")
    assert stat.S_IMODE(st.st_mode) == 0o751 and st.st_mtime_ns == 2 * 10**18
    fresh = TestClient(FileSystem(store=FsspecStore(store.fs, store.root)))
    st = fresh.stat("/f")  # a new store: the backend kept content only
    assert stat.S_IMODE(st.st_mode) == 0o644 and (st.st_uid, st.st_gid) == (
        os.geteuid(),
        os.getegid(),
    )


def test_fixed_metadata_refuses_changes(memory: tuple[Any, str]) -> None:
    client = TestClient(FileSystem(store=FsspecStore(*memory, metadata="fixed")))
    client.write_bytes("/f", b"x")
    client.chmod("/f", 0o644)  # no change: fine
    assert errno_of(lambda: client.chmod("/f", 0o600)) == errno.EPERM
    assert errno_of(lambda: client.chown("/f", 4242, -1)) == errno.EPERM
    with pytest.raises(DefuseError, match="metadata must be"):
        FsspecStore(*memory, metadata="kept")  # type: ignore[arg-type]


def test_new_names_belong_to_the_caller_for_the_session(store: FsspecStore) -> None:
    ctx = Context(1234, 5678, 1)
    store.release("/f", store.create("/f", 0o600, os.O_WRONLY, ctx=ctx))
    store.mkdir("/d", 0o700, ctx=ctx)
    for path, mode in (("/f", 0o600), ("/d", 0o700)):
        st = store.getattr(path)
        assert (st["st_uid"], st["st_gid"], stat.S_IMODE(st["st_mode"])) == (1234, 5678, mode)


# -- other clients of the backend ----------------------------------------------------------


def test_changes_by_other_clients_show_after_cache_seconds(memory: tuple[Any, str]) -> None:
    backend, root = memory
    client = TestClient(FileSystem(store=FsspecStore(backend, root, cache_seconds=0.2)))
    backend.pipe_file(f"{root}/shared", b"one")
    assert client.read_bytes("/shared") == b"one"
    backend.pipe_file(f"{root}/shared", b"two, longer")
    backend.pipe_file(f"{root}/new", b"new")
    time.sleep(0.3)
    assert client.read_bytes("/shared") == b"two, longer"
    assert sorted(client.listdir("/")) == ["new", "shared"]


def test_a_file_keeps_the_time_of_its_last_write_not_of_its_upload(
    memory: tuple[Any, str],
) -> None:
    backend, root = memory
    client = TestClient(FileSystem(store=FsspecStore(backend, root, cache_seconds=0.1)))
    client.write_bytes("/f", b"x")
    written = client.stat("/f").st_mtime_ns
    time.sleep(0.2)  # the cached info is gone: the backend's (the upload's time) is asked
    assert backend.info(f"{root}/f")["created"].timestamp() * 10**9 != written
    assert client.stat("/f").st_mtime_ns == written
    client.rename("/f", "/g")  # a copy in the backend, with a time of its own
    time.sleep(0.2)
    assert client.stat("/g").st_mtime_ns == written
    backend.pipe_file(f"{root}/g", b"another client's")  # later than our upload: shown
    time.sleep(0.2)
    st = client.stat("/g")
    assert st.st_size == len(b"another client's") and st.st_mtime_ns > written


# -- a slow backend ------------------------------------------------------------------------


class SlowBackend(MemoryFileSystem):  # type: ignore[misc]
    """fsspec's memory filesystem where reading anything under ``/slow`` hangs until
    :attr:`release` is set (or 20 s pass)."""

    protocol = "slow-memory"
    release = threading.Event()

    def cat_file(self, path: str, start: Any = None, end: Any = None, **kwargs: Any) -> bytes:
        if "/slow/" in path:
            self.release.wait(20)
        return super().cat_file(path, start=start, end=end, **kwargs)  # type: ignore[no-any-return]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "/slow/" in path and "r" in mode:
            self.release.wait(20)
        return super()._open(path, mode, **kwargs)


@pytest.mark.mount
@pytest.mark.parametrize("options", [{}, {"threads": True}], ids=["defaults", "threads"])
def test_a_slow_backend_never_freezes_other_paths(mountpoint: str, options: dict[str, Any]) -> None:
    backend, root = SlowBackend(skip_instance_cache=True), f"/slow-test-{next(_roots)}"
    backend.pipe_file(f"{root}/slow/big", b"s" * 1000)
    backend.pipe_file(f"{root}/fast/small", b"fast")
    fs = FileSystem(store=FsspecStore(backend, root))

    @fs.route("/status")
    class Status(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=3, mode=0o444)

        def read(self, size: int, offset: int) -> bytes:
            return b"up\n"[offset : offset + size]

    SlowBackend.release.clear()
    try:
        with fs.mounted(mountpoint, **options) as mnt:
            stuck = threading.Thread(target=lambda: (mnt / "slow" / "big").read_bytes())
            stuck.start()
            time.sleep(0.3)  # the read is now waiting for the backend
            assert stuck.is_alive()
            started = time.monotonic()
            assert (mnt / "fast" / "small").read_bytes() == b"fast"
            assert (mnt / "status").read_bytes() == b"up\n"
            (mnt / "fast" / "written").write_bytes(b"w")
            assert sorted(os.listdir(mnt / "fast")) == ["small", "written"]
            assert time.monotonic() - started < 5.0  # while the other read hangs for 20 s
            SlowBackend.release.set()
            stuck.join(10)
            assert not stuck.is_alive()
    finally:
        SlowBackend.release.set()
        backend.rm(root, recursive=True)
