"""MemoryStore and libfuse's ``.fuse_hidden`` names (unlink while open without
``hard_remove``): invisible, uncounted and dropped with their directory."""

from __future__ import annotations

import errno
import io
import os

import pytest

from defuse2.store.content import CHUNK_COST
from defuse2.store.memory import MemoryStore
from defuse2.store.namespace import entry_cost
from defuse2.store.quota import NODE_COST
from errnos import errno_of
from memory_tree import small_tree


@pytest.fixture
def store() -> MemoryStore:
    """The small tree of :func:`memory_tree.small_tree`."""
    return small_tree()


def hide(s: MemoryStore, path: str, number: int = 1) -> str:
    """What libfuse does when an open file is unlinked: rename it to a hidden name."""
    hidden = path.rsplit("/", 1)[0] + f"/.fuse_hidden{number:016x}"
    s.rename(path, hidden)
    return hidden


def test_hidden_names_are_invisible(store: MemoryStore) -> None:
    used, nodes = store.quota.used, store.quota.nodes
    fh = store.open("/dir/file", os.O_RDWR)
    hidden = hide(store, "/dir/file")
    assert store.readdir("/dir") == ["sub"]
    assert store.getattr(hidden)["st_nlink"] == 0
    assert store.getattr(None, fh)["st_nlink"] == 0
    assert store.read(None, 10, 0, fh) == b"data"
    store.write(None, b"more", 4, fh)
    renamed = entry_cost(hidden.rpartition("/")[2]) - entry_cost("file")
    assert (store.quota.used, store.quota.nodes) == (used + renamed + 4, nodes)
    store.release(None, fh)
    store.unlink(hidden)  # libfuse, at the last release
    file = NODE_COST + entry_cost("file") + len(b"data") + CHUNK_COST
    assert (store.quota.used, store.quota.nodes) == (used - file, nodes - 1)


def test_hidden_names_do_not_count_in_nlink_of_other_links(store: MemoryStore) -> None:
    store.link("/dir/hard", "/dir/file")
    fh = store.open("/dir/file", os.O_RDONLY)
    hidden = hide(store, "/dir/file")
    assert store.getattr("/dir/hard")["st_nlink"] == 1
    assert store.getattr(hidden)["st_nlink"] == 1
    store.rename(hidden, "/dir/visible-again")
    assert store.getattr("/dir/hard")["st_nlink"] == 2
    store.release(None, fh)


def test_rmdir_ignores_and_drops_hidden_names(store: MemoryStore) -> None:
    used = store.quota.used
    fh = store.open("/dir/file", os.O_RDWR)
    hidden = hide(store, "/dir/file")
    store.rmdir("/dir/sub")
    store.rmdir("/dir")
    assert errno_of(lambda: store.unlink(hidden)) == errno.ENOENT
    assert store.read(None, 10, 0, fh) == b"data"
    directories = 2 * NODE_COST + entry_cost("sub") + entry_cost("dir")
    assert store.quota.used == used - directories - entry_cost("file")  # names gone
    store.release(None, fh)
    file = NODE_COST + len(b"data") + CHUNK_COST
    assert store.quota.used == used - directories - entry_cost("file") - file


def test_rename_over_a_directory_ignores_and_drops_hidden_names(store: MemoryStore) -> None:
    fh = store.open("/dir/file", os.O_RDONLY)
    hide(store, "/dir/file")
    store.rmdir("/dir/sub")
    store.rename("/empty", "/dir")
    assert store.readdir("/dir") == []
    assert store.read(None, 10, 0, fh) == b"data"
    store.release(None, fh)


def test_hidden_names_are_not_exported(store: MemoryStore) -> None:
    fh = store.open("/dir/file", os.O_RDONLY)
    hide(store, "/dir/file")
    buffer = io.BytesIO()
    store.export_tar(buffer)
    copy = MemoryStore(quota="1 MiB")
    buffer.seek(0)
    copy.import_tar(buffer)
    assert copy.readdir("/dir") == ["sub"]
    store.release(None, fh)
