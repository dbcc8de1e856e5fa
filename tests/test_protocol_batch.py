"""Record batches and varints: property round trips and corruption detection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.protocol import (
    CorruptBatchError,
    NewRecord,
    build_batch,
    decode_batch,
    set_base_offset,
    set_log_append_time,
    split_batches,
    validate_batch,
)
from headwater.protocol._varint import decode_varint, encode_varint

records = st.lists(
    st.builds(
        NewRecord,
        key=st.none() | st.binary(max_size=40),
        value=st.none() | st.binary(max_size=200),
        timestamp_ms=st.integers(0, 2**41),
        headers=st.lists(
            st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=10)), max_size=3
        ).map(tuple),
    ),
    min_size=1,
    max_size=30,
)


@given(st.integers(-(2**63), 2**63 - 1))
def test_varint_round_trip(value: int) -> None:
    out = bytearray()
    encode_varint(value, out)
    assert decode_varint(out, 0) == (value, len(out))


@given(records, st.sampled_from([0, 1, 2, 3, 4]), st.integers(0, 2**40))
def test_batch_round_trip(batch: list[NewRecord], codec: int, base: int) -> None:
    data = build_batch(batch, compression=codec)
    set_base_offset(data, 0, base)
    header, decoded = decode_batch(data)
    assert header.records_count == len(batch)
    assert header.base_offset == base
    assert [r.offset for r in decoded] == list(range(base, base + len(batch)))
    assert [(r.key, r.value, r.timestamp_ms, r.headers) for r in decoded] == [
        (r.key, r.value, r.timestamp_ms, r.headers) for r in batch
    ]


@given(records, st.data())
def test_any_flipped_byte_is_detected(batch: list[NewRecord], data: st.DataObject) -> None:
    raw = build_batch(batch)
    # Bytes 0..11 (base offset, length) and 12..15 (leader epoch) are outside the CRC by design;
    # a changed length is caught by the length check instead.
    position = data.draw(st.integers(16, len(raw) - 1))
    raw[position] ^= 0x5A
    with pytest.raises(CorruptBatchError):
        validate_batch(raw)


def test_log_append_time_keeps_crc_valid() -> None:
    raw = build_batch([NewRecord(b"k", b"v", 1000)])
    set_log_append_time(raw, 0, len(raw), 123456)
    header = validate_batch(raw)
    assert header.log_append_time
    assert header.max_timestamp == 123456


def test_split_batches_rejects_partial_tail() -> None:
    one = build_batch([NewRecord(None, b"a", 1)])
    two = build_batch([NewRecord(None, b"b", 2)])
    assert len(split_batches(one + two)) == 2
    with pytest.raises(CorruptBatchError):
        split_batches(one + two[:-1])
    with pytest.raises(CorruptBatchError):
        split_batches(b"")
