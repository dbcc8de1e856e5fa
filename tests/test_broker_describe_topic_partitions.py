"""DescribeTopicPartitions (api 75), request by request: the API the 4.x Java Admin describes
topics with. Its paging must hand out every partition exactly once, in order."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from headwater.testing import embedded_broker
from rawkafka import call, connect

DESCRIBE_TOPIC_PARTITIONS = 75
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC = 17
INVALID_REQUEST = 42
TOPICS = {"dtp-a": 3, "dtp-b": 1, "dtp-wide": 25}


@pytest.fixture(scope="module")
def topics_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One broker for the module: every test only reads the same three topics."""
    with (
        embedded_broker(tmp_path_factory.mktemp("dtp")) as broker,
        connect(broker.bootstrap) as conn,
    ):
        created = call(
            conn,
            19,
            7,
            {
                "topics": [
                    {
                        "name": name,
                        "num_partitions": count,
                        "replication_factor": 1,
                        "assignments": [],
                        "configs": [],
                    }
                    for name, count in TOPICS.items()
                ],
                "timeout": 10_000,
                "validate_only": False,
            },
        )
        assert [t.error_code for t in created.topics] == [0, 0, 0]
        yield broker.bootstrap


@pytest.fixture
def sock(topics_bootstrap: str) -> Iterator[socket.socket]:
    with connect(topics_bootstrap) as conn:
        yield conn


def describe(conn: socket.socket, names: list[str], limit: int = 2000, cursor: Any = None) -> Any:
    return call(
        conn,
        DESCRIBE_TOPIC_PARTITIONS,
        0,
        {
            "topics": [{"name": name} for name in names],
            "response_partition_limit": limit,
            "cursor": cursor,
        },
    )


def test_one_response_holds_every_topic_in_name_order(sock: socket.socket) -> None:
    response = describe(sock, ["dtp-wide", "dtp-b", "dtp-a"])
    assert [t.name for t in response.topics] == ["dtp-a", "dtp-b", "dtp-wide"]
    for topic in response.topics:
        assert topic.error_code == 0
        assert topic.topic_id is not None
        indexes = [p.partition_index for p in topic.partitions]
        assert indexes == list(range(TOPICS[topic.name]))
        assert all(p.leader_id == 1 and p.isr_nodes == (1,) for p in topic.partitions)
    assert response.next_cursor is None


@pytest.mark.parametrize("limit", [1, 3, 4, 7, 29])
def test_paging_with_the_cursor_returns_each_partition_once(
    sock: socket.socket, limit: int
) -> None:
    names = sorted(TOPICS)
    seen: list[tuple[str, int]] = []
    cursor = None
    for _page in range(100):
        response = describe(sock, names, limit, cursor)
        page = [(t.name, p.partition_index) for t in response.topics for p in t.partitions]
        assert 0 < len(page) <= limit
        seen += page
        if response.next_cursor is None:
            break
        cursor = {
            "topic_name": response.next_cursor.topic_name,
            "partition_index": response.next_cursor.partition_index,
        }
    expected = [(name, index) for name in names for index in range(TOPICS[name])]
    assert seen == expected


def test_a_full_page_ends_before_the_next_topic(sock: socket.socket) -> None:
    response = describe(sock, ["dtp-a", "dtp-b"], limit=3)
    assert [t.name for t in response.topics] == ["dtp-a"]
    assert response.next_cursor.topic_name == "dtp-b"
    assert response.next_cursor.partition_index == 0


def test_unknown_and_invalid_topics_are_errors_beside_the_others(sock: socket.socket) -> None:
    response = describe(sock, ["dtp-b", "dtp-none", "bad/name"])
    errors = {t.name: t.error_code for t in response.topics}
    assert errors == {
        "bad/name": INVALID_TOPIC,
        "dtp-b": 0,
        "dtp-none": UNKNOWN_TOPIC_OR_PARTITION,
    }


def test_a_cursor_outside_the_topic_list_is_refused(sock: socket.socket) -> None:
    cursor = {"topic_name": "dtp-wide", "partition_index": 2}
    response = describe(sock, ["dtp-a"], cursor=cursor)
    assert [(t.name, t.error_code) for t in response.topics] == [("dtp-a", INVALID_REQUEST)]


def test_an_empty_list_describes_every_topic(sock: socket.socket) -> None:
    response = describe(sock, [])
    assert [t.name for t in response.topics] == sorted(TOPICS)
    cursor = {"topic_name": "dtp-b", "partition_index": 0}
    later = describe(sock, [], cursor=cursor)
    assert [t.name for t in later.topics] == ["dtp-b", "dtp-wide"]
