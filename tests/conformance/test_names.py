"""Names and paths: which errno each kind of bad path gets, and which names round-trip."""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

import pytest

from .targets import Target, errno_of

RDONLY, WRONLY, RDWR = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
CREAT, EXCL = os.O_CREAT, os.O_EXCL


def make_tree(t: Target) -> None:
    """``file`` (5 bytes), ``dir/inner``, ``empty/``, ``link`` -> file, ``dangling`` -> nowhere."""
    t.write_bytes("file", b"hello")
    t.mkdir("dir")
    t.write_bytes("dir/inner", b"x")
    t.mkdir("empty")
    if t.has("symlinks"):
        t.symlink("file", "link")
        t.symlink("nowhere", "dangling")


def open_close(t: Target, path: str, flags: int) -> None:
    t.close(t.open(path, flags, 0o644))


# (id, operation, expected errno) — every operation on a tree made by make_tree.
CASES = [
    # ENOENT: the name, or a parent on the way, does not exist
    ("stat-missing", lambda t: t.stat("missing"), errno.ENOENT),
    ("lstat-missing", lambda t: t.lstat("missing"), errno.ENOENT),
    ("stat-missing-parent", lambda t: t.stat("missing/x"), errno.ENOENT),
    ("open-missing", lambda t: open_close(t, "missing", RDONLY), errno.ENOENT),
    ("create-missing-parent", lambda t: open_close(t, "missing/x", WRONLY | CREAT), errno.ENOENT),
    ("mkdir-missing-parent", lambda t: t.mkdir("missing/x"), errno.ENOENT),
    ("mknod-missing-parent", lambda t: t.mknod("missing/x"), errno.ENOENT),
    ("symlink-missing-parent", lambda t: t.symlink("file", "missing/x"), errno.ENOENT),
    ("link-missing-parent", lambda t: t.link("file", "missing/x"), errno.ENOENT),
    ("link-missing-source", lambda t: t.link("missing", "new"), errno.ENOENT),
    ("unlink-missing", lambda t: t.unlink("missing"), errno.ENOENT),
    ("rmdir-missing", lambda t: t.rmdir("missing"), errno.ENOENT),
    ("listdir-missing", lambda t: t.listdir("missing"), errno.ENOENT),
    ("readlink-missing", lambda t: t.readlink("missing"), errno.ENOENT),
    ("chmod-missing", lambda t: t.chmod("missing", 0o644), errno.ENOENT),
    ("chown-missing", lambda t: t.chown("missing", 0, 0), errno.ENOENT),
    ("utime-missing", lambda t: t.utime("missing", ns=(1, 1)), errno.ENOENT),
    ("truncate-missing", lambda t: t.truncate("missing", 0), errno.ENOENT),
    ("getxattr-missing", lambda t: t.getxattr("missing", "user.a"), errno.ENOENT),
    ("rename-missing-source", lambda t: t.rename("missing", "new"), errno.ENOENT),
    ("rename-missing-parent", lambda t: t.rename("file", "missing/new"), errno.ENOENT),
    ("stat-dangling", lambda t: t.stat("dangling"), errno.ENOENT),
    ("open-dangling", lambda t: open_close(t, "dangling", RDONLY), errno.ENOENT),
    # ENOTDIR: a file used as a directory
    ("stat-through-file", lambda t: t.stat("file/x"), errno.ENOTDIR),
    ("create-under-file", lambda t: open_close(t, "file/x", WRONLY | CREAT), errno.ENOTDIR),
    ("mkdir-under-file", lambda t: t.mkdir("file/x"), errno.ENOTDIR),
    ("listdir-file", lambda t: t.listdir("file"), errno.ENOTDIR),
    ("rmdir-file", lambda t: t.rmdir("file"), errno.ENOTDIR),
    ("rmdir-symlink", lambda t: t.rmdir("link"), errno.ENOTDIR),
    ("stat-file-slash", lambda t: t.stat("file/"), errno.ENOTDIR),
    ("open-file-slash", lambda t: open_close(t, "file/", RDONLY), errno.ENOTDIR),
    ("unlink-file-slash", lambda t: t.unlink("file/"), errno.ENOTDIR),
    (
        "open-file-o-directory",
        lambda t: open_close(t, "file", RDONLY | os.O_DIRECTORY),
        errno.ENOTDIR,
    ),
    ("rename-dir-over-file", lambda t: t.rename("empty", "file"), errno.ENOTDIR),
    ("rename-file-to-slash", lambda t: t.rename("file", "new/"), errno.ENOTDIR),
    # EEXIST: the name is taken (a dangling symlink takes it too)
    ("mkdir-existing-dir", lambda t: t.mkdir("dir"), errno.EEXIST),
    ("mkdir-existing-file", lambda t: t.mkdir("file"), errno.EEXIST),
    ("mkdir-dangling", lambda t: t.mkdir("dangling"), errno.EEXIST),
    ("create-excl-existing", lambda t: open_close(t, "file", WRONLY | CREAT | EXCL), errno.EEXIST),
    (
        "create-excl-dangling",
        lambda t: open_close(t, "dangling", WRONLY | CREAT | EXCL),
        errno.EEXIST,
    ),
    ("create-excl-dir", lambda t: open_close(t, "dir", WRONLY | CREAT | EXCL), errno.EEXIST),
    ("symlink-existing", lambda t: t.symlink("x", "file"), errno.EEXIST),
    ("link-existing", lambda t: t.link("file", "dir/inner"), errno.EEXIST),
    ("mknod-existing", lambda t: t.mknod("file"), errno.EEXIST),
    # EISDIR: a directory used as a file
    ("open-dir-write", lambda t: open_close(t, "dir", WRONLY), errno.EISDIR),
    ("open-dir-rdwr", lambda t: open_close(t, "dir", RDWR), errno.EISDIR),
    ("create-dir", lambda t: open_close(t, "dir", WRONLY | CREAT), errno.EISDIR),
    ("create-new-slash", lambda t: open_close(t, "new/", WRONLY | CREAT), errno.EISDIR),
    ("unlink-dir", lambda t: t.unlink("dir"), errno.EISDIR),
    ("truncate-dir", lambda t: t.truncate("dir", 0), errno.EISDIR),
    ("rename-file-over-dir", lambda t: t.rename("file", "empty"), errno.EISDIR),
    # ENOTEMPTY, EINVAL, ELOOP, EPERM
    ("rmdir-nonempty", lambda t: t.rmdir("dir"), errno.ENOTEMPTY),
    ("rename-over-nonempty", lambda t: t.rename("empty", "dir"), errno.ENOTEMPTY),
    ("rmdir-dot", lambda t: t.rmdir("empty/."), errno.EINVAL),
    ("rename-into-itself", lambda t: t.rename("dir", "dir/sub"), errno.EINVAL),
    ("rename-into-own-child", lambda t: t.rename("dir", "empty/../dir/x"), errno.EINVAL),
    ("readlink-file", lambda t: t.readlink("file"), errno.EINVAL),
    ("truncate-negative", lambda t: t.truncate("file", -1), errno.EINVAL),
    ("open-nofollow-link", lambda t: open_close(t, "link", RDONLY | os.O_NOFOLLOW), errno.ELOOP),
    ("link-dir", lambda t: t.link("dir", "new"), errno.EPERM),
]

