"""The tree: directories, rename and renameat2, hard links and symlinks."""

from __future__ import annotations

import errno
import os
import stat
import time

import pytest

from .targets import Target, errno_of, kind

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def umasked(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def test_mkdir_listdir_rmdir(t: Target) -> None:
    t.mkdir("d", 0o755)
    assert stat.S_ISDIR(t.stat("d").st_mode)
    assert stat.S_IMODE(t.stat("d").st_mode) == umasked(0o755)
    assert t.listdir("d") == []
    for name in ("b", "a", "c"):
        t.write_bytes(f"d/{name}", b"")
    t.mkdir("d/sub")
    assert sorted(t.listdir("d")) == ["a", "b", "c", "sub"]
    for name in ("a", "b", "c"):
        t.unlink(f"d/{name}")
    t.rmdir("d/sub")
    t.rmdir("d")
    assert t.listdir() == []


def test_directory_nlink_counts_subdirectories(t: Target) -> None:
    t.require("directory nlink")
    t.mkdir("d")
    assert t.stat("d").st_nlink == 2
    t.mkdir("d/a")
    t.mkdir("d/b")
    t.write_bytes("d/file", b"")
    assert t.stat("d").st_nlink == 4
    t.rename("d/a", "a")
    assert t.stat("d").st_nlink == 3
    t.rmdir("d/b")
    assert t.stat("d").st_nlink == 2


def test_makedirs(t: Target) -> None:
    t.makedirs("a/b/c")
    t.makedirs("a/b/c", exist_ok=True)
    assert t.isdir("a/b/c")
    with pytest.raises(OSError) as exc:
        t.makedirs("a/b/c")
    assert exc.value.errno == errno.EEXIST


def tree(t: Target, path: str = ".") -> dict[str, object]:
    """Everything under ``path``: kinds, file contents, symlink targets."""
    result: dict[str, object] = {}
    for name in sorted(t.listdir(path)):
        full = name if path == "." else f"{path}/{name}"
        mode = t.lstat(full).st_mode
        if stat.S_ISDIR(mode):
            result[name] = tree(t, full)
        elif stat.S_ISLNK(mode):
            result[name] = ("link", t.readlink(full))
        else:
            result[name] = t.read_bytes(full)
    return result


def rename_tree(t: Target) -> None:
    t.write_bytes("a", b"A")
    t.write_bytes("b", b"B")
    t.mkdir("d")
    t.write_bytes("d/x", b"X")
    t.mkdir("e")
    t.mkdir("f")
    t.write_bytes("f/y", b"Y")
    if t.has("hard links"):
        t.link("a", "a2")
    if t.has("symlinks"):
        t.symlink("a", "s")


# (id, src, dst, flags, errno or None, the tree afterwards as a diff: name -> value/None)
RENAMES = [
    ("file-to-new-name", "a", "n", 0, None, {"a": None, "n": b"A"}),
    ("file-over-file", "a", "b", 0, None, {"a": None, "b": b"A"}),
    ("file-into-dir", "a", "d/a", 0, None, {"a": None, "d": {"x": b"X", "a": b"A"}}),
    ("dir-to-new-name", "d", "n", 0, None, {"d": None, "n": {"x": b"X"}}),
    ("dir-over-empty-dir", "d", "e", 0, None, {"d": None, "e": {"x": b"X"}}),
    ("dir-into-dir", "d", "f/d", 0, None, {"d": None, "f": {"y": b"Y", "d": {"x": b"X"}}}),
    ("file-to-itself", "a", "a", 0, None, {}),
    ("dir-to-itself", "d", "d", 0, None, {}),
    ("hard-link-to-its-twin", "a", "a2", 0, None, {}),
    ("symlink-itself", "s", "t", 0, None, {"s": None, "t": ("link", "a")}),
    ("symlink-over-file", "s", "b", 0, None, {"s": None, "b": ("link", "a")}),
    ("dir-over-nonempty", "e", "f", 0, errno.ENOTEMPTY, {}),
    ("dir-over-file", "d", "a", 0, errno.ENOTDIR, {}),
    ("file-over-dir", "a", "e", 0, errno.EISDIR, {}),
    ("dir-into-itself", "d", "d/n", 0, errno.EINVAL, {}),
    ("dir-over-its-parent", "d/x", "d", 0, errno.ENOTEMPTY, {}),
    ("file-under-file", "b", "a/n", 0, errno.ENOTDIR, {}),
    ("missing-parent", "a", "m/a", 0, errno.ENOENT, {}),
    ("noreplace-new", "a", "n", RENAME_NOREPLACE, None, {"a": None, "n": b"A"}),
    ("noreplace-existing", "a", "b", RENAME_NOREPLACE, errno.EEXIST, {}),
    ("noreplace-existing-dir", "d", "e", RENAME_NOREPLACE, errno.EEXIST, {}),
    ("exchange-files", "a", "b", RENAME_EXCHANGE, None, {"a": b"B", "b": b"A", "a2": b"A"}),
    ("exchange-file-dir", "a", "d", RENAME_EXCHANGE, None, {"a": {"x": b"X"}, "d": b"A"}),
    ("exchange-dirs", "d", "f", RENAME_EXCHANGE, None, {"d": {"y": b"Y"}, "f": {"x": b"X"}}),
    ("exchange-missing", "a", "n", RENAME_EXCHANGE, errno.ENOENT, {}),
    ("exchange-noreplace", "a", "b", RENAME_EXCHANGE | RENAME_NOREPLACE, errno.EINVAL, {}),
    ("unknown-flag", "a", "n", 1 << 10, errno.EINVAL, {}),
]

#: The cases that need what some stores lack (:data:`~conformance.targets.GAPS`).
RENAME_NEEDS = {
    **dict.fromkeys(
        ["dir-to-new-name", "dir-over-empty-dir", "dir-into-dir", "dir-to-itself",
         "dir-over-nonempty", "dir-over-file", "dir-into-itself", "noreplace-existing-dir"],
        "directory rename",
    ),
    "hard-link-to-its-twin": "hard links",
    "exchange-files": "hard links",  # the tree it checks has a2
    **dict.fromkeys(["symlink-itself", "symlink-over-file"], "symlinks"),
    **dict.fromkeys(
        ["exchange-file-dir", "exchange-dirs", "exchange-missing"], "rename exchange"
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "src", "dst", "flags", "expected", "changes"),
    RENAMES,
    ids=[case[0] for case in RENAMES],
)
def test_rename(
    t: Target, case: str, src: str, dst: str, flags: int, expected: int | None, changes
) -> None:
    t.require(RENAME_NEEDS.get(case))
    if flags & RENAME_EXCHANGE:
        t.require("rename exchange")
    rename_tree(t)
    before = tree(t)
    if flags and not t.rename_flags and expected is None:
        # libfuse 2 has no flags in its rename: the kernel refuses them (never ignores them);
        # the checks the VFS makes first (EEXIST, ENOENT) still come first
        expected, changes = errno.EINVAL, {}
    assert errno_of(lambda: t.rename(src, dst, flags)) == expected
    after = dict(before)
    for name, value in changes.items():
        if value is None:
            del after[name]
        else:
            after[name] = value
    assert tree(t) == after


def test_rename_keeps_the_inode_and_replaces_atomically(t: Target) -> None:
    t.require("inodes follow renames")
    t.write_bytes("a", b"new")
    t.write_bytes("b", b"old")
    ino = t.stat("a").st_ino
    t.rename("a", "b")
    assert t.stat("b").st_ino == ino
    assert t.read_bytes("b") == b"new"


def test_rename_of_a_hard_link_over_its_twin_keeps_both(t: Target) -> None:
    t.require("hard links")
    t.write_bytes("a", b"data")
    t.link("a", "b")
    t.rename("a", "b")
    assert sorted(t.listdir()) == ["a", "b"]
    assert t.stat("a").st_nlink == 2


def expect_libfuse2_link_source_limit(t: Target, request: pytest.FixtureRequest) -> None:
    """Mark the test as a known failure on libfuse 2 mounts (documented in mount.py)."""
    if t.mount and t.libfuse == "2":
        reason = (
            "libfuse's high-level API gives each name of a hard-linked file its own kernel "
            "inode, and libfuse 2 cannot tell the kernel to forget the attributes it cached "
            "for the old name before link(2): st_nlink 1 stays until attr_timeout "
            "(documented in defuse2/mount.py)"
        )
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def test_the_old_name_of_a_new_hard_link_catches_up_within_seconds(t: Target) -> None:
    t.require("hard links")
    t.write_bytes("a", b"data")
    assert t.stat("a").st_nlink == 1  # cached by the kernel, on a mount
    t.link("a", "b")
    deadline = time.monotonic() + 10.0  # libfuse 2: up to its 1 s attribute timeout
    while t.stat("a").st_nlink != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert t.stat("a").st_nlink == 2


def test_hard_links(t: Target) -> None:
    t.require("hard links")
    t.write_bytes("a", b"shared")
    t.link("a", "b")
    assert t.stat("a").st_nlink == t.stat("b").st_nlink == 2
    assert t.stat("a").st_ino == t.stat("b").st_ino
    fd = t.open("b", os.O_WRONLY | os.O_APPEND)
    try:
        t.write(fd, b" data")
    finally:
        t.close(fd)
    assert t.read_bytes("a") == b"shared data"
    t.chmod("a", 0o600)
    assert stat.S_IMODE(t.stat("b").st_mode) == 0o600
    t.link("b", "c")
    assert t.stat("a").st_nlink == 3
    t.unlink("a")
    assert t.stat("b").st_nlink == 2
    t.unlink("b")
    assert t.stat("c").st_nlink == 1
    assert t.read_bytes("c") == b"shared data"


def test_hard_link_to_a_symlink_links_the_symlink(
    t: Target, request: pytest.FixtureRequest
) -> None:
    t.require("hard links", "symlinks")
    expect_libfuse2_link_source_limit(t, request)
    t.write_bytes("file", b"x")
    t.symlink("file", "s")
    t.link("s", "s2")
    assert stat.S_ISLNK(t.lstat("s2").st_mode)
    assert t.lstat("s").st_nlink == 2
    assert t.readlink("s2") == "file"


def test_symlinks(t: Target) -> None:
    t.require("symlinks")
    t.mkdir("d")
    t.write_bytes("d/file", b"content")
    t.symlink("d/file", "to-file")
    t.symlink("d", "to-dir")
    t.symlink("../d/file", "d/up")
    link = t.lstat("to-file")
    assert stat.S_ISLNK(link.st_mode)
    assert link.st_size == len("d/file")
    assert t.readlink("to-file") == "d/file"
    assert stat.S_ISREG(t.stat("to-file").st_mode)
    assert t.stat("to-file").st_ino == t.stat("d/file").st_ino
    assert t.read_bytes("to-file") == b"content"
    assert t.read_bytes("to-dir/file") == b"content"
    assert t.read_bytes("d/up") == b"content"
    assert sorted(t.listdir("to-dir")) == ["file", "up"]
    assert stat.S_ISDIR(t.lstat("to-dir/").st_mode)  # a trailing slash follows
    t.unlink("to-dir")  # removes the link, not the directory
    assert t.isdir("d")
    t.chmod("to-file", 0o640)  # chmod follows
    assert stat.S_IMODE(t.stat("d/file").st_mode) == 0o640


def test_dangling_symlink(t: Target) -> None:
    t.require("symlinks")
    t.symlink("nowhere", "dangling")
    assert stat.S_ISLNK(t.lstat("dangling").st_mode)
    assert t.readlink("dangling") == "nowhere"
    assert not t.exists("dangling")
    assert t.listdir() == ["dangling"]


@pytest.mark.parametrize(("depth", "expected"), [(40, None), (41, errno.ELOOP)])
def test_symlink_chain_limit(t: Target, depth: int, expected: int | None) -> None:
    t.require("symlinks")
    t.write_bytes("file", b"end")
    t.symlink("file", "l0")
    for i in range(1, depth):
        t.symlink(f"l{i - 1}", f"l{i}")
    assert errno_of(lambda: t.stat(f"l{depth - 1}")) == expected


@pytest.mark.parametrize("operation", ["stat", "open", "listdir", "through"])
def test_symlink_loop_is_eloop(t: Target, operation: str) -> None:
    t.require("symlinks")
    t.symlink("b", "a")
    t.symlink("a", "b")
    calls = {
        "stat": lambda: t.stat("a"),
        "open": lambda: t.open("a", os.O_RDONLY),
        "listdir": lambda: t.listdir("a"),
        "through": lambda: t.stat("a/x"),
    }
    assert errno_of(calls[operation]) == errno.ELOOP
    assert kind(t.lstat("a").st_mode) == "link"
