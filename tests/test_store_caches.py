"""MemoryStore's two caches answer exactly what a fresh walk and a fresh ``stat`` would.

The path cache (:mod:`defuse2.store.pathcache`) remembers which inode a plain path names;
each inode keeps its ``stat`` mapping until it changes. Neither may ever show a removed
name, a moved directory's old subtree, or an attribute that has since changed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random

import pytest

from defuse2.store import pathcache
from defuse2.store.base import RENAME_EXCHANGE
from defuse2.store.inode import Inode
from defuse2.store.memory import MemoryStore
from errnos import errno_of


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(quota="16 MiB")


def touch(s: MemoryStore, path: str, data: bytes = b"") -> None:
    fh = s.create(path, 0o644, os.O_WRONLY)
    s.write(path, data, 0, fh)
    s.release(path, fh)


def ino(s: MemoryStore, path: str) -> int:
    return s.getattr(path)["st_ino"]


def test_unlink_forgets_the_name(store: MemoryStore) -> None:
    touch(store, "/f")
    store.getattr("/f")
    store.unlink("/f")
    assert errno_of(lambda: store.getattr("/f")) == errno.ENOENT
    touch(store, "/f", b"new")
    assert store.getattr("/f")["st_size"] == 3


def test_renaming_a_directory_moves_every_path_below_it(store: MemoryStore) -> None:
    store.mkdir("/a", 0o755)
    store.mkdir("/a/b", 0o755)
    touch(store, "/a/b/f", b"x")
    inode = ino(store, "/a/b/f")
    store.rename("/a", "/z")
    for gone in ("/a", "/a/b", "/a/b/f"):
        assert errno_of(lambda gone=gone: store.getattr(gone)) == errno.ENOENT
    assert ino(store, "/z/b/f") == inode
    store.mkdir("/a", 0o755)
    assert errno_of(lambda: store.getattr("/a/b/f")) == errno.ENOENT


def test_a_replaced_name_names_the_new_file(store: MemoryStore) -> None:
    touch(store, "/old", b"1")
    touch(store, "/new", b"22")
    source = ino(store, "/old")
    store.getattr("/new")
    store.rename("/old", "/new")
    assert ino(store, "/new") == source
    assert errno_of(lambda: store.getattr("/old")) == errno.ENOENT


def test_an_exchange_swaps_what_both_names_name(store: MemoryStore) -> None:
    store.mkdir("/d", 0o755)
    touch(store, "/d/f")
    touch(store, "/g")
    directory, file = ino(store, "/d"), ino(store, "/g")
    store.getattr("/d/f")
    store.rename("/d", "/g", RENAME_EXCHANGE)
    assert (ino(store, "/g"), ino(store, "/d")) == (directory, file)
    assert store.getattr("/g/f")
    assert errno_of(lambda: store.getattr("/d/f")) == errno.ENOTDIR


def test_a_directory_made_again_is_a_new_one(store: MemoryStore) -> None:
    store.mkdir("/d", 0o755)
    first = ino(store, "/d")
    store.rmdir("/d")
    store.mkdir("/d", 0o755)
    assert ino(store, "/d") != first


def test_the_other_hard_link_stays(store: MemoryStore) -> None:
    touch(store, "/a", b"data")
    store.link("/b", "/a")
    store.getattr("/a"), store.getattr("/b")
    store.unlink("/a")
    assert store.getattr("/b")["st_nlink"] == 1
    assert errno_of(lambda: store.getattr("/a")) == errno.ENOENT


def test_hidden_names_go_with_their_directory(store: MemoryStore) -> None:
    store.mkdir("/d", 0o755)
    touch(store, "/d/f")
    fh = store.open("/d/f", os.O_RDONLY)
    store.rename("/d/f", "/d/.fuse_hidden01")
    assert store.getattr("/d/.fuse_hidden01")["st_nlink"] == 0
    store.rmdir("/d")
    assert errno_of(lambda: store.getattr("/d/.fuse_hidden01")) == errno.ENOENT
    assert store.getattr(None, fh)["st_nlink"] == 0
    store.release(None, fh)


def test_paths_through_a_symlink_follow_its_replacement(store: MemoryStore) -> None:
    for directory in ("/a", "/b"):
        store.mkdir(directory, 0o755)
        touch(store, f"{directory}/f", directory.encode())
    store.symlink("/l", "/a")
    assert ino(store, "/l/f") == ino(store, "/a/f")
    store.unlink("/l")
    store.symlink("/l", "/b")
    assert ino(store, "/l/f") == ino(store, "/b/f")


@pytest.mark.parametrize("spelling", ["/d/./f", "/d//f", "//d/f", "/d/../d/f", "/d/f/"])
def test_other_spellings_of_a_path_still_walk(store: MemoryStore, spelling: str) -> None:
    store.mkdir("/d", 0o755)
    touch(store, "/d/f")
    if spelling.endswith("/"):
        assert errno_of(lambda: store.getattr(spelling)) == errno.ENOTDIR
    else:
        assert ino(store, spelling) == ino(store, "/d/f")
    store.unlink("/d/f")
    assert errno_of(lambda: store.getattr(spelling)) == errno.ENOENT
    assert errno_of(lambda: store.getattr("/d/f")) == errno.ENOENT


def test_a_missing_path_is_not_remembered(store: MemoryStore) -> None:
    assert errno_of(lambda: store.getattr("/f")) == errno.ENOENT
    touch(store, "/f")
    assert store.getattr("/f")["st_size"] == 0


def test_the_cache_starts_over_when_full(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pathcache, "MAX_PATHS", 8)
    for index in range(20):
        touch(store, f"/f{index}", b"x" * index)
    for index in range(20):
        assert store.getattr(f"/f{index}")["st_size"] == index
    assert len(store._namespace.paths) <= 8
    store.unlink("/f19")
    assert errno_of(lambda: store.getattr("/f19")) == errno.ENOENT


def test_a_kept_stat_is_never_changed_in_place(store: MemoryStore) -> None:
    touch(store, "/f", b"abc")
    before = store.getattr("/f")
    copy = dict(before)
    fh = store.open("/f", os.O_WRONLY)
    store.write("/f", b"defg", 3, fh)
    store.release("/f", fh)
    assert before == copy
    assert store.getattr("/f")["st_size"] == 7


def test_only_the_latest_stats_are_kept(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from defuse2.store import inode

    monkeypatch.setattr(inode, "MAX_KEPT_STATS", 4)
    for index in range(20):
        touch(store, f"/f{index}", b"x" * index)
    for _ in range(2):
        for index in range(20):
            assert store.getattr(f"/f{index}")["st_size"] == index
    nodes = [store._namespace.lookup(f"/f{index}") for index in range(20)]
    assert sum(node.cached_stat is not None for node in nodes) <= 4


# -- every operation, at random, checked against fresh walks and fresh stats --------------

NAMES = ("a", "b", "c", ".fuse_hidden9")


def random_path(rng: random.Random) -> str:
    return "/" + "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 3)))


def random_step(s: MemoryStore, rng: random.Random, handles: list[int]) -> None:
    path, other = random_path(rng), random_path(rng)
    choice = rng.randrange(16)
    if choice == 0:
        s.mkdir(path, 0o755)
    elif choice == 1:
        handles.append(s.create(path, 0o644, os.O_RDWR))
    elif choice == 2:
        s.unlink(path)
    elif choice == 3:
        s.rmdir(path)
    elif choice == 4:
        s.rename(path, other, rng.choice((0, 0, RENAME_EXCHANGE)))
    elif choice == 5:
        s.link(other, path)
    elif choice == 6:
        s.symlink(path, rng.choice(("/a", "/b/c", "a", "..")))
    elif choice == 7:
        s.chmod(path, rng.choice((0o644, 0o4755, 0o700)))
    elif choice == 8:
        s.utimens(path, (rng.randrange(10**18), rng.randrange(10**18)))
    elif choice == 9:
        s.truncate(path, rng.randrange(200_000))
    elif choice == 10:
        s.setxattr(path, "user.k", b"v" * rng.randrange(10), 0)
    elif choice == 11 and handles:
        fh = rng.choice(handles)
        s.write(None, b"w" * rng.randrange(1, 70_000), rng.randrange(100_000), fh)
    elif choice == 12 and handles:
        fh = handles.pop(rng.randrange(len(handles)))
        s.release(None, fh)
    elif choice == 13 and handles:
        s.read(None, 4096, rng.randrange(100_000), rng.choice(handles))
    elif choice == 14:
        s.readdir(path)
    else:
        s.getattr(path)


def every_inode(s: MemoryStore) -> list[Inode]:
    found, pending = [], [s._namespace.root]
    while pending:
        node = pending.pop()
        found.append(node)
        if node.children is not None:
            pending.extend(node.children.values())
    return found


def check_caches(s: MemoryStore, handles: list[int]) -> None:
    namespace = s._namespace
    for path, node in list(namespace.paths._nodes.items()):
        directory, name = namespace._walk(path)[:2]
        assert (directory if name is None else namespace.child(directory, name)) is node, path
    nodes = every_inode(s) + [s._handles.get(fh).inode for fh in handles]
    for node in nodes:
        if node.cached_stat is not None:
            assert node.cached_stat == node.fresh_stat()
        if node.children is not None:
            hidden = [name for name in node.children if name.startswith(".fuse_hidden")]
            assert node.hidden_entries == len(hidden)


@pytest.mark.parametrize("seed", range(6))
def test_caches_agree_with_fresh_answers(seed: int) -> None:
    rng = random.Random(seed)
    s = MemoryStore(quota="64 MiB")
    handles: list[int] = []
    for _ in range(1500):
        with contextlib.suppress(OSError):
            random_step(s, rng, handles)
        for path in (random_path(rng), random_path(rng)):
            with contextlib.suppress(OSError):
                s.getattr(path)  # fill the caches
        check_caches(s, handles)
        check_find(s, random_path(rng))


def check_find(s: MemoryStore, path: str) -> None:
    """``Namespace.find`` names what ``lookup`` names, and ``None`` where it says ENOENT
    or ENOTDIR."""
    namespace = s._namespace
    try:
        expected = namespace.lookup(path)
    except (FileNotFoundError, NotADirectoryError):
        expected = None
    except OSError as error:  # ELOOP: find raises it too
        assert errno_of(lambda: namespace.find(path)) == error.errno
        return
    assert namespace.find(path) is expected, path


def test_readers_never_see_a_size_go_back_or_a_moved_path_stay() -> None:
    """Lock-free answers from the caches, under threads: an appended file's size never
    shrinks for any reader, and a path read while its directory moves back and forth
    names the file or nothing."""
    import sys
    import threading

    s = MemoryStore(quota="64 MiB")
    s.mkdir("/d1", 0o755)
    touch(s, "/d1/f")
    file_ino = ino(s, "/d1/f")
    s.release(None, s.create("/log", 0o644))
    fh = s.open("/log", os.O_WRONLY)
    done = threading.Event()
    errors: list[str] = []

    def append() -> None:
        for offset in range(0, 3000 * 10, 10):
            s.write(None, b"x" * 10, offset, fh)
        done.set()

    def move() -> None:
        while not done.is_set():
            s.rename("/d1", "/d2")
            s.rename("/d2", "/d1")

    def read() -> None:
        last = 0
        while not done.is_set():
            size = s.getattr("/log")["st_size"]
            if size < last:
                errors.append(f"size went back from {last} to {size}")
            last = size
            for path in ("/d1/f", "/d2/f"):
                try:
                    if s.getattr(path)["st_ino"] != file_ino:
                        errors.append(f"{path} named another inode")
                except FileNotFoundError:
                    pass

    threads = [threading.Thread(target=work) for work in (append, move, read, read)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:5]
    assert ino(s, "/d1/f") == file_ino
    assert errno_of(lambda: s.getattr("/d2/f")) == errno.ENOENT
    assert s.getattr("/log")["st_size"] == 30000
    s.release(None, fh)
