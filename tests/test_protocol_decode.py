"""The bounds-checked request decoder: every length is checked before anything is allocated.

kio's native reader is the oracle for well-formed input: whatever the bounded decoder accepts,
kio decodes to the same entity and the same length. kio is only ever called on input the
bounded decoder accepted, because on hostile input it aborts the process.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_reader

from headwater.broker._registry import HANDLERS
from headwater.broker._server import Broker  # noqa: F401  (registers handlers)
from headwater.protocol import ProtocolError
from headwater.protocol._codec import decode_request, request_type
from headwater.protocol._decode import MalformedRequest, decode_entity, entity_min_bytes
from rawkafka import encode_request

HANDLED = [
    (h.api_key, v) for h in HANDLERS.values() for v in range(h.min_version, h.max_version + 1)
]


def uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def flexible_header(api_key: int, version: int) -> bytes:
    return struct.pack(">hhih", api_key, version, 1, 1) + b"x" + b"\x00"


def legacy_header(api_key: int, version: int) -> bytes:
    return struct.pack(">hhih", api_key, version, 1, 1) + b"x"


def test_the_array_length_that_aborted_the_broker_is_refused() -> None:
    # Metadata v12 with a topics count of 2**32 - 2: kio's native reader asked for 34 GB.
    frame = flexible_header(3, 12) + uvarint(2**32 - 1) + bytes(10)
    with pytest.raises(MalformedRequest, match="claims 4294967294 elements"):
        decode_request(frame)


@pytest.mark.parametrize("count", [2**31 - 1, 1_000_000, 3])
def test_legacy_array_longer_than_the_frame_is_refused(count: int) -> None:
    frame = legacy_header(3, 4) + struct.pack(">i", count) + b"\x00\x01a" + b"\x01"
    with pytest.raises(MalformedRequest, match="elements"):
        decode_request(frame)


def test_string_longer_than_the_frame_is_refused() -> None:
    # CreateTopics v7: one topic whose compact name claims 2**32 - 2 bytes.
    frame = flexible_header(19, 7) + b"\x02" + uvarint(2**32 - 1) + bytes(20)
    with pytest.raises(MalformedRequest, match="string needs 4294967294 bytes"):
        decode_request(frame)


def test_records_longer_than_the_frame_are_refused() -> None:
    body = struct.pack(">hhi", -1, 1, 1000) + struct.pack(">i", 1)
    body += struct.pack(">h", 1) + b"t" + struct.pack(">i", 1)
    body += struct.pack(">i", 0) + struct.pack(">i", 2**31 - 1) + b"batch"
    with pytest.raises(MalformedRequest, match="bytes needs 2147483647 bytes"):
        decode_request(legacy_header(0, 7) + body)


def test_varint_longer_than_five_bytes_is_refused() -> None:
    frame = flexible_header(3, 12) + b"\xff\xff\xff\xff\xff\x01" + bytes(4)
    with pytest.raises(MalformedRequest, match="varint longer than 5 bytes"):
        decode_request(frame)


def test_negative_legacy_length_other_than_null_is_refused() -> None:
    frame = legacy_header(3, 4) + struct.pack(">i", -7) + b"\x01"
    with pytest.raises(MalformedRequest, match="negative length -7"):
        decode_request(frame)


def test_null_array_where_the_schema_forbids_it_is_refused() -> None:
    # Produce v7 topic_data is not nullable: kio returns None and the handler used to crash.
    frame = legacy_header(0, 7) + struct.pack(">hhii", -1, 1, 1000, -1)
    with pytest.raises(MalformedRequest, match="topic_data is null"):
        decode_request(frame)


def test_null_string_where_the_schema_forbids_it_is_refused() -> None:
    frame = legacy_header(0, 7) + struct.pack(">hhii", -1, 1, 1000, 1) + struct.pack(">hi", -1, 0)
    with pytest.raises(MalformedRequest, match="name is null"):
        decode_request(frame)


def test_nullable_array_may_be_null() -> None:
    # Metadata v4: a null topics array asks for every topic.
    _, body = decode_request(legacy_header(3, 4) + struct.pack(">i", -1) + b"\x01")
    assert body.topics is None


@pytest.mark.parametrize("marker", [b"\xff", b"\xfb", b"\x80"])
def test_any_negative_presence_byte_is_a_null_struct(marker: bytes) -> None:
    # DescribeTopicPartitions v0: Kafka's generated reader takes a presence byte < 0 for null.
    topics = b"\x02" + b"\x02t" + b"\x00"
    frame = flexible_header(75, 0) + topics + struct.pack(">i", 4) + marker + b"\x00"
    _, body = decode_request(frame)
    assert body.cursor is None
    assert body.response_partition_limit == 4


def test_present_struct_is_read_after_its_presence_byte() -> None:
    topics = b"\x02" + b"\x02t" + b"\x00"
    cursor = b"\x01" + b"\x02t" + struct.pack(">i", 3) + b"\x00"
    frame = flexible_header(75, 0) + topics + struct.pack(">i", 4) + cursor + b"\x00"
    _, body = decode_request(frame)
    assert body.cursor is not None
    assert (body.cursor.topic_name, body.cursor.partition_index) == ("t", 3)


def test_unknown_tagged_fields_are_skipped() -> None:
    tags = b"\x02" + uvarint(99) + b"\x03abc" + uvarint(1000) + b"\x00"
    _, body = decode_request(flexible_header(3, 12) + b"\x01" + b"\x00\x00" + tags)
    assert body.topics == ()
    assert body.allow_auto_topic_creation is False


def test_known_tagged_field_is_read_inside_its_window() -> None:
    frame = encode_request(1, 12, {"topics": []})[4:]
    plain, _ = decode_request(frame)
    # Fetch v12 with cluster_id (tag 0) set: replace the body's empty tag section.
    tagged = frame[:-1] + b"\x01" + b"\x00" + b"\x04" + b"\x04abc"
    _, body = decode_request(tagged)
    assert body.cluster_id == "abc"
    wrong_size = frame[:-1] + b"\x01" + b"\x00" + b"\x05" + b"\x04abc" + b"\x00"
    with pytest.raises(MalformedRequest, match="tagged field cluster_id is 5 bytes"):
        decode_request(wrong_size)
    assert plain.api_key == 1


def test_tag_count_larger_than_the_frame_is_refused() -> None:
    frame = flexible_header(3, 12) + b"\x01\x00\x00" + uvarint(2**32 - 1)
    with pytest.raises(MalformedRequest, match="tagged fields cannot fit"):
        decode_request(frame)


def test_invalid_utf8_is_refused() -> None:
    frame = flexible_header(3, 12) + b"\x02" + bytes(16) + b"\x03\xff\xfe\x00" + b"\x01\x00\x00"
    with pytest.raises(MalformedRequest, match="utf-8"):
        decode_request(frame)


@pytest.mark.parametrize(("api_key", "version"), HANDLED)
def test_every_handled_request_has_a_bounded_reader(api_key: int, version: int) -> None:
    assert entity_min_bytes(request_type(api_key, version)) >= 0
    frame = encode_request(api_key, version, {})[4:]
    header_type = HeaderV2 if request_type(api_key, version).__flexible__ else HeaderV1
    ours, used = decode_entity(header_type, frame)
    theirs, native_used = entity_reader(header_type)(memoryview(frame), 0)
    assert (ours, used) == (theirs, native_used)
    body, end = decode_entity(request_type(api_key, version), frame, used)
    native_body, native_end = entity_reader(request_type(api_key, version))(memoryview(frame), used)
    assert (body, end - used) == (native_body, native_end)


def sample_frames() -> list[bytes]:
    return [
        encode_request(0, 9, {"acks": -1, "timeout": 100, "topic_data": [_produce_topic()]}),
        encode_request(0, 7, {"acks": 1, "timeout": 100, "topic_data": [_produce_topic()]}),
        encode_request(1, 12, {"max_wait": 5, "topics": [_fetch_topic()], "rack_id": "r"}),
        encode_request(1, 4, {"max_wait": 5, "topics": [_fetch_topic()]}),
        encode_request(3, 12, {"topics": [{"name": "a"}, {"name": "b"}]}),
        encode_request(
            11, 5, {"group_id": "g", "protocols": [{"name": "range", "metadata": b"m"}]}
        ),
        encode_request(19, 7, {"topics": [{"name": "t", "num_partitions": 3, "configs": []}]}),
    ]


def _produce_topic() -> dict[str, object]:
    return {"name": "t", "partition_data": [{"index": 0, "records": b"records"}]}


def _fetch_topic() -> dict[str, object]:
    return {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 5}]}


@given(st.sampled_from(sample_frames()), st.data())
def test_whatever_the_bounded_decoder_accepts_kio_reads_the_same(
    frame: bytes, data: st.DataObject
) -> None:
    raw = bytearray(frame[4:])
    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(8, len(raw)))]
    try:
        header, body = decode_request(bytes(raw))
    except ProtocolError:
        return
    # Accepted, so every length fits the frame: now kio's native reader is safe to call.
    body_type = request_type(header.api_key, header.api_version)
    header_type = HeaderV2 if body_type.__flexible__ else HeaderV1
    try:
        _, used = entity_reader(header_type)(memoryview(bytes(raw)), 0)
        native, _ = entity_reader(body_type)(memoryview(bytes(raw)), used)
    except Exception as exc:
        # Where the two differ, the bounded decoder follows Kafka: any non-zero byte is a
        # true boolean, unknown tagged fields are skipped, any int64 is a duration.
        deliberate = ("boolean", "tagged field", "milliseconds overflow")
        assert any(word in str(exc) for word in deliberate), exc
        return
    assert native == body


def test_durations_beyond_a_timedelta_are_clamped_not_refused() -> None:
    # OffsetCommit v2 retention_time_ms = Long.MAX_VALUE, which Kafka reads as "forever".
    body = {"group_id": "g", "retention_time": 123_456_789, "topics": []}
    frame = bytearray(encode_request(8, 2, body)[4:])
    at = frame.index(struct.pack(">q", 123_456_789))
    frame[at : at + 8] = struct.pack(">q", 2**63 - 1)
    _, decoded = decode_request(bytes(frame))
    assert decoded.retention_time.days == 999_999_999
