"""Bad input gets a clear error and the broker keeps serving everyone else."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.broker import BrokerThread
from headwater.protocol import NewRecord, build_batch
from rawkafka import call, connect, encode_request, read_frame

CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC = 17
INVALID_TIMESTAMP = 32
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42


def _still_serving(bootstrap: str) -> None:
    with connect(bootstrap) as sock:
        response = call(sock, 18, 3, {"client_software_name": "t", "client_software_version": "1"})
        assert response.error_code == 0
        assert any(k.api_key == 0 for k in response.api_keys)


def _closed(sock: socket.socket) -> bool:
    return read_frame(sock) is None


@pytest.mark.parametrize("size", [-1, -2_000_000_000, 2_000_000_000, 3])
def test_bad_frame_sizes_close_only_that_connection(bootstrap: str, size: int) -> None:
    with connect(bootstrap) as sock:
        sock.sendall(struct.pack(">i", size) + b"\x00" * 16)
        assert _closed(sock)
    _still_serving(bootstrap)


def test_truncated_frame(bootstrap: str) -> None:
    with connect(bootstrap) as sock:
        sock.sendall(struct.pack(">i", 500) + b"\x00\x12\x00\x03")
        sock.shutdown(socket.SHUT_WR)
        assert _closed(sock)
    _still_serving(bootstrap)


def test_garbage_bytes(bootstrap: str) -> None:
    with connect(bootstrap) as sock:
        sock.sendall(struct.pack(">i", 64) + bytes(range(64)))
        assert _closed(sock)
    _still_serving(bootstrap)


def test_unknown_api_key(bootstrap: str) -> None:
    with connect(bootstrap) as sock:
        sock.sendall(struct.pack(">ihhi", 10, 9999, 0, 1) + b"\xff\xff")
        assert _closed(sock)
    _still_serving(bootstrap)


def test_unsupported_version_of_a_known_api(bootstrap: str) -> None:
    with connect(bootstrap) as sock:
        sock.sendall(struct.pack(">ihhi", 10, 3, 99, 1) + b"\xff\xff")
        assert _closed(sock)
    _still_serving(bootstrap)


def test_newer_api_versions_gets_v0_answer(bootstrap: str) -> None:
    """Kafka's dance: unknown ApiVersions version -> v0 body, UNSUPPORTED_VERSION, key list."""
    with connect(bootstrap) as sock:
        sock.sendall(struct.pack(">ihhi", 12, 18, 77, 5) + b"\x00\x00" + b"\x00\x00")
        frame = read_frame(sock)
        assert frame is not None
        correlation, error, count = struct.unpack_from(">ihi", frame, 0)
        assert (correlation, error) == (5, UNSUPPORTED_VERSION)
        assert count > 20


def _produce_raw(bootstrap: str, topic: str, partition: int, records: bytes) -> object:
    """Metadata first, which creates ``topic`` as a client's would (a produce never does)."""
    with connect(bootstrap) as sock:
        call(sock, 3, 9, {"topics": [{"name": topic}], "allow_auto_topic_creation": True})
        response = call(
            sock,
            0,
            9,
            {
                "acks": -1,
                "timeout": 5000,
                "topic_data": [
                    {"name": topic, "partition_data": [{"index": partition, "records": records}]}
                ],
            },
        )
    return response.responses[0].partition_responses[0]


def test_bad_crc_is_corrupt_message(bootstrap: str) -> None:
    batch = build_batch([NewRecord(b"k", b"value", 1_700_000_000_000)])
    batch[-1] ^= 0xFF
    result = _produce_raw(bootstrap, "crc", 0, bytes(batch))
    assert result.error_code == CORRUPT_MESSAGE  # type: ignore[attr-defined]
    _still_serving(bootstrap)


def test_truncated_batch_is_corrupt_message(bootstrap: str) -> None:
    batch = build_batch([NewRecord(b"k", b"value" * 10, 1_700_000_000_000)])
    result = _produce_raw(bootstrap, "short", 0, bytes(batch[:-7]))
    assert result.error_code == CORRUPT_MESSAGE  # type: ignore[attr-defined]


