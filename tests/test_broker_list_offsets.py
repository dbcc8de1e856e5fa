"""ListOffsets queries beyond earliest and latest: max timestamp (v7, KIP-734), earliest-local
and the tiered-storage queries (v8-v11), and the versions that may carry each."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from headwater.testing import embedded_broker
from rawkafka import call, connect

LIST_OFFSETS = 2
UNSUPPORTED_VERSION = 35
TOPIC = "lo-times"
# Out of order on purpose: the newest timestamp is not the last record.
TIMESTAMPS_MS = [1_000, 2_000, 5_000, 3_000]


@pytest.fixture(scope="module")
def times_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One broker for the module: every test only reads the same four records."""
    with embedded_broker(tmp_path_factory.mktemp("lo")) as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        for index, timestamp in enumerate(TIMESTAMPS_MS):
            producer.produce(TOPIC, value=b"r%d" % index, partition=0, timestamp=timestamp)
            producer.flush(30)
        yield broker.bootstrap


@pytest.fixture
def sock(times_bootstrap: str) -> Iterator[socket.socket]:
    with connect(times_bootstrap) as conn:
        yield conn


def list_offset(conn: socket.socket, version: int, query: int, isolation: int = 0) -> Any:
    body: dict[str, Any] = {
        "replica_id": -1,
        "isolation_level": isolation,
        "timeout_ms": 10_000,
        "topics": [
            {
                "name": TOPIC,
                "partitions": [
                    {"partition_index": 0, "current_leader_epoch": -1, "timestamp": query}
                ],
            }
        ],
    }
    return call(conn, LIST_OFFSETS, version, body).topics[0].partitions[0]


@pytest.mark.parametrize(
    ("query", "offset", "timestamp"),
    [
        (-1, 4, -1),  # latest
        (-2, 0, -1),  # earliest
        (-3, 2, 5_000),  # max timestamp: the third record, not the last
        (-4, 0, -1),  # earliest local: no tiered storage, so the log start
        (-5, -1, -1),  # latest tiered: nothing is tiered
        (-6, -1, -1),  # earliest pending upload: nothing is tiered
        (1_500, 1, 2_000),  # the first record at or after the time
        (2_500, 2, 5_000),
        (9_999, -1, -1),
    ],
)
def test_queries_at_the_newest_version(
    sock: socket.socket, query: int, offset: int, timestamp: int
) -> None:
    answer = list_offset(sock, 11, query)
    assert (answer.error_code, answer.offset, answer.timestamp) == (0, offset, timestamp)


@pytest.mark.parametrize(("query", "first_version"), [(-3, 7), (-4, 8), (-5, 9), (-6, 11)])
def test_each_query_needs_its_version(sock: socket.socket, query: int, first_version: int) -> None:
    assert list_offset(sock, first_version - 1, query).error_code == UNSUPPORTED_VERSION
    assert list_offset(sock, first_version, query).error_code == 0


def test_confluent_kafka_max_timestamp(times_bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": times_bootstrap})
    partition = TopicPartition(TOPIC, 0)
    result = admin.list_offsets({partition: OffsetSpec.max_timestamp()})[partition].result(30)
    assert (result.offset, result.timestamp) == (2, 5_000)
