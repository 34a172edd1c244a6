"""MemoryStore under many threads: writers, renamers and readers at once, then every
byte and every counter checked."""

from __future__ import annotations

import errno
import os
import random
import threading
from collections.abc import Callable

from defuse2.store.base import RENAME_EXCHANGE
from defuse2.store.content import CHUNK_COST
from defuse2.store.memory import MemoryStore
from defuse2.store.namespace import entry_cost

BLOCK = 4096
ROUNDS = 150
WRITERS = 6


def run_all(workers: list[Callable[[], None]]) -> None:
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def wrap(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            try:
                work()
            except BaseException as exc:  # reported below, in the main thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(w)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert not errors, errors


def read_all(s: MemoryStore, path: str) -> bytes:
    fh = s.open(path, os.O_RDONLY)
    try:
        return s.read(path, 1 << 30, 0, fh)
    finally:
        s.release(path, fh)


def test_writers_renamers_and_readers_at_once() -> None:
    s = MemoryStore(quota="64 MiB")
    s.mkdir("/shared", 0o777)
    for name in ("a", "b"):
        s.release(None, s.create(f"/shared/{name}", 0o644))
    shared_fh = s.create("/shared/blocks", 0o644, os.O_RDWR)
    s.truncate(None, WRITERS * ROUNDS * BLOCK, shared_fh)
    expected: dict[str, bytes] = {}

    def writer(index: int) -> Callable[[], None]:
        def work() -> None:
            rng = random.Random(index)
            s.mkdir(f"/w{index}", 0o755)
            path = f"/w{index}/own"
            model = bytearray()
            fh = s.create(path, 0o644, os.O_RDWR)
            for round_ in range(ROUNDS):
                data = bytes([index + 1]) * rng.randrange(1, 3 * BLOCK)
                if rng.random() < 0.6:
                    offset = len(model)
                else:
                    offset = rng.randrange(0, len(model) + 2 * BLOCK)
                s.write(path, data, offset, fh)
                if offset > len(model):
                    model.extend(bytes(offset - len(model)))
                model[offset : offset + len(data)] = data
                block = bytes([(index * ROUNDS + round_) % 255 + 1]) * BLOCK
                s.write(None, block, (round_ * WRITERS + index) * BLOCK, shared_fh)
                if round_ % 10 == 0:
                    moved = f"/w{index}/own-{round_}"
                    s.rename(path, moved)
                    path = moved
            s.release(path, fh)
            s.rename(path, f"/w{index}/final")
            expected[f"/w{index}/final"] = bytes(model)

        return work

    def renamer(name: str) -> Callable[[], None]:
        def work() -> None:
            for _ in range(ROUNDS * 2):
                s.rename("/shared/a", "/shared/b", RENAME_EXCHANGE)
                fh = s.create(f"/shared/{name}", 0o644, os.O_WRONLY)
                s.write(None, b"t" * 100, 0, fh)
                s.rename(f"/shared/{name}", "/shared/a")  # replaces a file being read
                s.release(None, fh)

        return work

    def reader() -> None:
        fh = s.open("/shared/blocks", os.O_RDONLY)
        for _ in range(ROUNDS * 2):
            offset = random.randrange(0, WRITERS * ROUNDS) * BLOCK
            block = s.read(None, BLOCK, offset, fh)
            assert len(block) == BLOCK
            assert block == block[:1] * BLOCK  # a write is never seen half done
            for name in ("a", "b"):
                assert read_all(s, f"/shared/{name}") in (b"", b"t" * 100)
            assert sorted(s.readdir("/shared"))[:2] == ["a", "b"]
        s.release(None, fh)

    run_all(
        [writer(i) for i in range(WRITERS)] + [renamer("tmp1"), renamer("tmp2"), reader, reader]
    )

    for path, data in expected.items():
        assert read_all(s, path) == data
    blocks = s.read(None, WRITERS * ROUNDS * BLOCK, 0, shared_fh)
    for round_ in range(ROUNDS):
        for index in range(WRITERS):
            start = (round_ * WRITERS + index) * BLOCK
            assert (
                blocks[start : start + BLOCK]
                == bytes([(index * ROUNDS + round_) % 255 + 1]) * BLOCK
            )
    s.release(None, shared_fh)
    data_bytes = sum(len(d) for d in expected.values()) + WRITERS * ROUNDS * BLOCK + 2 * 100
    assert stored(s)[0] == data_bytes - sum(
        100 for n in ("a", "b") if not read_all(s, f"/shared/{n}")
    )
    assert s.quota.used == stored(s)[1]
    assert s.quota.nodes == 1 + 1 + 3 + 2 * WRITERS


def stored(s: MemoryStore) -> tuple[int, int]:
    """Bytes of file data in the tree, and all the quota bytes it holds."""
    data = held = 0
    pending = [s._namespace.root]
    while pending:
        node = pending.pop()
        held += node.cost()
        if node.content is not None:
            data += node.content.allocated
        if node.children:
            pending.extend(node.children.values())
            held += sum(entry_cost(name) for name in node.children)
    return data, held


def test_concurrent_writers_share_the_quota_exactly() -> None:
    s = MemoryStore(quota=WRITERS * 50 * BLOCK + 10 * BLOCK)
    refused = [0] * WRITERS

    def writer(index: int) -> Callable[[], None]:
        def work() -> None:
            fh = s.create(f"/f{index}", 0o644, os.O_WRONLY)
            for round_ in range(100):
                try:
                    s.write(None, b"x" * BLOCK, round_ * BLOCK, fh)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    refused[index] += 1
                    break
            s.release(None, fh)

        return work

    run_all([writer(i) for i in range(WRITERS)])
    sizes = [s.getattr(f"/f{i}")["st_size"] for i in range(WRITERS)]
    assert (sum(sizes), s.quota.used) == stored(s)
    assert s.quota.limit - BLOCK - CHUNK_COST < s.quota.used <= s.quota.limit  # full
    assert all(size % BLOCK == 0 for size in sizes)
    for index, size in enumerate(sizes):
        assert refused[index] == (size < 100 * BLOCK)
