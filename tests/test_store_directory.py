"""DirectoryStore: confinement, owners and modes, host files it did not make, mounts.

The POSIX behaviour itself is the conformance suite's (targets ``directory`` and
``directory-<binding>``); here are the store's own promises. Each confinement test runs
with :manpage:`openat2(2)` and with the component-by-component walk used without it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import defuse2.mount
from conformance.targets import errno_of
from defuse2 import DefuseError, DirectoryStore, FileSystem, Resource, attributes
from defuse2.cli import main
from defuse2.store.base import Context
from defuse2.store.syscalls import openat2_available

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="giving files away needs root")


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def use_openat2(request: pytest.FixtureRequest) -> bool:
    if request.param and not openat2_available():
        pytest.skip("this kernel has no openat2(2)")
    return bool(request.param)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the store's root, with a file the store must never touch."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_bytes(b"secret\n")
    (path / "secret").chmod(0o600)
    return path


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    """The store's root, holding symlinks that lead out of it every way there is."""
    path = tmp_path / "root"
    path.mkdir()
    (path / "abs").symlink_to(outside)  # absolute
    (path / "rel").symlink_to("../outside")  # relative, through ..
    (path / "up").symlink_to("..")
    (path / "secret-link").symlink_to(outside / "secret")
    return path


@pytest.fixture
def store(root: Path, use_openat2: bool) -> Iterator[DirectoryStore]:
    store = DirectoryStore(root, use_openat2=use_openat2)
    yield store
    store.close()


def snapshot(path: Path) -> dict[str, Any]:
    """Everything observable about a tree: names, types, modes, owners, contents, xattrs."""
    found: dict[str, Any] = {}
    for entry in sorted(path.rglob("*")) + [path]:
        st = entry.lstat()
        content = entry.read_bytes() if entry.is_file() and not entry.is_symlink() else None
        found[str(entry)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, content)
        if not entry.is_symlink():
            found[f"{entry} xattrs"] = os.listxattr(entry)
    return found


# -- confinement ---------------------------------------------------------------------------

LINKS = ["abs", "rel", "up", "up/outside", "up/up", "abs/..", "rel/../outside"]


@pytest.mark.parametrize("link", LINKS)
def test_no_path_through_a_symlink_leads_out(
    store: DirectoryStore, outside: Path, link: str
) -> None:
    before = snapshot(outside)
    path = f"/{link}/secret"
    ctx = Context(0, 0, 1)
    attempts: list[Callable[[], object]] = [
        lambda: store.getattr(path),
        lambda: store.open(path, os.O_RDWR),
        lambda: store.release(path, store.create(path, 0o666, os.O_RDWR, ctx=ctx)),
        lambda: store.truncate(path, 0),
        lambda: store.chmod(path, 0o777),
        lambda: store.chown(path, 1, 1),
        lambda: store.utimens(path, (0, 0)),
        lambda: store.setxattr(path, "user.planted", b"x", 0),
        lambda: store.removexattr(path, "user.planted"),
        lambda: store.unlink(path),
        lambda: store.rename(path, "/taken"),
        lambda: store.link("/hard", path),
        lambda: store.mkdir(f"/{link}/new", 0o777),
        lambda: store.symlink(f"/{link}/new-link", "target"),
        lambda: store.mknod(f"/{link}/fifo", stat.S_IFIFO | 0o666, 0),
        lambda: store.readdir(f"/{link}"),
    ]
    for attempt in attempts:
        errno_of(attempt)  # whatever each answers, the outside must be as it was
    assert snapshot(outside) == before


def test_directories_resolve_as_if_the_root_were_slash(
    store: DirectoryStore, root: Path, outside: Path
) -> None:
    """An absolute symlink starts again at the root; ``..`` at the root stays there."""
    mirror = root / str(outside).lstrip("/")
    mirror.mkdir(parents=True)
    (mirror / "secret").write_bytes(b"the store's own\n")
    fh = store.open("/abs/secret", os.O_RDONLY)
    try:
        assert store.read(None, 100, 0, fh) == b"the store's own\n"
    finally:
        store.release(None, fh)
    assert sorted(store.readdir("/up/.")) == sorted(store.readdir("/"))
    assert store.getattr("/../../abs")["st_mode"] == store.getattr("/abs")["st_mode"]
    store.mkdir("/up/up/made-here", 0o755)
    assert (root / "made-here").is_dir()


