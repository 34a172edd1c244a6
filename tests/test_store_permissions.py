"""MemoryStore ownership and permission rules: new nodes' owners, chmod and chown, the
setuid/setgid bits and capabilities a change drops, access checks, sticky directories."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

import pytest

from defuse2.store import permissions
from defuse2.store.base import UTIME_NOW, Context
from defuse2.store.memory import MemoryStore
from errnos import errno_of
from memory_tree import ALICE, BOB, CAROL_IN_ALICE_GROUP, ROOT, small_tree, write_file


@pytest.fixture
def store() -> MemoryStore:
    """The small tree of :func:`memory_tree.small_tree`."""
    return small_tree()


def test_new_nodes_belong_to_the_caller(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE)
    store.mkdir("/pub/d", 0o700, ctx=ALICE)
    for path in ("/pub/a", "/pub/d"):
        attrs = store.getattr(path)
        assert (attrs["st_uid"], attrs["st_gid"]) == (1000, 1000)


def test_the_store_does_not_apply_a_umask(store: MemoryStore) -> None:
    store.mkdir("/wide", 0o777, ctx=Context(0, 0, 1, 0o077))
    assert stat.S_IMODE(store.getattr("/wide")["st_mode"]) == 0o777


def test_mkdir_drops_setuid_and_setgid_bits(store: MemoryStore) -> None:
    store.mkdir("/d", 0o7777)
    assert stat.S_IMODE(store.getattr("/d")["st_mode"]) == 0o1777


def test_setgid_directory_passes_on_its_group(store: MemoryStore) -> None:
    store.mkdir("/shared", 0o777, ctx=ROOT)
    store.chown("/shared", 0, 50, ctx=ROOT)
    store.chmod("/shared", 0o2777, ctx=ROOT)
    write_file(store, "/shared/f", b"", ctx=ALICE, mode=0o2755)
    store.mkdir("/shared/sub", 0o755, ctx=ALICE)
    f, sub = store.getattr("/shared/f"), store.getattr("/shared/sub")
    assert f["st_gid"] == sub["st_gid"] == 50
    assert f["st_uid"] == 1000
    assert sub["st_mode"] & stat.S_ISGID
    assert not f["st_mode"] & stat.S_ISGID  # alice is not in group 50
    write_file(store, "/shared/g", b"", ctx=Context(1000, 50, 9), mode=0o2755)
    assert store.getattr("/shared/g")["st_mode"] & stat.S_ISGID


def test_chmod_rules(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE)
    assert errno_of(lambda: store.chmod("/pub/a", 0o777, ctx=BOB)) == errno.EPERM
    store.chmod("/pub/a", 0o2755, ctx=ALICE)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o2755
    store.chown("/pub/a", -1, 7, ctx=ROOT)
    store.chmod("/pub/a", 0o2755, ctx=ALICE)  # group 7 is not alice's: setgid dropped
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o755
    store.chmod("/pub/a", 0o6711, ctx=ROOT)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o6711
    assert stat.S_ISREG(store.getattr("/pub/a")["st_mode"])


def test_chown_rules(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE)
    assert errno_of(lambda: store.chown("/pub/a", 1001, -1, ctx=ALICE)) == errno.EPERM
    assert errno_of(lambda: store.chown("/pub/a", -1, 1001, ctx=ALICE)) == errno.EPERM
    assert errno_of(lambda: store.chown("/pub/a", -1, 1000, ctx=BOB)) == errno.EPERM
    assert errno_of(lambda: store.chown("/pub/a", 1000, -1, ctx=BOB)) == errno.EPERM
    store.chown("/pub/a", 1000, 1000, ctx=ALICE)  # no change: allowed
    store.chown("/pub/a", -1, -1, ctx=BOB)  # nothing asked: allowed
    store.chown("/pub/a", 0xFFFFFFFF, 0xFFFFFFFF, ctx=ALICE)  # unsigned -1
    store.chown("/pub/a", 1001, 1001, ctx=ROOT)
    attrs = store.getattr("/pub/a")
    assert (attrs["st_uid"], attrs["st_gid"]) == (1001, 1001)
    store.chown("/pub/a", -1, 1000, ctx=Context(1001, 1000, 5))  # owner, to own group
    assert store.getattr("/pub/a")["st_gid"] == 1000


@pytest.mark.parametrize(
    ("mode", "ctx", "after"),
    [
        (0o6755, ROOT, 0o0755),
        (0o6745, ROOT, 0o2745),
        (0o6755, ALICE, 0o0755),
    ],
)
def test_chown_clears_setuid_and_setgid(
    store: MemoryStore, mode: int, ctx: Context, after: int
) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE)
    store.chmod("/pub/a", mode, ctx=ROOT)
    store.chown("/pub/a", -1, -1, ctx=ctx)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == after


def test_chown_keeps_setgid_on_directories(store: MemoryStore) -> None:
    store.chmod("/empty", 0o2755)
    store.chown("/empty", 5, 5)
    assert stat.S_IMODE(store.getattr("/empty")["st_mode"]) == 0o2755


def test_write_and_truncate_by_non_root_clear_setuid(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"abc", ctx=ALICE, mode=0o666)
    store.chmod("/pub/a", 0o6777, ctx=ROOT)
    fh = store.open("/pub/a", os.O_WRONLY, ctx=ROOT)
    store.write(None, b"x", 0, fh, ctx=ROOT)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o6777
    store.write(None, b"x", 0, fh, ctx=BOB)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o0777
    store.chmod("/pub/a", 0o6777, ctx=ROOT)
    store.truncate("/pub/a", 1, ctx=BOB)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o0777
    store.release(None, fh)


#: A valid ``security.capability`` value (revision 2: ``cap_net_bind_service`` permitted).
CAPABILITY = bytes([0, 0, 0, 2, 0, 4, 0, 0]) + bytes(12)


@pytest.mark.parametrize(
    "change",
    [
        lambda s, fh: s.write(None, b"x", 0, fh, ctx=ROOT),
        lambda s, fh: s.truncate(None, 1, fh, ctx=ROOT),
        lambda s, fh: s.fallocate(None, 0, 0, 8192, fh, ctx=ROOT),
        lambda s, fh: s.release(None, s.open("/pub/a", os.O_WRONLY | os.O_TRUNC, ctx=ROOT)),
        lambda s, fh: s.chown("/pub/a", -1, -1, ctx=ROOT),
    ],
    ids=["write", "truncate", "fallocate", "open-O_TRUNC", "chown"],
)
def test_changing_a_file_drops_its_capabilities_even_by_root(
    store: MemoryStore, change: Callable[[MemoryStore, int], None]
) -> None:
    write_file(store, "/pub/a", b"abc", ctx=ALICE, mode=0o755)
    store.setxattr("/pub/a", "security.capability", CAPABILITY, 0, ctx=ROOT)
    store.setxattr("/pub/a", "user.kept", b"1", 0, ctx=ALICE)
    fh = store.open("/pub/a", os.O_WRONLY, ctx=ROOT)
    change(store, fh)
    store.release(None, fh)
    assert store.listxattr("/pub/a") == ["user.kept"]


def test_dropped_capabilities_give_their_quota_back(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE, mode=0o755)
    free = store.quota.free_bytes()
    store.setxattr("/pub/a", "security.capability", CAPABILITY, 0, ctx=ROOT)
    assert store.quota.free_bytes() < free
    store.chown("/pub/a", -1, -1, ctx=ROOT)
    assert store.quota.free_bytes() == free


def test_fallocate_by_non_root_clears_setuid(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"abc", ctx=ALICE, mode=0o666)
    store.chmod("/pub/a", 0o6777, ctx=ROOT)
    fh = store.open("/pub/a", os.O_WRONLY, ctx=BOB)
    store.fallocate(None, 0, 0, 4096, fh, ctx=ROOT)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o6777
    store.fallocate(None, 0, 0, 8192, fh, ctx=BOB)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o0777
    store.release(None, fh)


def test_a_writer_may_clear_only_what_a_write_clears(store: MemoryStore) -> None:
    """Before a write by someone else, the kernel asks the filesystem, as the writer, to
    clear setuid/setgid with a chmod: allowed, and nothing more."""
    write_file(store, "/pub/a", b"abc", ctx=ALICE)
    store.chmod("/pub/a", 0o6777, ctx=ALICE)
    for refused in (0o6777, 0o6776, 0o7777, 0o4777 | 0o1000, 0o0700):
        assert errno_of(lambda m=refused: store.chmod("/pub/a", m, ctx=BOB)) == errno.EPERM
    store.chmod("/pub/a", 0o2777, ctx=BOB)  # setuid only
    store.chmod("/pub/a", 0o0777, ctx=BOB)
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o777
    store.chmod("/pub/a", 0o2767, ctx=ALICE)  # setgid without group-execute
    store.chmod("/pub/a", 0o0767, ctx=BOB)  # bob is not in the group: a write clears it
    store.chmod("/pub/a", 0o2767, ctx=ALICE)
    member = Context(1001, 1000, 7)
    assert errno_of(lambda: store.chmod("/pub/a", 0o0767, ctx=member)) == errno.EPERM
    store.chmod("/pub/a", 0o6755, ctx=ALICE)  # bob may not write: he may not clear
    assert errno_of(lambda: store.chmod("/pub/a", 0o0755, ctx=BOB)) == errno.EPERM
    assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == 0o6755


def test_write_clears_setgid_without_group_execute_for_non_members(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"abc", ctx=ALICE, mode=0o666)
    fh = store.open("/pub/a", os.O_WRONLY, ctx=ROOT)
    for writer, after in ((Context(1001, 1000, 7), 0o2767), (BOB, 0o0767)):
        store.chmod("/pub/a", 0o2767, ctx=ALICE)
        store.write(None, b"x", 0, fh, ctx=writer)
        assert stat.S_IMODE(store.getattr("/pub/a")["st_mode"]) == after
    store.release(None, fh)


def test_supplementary_groups_are_read_from_the_calling_process() -> None:
    me = Context(os.geteuid(), os.getegid(), os.getpid())
    assert permissions.supplementary_groups(me) == frozenset(os.getgroups())
    assert permissions.supplementary_groups(me._replace(uid=me.uid + 1)) == frozenset()
    assert permissions.supplementary_groups(me._replace(pid=1 << 30)) == frozenset()


def test_utimens_permissions(store: MemoryStore) -> None:
    write_file(store, "/pub/mine", b"", ctx=ALICE, mode=0o644)
    write_file(store, "/pub/open", b"", ctx=ALICE, mode=0o666)
    explicit = (1, 2)
    assert errno_of(lambda: store.utimens("/pub/mine", explicit, ctx=BOB)) == errno.EPERM
    assert errno_of(lambda: store.utimens("/pub/open", explicit, ctx=BOB)) == errno.EPERM
    assert errno_of(lambda: store.utimens("/pub/mine", None, ctx=BOB)) == errno.EACCES
    now = (UTIME_NOW, UTIME_NOW)
    assert errno_of(lambda: store.utimens("/pub/mine", now, ctx=BOB)) == errno.EACCES
    store.utimens("/pub/open", None, ctx=BOB)
    store.utimens("/pub/open", now, ctx=BOB)
    store.utimens("/pub/mine", explicit, ctx=ALICE)
    store.utimens("/pub/mine", explicit, ctx=ROOT)


@pytest.mark.parametrize(
    ("mode", "ctx", "amode", "ok"),
    [
        (0o000, ROOT, os.R_OK | os.W_OK, True),
        (0o000, ROOT, os.X_OK, False),
        (0o001, ROOT, os.X_OK, True),
        (0o600, ALICE, os.R_OK | os.W_OK, True),
        (0o600, ALICE, os.X_OK, False),
        (0o060, ALICE, os.R_OK, False),  # owner bits decide for the owner
        (0o060, CAROL_IN_ALICE_GROUP, os.R_OK | os.W_OK, True),
        (0o006, CAROL_IN_ALICE_GROUP, os.R_OK, False),
        (0o004, BOB, os.R_OK, True),
        (0o004, BOB, os.W_OK, False),
        (0o000, BOB, os.F_OK, True),
    ],
)
def test_access(store: MemoryStore, mode: int, ctx: Context, amode: int, ok: bool) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE, mode=mode)
    store.chmod("/pub/a", mode, ctx=ROOT)
    if ok:
        store.access("/pub/a", amode, ctx=ctx)
    else:
        assert errno_of(lambda: store.access("/pub/a", amode, ctx=ctx)) == errno.EACCES


def test_root_may_search_any_directory(store: MemoryStore) -> None:
    store.chmod("/empty", 0o000)
    store.access("/empty", os.X_OK, ctx=ROOT)


def test_open_checks_mode_bits(store: MemoryStore) -> None:
    write_file(store, "/pub/a", b"", ctx=ALICE, mode=0o640)
    assert errno_of(lambda: store.open("/pub/a", os.O_RDONLY, ctx=BOB)) == errno.EACCES
    assert errno_of(lambda: store.open("/pub/a", os.O_WRONLY, ctx=CAROL_IN_ALICE_GROUP)) == (
        errno.EACCES
    )
    store.release(None, store.open("/pub/a", os.O_RDONLY, ctx=CAROL_IN_ALICE_GROUP))
    assert errno_of(lambda: store.truncate("/pub/a", 0, ctx=BOB)) == errno.EACCES


def test_creating_needs_write_permission_on_the_directory(store: MemoryStore) -> None:
    for call in (
        lambda: store.mkdir("/dir/x", 0o755, ctx=ALICE),
        lambda: store.create("/dir/x", 0o644, ctx=ALICE),
        lambda: store.symlink("/dir/x", "y", ctx=ALICE),
        lambda: store.mknod("/dir/x", stat.S_IFIFO | 0o644, 0, ctx=ALICE),
        lambda: store.link("/dir/x", "/file", ctx=ALICE),
        lambda: store.unlink("/dir/file", ctx=ALICE),
        lambda: store.rmdir("/dir/sub", ctx=ALICE),
    ):
        assert errno_of(call) == errno.EACCES


def test_creator_may_write_a_file_created_read_only(store: MemoryStore) -> None:
    fh = store.create("/pub/ro", 0o444, os.O_WRONLY, ctx=ALICE)
    store.write(None, b"fine", 0, fh, ctx=ALICE)
    store.release(None, fh)


def test_sticky_directory(store: MemoryStore) -> None:
    write_file(store, "/pub/alices", b"", ctx=ALICE)
    store.mkdir("/pub/alicedir", 0o777, ctx=ALICE)
    for call in (
        lambda: store.unlink("/pub/alices", ctx=BOB),
        lambda: store.rmdir("/pub/alicedir", ctx=BOB),
        lambda: store.rename("/pub/alices", "/pub/bobs", ctx=BOB),
        lambda: store.rename("/pub/alicedir", "/pub/bobdir", ctx=BOB),
    ):
        assert errno_of(call) == errno.EPERM
    write_file(store, "/pub/bobs", b"", ctx=BOB)
    assert errno_of(lambda: store.rename("/pub/bobs", "/pub/alices", ctx=BOB)) == errno.EPERM
    store.rename("/pub/alices", "/pub/alices2", ctx=ALICE)
    store.unlink("/pub/alices2", ctx=ROOT)
    store.chown("/pub", 1001, -1, ctx=ROOT)  # bob owns the directory now
    store.rmdir("/pub/alicedir", ctx=BOB)
