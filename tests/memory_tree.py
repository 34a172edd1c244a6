"""A small MemoryStore tree, the callers the MemoryStore tests act as, and helpers that write
and read a whole file."""

from __future__ import annotations

import os

from defuse2.store.base import Context
from defuse2.store.memory import MemoryStore

ROOT = Context(0, 0, 1)
ALICE = Context(1000, 1000, 2)
BOB = Context(1001, 1001, 3)
CAROL_IN_ALICE_GROUP = Context(1002, 1000, 4)


def small_tree() -> MemoryStore:
    """A store holding a small tree::

    /dir/         0755 root
    /dir/sub/     0755 root
    /dir/file     "data"
    /file         "hello"
    /link         -> file
    /empty/       0755 root
    /pub/         1777 root (sticky, world-writable)
    """
    s = MemoryStore(quota="1 MiB", max_nodes=1000)
    s.mkdir("/dir", 0o755, ctx=ROOT)
    s.mkdir("/dir/sub", 0o755, ctx=ROOT)
    s.mkdir("/empty", 0o755, ctx=ROOT)
    s.mkdir("/pub", 0o1777, ctx=ROOT)
    write_file(s, "/dir/file", b"data")
    write_file(s, "/file", b"hello")
    s.symlink("/link", "file", ctx=ROOT)
    return s


def write_file(
    s: MemoryStore, path: str, data: bytes, ctx: Context = ROOT, mode: int = 0o644
) -> None:
    fh = s.create(path, mode, os.O_WRONLY | os.O_TRUNC, ctx=ctx)
    try:
        s.write(path, data, 0, fh, ctx=ctx)
    finally:
        s.release(path, fh)


def read_file(s: MemoryStore, path: str) -> bytes:
    fh = s.open(path, os.O_RDONLY, ctx=ROOT)
    try:
        return s.read(path, 1 << 30, 0, fh)
    finally:
        s.release(path, fh)
