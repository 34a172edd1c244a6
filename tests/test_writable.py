"""Writable resources behave like files, for the tools people use on files.

The resources under test are those of the "Writable files" how-to
(``docs/code/writable.py``): ``/notes``, a :class:`~defuse2.WritableFile` over a dict,
and ``/blobs``, a :class:`~defuse2.Resource` that writes in place. Each check runs
through the test client and, with real tools (``sh``, ``cp -p``, ``touch``,
``truncate``, ``sed -i``, ``vim``, ``tar``), on a mount of every binding.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import shutil
import stat
import subprocess
import tarfile
import time
from pathlib import Path
from types import ModuleType

import pytest

from conformance.targets import MOUNTS, CliMount, errno_of

CODE = Path(__file__).resolve().parent.parent / "docs" / "code" / "writable.py"
DIRECTORIES = ["notes", "blobs"]
OLD = 1_000_000_000 * 10**9  # 2001, in ns
TIMEOUT = 30


def load() -> ModuleType:
    """The how-to's module, fresh (its dicts empty but for the first note)."""
    spec = importlib.util.spec_from_file_location("writable_howto", CODE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- in-process ----------------------------------------------------------------------------


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_file_semantics_in_the_client(directory: str) -> None:
    client = load().fs.test_client()
    f = f"/{directory}/f"
    client.write_bytes(f, b"hi there\n")
    client.write_bytes(f, b"ab\n")  # open(O_TRUNC), as libfuse 3 sends it
    assert client.read_bytes(f) == b"ab\n"
    fd = client.open(f, os.O_WRONLY | os.O_APPEND)
    client.write(fd, b"more\n")
    client.close(fd)
    assert client.read_bytes(f) == b"ab\nmore\n"
    client.utime(f, ns=(OLD, OLD + 1))  # touch -d, cp -p, tar x
    client.chmod(f, 0o600)
    st = client.stat(f)
    assert (st.st_atime_ns, st.st_mtime_ns, stat.S_IMODE(st.st_mode)) == (OLD, OLD + 1, 0o600)
    client.truncate(f, 2)
    assert client.read_bytes(f) == b"ab"
    assert client.stat(f).st_mtime_ns > OLD + 1  # a change moves a kept mtime
    client.truncate(f, 4)
    assert client.read_bytes(f) == b"ab\0\0"
    client.write_bytes(f"/{directory}/.f.swp", b"saved by rename\n")  # write, then rename over
    client.rename(f"/{directory}/.f.swp", f)
    assert client.read_bytes(f) == b"saved by rename\n"
    assert sorted(name for name in client.listdir(f"/{directory}") if name != "todo") == ["f"]
    client.unlink(f)
    assert errno_of(lambda: client.stat(f)) == errno.ENOENT


def test_a_failed_save_fails_close() -> None:
    client = load().fs.test_client()
    fd = client.open("/notes/bad", os.O_WRONLY | os.O_CREAT)
    client.write(fd, b"\xff not UTF-8")
    assert errno_of(lambda: client.close(fd)) == errno.EINVAL
    assert client.read_bytes("/notes/bad") == b""  # created empty, never saved


def test_renames_stay_where_the_route_allows() -> None:
    client = load().fs.test_client()
    client.write_bytes("/blobs/b", b"blob")
    client.write_bytes("/notes/n", b"note")
    assert errno_of(lambda: client.rename("/blobs/b", "/notes/b")) == errno.EXDEV
    assert errno_of(lambda: client.rename("/notes/n", "/blobs/n")) == errno.EXDEV
    client.mkdir("/elsewhere")
    assert errno_of(lambda: client.rename("/notes/n", "/elsewhere/n")) == errno.EXDEV  # the store


# -- mounted, with the tools -----------------------------------------------------------------


def sh(script: str, cwd: Path) -> None:
    """Run ``script`` with ``sh -e`` in ``cwd``; fail the test with its output if it fails."""
    done = subprocess.run(
        ["sh", "-ec", script], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}{done.stderr}"


def vim() -> str:
    for name in ("vim", "vim.tiny", "vi"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("the editor test needs vim (apt-get install vim-tiny)")


def check_tools(directory: Path, scratch: Path) -> None:
    """What ``echo >``, ``>>``, ``touch``, ``cp -p``, ``truncate``, ``sed -i``, ``vim``, a
    write-and-rename and ``tar x`` must leave in ``directory`` (on a mount)."""
    f = directory / "f"
    sh("printf 'hi there\\n' > f; printf 'ab\\n' > f", directory)
    assert f.read_bytes() == b"ab\n"  # no stale tail
    sh("printf 'more\\n' >> f", directory)
    assert f.read_bytes() == b"ab\nmore\n"
    before = time.time_ns() - 10**9
    sh("touch f", directory)
    assert os.stat(f).st_mtime_ns >= before
    sh("touch -d @1000000000 f", directory)
    assert os.stat(f).st_mtime_ns == OLD
    sh("touch new && test -f new && test ! -s new", directory)

    source = scratch / "source"
    source.write_bytes(b"copied with its metadata\n")
    os.chmod(source, 0o640)
    os.utime(source, ns=(OLD, OLD + 5))
    sh(f"cp -p {source} copy", directory)
    st = os.stat(directory / "copy")
    assert (directory / "copy").read_bytes() == b"copied with its metadata\n"
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o640, OLD + 5)

    sh("truncate -s 2 f", directory)
    assert f.read_bytes() == b"ab"
    sh("truncate -s 4 f", directory)
    assert f.read_bytes() == b"ab\0\0"
    sh("printf 'one\\ntwo\\n' > g; sed -i s/one/uno/ g", directory)
    assert (directory / "g").read_bytes() == b"uno\ntwo\n"
    sh(f"{vim()} -u NONE -i NONE -es -c '%s/two/dos/' -c wq g", directory)
    assert (directory / "g").read_bytes() == b"uno\ndos\n"

    temporary = directory / ".g.tmp"  # what editors that save by rename do
    with open(temporary, "wb") as file:
        file.write(b"saved by rename\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, directory / "g")
    assert (directory / "g").read_bytes() == b"saved by rename\n"

    archive = scratch / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data, mode in [("x", b"ex\n", 0o600), ("y", b"why\n", 0o644)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_000_000_000
            tar.addfile(info, __import__("io").BytesIO(data))
    sh(f"tar -xf {archive}", directory)
    for name, data, mode in [("x", b"ex\n", 0o600), ("y", b"why\n", 0o644)]:
        st = os.stat(directory / name)
        assert (directory / name).read_bytes() == data
        assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (mode, OLD)

    assert {"f", "g", "new", "copy", "x", "y"} <= set(os.listdir(directory))
    assert not [name for name in os.listdir(directory) if name.startswith((".g", "sed", "g~"))]


@pytest.mark.mount
@pytest.mark.parametrize(("name", "binding", "libfuse"), MOUNTS, ids=[m[0] for m in MOUNTS])
def test_tools_on_a_mount(name: str, binding: str, libfuse: str, tmp_path: Path) -> None:
    with CliMount(str(CODE), binding, libfuse) as root:
        for directory in DIRECTORIES:
            scratch = tmp_path / directory
            scratch.mkdir()
            check_tools(Path(root, directory), scratch)
        fd = os.open(Path(root, "notes", "bad"), os.O_WRONLY | os.O_CREAT)
        os.write(fd, b"\xff not UTF-8")
        assert errno_of(lambda: os.close(fd)) == errno.EINVAL  # the failed save, at close