#: The cases that need what some stores lack (:data:`~conformance.targets.GAPS`).
NEEDS = {
    **dict.fromkeys(
        ["stat-dangling", "open-dangling", "rmdir-symlink", "mkdir-dangling",
         "create-excl-dangling", "open-nofollow-link", "symlink-missing-parent",
         "symlink-existing"],
        "symlinks",
    ),
    **dict.fromkeys(
        ["link-missing-parent", "link-missing-source", "link-existing", "link-dir"], "hard links"
    ),
    **dict.fromkeys(
        ["rename-dir-over-file", "rename-over-nonempty", "rename-into-itself",
         "rename-into-own-child"],
        "directory rename",
    ),
}  # fmt: skip
_FEATURE_OF = {operation: NEEDS.get(case) for case, operation, _ in CASES}


@pytest.mark.parametrize(
    ("operation", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_errno(t: Target, operation, expected: int) -> None:
    t.require(_FEATURE_OF[operation])
    make_tree(t)
    with pytest.raises(OSError) as exc:
        operation(t)
    assert exc.value.errno == expected


def test_failed_operations_change_nothing(t: Target) -> None:
    make_tree(t)
    before = sorted(t.listdir()), t.read_bytes("file"), sorted(t.listdir("dir"))
    for case, operation, _ in CASES:
        if t.has(NEEDS.get(case, "")):
            assert errno_of(lambda op=operation: op(t)) is not None
    assert (sorted(t.listdir()), t.read_bytes("file"), sorted(t.listdir("dir"))) == before


LONG = "n" * 256
NAME_OPS = [
    ("stat", lambda t, name: t.stat(name)),
    ("create", lambda t, name: open_close(t, name, WRONLY | CREAT)),
    ("mkdir", lambda t, name: t.mkdir(name)),
    ("mknod", lambda t, name: t.mknod(name)),
    ("symlink", lambda t, name: t.symlink("file", name)),
    ("link", lambda t, name: t.link("file", name)),
    ("rename", lambda t, name: t.rename("file", name)),
]
_NAME_OP_NEEDS = {op: {"symlink": "symlinks", "link": "hard links"}.get(n) for n, op in NAME_OPS}


@pytest.mark.parametrize("operation", [op for _, op in NAME_OPS], ids=[n for n, _ in NAME_OPS])
@pytest.mark.parametrize(
    "name",
    [LONG, "é" * 128, "d/" + LONG, "a/" * 2048 + "x"],
    ids=["256-bytes", "256-bytes-utf8", "long-last-component", "path-over-4096"],
)
def test_name_too_long(t: Target, operation, name: str) -> None:
    t.require(_NAME_OP_NEEDS[operation])
    make_tree(t)
    t.mkdir("d")
    with pytest.raises(OSError) as exc:
        operation(t, name)
    assert exc.value.errno == errno.ENAMETOOLONG


@pytest.mark.parametrize("name", ["n" * 255, "é" * 127 + "x"], ids=["ascii", "utf8"])
def test_longest_name_works(t: Target, name: str) -> None:
    t.write_bytes(name, b"data")
    t.mkdir(name[:-1] + "D")
    assert sorted(t.listdir()) == sorted([name, name[:-1] + "D"])
    assert t.read_bytes(name) == b"data"


NAMES = [
    "caf\udce9",  # b"caf\xe9": Latin-1, not UTF-8
    "\udcff\udcfe",  # b"\xff\xfe"
    "日本語.txt",
    "with space",
    "new\nline",
    "%41%2F",
    "-leading-dash",
    ".hidden",
    "...",
]


@pytest.mark.parametrize("name", NAMES, ids=[repr(os.fsencode(n))[2:-1] for n in NAMES])
def test_names_round_trip(t: Target, name: str) -> None:
    if os.fsencode(name).decode("utf-8", "replace") != name:
        t.require("non-UTF-8 names")
    if "\n" in name:
        t.require("newline names")
    t.write_bytes(name, name.encode("utf-8", "surrogateescape"))
    t.mkdir(name + "-dir")
    if t.has("symlinks"):
        t.symlink(name, name + "-link")
        assert t.readlink(name + "-link") == name
        assert t.read_bytes(name + "-link") == os.fsencode(name)
    names = [name, name + "-dir"] + ([name + "-link"] if t.has("symlinks") else [])
    assert sorted(t.listdir()) == sorted(names)
    assert t.read_bytes(name) == os.fsencode(name)
    t.rename(name, name + "-dir/" + name)
    assert t.listdir(name + "-dir") == [name]


def test_path_normalisation(t: Target) -> None:
    make_tree(t)
    assert t.read_bytes("dir/../file") == b"hello"
    assert t.read_bytes("./dir/./inner") == b"x"
    assert t.read_bytes("dir//inner") == b"x"
    assert t.stat("dir/").st_ino == t.stat("dir").st_ino
    assert t.stat("dir/.").st_ino == t.stat("dir").st_ino


def long_relative_path(api: Any) -> str:
    """Make the directories of a relative path of 4095 bytes, the longest a system call
    takes (names of 255 bytes), and return that path; its last name is free."""
    path = ""
    for _ in range(15):
        path += "d" * 255
        api.mkdir(path)
        path += "/"
    return path + "f" * 255  # 15 * 256 + 255 bytes


# (id, what is at the long path before, operation, whether the long path exists after)
LONG_PATH_OPS = [
    ("create", None, lambda api, p: api.close(api.open(p, WRONLY | CREAT, 0o644)), True),
    ("open", "file", lambda api, p: api.close(api.open(p, RDWR)), True),
    ("mkdir", None, lambda api, p: api.mkdir(p), True),
    ("mknod", None, lambda api, p: api.mknod(p, stat.S_IFREG | 0o644), True),
    ("mkfifo", None, lambda api, p: api.mknod(p, stat.S_IFIFO | 0o644), True),
    ("symlink", None, lambda api, p: api.symlink("target", p), True),
    ("symlink-content", "file", lambda api, p: api.symlink(p, "s"), True),
    ("link-to", None, lambda api, p: api.link("f", p), True),
    ("link-from", "file", lambda api, p: api.link(p, "g"), True),
    ("rename-to", None, lambda api, p: api.rename("f", p), True),
    ("rename-from", "file", lambda api, p: api.rename(p, "g"), False),
    ("stat", "file", lambda api, p: api.stat(p), True),
    ("chmod", "file", lambda api, p: api.chmod(p, 0o600), True),
    ("chown", "file", lambda api, p: api.chown(p, os.getuid(), os.getgid()), True),
    ("utime", "file", lambda api, p: api.utime(p, ns=(10**9, 10**9)), True),
    ("truncate", "file", lambda api, p: api.truncate(p, 100), True),
    ("setxattr", "file", lambda api, p: api.setxattr(p, "user.k", b"v"), True),
    ("unlink", "file", lambda api, p: api.unlink(p), False),
    ("rmdir", "dir", lambda api, p: api.rmdir(p), False),
]
_LONG_PATH_NEEDS = {
    operation: {"mkfifo": "special files", "symlink": "symlinks", "symlink-content": "symlinks",
                "link-to": "hard links", "link-from": "hard links", "setxattr": "xattrs"}.get(case)
    for case, _, operation, _ in LONG_PATH_OPS
}  # fmt: skip


@pytest.mark.parametrize(
    ("before", "operation", "exists"),
    [case[1:] for case in LONG_PATH_OPS],
    ids=[case[0] for case in LONG_PATH_OPS],
)
def test_long_relative_paths(t: Target, before: str | None, operation, exists: bool) -> None:
    """``PATH_MAX`` limits what the caller writes, not the path from the mount root: a
    4095-byte path relative to a directory inside the mount works, one of 4096 bytes is
    ``ENAMETOOLONG``."""
    t.require("long paths", _LONG_PATH_NEEDS[operation])
    t.write_bytes("f", b"x")
    with t.inside() as api:
        path = long_relative_path(api)
        if before == "file":
            api.close(api.open(path, WRONLY | CREAT, 0o644))
        elif before == "dir":
            api.mkdir(path)
        too_long = path.replace("/", "//", 1)
        assert len(os.fsencode(too_long)) == 4096
        assert errno_of(lambda: operation(api, too_long)) == errno.ENAMETOOLONG
        operation(api, path)
        assert errno_of(lambda: api.lstat(path)) == (None if exists else errno.ENOENT)
