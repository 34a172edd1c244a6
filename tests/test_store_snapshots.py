"""Snapshots that never destroy: sparse archives, atomic saves, damaged archives refused,
and a tree saved at one instant while it changes."""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import defuse2.store.archive
from defuse2.store.archive import DamagedArchive, check_save_target
from defuse2.store.base import Context
from defuse2.store.memory import MemoryStore
from defuse2.store.snapshot import capture
from defuse2.store.tarformat import header, write_archive

KiB, MiB, TiB = 1 << 10, 1 << 20, 1 << 40
ROOT = Context(0, 0, 1)


def write_file(s: MemoryStore, path: str, data: bytes, offset: int = 0) -> None:
    fh = s.create(path, 0o644, os.O_WRONLY, ctx=ROOT)
    s.write(path, data, offset, fh)
    s.release(path, fh)


def read_at(s: MemoryStore, path: str, size: int, offset: int) -> bytes:
    fh = s.open(path, os.O_RDONLY, ctx=ROOT)
    try:
        return s.read(path, size, offset, fh)
    finally:
        s.release(path, fh)


def sparse_store() -> MemoryStore:
    """A 1 TiB file holding ``hello`` at 12345 and ``x`` as its last byte."""
    s = MemoryStore(quota="1 MiB")
    write_file(s, "/big", b"x", offset=TiB - 1)
    write_file(s, "/big", b"hello", offset=12345)
    return s


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    """A tmpfs of 1 MiB, to fill."""
    path = tempfile.mkdtemp(prefix="defuse2-small-")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path])
    if done.returncode:
        os.rmdir(path)
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield Path(path)
    finally:
        subprocess.run(["umount", "-l", path])
        os.rmdir(path)


# -- holes ---------------------------------------------------------------------------------


def test_a_sparse_terabyte_costs_kilobytes() -> None:
    source = sparse_store()
    buffer = io.BytesIO()
    summary = source.export_tar(buffer)
    assert len(buffer.getvalue()) <= 12 * KiB
    assert summary.data_bytes <= 2 * KiB
    buffer.seek(0)
    copy = MemoryStore(quota="1 MiB")
    copy.import_tar(buffer)
    assert copy.getattr("/big")["st_size"] == TiB
    assert read_at(copy, "/big", 5, 12345) == b"hello"
    assert read_at(copy, "/big", 10, TiB - 1) == b"x"
    assert copy.quota.used <= source.quota.used


def test_sparse_members_are_gnu_sparse_1_0() -> None:
    buffer = io.BytesIO()
    sparse_store().export_tar(buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        big = archive.getmember("big")
        assert big.pax_headers["GNU.sparse.major"] == "1"
        assert big.size == TiB
        assert big.sparse is not None
        *regions, last = big.sparse
        assert all(length % 512 == 0 for _, length in regions)  # GNU tar needs whole blocks
        assert last == (TiB, 0)
        data = archive.extractfile(big)
        assert data is not None
        data.seek(12345)
        assert data.read(5) == b"hello"


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
def test_gnu_tar_restores_the_holes(tmpfs_root: str) -> None:
    where = Path(tempfile.mkdtemp(dir=tmpfs_root))
    try:
        sparse_store().export_tar(where / "snap.tar")
        subprocess.run(["tar", "-xf", "snap.tar"], cwd=where, check=True)
        big = where / "big"
        assert big.stat().st_size == TiB
        assert big.stat().st_blocks * 512 <= 1 * MiB  # the holes are holes
        with big.open("rb") as file:
            file.seek(12345)
            assert file.read(5) == b"hello"
            file.seek(TiB - 1)
            assert file.read() == b"x"
    finally:
        shutil.rmtree(where)


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
@pytest.mark.parametrize("version", ["0.0", "0.1", "1.0"])
def test_sparse_archives_of_gnu_tar_load_with_their_holes(tmpfs_root: str, version: str) -> None:
    where = Path(tempfile.mkdtemp(dir=tmpfs_root))
    try:
        with (where / "f").open("wb") as file:
            file.truncate(64 * MiB)
            file.seek(10 * MiB)
            file.write(b"middle")
        subprocess.run(
            ["tar", "--sparse", f"--sparse-version={version}", "--format=pax", "-cf", "s.tar", "f"],
            cwd=where,
            check=True,
        )
        copy = MemoryStore(quota="1 MiB")
        copy.import_tar(where / "s.tar")
        assert copy.getattr("/f")["st_size"] == 64 * MiB
        assert read_at(copy, "/f", 6, 10 * MiB) == b"middle"
        assert copy.quota.used < 64 * KiB
    finally:
        shutil.rmtree(where)


def test_zeros_written_as_data_are_saved_as_holes() -> None:
    source = MemoryStore(quota="4 MiB")
    write_file(source, "/zeros", bytes(MiB) + b"end")
    buffer = io.BytesIO()
    source.export_tar(buffer)
    assert len(buffer.getvalue()) < 20 * KiB
    buffer.seek(0)
    copy = MemoryStore(quota="4 MiB")
    copy.import_tar(buffer)
    assert read_at(copy, "/zeros", 2 * MiB, 0) == bytes(MiB) + b"end"


def test_sizes_past_8_gib_are_written_in_base_256() -> None:
    info = tarfile.TarInfo("huge")
    block = header(info, 9 << 30)[-512:]
    assert tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape").size == 9 << 30
    assert "size" not in info.pax_headers


# -- atomic saves --------------------------------------------------------------------------


def previous_snapshot(path: Path) -> MemoryStore:
    good = MemoryStore(quota="4 MiB")
    write_file(good, "/kept.txt", b"the previous snapshot\n")
    good.export_tar(path)
    return good


def assert_previous_snapshot_is_intact(path: Path) -> None:
    copy = MemoryStore(quota="4 MiB")
    copy.import_tar(path)
    assert read_at(copy, "/kept.txt", 100, 0) == b"the previous snapshot\n"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".partial")] == []


