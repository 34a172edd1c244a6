"""Every example in ``examples/``: driven in-process, then mounted for real.

Each example is loaded fresh for each test (its module-level filesystem and store are
new), through the test client first -- fast, no FUSE needed -- and then mounted with
``fs.mounted()`` and exercised with plain :mod:`os` calls, exactly as a user would.
"""

from __future__ import annotations

import errno
import importlib.util
import io
import json
import os
import signal
import sqlite3
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from defuse2.testing import script_mount
from errnos import errno_of

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_"))
TIMEOUT = 20  # seconds for anything that waits on a mount
TEST_TIMEOUT = 60  # seconds for a whole test


def load(name):
    """Import ``examples/<name>.py`` as a new module (fresh filesystem, fresh store)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(request):
    """The example module named by the test's ``example_name`` parameter."""
    return load(request.param)


@pytest.fixture(autouse=True)
def time_limit():
    """Fail a test that hangs instead of hanging the run; mounts still unmount on the way out."""

    def expire(signum, frame):
        raise TimeoutError(f"test took longer than {TEST_TIMEOUT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def empty_dir(tmp_path):
    """A new, empty directory to mount on."""
    path = tmp_path / "m"
    path.mkdir()
    return path


# -- all examples ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_example_teaches_and_runs(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    module = load(name)
    summary = module.__doc__.strip().splitlines()[0]
    assert summary.endswith(".") and len(summary) <= 100
    assert source.rstrip().endswith('if __name__ == "__main__":\n    fs.main()')
    assert module.fs.routes() is not None


# -- hello -----------------------------------------------------------------------------------


HELLO_FILES = ["test0.txt", "test1.txt", "test2.txt", "test3.txt"]


def test_hello_client():
    client = load("hello").fs.test_client()
    assert sorted(client.listdir("/")) == HELLO_FILES
    assert client.read_bytes("/test2.txt") == b"test2test2test2test2"
    st = client.stat("/test2.txt")
    assert st.st_size == 20
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o444
    assert stat.S_ISDIR(client.stat("/").st_mode)


def test_hello_is_read_only_but_stores_the_rest():
    client = load("hello").fs.test_client()
    assert errno_of(client.write_bytes, "/test0.txt", b"x") == errno.EROFS
    assert errno_of(client.unlink, "/test0.txt") == errno.EROFS
    client.mkdir("/notes")
    client.write_bytes("/notes/a.txt", b"kept in memory\n")
    assert client.read_bytes("/notes/a.txt") == b"kept in memory\n"
    assert sorted(client.listdir("/")) == sorted([*HELLO_FILES, "notes"])
    assert errno_of(client.stat, "/nothing") == errno.ENOENT


@pytest.mark.mount
def test_hello_mounted(tmp_path):
    fs = load("hello").fs
    with fs.mounted(empty_dir(tmp_path)) as root:
        root = str(root)
        assert sorted(os.listdir(root)) == HELLO_FILES
        for name in HELLO_FILES:
            with open(os.path.join(root, name), "rb") as f:
                assert f.read() == name[:-4].encode() * 4
        st = os.stat(os.path.join(root, "test2.txt"))
        assert (st.st_size, stat.S_IMODE(st.st_mode)) == (20, 0o444)
        # The kernel checks the mode first (default_permissions); root passes that check
        # and meets the resource's answer: no write method, so a read-only file.
        expected = errno.EROFS if os.geteuid() == 0 else errno.EACCES
        assert errno_of(open, os.path.join(root, "test0.txt"), "w") == expected
        os.mkdir(os.path.join(root, "notes"))
        Path(root, "notes", "a.txt").write_text("kept\n")
        assert Path(root, "notes", "a.txt").read_text() == "kept\n"
        assert sorted(os.listdir(root)) == sorted([*HELLO_FILES, "notes"])


@pytest.mark.mount
def test_hello_script_mounts_in_the_foreground(tmp_path):
    """The README's command: ``python examples/hello.py MOUNTPOINT --foreground``."""
    mountpoint = empty_dir(tmp_path)
    log = tmp_path / "hello.log"
    command = [sys.executable, str(EXAMPLES / "hello.py"), str(mountpoint), "--foreground"]
    with script_mount(command, mountpoint, log, timeout=TIMEOUT) as run:
        assert (mountpoint / "test2.txt").read_bytes() == b"test2test2test2test2"
    assert run.returncode == 0, log.read_text()
    assert not os.path.ismount(mountpoint)


# -- memory ----------------------------------------------------------------------------------


def test_memory_client():
    client = load("memory").fs.test_client()
    assert client.listdir("/") == []
    client.mkdir("/a")
    client.write_bytes("/a/b.txt", b"hello")
    client.rename("/a/b.txt", "/a/c.txt")
    assert client.listdir("/a") == ["c.txt"]
    assert client.read_bytes("/a/c.txt") == b"hello"
    client.symlink("c.txt", "/a/link")
    assert client.readlink("/a/link") == "c.txt"
    assert errno_of(client.rmdir, "/a") == errno.ENOTEMPTY


def test_memory_quota_is_enforced_and_reported():
    client = load("memory").fs.test_client()
    assert errno_of(client.write_bytes, "/big", b"x" * (17 * 1024 * 1024)) == errno.ENOSPC
    vfs = client.statvfs("/")
    assert vfs.f_blocks * vfs.f_frsize == 16 * 1024 * 1024


@pytest.mark.mount
def test_memory_mounted(tmp_path):
    fs = load("memory").fs
    with fs.mounted(empty_dir(tmp_path)) as root:
        path = Path(root, "dir", "file.txt")
        path.parent.mkdir()
        path.write_bytes(b"data" * 1000)
        assert path.read_bytes() == b"data" * 1000
        assert os.stat(path).st_size == 4000
        os.truncate(path, 2)
        assert path.read_bytes() == b"da"
        with pytest.raises(OSError) as exc:
            Path(root, "big").write_bytes(b"x" * (17 * 1024 * 1024))
        assert exc.value.errno == errno.ENOSPC
        vfs = os.statvfs(root)
        assert vfs.f_blocks * vfs.f_frsize == 16 * 1024 * 1024
        path.unlink()
        os.rmdir(path.parent)
        assert sorted(os.listdir(root)) == ["big"]  # created, then refused its data


# -- sqlite_tree -----------------------------------------------------------------------------


ADA = {"name": "ada", "email": "ada@example.org"}


def test_sqlite_tree_demo_database(monkeypatch):
    monkeypatch.delenv("DEFUSE2_SQLITE_DB", raising=False)
    client = load("sqlite_tree").fs.test_client()
    assert client.listdir("/") == ["notes", "users"]
    assert client.listdir("/users") == ["1.json", "2.json"]
    assert json.loads(client.read_bytes("/users/1.json")) == ADA
    assert client.stat("/users/1.json").st_size == len(client.read_bytes("/users/1.json"))
    assert stat.S_ISDIR(client.stat("/users").st_mode)
    assert errno_of(client.stat, "/nosuch") == errno.ENOENT
    assert errno_of(client.stat, "/users/9.json") == errno.ENOENT
    assert errno_of(client.stat, "/users/ada.json") == errno.ENOENT  # <int:rowid> only
    assert errno_of(client.write_bytes, "/users/1.json", b"{}") == errno.EROFS
    client.unlink("/users/2.json")
    assert client.listdir("/users") == ["1.json"]
    assert errno_of(client.unlink, "/users/2.json") == errno.ENOENT


def test_sqlite_tree_opens_a_database_read_only(tmp_path, monkeypatch):
    db_path = tmp_path / "shop.db"
    with sqlite3.connect(db_path) as db:
        db.execute('CREATE TABLE "odd ""name""" (price REAL, picture BLOB)')
        db.execute('INSERT INTO "odd ""name""" VALUES (2.5, x\'cafe\')')
    db.close()
    monkeypatch.setenv("DEFUSE2_SQLITE_DB", str(db_path))
    client = load("sqlite_tree").fs.test_client()
    assert client.listdir("/") == ['odd "name"']
    row = json.loads(client.read_bytes('/odd "name"/1.json'))
    assert row == {"price": 2.5, "picture": "cafe"}
    assert errno_of(client.unlink, '/odd "name"/1.json') == errno.EROFS


@pytest.mark.mount
def test_sqlite_tree_mounted(tmp_path, monkeypatch):
    monkeypatch.delenv("DEFUSE2_SQLITE_DB", raising=False)
    fs = load("sqlite_tree").fs
    with fs.mounted(empty_dir(tmp_path)) as root:
        assert sorted(os.listdir(root)) == ["notes", "users"]
        assert json.loads(Path(root, "users", "1.json").read_text()) == ADA
        assert json.loads(Path(root, "notes", "1.json").read_text())["body"] == "Hello from SQLite"
        os.unlink(Path(root, "users", "2.json"))
        assert os.listdir(Path(root, "users")) == ["1.json"]
        assert (
            errno_of(os.rename, Path(root, "users", "1.json"), Path(root, "users", "3.json"))
            == errno.EROFS
        )
        assert errno_of(os.stat, Path(root, "users", "7.json")) == errno.ENOENT


# -- translator ------------------------------------------------------------------------------


PEOPLE_CSV = b"name,lang\nada,en\nlinus,fi\n"
PEOPLE_JSON = [{"name": "ada", "lang": "en"}, {"name": "linus", "lang": "fi"}]


def test_translator_client():
    client = load("translator").fs.test_client()
    assert client.listdir("/json") == []
    client.write_bytes("/data/people.csv", PEOPLE_CSV)
    client.write_bytes("/data/notes.txt", b"not csv")
    assert client.listdir("/json") == ["people.json"]
    text = client.read_bytes("/json/people.json")
    assert json.loads(text) == PEOPLE_JSON
    assert client.stat("/json/people.json").st_size == len(text)
    assert errno_of(client.write_bytes, "/data/bad.csv", b"a\0b") == errno.EINVAL
    assert errno_of(client.write_bytes, "/json/people.json", b"[]") == errno.EROFS
    assert errno_of(client.stat, "/json/notes.json") == errno.ENOENT


@pytest.mark.mount
def test_translator_mounted(tmp_path):
    fs = load("translator").fs
    with fs.mounted(empty_dir(tmp_path)) as root:
        Path(root, "data", "people.csv").write_bytes(PEOPLE_CSV)
        assert os.listdir(Path(root, "json")) == ["people.json"]
        assert json.loads(Path(root, "json", "people.json").read_bytes()) == PEOPLE_JSON
        with Path(root, "data", "people.csv").open("ab") as f:
            f.write(b"grace,en\n")
        rows = json.loads(Path(root, "json", "people.json").read_bytes())
        assert rows[-1] == {"name": "grace", "lang": "en"}
        fd = os.open(Path(root, "data", "bin.csv"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            assert errno_of(os.write, fd, b"\0\1\2") == errno.EINVAL
        finally:
            os.close(fd)


# -- wordcount -------------------------------------------------------------------------------


STORY_WORDS = "5 words, 4 distinct\n      2 the\n      1 cat\n      1 dog\n      1 saw\n"


def test_wordcount_client():
    client = load("wordcount").fs.test_client()
    assert client.listdir("/stats") == []
    client.write_bytes("/story.txt", b"The cat saw the dog\n")
    client.mkdir("/drafts")
    assert client.listdir("/stats") == ["story.txt.words"]
    assert client.read_bytes("/stats/story.txt.words").decode() == STORY_WORDS
    assert client.stat("/stats/story.txt.words").st_size == len(STORY_WORDS)
    assert errno_of(client.stat, "/stats/missing.txt.words") == errno.ENOENT
    assert errno_of(client.unlink, "/stats/story.txt.words") == errno.EROFS


@pytest.mark.mount
def test_wordcount_mounted(tmp_path):
    fs = load("wordcount").fs
    with fs.mounted(empty_dir(tmp_path)) as root:
        Path(root, "story.txt").write_text("The cat saw the dog\n")
        assert Path(root, "stats", "story.txt.words").read_text() == STORY_WORDS
        Path(root, "story.txt").write_text("one\n")  # shorter: the view must shrink too
        assert (
            Path(root, "stats", "story.txt.words").read_text()
            == "1 words, 1 distinct\n      1 one\n"
        )


# -- archive ---------------------------------------------------------------------------------


def make_tar(path):
    """A .tar.gz with a nested file, an explicit directory and a member to skip (a link)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [("top.txt", b"top\n"), ("a/b/deep.txt", b"deep" * 3000)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        directory = tarfile.TarInfo("a/empty")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        link = tarfile.TarInfo("a/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "b/deep.txt"
        tar.addfile(link)


def test_archive_demo_zip(monkeypatch):
    monkeypatch.delenv("DEFUSE2_ARCHIVE", raising=False)
    client = load("archive").fs.test_client()
    assert client.listdir("/") == ["README.txt", "docs"]
    assert client.listdir("/docs") == ["empty", "guide.txt"]
    assert client.listdir("/docs/empty") == []
    assert client.read_bytes("/README.txt") == b"A demo archive.\n"
    assert client.stat("/README.txt").st_size == 16
    assert errno_of(client.stat, "/missing") == errno.ENOENT
    assert errno_of(client.listdir, "/README.txt") == errno.ENOTDIR
    assert errno_of(client.write_bytes, "/new.txt", b"x") == errno.EROFS
    assert errno_of(client.mkdir, "/docs/new") == errno.EROFS
    assert errno_of(client.unlink, "/README.txt") == errno.EROFS


def test_archive_tar(tmp_path, monkeypatch):
    make_tar(tmp_path / "backup.tar.gz")
    monkeypatch.setenv("DEFUSE2_ARCHIVE", str(tmp_path / "backup.tar.gz"))
    client = load("archive").fs.test_client()
    assert client.listdir("/") == ["a", "top.txt"]
    assert client.listdir("/a") == ["b", "empty"]
    assert client.read_bytes("/a/b/deep.txt") == b"deep" * 3000
    assert errno_of(client.stat, "/a/link") == errno.ENOENT


@pytest.mark.mount
def test_archive_mounted(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "x.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big/data.bin", bytes(range(256)) * 4096)
        archive.writestr("hello.txt", "hello\n")
    monkeypatch.setenv("DEFUSE2_ARCHIVE", str(tmp_path / "x.zip"))
    fs = load("archive").fs
    with fs.mounted(empty_dir(tmp_path)) as root:
        assert sorted(os.listdir(root)) == ["big", "hello.txt"]
        assert Path(root, "big", "data.bin").read_bytes() == bytes(range(256)) * 4096
        assert Path(root, "hello.txt").read_text() == "hello\n"
        assert stat.S_IMODE(os.stat(Path(root, "hello.txt")).st_mode) == 0o444
        assert errno_of(os.mkdir, Path(root, "new")) == errno.EROFS
        expected = errno.EROFS if os.geteuid() == 0 else errno.EACCES
        assert errno_of(Path(root, "new.txt").write_text, "x") == expected


# -- status ----------------------------------------------------------------------------------


def test_status_client():
    client = load("status").fs.test_client()
    assert sorted(client.listdir("/")) == ["hello", "status"]
    first = client.read_bytes("/status").decode()
    second = client.read_bytes("/status").decode()
    assert first.splitlines()[0].startswith("time: ")
    assert first != second  # every read renders a fresh report
    assert client.read_bytes("/hello") == b"Static files can sit beside live ones.\n"
    assert errno_of(client.write_bytes, "/status", b"x") == errno.EROFS


@pytest.mark.mount
def test_status_mounted(tmp_path):
    fs = load("status").fs
    with fs.mounted(empty_dir(tmp_path)) as root:
        reports = [Path(root, "status").read_text() for _ in range(3)]
        for report in reports:
            assert [line.split(":")[0] for line in report.splitlines()] == [
                "time",
                "up",
                "load",
                "renders",
            ]
        assert len(set(reports)) == 3  # never a stale page cache, never a truncated read