def test_unknown_partition(bootstrap: str) -> None:
    batch = build_batch([NewRecord(None, b"v", 1_700_000_000_000)])
    result = _produce_raw(bootstrap, "one-partition", 7, bytes(batch))
    assert result.error_code == UNKNOWN_TOPIC_OR_PARTITION  # type: ignore[attr-defined]


def test_oversized_batch_is_message_too_large(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("small", 1, 1, config={"max.message.bytes": "2000"})])[
        "small"
    ].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "retries": 0})
    errors: list[KafkaError] = []
    producer.produce("small", value=b"x" * 10_000, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_invalid_topic_names(bootstrap: str) -> None:
    with connect(bootstrap) as sock:
        response = call(
            sock,
            3,
            12,
            {
                "topics": [{"name": "bad/name"}, {"name": "a" * 300}],
                "allow_auto_topic_creation": True,
            },
        )
    assert [t.error_code for t in response.topics] == [INVALID_TOPIC, INVALID_TOPIC]


def test_unknown_topic_without_auto_create(tmp_path: object) -> None:
    from pathlib import Path

    from headwater.testing import embedded_broker

    with embedded_broker(Path(str(tmp_path)) / "d", auto_create_topics=False) as running:
        batch = build_batch([NewRecord(None, b"v", 1_700_000_000_000)])
        result = _produce_raw(running.bootstrap, "nope", 0, bytes(batch))
        assert result.error_code == UNKNOWN_TOPIC_OR_PARTITION  # type: ignore[attr-defined]
        admin = AdminClient({"bootstrap.servers": running.bootstrap})
        admin.create_topics([NewTopic("gone", 1, 1)])["gone"].result(30)
        assert _produce_raw(running.bootstrap, "gone", 0, bytes(batch)).error_code == 0  # type: ignore[attr-defined]
        admin.delete_topics(["gone"])["gone"].result(30)
        result = _produce_raw(running.bootstrap, "gone", 0, bytes(batch))
        assert result.error_code == UNKNOWN_TOPIC_OR_PARTITION  # type: ignore[attr-defined]


def test_pipelined_requests_answer_in_order(bootstrap: str) -> None:
    with connect(bootstrap) as sock:
        frames = b"".join(
            encode_request(
                18,
                3,
                {"client_software_name": "t", "client_software_version": "1"},
                correlation_id=i,
            )
            for i in range(50)
        )
        sock.sendall(frames)
        for i in range(50):
            frame = read_frame(sock)
            assert frame is not None
            assert struct.unpack_from(">i", frame, 0)[0] == i


def test_fault_hook_close(broker: BrokerThread) -> None:
    broker.call(lambda: broker.broker.faults.__setitem__(3, "close"))
    with connect(broker.bootstrap) as sock:
        sock.sendall(encode_request(3, 12, {"topics": []}))
        assert _closed(sock)
    _still_serving(broker.bootstrap)


def test_topic_by_id_before_metadata_v12_is_invalid_request(bootstrap: str) -> None:
    """Found by the nullable-field test: a null name in v10-11 crashed the response encoder."""
    with connect(bootstrap) as sock:
        response = call(sock, 3, 10, {"topics": [{"name": None, "topic_id": None}]})
    assert [(t.error_code, t.name) for t in response.topics] == [(INVALID_REQUEST, "")]
    _still_serving(bootstrap)


def test_timestamp_beyond_an_hour_ahead_is_invalid_timestamp(bootstrap: str) -> None:
    """Kafka 4's message.timestamp.after.max.ms (1 hour): every late record is listed."""
    now = int(time.time() * 1000)
    stamps = [now, now + 2 * 3_600_000, now + 1_800_000, now + 3 * 3_600_000]
    batch = build_batch([NewRecord(None, b"v", ts) for ts in stamps])
    result = _produce_raw(bootstrap, "future", 0, bytes(batch))
    assert result.error_code == INVALID_TIMESTAMP  # type: ignore[attr-defined]
    assert [e.batch_index for e in result.record_errors] == [1, 3]  # type: ignore[attr-defined]
    assert result.log_start_offset == 0  # type: ignore[attr-defined]
