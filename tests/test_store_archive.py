"""MemoryStore snapshots: export_tar/import_tar round trips, subtrees, quota, conflicts."""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from defuse2.store.archive import DamagedArchive
from defuse2.store.memory import MemoryStore
from memory_tree import ROOT, read_file

KiB = 1024


def write_file(s: MemoryStore, path: str, data: bytes, offset: int = 0) -> None:
    fh = s.create(path, 0o644, os.O_WRONLY, ctx=ROOT)
    s.write(path, data, offset, fh)
    s.release(path, fh)


def describe(s: MemoryStore, top: str = "/") -> dict[str, object]:
    """Everything a snapshot keeps, by path relative to ``top``, inodes as link groups.

    Atimes are left out: looking (reading, listing) changes them.
    """
    out: dict[str, object] = {}
    groups: dict[int, str] = {}
    pending = [top]
    while pending:
        path = pending.pop()
        attrs = s.getattr(path)
        rel = path[len(top) :].lstrip("/") or "."
        mode = attrs["st_mode"]
        entry = {
            key: attrs[key]
            for key in ("st_mode", "st_uid", "st_gid", "st_nlink", "st_mtime", "st_size", "st_rdev")
        }
        entry["group"] = groups.setdefault(attrs["st_ino"], rel)
        entry["xattrs"] = {name: s.getxattr(path, name) for name in s.listxattr(path)}
        if stat.S_ISDIR(mode):
            names = s.readdir(path)
            entry["names"] = sorted(names)
            pending.extend(path.rstrip("/") + "/" + n for n in names)
        elif stat.S_ISLNK(mode):
            entry["target"] = s.readlink(path)
        elif stat.S_ISREG(mode):
            entry["data"] = read_file(s, path)
        out[rel] = entry
    return out


@pytest.fixture
def source() -> MemoryStore:
    s = MemoryStore(quota="4 MiB")
    s.chmod("/", 0o751)
    s.setxattr("/", "user.root", b"top", 0)
    s.mkdir("/docs", 0o750)
    s.chown("/docs", 1000, 1000)
    write_file(s, "/docs/a.txt", b"alpha\n")
    s.chmod("/docs/a.txt", 0o4751)
    s.chown("/docs/a.txt", 1000, 50)
    s.chmod("/docs/a.txt", 0o4751)
    s.setxattr("/docs/a.txt", "user.mime", b"text/plain", 0)
    s.setxattr("/docs/a.txt", "user.bin", bytes(range(256)), 0)
    s.setxattr("/docs/a.txt", "trusted.t", b"\xff\xfe", 0)
    s.setxattr("/docs/a.txt", "user.a=b", b"= and \n", 0)  # "=" ends a pax keyword
    s.setxattr("/docs/a.txt", "user.\udcff%41", b"\x00\xff", 0)  # not UTF-8
    s.link("/docs/hard", "/docs/a.txt")
    s.link("/hard-at-top", "/docs/a.txt")
    s.symlink("/docs/link", "a.txt")
    s.symlink("/abs", "/docs/\udcff/nowhere")
    s.mkdir("/docs/\udcff odd ü", 0o700)
    write_file(s, "/docs/\udcff odd ü/sparse", b"end", offset=300 * KiB)
    write_file(s, "/empty", b"")
    write_file(s, "/big", bytes(range(256)) * 2000)
    s.mknod("/fifo", stat.S_IFIFO | 0o600, 0)
    s.mknod("/null", stat.S_IFCHR | 0o666, os.makedev(1, 3), ctx=ROOT)
    s.mknod("/sda", stat.S_IFBLK | 0o660, os.makedev(8, 0), ctx=ROOT)
    s.mkdir("/deep", 0o755)
    path = "/deep"
    for i in range(30):
        path += f"/{i}"
        s.mkdir(path, 0o755)
    for _ in range(20):  # a path far longer than PATH_MAX
        path += "/" + "l" * 255
        s.mkdir(path, 0o755)
    write_file(s, path + "/leaf", b"deep")
    s.utimens("/docs/a.txt", (1_000_000_000_123_456_789, 1_600_000_000_987_654_321))
    s.utimens("/docs", (5, 1_500_000_000_000_000_001))
    s.utimens("/docs/link", (7, -1_000_000_001))
    return s


