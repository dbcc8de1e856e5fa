"""The console served for real over a small pipeline on the real broker: the metrics API returns
the source's snapshot, and headless Chromium shows live charts with data."""

from __future__ import annotations

import re
import statistics
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from headwater.client import Admin, TopicPartition, new_consumer, new_producer
from headwater.console import ConsoleError, ConsoleServer, create_console
from headwater.monitor import consumer_lag, lag_snapshot
from headwater.testing import BrowserError, render

ORDERS, CLICKS, READINGS = "orders", "clicks", "readings"
MINUTE_MS = 60_000
BUCKET_MS = 10_000


def _per_bucket(stamps: list[int], size_ms: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for t in stamps:
        counts[t - t % size_ms] = counts.get(t - t % size_ms, 0) + 1
    return counts


class BrokerPipeline:
    """A small pipeline over the broker, and the console's ``MetricsSource`` for it.

    It produces orders (two of them malformed), clicks and temperature readings, reads them
    back as consumer groups (the click reader stops part way, so it lags), and keeps what it
    saw as one snapshot, so the test can compare the API's answer with it exactly.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.started_ms = time.time_ns() // 1_000_000
        self.produced: list[int] = []
        self.consumed: list[int] = []
        self.freshness: list[tuple[int, float]] = []
        self.revenue: dict[int, float] = {}
        self.clicks: dict[int, int] = {}
        self.dead_letters = 0
        self.orders = 0
        self.alerts: list[dict[str, Any]] = []
        self._snapshot: dict[str, Any] = {}

    def run(self) -> None:
        admin = Admin(self.bootstrap)
        for topic in (ORDERS, CLICKS, READINGS):
            admin.create_topic(topic, 2, {})
        base_ms = self.started_ms - 4 * MINUTE_MS
        producer = new_producer(self.bootstrap)
        for i in range(40):
            value = {"order": i, "amount": 10.0 + i % 7, "sent_ms": time.time_ns() / 1e6}
            raw = b"{not json" if i in (7, 23) else orjson.dumps(value)
            self._send(producer, ORDERS, f"c{i % 5}", raw, base_ms + i * 5_000)
        for i in range(90):
            value = {"page": f"/p/{i % 6}", "sent_ms": time.time_ns() / 1e6}
            self._send(producer, CLICKS, f"u{i % 9}", orjson.dumps(value), base_ms + i * 2_500)
        for i in range(30):
            celsius = 95.5 if i in (11, 26) else 20.0 + i % 4
            value = {"celsius": celsius, "sent_ms": time.time_ns() / 1e6}
            self._send(
                producer, READINGS, f"sensor-{i % 3}", orjson.dumps(value), base_ms + i * 8_000
            )
        assert producer.flush(60) == 0
        self._read(ORDERS, "revenue", 40)
        self._read(CLICKS, "clickstream", 55)
        self._read(READINGS, "anomalies", 30)
        self._snapshot = self._build()

    def _send(self, producer: Any, topic: str, key: str, value: bytes, ts_ms: int) -> None:
        producer.produce(topic, key=key.encode(), value=value, timestamp=ts_ms)
        self.produced.append(ts_ms)

    def _read(self, topic: str, group: str, count: int) -> None:
        """Read ``count`` records of ``topic`` as ``group`` and commit where it stopped."""
        consumer = new_consumer(self.bootstrap, group, {"enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        next_offsets: dict[int, int] = {}
        read = 0
        try:
            while read < count:
                message = consumer.poll(1.0)
                if message is None or message.error() is not None:
                    continue
                read += 1
                next_offsets[message.partition()] = message.offset() + 1
                self._handle(topic, message.key(), message.value(), message.timestamp()[1])
            commits = [TopicPartition(topic, p, o) for p, o in next_offsets.items()]
            consumer.commit(offsets=commits, asynchronous=False)
        finally:
            consumer.close()

    def _handle(self, topic: str, key: bytes, raw: bytes, ts_ms: int) -> None:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.dead_letters += 1
            return
        self.consumed.append(ts_ms)
        self.freshness.append((ts_ms, time.time_ns() / 1e6 - value["sent_ms"]))
        minute = ts_ms - ts_ms % MINUTE_MS
        if topic == ORDERS:
            self.orders += 1
            self.revenue[minute] = self.revenue.get(minute, 0.0) + value["amount"]
        elif topic == CLICKS:
            self.clicks[minute] = self.clicks.get(minute, 0) + 1
        elif value["celsius"] > 90:
            self.alerts.insert(
                0,
                {
                    "key": key.decode(),
                    "value": value["celsius"],
                    "score": round(value["celsius"] / 30.0, 3),
                    "timestamp": ts_ms,
                },
            )

    def _build(self) -> dict[str, Any]:
        now_ms = time.time_ns() // 1_000_000
        rate_in = _per_bucket(self.produced, BUCKET_MS)
        rate_out = _per_bucket(self.consumed, BUCKET_MS)
        fresh_sorted = sorted(f for _, f in self.freshness)
        lags = consumer_lag(self.bootstrap, ["revenue", "clickstream", "anomalies"])
        return {
            "time_ms": now_ms,
            "uptime_s": (now_ms - self.started_ms) / 1000,
            "rates": {
                "events_in_per_s": rate_in[max(rate_in)] / (BUCKET_MS / 1000),
                "events_out_per_s": rate_out[max(rate_out)] / (BUCKET_MS / 1000),
            },
            "totals": {
                "events_in": len(self.produced),
                "events_out": len(self.consumed),
                "dead_letters": self.dead_letters,
                "alerts": len(self.alerts),
                "orders": self.orders,
                "revenue": round(sum(self.revenue.values()), 2),
            },
            "series": {
                "events_in_per_s": [
                    [t, n / (BUCKET_MS / 1000)] for t, n in sorted(rate_in.items())
                ],
                "events_out_per_s": [
                    [t, n / (BUCKET_MS / 1000)] for t, n in sorted(rate_out.items())
                ],
                "revenue_per_minute": [[t, round(v, 2)] for t, v in sorted(self.revenue.items())],
                "clicks_per_minute": [[t, n] for t, n in sorted(self.clicks.items())],
                "freshness_ms": [[t, f] for t, f in sorted(self.freshness)],
            },
            "alerts": self.alerts[:20],
            "lag": lag_snapshot(lags),
            "freshness_ms": {
                "last": self.freshness[-1][1],
                "p50": statistics.median(fresh_sorted),
                "p99": fresh_sorted[int(0.99 * (len(fresh_sorted) - 1))],
            },
        }

    def snapshot(self) -> dict[str, Any]:
        return self._snapshot


class BrokenSource:
    def snapshot(self) -> dict[str, Any]:
        raise RuntimeError("counters are not ready")


@pytest.fixture
def pipeline(bootstrap: str) -> BrokerPipeline:
    source = BrokerPipeline(bootstrap)
    source.run()
    return source


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the inflated scanlines of a PNG, read with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_metrics_api_serves_the_sources_snapshot(pipeline: BrokerPipeline) -> None:
    expected = pipeline.snapshot()
    assert expected["lag"]["clickstream"]["total"] == 35
    assert expected["lag"]["revenue"]["total"] == 0
    assert expected["totals"]["dead_letters"] == 2 and expected["totals"]["alerts"] == 2

    with ConsoleServer(pipeline) as console:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", console.url)
        with httpx.Client(base_url=console.url) as http:
            metrics = http.get("/api/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["cache-control"] == "no-store"
            assert metrics.json() == expected
            assert http.get("/api/health").json() == {"status": "ok"}
            page = http.get("/")
            assert page.status_code == 200 and "/static/console.js" in page.text
            for name, kind in [("charts.js", "javascript"), ("console.css", "css")]:
                static = http.get(f"/static/{name}")
                assert static.status_code == 200 and kind in static.headers["content-type"]


def test_page_in_headless_chromium_shows_live_charts(
    pipeline: BrokerPipeline, tmp_path: Path
) -> None:
    shot = tmp_path / "console.png"
    with ConsoleServer(pipeline) as console:
        dom = render(console.url, screenshot=shot, wait_ms=4000)

    updates = re.search(r'<body[^>]*data-updates="(\d+)"', dom)
    assert updates is not None and int(updates.group(1)) >= 1, dom[:500]
    points = {
        chart: int(n)
        for chart, n in re.findall(r'id="(chart-[a-z]+)"><svg[^>]*data-points="(\d+)"', dom)
    }
    assert set(points) == {"chart-rates", "chart-revenue", "chart-clicks", "chart-freshness"}
    assert all(n > 0 for n in points.values()), points
    assert "clickstream" in dom and "sensor-2" in dom

    data = shot.read_bytes()
    width, height, raw = _png_pixels(data)
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000
    # A flat image inflates to a handful of byte values; charts, text and tiles to many.
    assert len(set(raw)) > 64


def test_a_failing_source_answers_503_with_the_reason() -> None:
    with ConsoleServer(BrokenSource()) as console:
        answer = httpx.get(f"{console.url}/api/metrics")
    assert answer.status_code == 503
    assert "counters are not ready" in answer.json()["error"]


def test_a_busy_port_is_refused_with_a_clear_error() -> None:
    with ConsoleServer(BrokenSource()) as first:
        second = ConsoleServer(BrokenSource(), port=first.port)
        with pytest.raises(ConsoleError, match="choose another port"):
            second.start()


def test_create_console_is_a_plain_asgi_app() -> None:
    app = create_console(BrokenSource())
    assert {getattr(r, "path", None) for r in app.routes} >= {"/", "/api/metrics", "/api/health"}


def test_page_says_disconnected_while_the_source_fails() -> None:
    with ConsoleServer(BrokenSource()) as console:
        dom = render(console.url, screenshot=None, wait_ms=2500)
    assert re.search(r'<body[^>]*data-updates="0"', dom)
    assert "disconnected: metrics answered 503" in dom


def test_render_without_chromium_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BrowserError, match="scripts/install-test-tools"):
        render("http://127.0.0.1:1/", screenshot=None)
