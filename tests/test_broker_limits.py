"""The broker's bounds on connections: frames, buffered request bytes, idle peers, log lines."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from pathlib import Path

import pytest

from headwater.broker._budget import ByteBudget
from headwater.broker._ratelog import RateLimitedLog
from headwater.protocol import FrameError
from headwater.protocol._framing import FrameReader
from headwater.testing import embedded_broker
from rawkafka import connect, encode_request, read_frame

API_VERSIONS = {"client_software_name": "t", "client_software_version": "1"}


def test_frame_reader_cuts_frames_across_reads() -> None:
    frames = [encode_request(18, 3, API_VERSIONS, correlation_id=i) for i in range(3)]
    stream = b"".join(frames)
    reader = FrameReader(1024)
    got: list[bytes] = []
    for i in range(0, len(stream), 7):
        got += reader.feed(stream[i : i + 7])
    assert got == [f[4:] for f in frames]
    assert reader.pending_bytes == 0 and reader.frame_bytes_expected == 0


def test_frame_reader_refuses_a_size_before_buffering_it() -> None:
    reader = FrameReader(1024)
    with pytest.raises(FrameError, match="frame size 2147483647"):
        reader.feed(struct.pack(">i", 2**31 - 1))
    with pytest.raises(FrameError, match="frame size 3"):
        FrameReader(1024).feed(struct.pack(">i", 3) + b"abc")


def test_frame_reader_reports_the_frame_it_waits_for() -> None:
    reader = FrameReader(1024)
    assert reader.feed(struct.pack(">i", 100) + b"x" * 10) == []
    assert reader.frame_bytes_expected == 100 and reader.pending_bytes == 10


async def test_byte_budget_waits_for_releases() -> None:
    budget = ByteBudget(10)
    assert budget.try_reserve(8)
    assert not budget.try_reserve(3)

    waiter = asyncio.create_task(budget.reserve(3))
    await asyncio.sleep(0)
    assert not waiter.done()
    budget.release(8)
    await waiter
    assert budget.free_bytes == 7


def test_rate_limited_log_suppresses_a_flood(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(
        logging.getLogger("flood"), burst=3, interval_s=10, clock=lambda: now[0]
    )
    with caplog.at_level(logging.WARNING, logger="flood"):
        for i in range(1000):
            limited.warning("bad frame %d", i)
        assert len(caplog.records) == 3
        now[0] = 11.0
        limited.warning("bad frame again")
    assert "997 similar messages suppressed" in caplog.records[3].getMessage()
    assert caplog.records[4].getMessage() == "bad frame again"


def test_request_budget_stops_reading_until_bytes_are_given_back(tmp_path: Path) -> None:
    mib = 1024 * 1024
    settings = {"frame_bytes_max": mib, "queued_request_bytes_max": 2 * mib}
    with embedded_broker(tmp_path / "d", **settings) as running:
        holders = [connect(running.bootstrap) for _ in range(2)]
        for sock in holders:  # two half-sent 1 MiB frames take the whole budget
            sock.sendall(struct.pack(">i", mib) + b"\x00\x12\x00\x03")
        with connect(running.bootstrap) as waiting:
            waiting.settimeout(1.0)
            waiting.sendall(encode_request(18, 3, API_VERSIONS))
            with pytest.raises(socket.timeout):
                waiting.recv(4)  # not read while the budget is taken
            holders[0].close()  # its reservation is given back when the broker sees it go
            waiting.settimeout(30)
            assert read_frame(waiting) is not None
        holders[1].close()


def test_idle_connection_is_closed(tmp_path: Path) -> None:
    with embedded_broker(tmp_path / "d", connections_max_idle_ms=300) as running:
        with connect(running.bootstrap) as sock:
            sock.sendall(struct.pack(">i", 100) + b"\x00\x12")  # never finished
            assert sock.recv(4) == b""
        registry = running.broker.metrics.registry
        closed = registry.get_sample_value(
            "headwater_broker_connections_closed_total", {"reason": "idle"}
        )
        assert closed is not None and closed >= 1


def test_a_topic_of_thousands_of_partitions_does_not_stall_other_clients(
    tmp_path: Path,
) -> None:
    """Found by the fuzzer: creating 9,000 partitions held the event loop for seconds."""
    with embedded_broker(tmp_path / "d") as running:
        with connect(running.bootstrap) as creator, connect(running.bootstrap) as other:
            body = {"topics": [{"name": "wide", "num_partitions": 1500, "replication_factor": 1}]}
            creator.sendall(encode_request(19, 7, {**body, "timeout": 120_000}))
            other.sendall(encode_request(18, 3, API_VERSIONS))
            assert read_frame(other) is not None
            creator.setblocking(False)
            with pytest.raises(BlockingIOError):
                creator.recv(4)  # still creating while the other client was answered
            creator.setblocking(True)
            creator.settimeout(300)
            assert read_frame(creator) is not None
        assert len(running.broker.topics.topics["wide"].partitions) == 1500


def test_refusals_are_counted_by_reason(tmp_path: Path) -> None:
    with embedded_broker(tmp_path / "d") as running:
        with connect(running.bootstrap) as sock:
            sock.sendall(struct.pack(">i", 2**31 - 1))
            assert sock.recv(4) == b""
        with connect(running.bootstrap) as sock:
            sock.sendall(struct.pack(">ihhi", 10, 3, 99, 1) + b"\xff\xff")
            assert sock.recv(4) == b""
        with connect(running.bootstrap) as sock:
            sock.sendall(struct.pack(">ihhih", 16, 3, 12, 1, -1) + b"\x00\xff\xff\xff\xff\x0f")
            assert sock.recv(4) == b""
        registry = running.broker.metrics.registry

        def rejected(api: str, reason: str) -> float | None:
            labels = {"api": api, "reason": reason}
            return registry.get_sample_value("headwater_broker_requests_rejected_total", labels)

        assert rejected("unknown", "frame_size") == 1
        assert rejected("Metadata", "unsupported_version") == 1
        assert rejected("Metadata", "malformed") == 1


def test_stopping_during_a_large_topic_creation_gives_up_cleanly(tmp_path: Path) -> None:
    with embedded_broker(tmp_path / "d") as running:
        sock = connect(running.bootstrap)
        body = {"topics": [{"name": "huge", "num_partitions": 5000, "replication_factor": 1}]}
        sock.sendall(encode_request(19, 7, {**body, "timeout": 120_000}))
        first = tmp_path / "d" / "huge-0"
        for _ in range(600):  # until the worker thread has opened the first log
            if first.exists():
                break
            time.sleep(0.05)
        assert first.exists()
    # The broker stopped while a worker thread was opening logs: it stopped the thread,
    # closed what it had opened and never registered the half-made topic.
    assert not list((tmp_path / "d").glob("huge-*"))
    with embedded_broker(tmp_path / "d") as again:
        assert "huge" not in again.broker.topics.topics
    sock.close()