def round_trip(s: MemoryStore, root: str = "/", quota: str = "4 MiB") -> MemoryStore:
    buffer = io.BytesIO()
    s.export_tar(buffer, root)
    copy = MemoryStore(quota=quota)
    buffer.seek(0)
    copy.import_tar(buffer)
    return copy


def test_round_trip_keeps_everything(source: MemoryStore) -> None:
    paths = ["/" + rel if rel != "." else "/" for rel in describe(source)]
    stamps = {path: source.getattr(path) for path in paths}
    copy = round_trip(source)
    for path in paths:  # before looking changes atimes
        for key in ("st_atime", "st_mtime"):
            assert copy.getattr(path)[key] == stamps[path][key], (path, key)
    assert describe(copy) == describe(source)
    assert copy.quota.used == source.quota.used
    assert copy.quota.nodes == source.quota.nodes


def test_round_trip_through_a_file_and_compression(source: MemoryStore, tmp_path: Path) -> None:
    for name in ("snap.tar", "snap.tar.gz", "snap.tgz", "snap.tar.xz", "snap.tar.bz2"):
        target = tmp_path / name
        source.export_tar(target)
        copy = MemoryStore(quota="4 MiB")
        copy.import_tar(str(target))
        assert describe(copy) == describe(source), name


def test_holes_come_back_as_holes(source: MemoryStore) -> None:
    copy = round_trip(source)
    path = "/docs/\udcff odd ü/sparse"
    assert copy.getattr(path)["st_blocks"] == source.getattr(path)["st_blocks"]
    assert copy.getattr(path)["st_size"] == 300 * KiB + 3


def test_archive_is_plain_pax(source: MemoryStore) -> None:
    buffer = io.BytesIO()
    source.export_tar(buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["."].isdir()
    a = members["docs/a.txt"]
    assert a.isreg() and a.mode == 0o4751 and (a.uid, a.gid) == (1000, 50)
    assert a.pax_headers["mtime"] == "1600000000.987654321"
    assert a.pax_headers["SCHILY.xattr.user.mime"] == "text/plain"
    assert members["docs/hard"].islnk() and members["docs/hard"].linkname == "docs/a.txt"
    assert members["docs/link"].issym() and members["docs/link"].linkname == "a.txt"
    assert members["docs/link"].pax_headers["mtime"] == "-1.000000001"
    assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) == (
        1,
        3,
    )
    assert members["fifo"].isfifo()


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
def test_gnu_tar_reads_the_archive(source: MemoryStore, tmp_path: Path) -> None:
    source.export_tar(tmp_path / "snap.tar")
    listing = subprocess.run(
        ["tar", "-tvf", str(tmp_path / "snap.tar")],
        capture_output=True,
        check=True,
        text=True,
        errors="surrogateescape",
    ).stdout
    assert "docs/a.txt" in listing
    assert "docs/hard link to docs/a.txt" in listing


def test_sockets_are_skipped() -> None:
    s = MemoryStore(quota=64 * KiB)
    s.mknod("/sock", stat.S_IFSOCK | 0o755, 0)
    assert round_trip(s).readdir("/") == []


def test_export_a_subtree_and_import_under_a_directory(source: MemoryStore) -> None:
    buffer = io.BytesIO()
    source.export_tar(buffer, "/docs")
    target = MemoryStore(quota="4 MiB")
    target.mkdir("/restore", 0o755)
    buffer.seek(0)
    target.import_tar(buffer, "/restore")
    restored, original = describe(target, "/restore"), describe(source, "/docs")
    for entries in (restored, original):  # /hard-at-top stayed behind
        for entry in entries.values():
            entry.pop("st_nlink")  # type: ignore[attr-defined]
    assert restored == original
    assert target.getattr("/restore/a.txt")["st_nlink"] == 2


def test_import_merges_with_existing_directories(source: MemoryStore) -> None:
    buffer = io.BytesIO()
    source.export_tar(buffer)
    target = MemoryStore(quota="4 MiB")
    target.mkdir("/docs", 0o777)
    write_file(target, "/docs/mine", b"kept")
    buffer.seek(0)
    target.import_tar(buffer)
    assert read_file(target, "/docs/mine") == b"kept"
    assert stat.S_IMODE(target.getattr("/docs")["st_mode"]) == 0o750
    assert read_file(target, "/docs/a.txt") == b"alpha\n"