def test_a_save_that_fails_leaves_the_previous_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "snap.tar"
    previous_snapshot(target)

    def failing(snapshot: object, stream: io.BufferedWriter) -> None:
        stream.write(b"half an archive" * 1000)
        raise OSError(errno.EIO, "the disk went away")

    monkeypatch.setattr(defuse2.store.archive, "write_archive", failing)
    with pytest.raises(OSError):
        MemoryStore().export_tar(target)
    assert_previous_snapshot_is_intact(target)


def test_a_full_disk_leaves_the_previous_snapshot(small_tmpfs: Path) -> None:
    target = small_tmpfs / "snap.tar"
    previous_snapshot(target)
    store = MemoryStore(quota="4 MiB")
    write_file(store, "/random", os.urandom(2 * MiB))
    with pytest.raises(OSError) as exc:
        store.export_tar(target)
    assert exc.value.errno == errno.ENOSPC
    assert_previous_snapshot_is_intact(target)
    small = MemoryStore(quota="4 MiB")  # and a save that fits still works
    write_file(small, "/kept.txt", b"the previous snapshot\n")
    small.export_tar(target)
    assert_previous_snapshot_is_intact(target)


def test_a_save_keeps_the_mode_and_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.tar"
    previous_snapshot(real)
    real.chmod(0o640)
    (tmp_path / "link.tar").symlink_to("real.tar")
    MemoryStore().export_tar(tmp_path / "link.tar")
    assert (tmp_path / "link.tar").is_symlink()
    assert real.stat().st_mode & 0o777 == 0o640
    with tarfile.open(real) as archive:
        assert archive.getnames() == ["."]


@pytest.mark.parametrize(
    ("where", "expected"),
    [("missing/dir/s.tar", errno.ENOENT), (".", errno.EISDIR), ("file/s.tar", errno.ENOTDIR)],
)
def test_check_save_target(tmp_path: Path, where: str, expected: int) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError) as exc:
        check_save_target(tmp_path / where)
    assert exc.value.errno == expected
    check_save_target(tmp_path / "new.tar")  # fine, and leaves nothing behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_the_summary_counts_entries_and_bytes(tmp_path: Path) -> None:
    store = MemoryStore(quota="4 MiB")
    store.mkdir("/d", 0o755)
    write_file(store, "/d/a", b"12345")
    write_file(store, "/b", b"x" * 1000)
    saved = store.export_tar(tmp_path / "s.tar")
    assert (saved.entries, saved.data_bytes) == (4, 1005)
    assert saved.archive_bytes == (tmp_path / "s.tar").stat().st_size
    loaded = MemoryStore(quota="4 MiB").import_tar(tmp_path / "s.tar")
    assert (loaded.entries, loaded.data_bytes, loaded.archive_bytes) == (4, 1005, 10240)
    assert "4 entries, 1005 bytes of data" in str(loaded)


# -- damaged archives ----------------------------------------------------------------------


def archive_bytes() -> bytes:
    """An archive of ``/a`` and ``/b``, 3000 bytes each."""
    store = MemoryStore(quota="4 MiB")
    write_file(store, "/a", b"a" * 3000)
    write_file(store, "/b", b"b" * 3000)
    buffer = io.BytesIO()
    store.export_tar(buffer)
    return buffer.getvalue()


def cut(where: str) -> bytes:
    """:func:`archive_bytes` cut short inside ``b``'s data, or just before the end marker."""
    data = archive_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        b = archive.getmember("b")
    return data[: b.offset_data + (100 if where == "data" else 3072)]