def test_the_last_component_is_never_followed(
    store: DirectoryStore, root: Path, outside: Path
) -> None:
    before = snapshot(outside)
    assert stat.S_ISLNK(store.getattr("/secret-link")["st_mode"])
    assert errno_of(lambda: store.open("/secret-link", os.O_RDONLY)) == errno.ELOOP
    assert errno_of(lambda: store.truncate("/secret-link", 0)) == errno.ELOOP
    assert errno_of(lambda: store.chmod("/secret-link", 0o777)) == errno.EOPNOTSUPP
    assert errno_of(lambda: store.setxattr("/secret-link", "user.x", b"1", 0)) == errno.EPERM
    assert errno_of(lambda: store.readdir("/abs")) == errno.ENOTDIR
    store.utimens("/secret-link", (10**9, 2 * 10**9))
    assert os.lstat(root / "secret-link").st_mtime_ns == 2 * 10**9
    store.link("/hard", "/secret-link")  # a hard link to the symlink itself
    assert os.lstat(root / "hard").st_ino == os.lstat(root / "secret-link").st_ino
    store.unlink("/secret-link")
    store.unlink("/hard")
    assert snapshot(outside) == before


def test_a_directory_swapped_for_a_symlink_mid_request_never_leads_out(
    store: DirectoryStore, root: Path, outside: Path
) -> None:
    """Another process keeps replacing ``d`` with a symlink to the outside while the
    store works in ``d``: every request lands inside or fails, none goes out."""
    before = snapshot(outside)
    (root / "real").mkdir()
    (root / "trap").symlink_to(outside)
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for source in ("real", "trap"):
                os.rename(root / source, root / "d")
                os.rename(root / "d", root / source)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for _ in range(300):
            for attempt in (
                lambda: store.release(None, store.create("/d/secret", 0o666, os.O_RDWR)),
                lambda: store.chmod("/d/secret", 0o777),
                lambda: store.truncate("/d/secret", 0),
                lambda: store.setxattr("/d/secret", "user.planted", b"x", 0),
                lambda: store.utimens("/d/secret", (0, 0)),
                lambda: store.unlink("/d/secret"),
            ):
                errno_of(attempt)
    finally:
        stop.set()
        swapper.join()
    assert snapshot(outside) == before


# -- owners and modes ----------------------------------------------------------------------


@ROOT_ONLY
def test_new_names_belong_to_the_caller(store: DirectoryStore, root: Path) -> None:
    ctx = Context(1234, 5678, 1)
    store.release(None, store.create("/file", 0o640, os.O_WRONLY, ctx=ctx))
    store.mkdir("/dir", 0o750, ctx=ctx)
    store.mknod("/fifo", stat.S_IFIFO | 0o600, 0, ctx=ctx)
    store.symlink("/link", "file", ctx=ctx)
    for name in ("file", "dir", "fifo", "link"):
        st = os.lstat(root / name)
        assert (st.st_uid, st.st_gid) == (1234, 5678), name


@ROOT_ONLY
def test_a_setgid_directory_passes_on_its_group(store: DirectoryStore, root: Path) -> None:
    (root / "shared").mkdir()
    os.chown(root / "shared", 0, 4321)
    os.chmod(root / "shared", 0o2775)
    ctx = Context(1234, 5678, 1)
    store.mkdir("/shared/sub", 0o755, ctx=ctx)
    store.release(None, store.create("/shared/file", 0o644, os.O_WRONLY, ctx=ctx))
    sub, file = os.stat(root / "shared" / "sub"), os.stat(root / "shared" / "file")
    assert (sub.st_uid, sub.st_gid, stat.S_IMODE(sub.st_mode)) == (1234, 4321, 0o2755)
    assert (file.st_uid, file.st_gid) == (1234, 4321)


