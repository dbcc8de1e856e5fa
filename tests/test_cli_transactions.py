"""``headwater transactions`` against a real broker, with a real transactional producer."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import Producer

from headwater.broker import BrokerThread
from headwater.client import Admin, AdminError, TransactionAdmin
from headwater.client._wire import CLIENT_MAX_VERSIONS, Connection, UnsupportedApiError

TOPIC = "txn-cli"
TXN_ID = "txn-cli-open"


def hw(bootstrap: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "headwater", "transactions", *args, "-b", bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def rows(out: str) -> list[list[str]]:
    """The cells of each table row, with rich's box drawing dropped."""
    found = []
    for line in out.splitlines():
        if not re.search(r"\w", line):
            continue  # a border
        found.append([c.strip() for c in re.split(r"[│┃|]", line) if c.strip()])
    return found


def row_of(out: str, first: str) -> list[str]:
    matches = [r for r in rows(out) if r[0] == first]
    assert len(matches) == 1, out
    return matches[0]


@dataclass
class OpenTxn:
    bootstrap: str
    producer: Producer


@pytest.fixture
def open_txn(bootstrap: str) -> Iterator[OpenTxn]:
    """A transaction left open: begun, written to partitions 0 and 1, flushed, not ended."""
    Admin(bootstrap).create_topic(TOPIC, 2, {})
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": TXN_ID, "log_level": 0}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(TOPIC, b"a", partition=0)
    producer.produce(TOPIC, b"b", partition=1)
    assert producer.flush(30) == 0
    yield OpenTxn(bootstrap, producer)


def test_open_transaction_is_listed_described_and_seen_on_partitions(open_txn: OpenTxn) -> None:
    boot = open_txn.bootstrap
    listed = hw(boot, "list").stdout
    assert rows(listed)[0] == ["transactional id", "coordinator", "producer id", "state"]
    txn_id, _coordinator, producer_id, state = row_of(listed, TXN_ID)
    assert state == "Ongoing"
    assert TXN_ID not in hw(boot, "list", "--state", "CompleteCommit").stdout
    assert TXN_ID in hw(boot, "list", "--state", "Ongoing", "--state", "Empty").stdout
    assert TXN_ID in hw(boot, "list", "--producer-id", producer_id).stdout
    assert TXN_ID not in hw(boot, "list", "--producer-id", str(int(producer_id) + 1)).stdout
    assert TXN_ID in hw(boot, "list", "--min-duration-ms", "0").stdout
    day_ms = str(24 * 3600 * 1000)
    assert "no transactions match" in hw(boot, "list", "--min-duration-ms", day_ms).stdout

    described = dict(
        re.split(r"\s{2,}", line, maxsplit=1)
        for line in hw(boot, "describe", TXN_ID).stdout.splitlines()
    )
    assert described["transactional id"] == txn_id
    assert described["state"] == "Ongoing"
    assert described["producer id"] == producer_id
    assert described["producer epoch"] == "0"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(open for .+\)", described["started"]
    )
    assert described["partitions"] == f"{TOPIC}-0, {TOPIC}-1"

    producers = hw(boot, "producers", TOPIC).stdout
    on_partitions = {r[0]: r for r in rows(producers) if r[1] == producer_id}
    assert set(on_partitions) == {"0", "1"}
    assert all(r[6] == "0" for r in on_partitions.values()), producers  # first record of each
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert all(re.fullmatch(stamp, r[4]) for r in on_partitions.values()), producers
    only_one = hw(boot, "producers", TOPIC, "--partition", "1").stdout
    assert [r[0] for r in rows(only_one)[1:]] == ["1"]

    open_txn.producer.commit_transaction(30)
    assert row_of(hw(boot, "list").stdout, TXN_ID)[3] == "CompleteCommit"
    assert TXN_ID in hw(boot, "list", "--state", "CompleteCommit").stdout
    after = hw(boot, "producers", TOPIC).stdout
    committed = [r for r in rows(after) if r[1] == producer_id]
    assert len(committed) == 2
    assert all(r[6] == "-" for r in committed), after


def test_unknown_transactional_id_exits_1(bootstrap: str) -> None:
    result = hw(bootstrap, "describe", "nobody-has-this", ok=False)
    assert result.returncode == 1
    assert "error: no transactional id 'nobody-has-this' on this cluster" in result.stderr


def test_unknown_topic_and_partition_exit_1(bootstrap: str) -> None:
    result = hw(bootstrap, "producers", "no-such-topic", ok=False)
    assert result.returncode == 1
    assert "unknown topic 'no-such-topic'" in result.stderr
    # Looking the topic up must not have created it, although the broker auto-creates topics.
    assert "no-such-topic" not in Admin(bootstrap).list_topics()
    Admin(bootstrap).create_topic("one-partition", 1, {})
    result = hw(bootstrap, "producers", "one-partition", "-p", "3", ok=False)
    assert result.returncode == 1
    assert "has no partition 3" in result.stderr


def test_unreachable_bootstrap_exits_1() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for command in (["list"], ["describe", "t"], ["producers", "t"]):
        result = hw(f"127.0.0.1:{port}", *command, ok=False)
        assert result.returncode == 1
        assert f"cannot reach the bootstrap server 127.0.0.1:{port}" in result.stderr
        assert "is the broker running and is the address right?" in result.stderr


def test_empty_cluster_says_so(bootstrap: str) -> None:
    assert "no transactions match" in hw(bootstrap, "list").stdout


def test_wire_negotiates_versions(broker: BrokerThread) -> None:
    advertised = {
        v["api_key"]: (v["min_version"], v["max_version"]) for v in broker.broker.api_versions()
    }
    with Connection.open(broker.bootstrap) as conn:
        assert conn.api_versions_version == 3
        assert conn.broker_versions == advertised
        for api_key, ours in CLIENT_MAX_VERSIONS.items():
            assert conn.version(api_key) == min(ours, advertised[api_key][1])
        assert conn.version(66) == 1
        assert conn.version(10) == 4
        first = conn.call(3, {"topics": []})
        again = conn.call(3, {"topics": []})  # correlation ids move on and still match
        assert first.brokers == again.brokers
        del conn.broker_versions[61]
        with pytest.raises(UnsupportedApiError, match="does not support DescribeProducers"):
            conn.version(61)
    # The broker speaks ApiVersions v0-3: asked v4, it answers UNSUPPORTED_VERSION in a v0
    # body, and the client retries with v0.
    with Connection.open(broker.bootstrap, api_versions_version=4) as conn:
        assert conn.api_versions_version == 0
        assert conn.broker_versions == advertised


def test_older_find_coordinator_and_list_transactions(
    open_txn: OpenTxn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FindCoordinator v0-3 carries one key; ListTransactions v0 has no duration filter."""
    monkeypatch.setitem(CLIENT_MAX_VERSIONS, 10, 3)
    monkeypatch.setitem(CLIENT_MAX_VERSIONS, 66, 0)
    with TransactionAdmin(open_txn.bootstrap) as admin:
        described = admin.describe_transaction(TXN_ID)
        assert described.state == "Ongoing"
        assert described.partitions == ((TOPIC, 0), (TOPIC, 1))
        assert [t.transactional_id for t in admin.list_transactions(states=["Ongoing"])] == [TXN_ID]
        with pytest.raises(AdminError, match="ListTransactions v0 only"):
            admin.list_transactions(min_duration_ms=1000)