def flip(offset: int) -> bytes:
    data = bytearray(archive_bytes())
    data[offset] ^= 1
    return bytes(data)


DAMAGED = [
    ("text", lambda: b"this is no archive\n" * 50, "not a tar archive"),
    ("empty", lambda: b"", "not a tar archive"),
    ("cut-before-the-end", lambda: cut("end"), "cut short"),
    ("cut-in-data", lambda: cut("data"), "damaged"),
    ("cut-gzip", lambda: gzip.compress(archive_bytes())[:-4], "damaged"),
    ("bad-gzip-checksum", lambda: bytes(gzip.compress(archive_bytes())[:-8]) + bytes(8), "damaged"),
    ("bad-header-checksum", lambda: flip(2600), "damaged"),
]


@pytest.mark.parametrize(
    ("data", "reason"), [case[1:] for case in DAMAGED], ids=[case[0] for case in DAMAGED]
)
def test_a_damaged_archive_is_refused_and_changes_nothing(data, reason: str) -> None:
    store = MemoryStore(quota="4 MiB")
    with pytest.raises(DamagedArchive) as exc:
        store.import_tar(io.BytesIO(data()))
    assert reason in str(exc.value)
    assert "\n" not in str(exc.value)
    assert store.readdir("/") == []
    assert (store.quota.used, store.quota.nodes) == (0, 1)


def test_the_whole_archive_loads() -> None:
    store = MemoryStore(quota="4 MiB")
    store.import_tar(io.BytesIO(archive_bytes()))
    assert sorted(store.readdir("/")) == ["a", "b"]


# -- one instant ---------------------------------------------------------------------------


def test_changes_after_the_capture_stay_out_of_the_snapshot() -> None:
    store = MemoryStore(quota="4 MiB")
    write_file(store, "/f", b"old" * 30000)
    snapshot = capture(store._namespace)
    fh = store.open("/f", os.O_RDWR, ctx=ROOT)
    store.write(None, b"NEW", 0, fh)  # in place, into a chunk the snapshot shares
    store.write(None, b"NEW", 89_999, fh)  # growing the last chunk
    store.fallocate(None, 0x02 | 0x01, 65536, 100, fh)  # a hole punched
    store.truncate(None, 70_000, fh)
    store.release(None, fh)
    buffer = io.BytesIO()
    write_archive(snapshot, buffer)
    snapshot.release()
    buffer.seek(0)
    copy = MemoryStore(quota="4 MiB")
    copy.import_tar(buffer)
    assert read_at(copy, "/f", 1 << 20, 0) == b"old" * 30000
    assert read_at(store, "/f", 3, 0) == b"NEW"
    assert store.getattr("/f")["st_size"] == 70_000


def test_a_save_while_files_change_is_one_instant() -> None:
    """A writer bumps ``a`` and then ``b``: every snapshot has ``b <= a <= b + 1``."""
    store = MemoryStore(quota="4 MiB")
    write_file(store, "/a", b"%08d" % 0)
    write_file(store, "/b", b"%08d" % 0)
    stop = threading.Event()
    written = [0]  # the writer's last complete round

    def writer() -> None:
        handles = [store.open(name, os.O_WRONLY, ctx=ROOT) for name in ("/a", "/b")]
        count = 0
        while not stop.is_set():
            count += 1
            for fh in handles:
                store.write(None, b"%08d" % count, 0, fh)
            written[0] = count
        for fh in handles:
            store.release(None, fh)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = set()
        for _ in range(50):
            buffer = io.BytesIO()
            store.export_tar(buffer)
            buffer.seek(0)
            with tarfile.open(fileobj=buffer) as archive:
                a, b = (int(archive.extractfile(n).read()) for n in ("a", "b"))  # type: ignore[union-attr]
            assert b <= a <= b + 1
            seen.add(a)
            deadline = time.monotonic() + 10  # a busy machine may not switch threads
            while written[0] <= a and time.monotonic() < deadline:
                time.sleep(0.001)
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 1  # the writer really ran during the saves


def test_a_capture_that_fails_shares_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore(quota="4 MiB")
    write_file(store, "/a", b"a" * 100)
    write_file(store, "/b", b"b" * 100)
    real = defuse2.store.snapshot._entry

    def failing(path: str, node: object) -> object:
        if path == "b":
            raise MemoryError
        return real(path, node)  # type: ignore[arg-type]

    monkeypatch.setattr(defuse2.store.snapshot, "_entry", failing)
    with pytest.raises(MemoryError):
        capture(store._namespace)
    monkeypatch.undo()
    node = store._namespace.lookup("/a")
    assert node.content is not None and node.content.frozen is None
    with contextlib.suppress(OSError):
        store.export_tar(io.BytesIO())  # and the locks were let go