def test_modes_are_exactly_the_requested_ones_whatever_the_umask(
    store: DirectoryStore, root: Path
) -> None:
    old = os.umask(0o777)
    try:
        store.release(None, store.create("/file", 0o1764, os.O_WRONLY))
        store.mkdir("/dir", 0o1777, ctx=None)
        store.mknod("/node", stat.S_IFREG | 0o666, 0)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(root / "file").st_mode) == 0o1764
    assert stat.S_IMODE(os.stat(root / "dir").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(root / "node").st_mode) == 0o666


def test_device_nodes_need_a_root_caller(store: DirectoryStore) -> None:
    device = stat.S_IFCHR | 0o600
    code = errno_of(
        lambda: store.mknod("/null", device, os.makedev(1, 3), ctx=Context(1000, 1000, 1))
    )
    assert code == errno.EPERM


# -- host files the store did not make ------------------------------------------------------


def test_a_host_fifo_is_listed_and_never_opened(store: DirectoryStore, root: Path) -> None:
    os.mkfifo(root / "pipe")
    assert "pipe" in store.readdir("/")
    assert stat.S_ISFIFO(store.getattr("/pipe")["st_mode"])
    for flags in (os.O_RDONLY, os.O_WRONLY):  # would block without a peer: must not
        assert errno_of(lambda flags=flags: store.open("/pipe", flags)) == errno.ENXIO
    assert errno_of(lambda: store.open("/", os.O_RDONLY)) == errno.EISDIR


def test_host_owners_and_modes_are_served_as_they_are(store: DirectoryStore, root: Path) -> None:
    (root / "theirs").write_bytes(b"x")
    os.chmod(root / "theirs", 0o604)
    if os.geteuid() == 0:
        os.chown(root / "theirs", 4242, 4343)
    st, host = store.getattr("/theirs"), os.stat(root / "theirs")
    assert (st["st_mode"], st["st_uid"], st["st_gid"]) == (
        host.st_mode,
        host.st_uid,
        host.st_gid,
    )
    assert st["st_ino"] == host.st_ino


def test_libfuse_hidden_names_are_invisible(store: DirectoryStore, root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / ".fuse_hidden0000000100000001").write_bytes(b"still open")
    assert store.readdir("/d") == []
    assert store.find_names("/d") == []
    assert store.getattr("/d/.fuse_hidden0000000100000001")["st_nlink"] == 0
    store.rmdir("/d")  # only hidden names in it: they go too
    assert not (root / "d").exists()


# -- setup ---------------------------------------------------------------------------------


def test_a_missing_root_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(DefuseError, match="create it first, or pass create=True"):
        DirectoryStore(tmp_path / "missing")
    store = DirectoryStore(tmp_path / "made" / "here", create=True)
    assert store.readdir("/") == []
    assert (tmp_path / "made" / "here").is_dir()


def test_cli_store_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[FileSystem] = []
    monkeypatch.setattr(defuse2.mount, "mount", lambda fs, *args, **kwargs: served.append(fs))
    (tmp_path / "data").mkdir()
    main(["mount", "conformance.apps:fs", str(tmp_path / "m"), "--store", str(tmp_path / "data")])
    assert isinstance(served[0].store, DirectoryStore)
    assert served[0].store.root == str(tmp_path / "data")
    assert not served[0].store.exclusive
    main(["mount", "conformance.apps:fs", str(tmp_path / "m"), "--store", str(tmp_path / "data"),
          "--store-exclusive"])  # fmt: skip
    assert served[1].store.exclusive


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ([], "--store-exclusive needs --store DIR"),
        (["--store", "memory://x"], "--store-exclusive is for a directory store"),
    ],
)
def test_cli_store_exclusive_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["mount", "conformance.apps:fs", str(tmp_path / "m"), *store, "--store-exclusive"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("data", "is inside the store's directory"),
        ("missing", "missing does not exist: give a directory (mkdir -p "),
        ("file", "file is not a directory: give a directory (mkdir -p "),
    ],
)
def test_cli_store_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str, message: str
) -> None:
    (tmp_path / "data" / "m").mkdir(parents=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["mount", "conformance.apps:fs", str(tmp_path / "data" / "m"), "--store",
              str(tmp_path / store)])  # fmt: skip
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error
    assert "create=True" not in error  # an API keyword means nothing on the command line


