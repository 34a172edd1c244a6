"""The chunked file content against a plain ``bytearray`` model (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from defuse2.store.content import CHUNK_COST, CHUNK_SIZE, Content

C = CHUNK_SIZE
OFFSETS = st.one_of(
    st.integers(0, 4 * C),
    st.sampled_from([C - 1, C, C + 1, 2 * C - 1, 3 * C]),
)
OPS = st.one_of(
    st.tuples(st.just("write"), OFFSETS, st.binary(min_size=0, max_size=2 * C + 3)),
    st.tuples(st.just("truncate"), OFFSETS, st.just(b"")),
    st.tuples(st.just("allocate"), OFFSETS, st.integers(1, 2 * C)),
    st.tuples(st.just("allocate_keep"), OFFSETS, st.integers(1, 2 * C)),
    st.tuples(st.just("punch"), OFFSETS, st.integers(1, 2 * C)),
)


def check(content: Content, model: bytearray) -> None:
    assert content.size == len(model)
    assert content.read(0, len(model) + 10) == bytes(model)
    assert content.allocated == sum(len(chunk) for chunk in content.chunks.values())
    assert content.cost() == content.allocated + CHUNK_COST * len(content.chunks)
    for index, chunk in content.chunks.items():
        assert 0 < len(chunk) <= C
        assert index * C + len(chunk) <= content.size  # nothing kept past the end
    assert b"".join(content.iter_bytes(1000)) == bytes(model)


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=20), st.lists(st.tuples(OFFSETS, OFFSETS), max_size=5))
def test_content_behaves_like_a_bytearray(
    ops: list[tuple[str, int, object]], reads: list[tuple[int, int]]
) -> None:
    content, model = Content(), bytearray()
    for kind, offset, arg in ops:
        if kind == "write":
            assert isinstance(arg, bytes)
            cost = content.write_cost(offset, len(arg))
            before = content.cost()
            content.write(arg, offset)
            assert content.cost() - before == cost
            if arg:
                if offset > len(model):
                    model.extend(bytes(offset - len(model)))
                model[offset : offset + len(arg)] = arg
        elif kind == "truncate":
            before = content.cost()
            freed = content.truncate(offset)
            assert freed == before - content.cost() >= 0
            del model[offset:]
            model.extend(bytes(offset - len(model)))
        elif kind in ("allocate", "allocate_keep"):
            assert isinstance(arg, int)
            keep = kind == "allocate_keep"
            end = min(offset + arg, content.size) if keep else offset + arg
            cost = content.write_cost(offset, end - offset)
            before = content.cost()
            content.allocate(offset, arg, keep_size=keep)
            assert content.cost() - before == cost
            if not keep and offset + arg > len(model):
                model.extend(bytes(offset + arg - len(model)))
        else:
            assert isinstance(arg, int)
            before = content.cost()
            assert content.punch_hole(offset, arg) == before - content.cost()
            end = min(offset + arg, len(model))
            if end > offset:
                model[offset:end] = bytes(end - offset)
        check(content, model)
    for offset, size in reads:
        assert content.read(offset, size) == bytes(model[offset : offset + size])


def test_a_full_chunk_write_costs_its_length_and_no_more() -> None:
    content = Content()
    content.write(b"a" * (3 * C), 0)
    assert content.allocated == 3 * C
    assert len(content.chunks) == 3
    assert content.write_cost(0, 3 * C) == 0
    assert content.cost() == 3 * C + 3 * CHUNK_COST


def test_one_byte_far_away_costs_at_most_a_chunk() -> None:
    content = Content()
    assert content.write_cost(10**12, 1) == 10**12 % C + 1 + CHUNK_COST
    content.write(b"x", 10**12)
    assert content.allocated == 10**12 % C + 1
    assert content.read(10**12 - 2, 4) == b"\0\0x"
    assert content.truncate(5) == 10**12 % C + 1 + CHUNK_COST
    assert content.chunks == {}


def test_reads_accept_memoryview_and_bytearray_writes() -> None:
    content = Content()
    content.write(memoryview(b"hello world")[6:], 0)
    content.write(bytearray(b"W"), 0)
    assert content.read(0, 100) == b"World"
