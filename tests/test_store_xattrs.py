"""MemoryStore extended attributes: set, get, list and remove, their errnos and limits."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest

from defuse2.store.base import XATTR_CREATE, XATTR_REPLACE
from defuse2.store.memory import MemoryStore
from errnos import errno_of
from memory_tree import ALICE, ROOT, small_tree


@pytest.fixture
def store() -> MemoryStore:
    """The small tree of :func:`memory_tree.small_tree`."""
    return small_tree()


def test_xattrs(store: MemoryStore) -> None:
    store.setxattr("/file", "user.a", b"1", 0)
    store.setxattr("/file", "user.b", b"\x00\xff" * 10, XATTR_CREATE)
    store.setxattr("/file", "user.a", b"22", XATTR_REPLACE)
    store.setxattr("/dir", "user.on_dir", b"", 0)
    store.setxattr("/file", "trusted.t", b"t", 0, ctx=ROOT)
    store.setxattr("/file", "security.s", b"s", 0, ctx=ROOT)
    assert store.getxattr("/file", "user.a") == b"22"
    assert store.getxattr("/file", "user.b") == b"\x00\xff" * 10
    assert store.getxattr("/dir", "user.on_dir") == b""
    assert sorted(store.listxattr("/file")) == ["security.s", "trusted.t", "user.a", "user.b"]
    assert store.listxattr("/empty") == []
    store.removexattr("/file", "user.a")
    assert errno_of(lambda: store.getxattr("/file", "user.a")) == errno.ENODATA
    assert "user.a" not in store.listxattr("/file")


XATTR_ERRORS: list[tuple[str, Callable[[MemoryStore], object], int]] = [
    ("get absent", lambda s: s.getxattr("/file", "user.none"), errno.ENODATA),
    ("remove absent", lambda s: s.removexattr("/file", "user.none"), errno.ENODATA),
    ("replace absent", lambda s: s.setxattr("/file", "user.n", b"", XATTR_REPLACE), errno.ENODATA),
    ("create present", lambda s: s.setxattr("/file", "user.here", b"", XATTR_CREATE), errno.EEXIST),
    ("no namespace", lambda s: s.setxattr("/file", "plain", b"", 0), errno.ENOTSUP),
    ("get no namespace", lambda s: s.getxattr("/file", "plain"), errno.ENOTSUP),
    ("system namespace", lambda s: s.setxattr("/file", "system.posix_acl_access", b"", 0), 95),
    ("empty name", lambda s: s.setxattr("/file", "", b"", 0), errno.ERANGE),
    ("name 256 bytes", lambda s: s.setxattr("/file", "user." + "a" * 251, b"", 0), errno.ERANGE),
    ("value too big", lambda s: s.setxattr("/file", "user.big", bytes(65537), 0), errno.E2BIG),
    ("unknown option", lambda s: s.setxattr("/file", "user.a", b"", 4), errno.EINVAL),
    ("user on symlink", lambda s: s.setxattr("/link", "user.a", b"", 0), errno.EPERM),
    ("get user on symlink", lambda s: s.getxattr("/link", "user.a"), errno.ENODATA),
    ("missing path", lambda s: s.setxattr("/missing", "user.a", b"", 0), errno.ENOENT),
    ("trusted as user", lambda s: s.setxattr("/pub", "trusted.a", b"", 0, ctx=ALICE), errno.EPERM),
    ("user no write", lambda s: s.setxattr("/file", "user.a", b"", 0, ctx=ALICE), errno.EACCES),
    (
        "sticky dir not owner",
        lambda s: s.setxattr("/pub", "user.a", b"", 0, ctx=ALICE),
        errno.EPERM,
    ),
]


@pytest.mark.parametrize(
    ("call", "expected"), [c[1:] for c in XATTR_ERRORS], ids=[c[0] for c in XATTR_ERRORS]
)
def test_xattr_errno(
    store: MemoryStore, call: Callable[[MemoryStore], object], expected: int
) -> None:
    store.setxattr("/file", "user.here", b"x", 0)
    assert errno_of(lambda: call(store)) == expected
    assert store.getxattr("/file", "user.here") == b"x"


def test_xattr_limits_are_inclusive(store: MemoryStore) -> None:
    store.setxattr("/file", "user." + "a" * 250, bytes(65536), 0)
    assert len(store.getxattr("/file", "user." + "a" * 250)) == 65536


def test_xattrs_survive_hard_links_and_renames(store: MemoryStore) -> None:
    store.setxattr("/file", "user.k", b"v", 0)
    store.link("/dir/hard", "/file")
    store.rename("/file", "/moved")
    assert store.getxattr("/dir/hard", "user.k") == b"v"