def test_import_refuses_a_conflict_and_changes_nothing(source: MemoryStore) -> None:
    buffer = io.BytesIO()
    source.export_tar(buffer)
    target = MemoryStore(quota="4 MiB")
    target.mkdir("/docs", 0o777)
    write_file(target, "/docs/a.txt", b"mine")
    before = describe(target)
    used = target.quota.used, target.quota.nodes
    buffer.seek(0)
    with pytest.raises(OSError) as info:
        target.import_tar(buffer)
    assert info.value.errno == errno.EEXIST
    assert describe(target) == before
    assert (target.quota.used, target.quota.nodes) == used


def test_import_refuses_what_does_not_fit_and_changes_nothing(source: MemoryStore) -> None:
    buffer = io.BytesIO()
    source.export_tar(buffer)
    for quota, nodes in ((source.quota.used - 1, None), (10 * 1024**2, source.quota.nodes - 1)):
        target = MemoryStore(quota=quota, max_nodes=nodes)
        write_file(target, "/present", b"x")
        before = describe(target)
        used = target.quota.used, target.quota.nodes
        buffer.seek(0)
        with pytest.raises(OSError) as info:
            target.import_tar(buffer)
        assert info.value.errno == errno.ENOSPC
        assert describe(target) == before
        assert (target.quota.used, target.quota.nodes) == used


def test_import_fits_exactly(source: MemoryStore) -> None:
    copy = round_trip(source, quota=str(source.quota.used))
    assert copy.quota.used == copy.quota.limit


def test_import_refuses_dotdot_names() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(tarfile.TarInfo("ok"), io.BytesIO())
        archive.addfile(tarfile.TarInfo("../escape"), io.BytesIO())
    s = MemoryStore(quota=64 * KiB)
    buffer.seek(0)
    with pytest.raises(OSError) as info:
        s.import_tar(buffer)
    assert info.value.errno == errno.EINVAL
    assert s.readdir("/") == []


def test_hidden_names_in_an_archive_stay_hidden() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in ("d/a", "d/.fuse_hidden0001", ".fuse_hidden0002"):
            archive.addfile(tarfile.TarInfo(name), io.BytesIO())
    s = MemoryStore(quota=64 * KiB)
    buffer.seek(0)
    s.import_tar(buffer)
    assert s.readdir("/") == ["d"]
    assert s.readdir("/d") == ["a"]
    s.unlink("/d/a")
    s.rmdir("/d")  # only a hidden name is left in it


def test_import_creates_missing_parents_and_reads_streams() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w|gz") as archive:
        info = tarfile.TarInfo("/a/b/c.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))

    class Stream(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self.data.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    s = MemoryStore(quota=64 * KiB)
    s.import_tar(Stream(buffer.getvalue()))  # type: ignore[arg-type]
    assert read_file(s, "/a/b/c.txt") == b"abc"
    assert stat.S_ISDIR(s.getattr("/a/b")["st_mode"])


def test_export_root_must_be_a_directory(source: MemoryStore) -> None:
    with pytest.raises(OSError) as info:
        source.export_tar(io.BytesIO(), "/big")
    assert info.value.errno == errno.ENOTDIR
    buffer = io.BytesIO()
    source.export_tar(buffer, "/deep")
    for root, expected in (("/missing", errno.ENOENT), ("/big", errno.ENOTDIR)):
        buffer.seek(0)
        with pytest.raises(OSError) as info:
            source.import_tar(buffer, root)
        assert info.value.errno == expected


def test_a_damaged_archive_changes_nothing(source: MemoryStore) -> None:
    buffer = io.BytesIO()
    source.export_tar(buffer)
    damaged = io.BytesIO(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    target = MemoryStore(quota="4 MiB")
    with pytest.raises(DamagedArchive):
        target.import_tar(damaged)
    assert target.readdir("/") == []
    assert (target.quota.used, target.quota.nodes) == (0, 1)
