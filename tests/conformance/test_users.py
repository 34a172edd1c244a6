"""Who may do what, seen from other users: supplementary groups and setuid/setgid bits.

Each check runs in a child process with another uid and its own groups
(:meth:`~conformance.targets.Target.run_as`, as pjdfstest's ``-u``/``-g``), so it needs
root; the mounts then run with ``allow_other`` (and, as always, ``default_permissions``).
"""

from __future__ import annotations

import errno
import os
import stat

import pytest

from .targets import Target, errno_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")

USER = 65534  # nobody
GROUP, OTHER_GROUP, EXTRA_GROUP = 65534, 65533, 65532


@pytest.fixture(autouse=True)
def checked_by_someone(t: Target) -> None:
    """In-process, only a store that checks users itself can pass these (mounted, the
    kernel checks them for every store)."""
    if t.mount is None:
        t.require("permissions between users")


def mode_of(t: Target, path: str) -> int:
    return stat.S_IMODE(t.lstat(path).st_mode)


def open_to_others(t: Target) -> None:
    """Let every user create files in the test directory."""
    t.chmod(".", 0o777)


# -- supplementary groups ------------------------------------------------------------------


def test_owner_chowns_to_a_supplementary_group(t: Target) -> None:
    open_to_others(t)

    def check(t: Target) -> tuple[int, int, int | None]:
        t.write_bytes("f", b"")
        t.chmod("f", 0o6755)
        t.chown("f", -1, EXTRA_GROUP)  # a supplementary group of the caller
        st = t.stat("f")
        refused = errno_of(lambda: t.chown("f", -1, 4242))  # a group it is not in
        return st.st_gid, stat.S_IMODE(st.st_mode), refused

    gid, mode, refused = t.run_as(USER, [GROUP, EXTRA_GROUP], check)
    assert gid == EXTRA_GROUP
    assert mode == 0o755  # chown by anyone but root clears setuid and setgid (with g+x)
    assert refused == errno.EPERM


@pytest.mark.parametrize(("groups", "expected"), [([GROUP, EXTRA_GROUP], None), ([GROUP], 13)])
def test_group_permissions_count_supplementary_groups(
    t: Target, groups: list[int], expected: int | None
) -> None:
    t.write_bytes("f", b"data")
    t.chown("f", 0, EXTRA_GROUP)
    t.chmod("f", 0o060)  # the group may read and write, nobody else may

    def check(t: Target) -> tuple[int | None, int | None]:
        return errno_of(lambda: t.read_bytes("f")), errno_of(lambda: t.write_bytes("f", b"new"))

    assert t.run_as(USER, groups, check) == (expected, expected)


def test_supplementary_group_with_fewer_rights_than_others(t: Target) -> None:
    """A member of the file's group gets the group's bits, even when others get more."""
    t.write_bytes("f", b"data")
    t.chown("f", 0, EXTRA_GROUP)
    t.chmod("f", 0o604)

    def check(t: Target) -> int | None:
        return errno_of(lambda: t.read_bytes("f"))

    assert t.run_as(USER, [GROUP, EXTRA_GROUP], check) == errno.EACCES
    assert t.run_as(USER, [GROUP], check) is None


@pytest.mark.parametrize(("group", "kept"), [(EXTRA_GROUP, True), (4242, False)])
def test_owner_sets_setgid_only_in_a_group_it_is_in(t: Target, group: int, kept: bool) -> None:
    open_to_others(t)
    t.write_bytes("f", b"")
    t.chown("f", USER, group)

    def check(t: Target) -> int:
        t.chmod("f", 0o2755)
        return mode_of(t, "f")

    assert t.run_as(USER, [GROUP, EXTRA_GROUP], check) == (0o2755 if kept else 0o755)


@pytest.mark.parametrize(("groups", "kept"), [([GROUP, EXTRA_GROUP], True), ([GROUP], False)])
def test_setgid_directory_passes_its_group(t: Target, groups: list[int], kept: bool) -> None:
    t.require("setgid directories")
    t.mkdir("d")
    t.chown("d", 0, EXTRA_GROUP)
    t.chmod("d", 0o2777)

    def check(t: Target) -> tuple[int, int, int]:
        fd = t.open("d/f", os.O_WRONLY | os.O_CREAT, 0o2755)
        t.close(fd)
        t.mkdir("d/sub")
        return t.stat("d/f").st_gid, mode_of(t, "d/f"), mode_of(t, "d/sub")

    gid, file_mode, dir_mode = t.run_as(USER, groups, check)
    assert gid == EXTRA_GROUP
    assert file_mode == (0o2755 if kept else 0o755)
    assert dir_mode & stat.S_ISGID


# -- setuid and setgid bits when someone else writes ---------------------------------------


# (mode, whether the writer is in the file's group, mode after the write)
SET_ID_CASES = [
    (0o4777, False, 0o777),
    (0o2777, False, 0o777),
    (0o6777, False, 0o777),
    (0o4766, False, 0o766),
    (0o2777, True, 0o777),
    (0o2767, False, 0o767),
    (0o2767, True, 0o2767),
]


@pytest.mark.parametrize(("mode", "member", "after"), SET_ID_CASES)
@pytest.mark.parametrize("how", ["write", "truncate", "ftruncate"])
def test_write_by_another_user_clears_setuid_and_setgid(
    t: Target, mode: int, member: bool, after: int, how: str
) -> None:
    """A write by anyone but root clears setuid; and setgid when group-execute is set,
    or, without it (mandatory locking), when the writer is not in the file's group."""
    t.write_bytes("f", b"data")
    t.chown("f", 0, EXTRA_GROUP)
    t.chmod("f", mode)

    def check(t: Target) -> tuple[int, bytes]:
        if how == "truncate":
            t.truncate("f", 2)
        else:
            fd = t.open("f", os.O_RDWR)
            try:
                if how == "write":
                    t.pwrite(fd, b"x", 0)
                else:
                    t.ftruncate(fd, 2)
                fd_mode = stat.S_IMODE(t.fstat(fd).st_mode)
            finally:
                t.close(fd)
            assert fd_mode == mode_of(t, "f")
        return mode_of(t, "f"), t.read_bytes("f")

    groups = [GROUP, EXTRA_GROUP] if member else [GROUP]
    assert t.run_as(USER, groups, check) == (after, b"xata" if how == "write" else b"da")


def test_write_by_root_keeps_setuid_and_setgid(t: Target) -> None:
    t.write_bytes("f", b"data")
    t.chmod("f", 0o6777)
    t.write_bytes("f", b"more")
    t.truncate("f", 1)
    assert mode_of(t, "f") == 0o6777


def test_another_user_cannot_chmod(t: Target) -> None:
    t.write_bytes("f", b"data")
    t.chmod("f", 0o666)

    def check(t: Target) -> int | None:
        return errno_of(lambda: t.chmod("f", 0o644))

    assert t.run_as(USER, [GROUP], check) == errno.EPERM
    assert mode_of(t, "f") == 0o666