# -- mounted behind routes -----------------------------------------------------------------


def routed_filesystem(directory: Path) -> FileSystem:
    fs = FileSystem(store=DirectoryStore(directory))

    @fs.route("/README")
    class Readme(Resource):
        def getattr(self) -> attributes.Attributes:
            return attributes.file(size=6, mode=0o444)

        def read(self, size: int, offset: int) -> bytes:
            return b"hello\n"[offset : offset + size]

    return fs


@pytest.mark.mount
def test_data_written_through_the_mount_is_in_the_directory(
    tmp_path: Path, mountpoint: str, outside: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    before = snapshot(outside)
    with routed_filesystem(data).mounted(mountpoint) as mnt:
        assert (mnt / "README").read_bytes() == b"hello\n"
        (mnt / "notes").mkdir()
        (mnt / "notes" / "a.txt").write_bytes(b"a" * 100_000)
        (mnt / "notes" / "b.txt").write_bytes(b"b")
        os.rename(mnt / "notes" / "b.txt", mnt / "notes" / "c.txt")
        os.link(mnt / "notes" / "a.txt", mnt / "notes" / "a-again.txt")
        os.symlink(f"../../{outside.name}", mnt / "notes" / "escape")
        os.symlink(str(outside / "secret"), mnt / "abs-escape")
        (mnt / "notes" / "gone").write_bytes(b"x")
        os.unlink(mnt / "notes" / "gone")
        assert sorted(os.listdir(mnt)) == ["README", "abs-escape", "notes"]
    assert sorted(os.listdir(data)) == ["abs-escape", "notes"]  # the routed README is not
    notes = data / "notes"
    assert sorted(os.listdir(notes)) == ["a-again.txt", "a.txt", "c.txt", "escape"]
    assert (notes / "a.txt").read_bytes() == b"a" * 100_000
    assert os.stat(notes / "a.txt").st_ino == os.stat(notes / "a-again.txt").st_ino
    assert (notes / "c.txt").read_bytes() == b"b"
    assert os.readlink(notes / "escape") == f"../../{outside.name}"  # kept as written
    assert snapshot(outside) == before


@pytest.mark.mount
@pytest.mark.parametrize("journal", ["DELETE", "WAL"])
def test_a_sqlite_database_on_the_mount(tmp_path: Path, mountpoint: str, journal: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with routed_filesystem(data).mounted(mountpoint) as mnt:
        db = sqlite3.connect(mnt / "app.db")
        try:
            assert db.execute(f"PRAGMA journal_mode={journal}").fetchone()[0].upper() == journal
            db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            for batch in range(10):
                with db:
                    db.executemany(
                        "INSERT INTO notes (body) VALUES (?)",
                        [(f"note {batch}-{i} " * 20,) for i in range(200)],
                    )
            with db:
                db.execute("DELETE FROM notes WHERE id % 3 = 0")
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            db.close()
    db = sqlite3.connect(data / "app.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 2000 - 666
    finally:
        db.close()


@pytest.mark.mount
def test_files_changed_on_the_host_are_read_again_at_open(tmp_path: Path, mountpoint: str) -> None:
    """Other processes may change the directory: the kernel keeps no pages of its files
    from one open to the next (the store is not ``exclusive``)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "shared.txt").write_bytes(b"first version\n")
    with FileSystem(store=DirectoryStore(data)).mounted(mountpoint) as mnt:
        assert (mnt / "shared.txt").read_bytes() == b"first version\n"
        (data / "shared.txt").write_bytes(b"SECOND version\n")  # same size or not
        os.utime(data / "shared.txt", ns=(10**18, 10**18))
        assert (mnt / "shared.txt").read_bytes() == b"SECOND version\n"
