"""The demo's stream pipeline, declared with headwater.streams.

orders ─ filter test orders ─ enrich with the customer table ─► orders.enriched
                                 └─ 1-minute revenue per country (tumbling) ─► revenue.per_minute
                                      └─ orders that came after their window closed ─► orders.late
clicks ─ 1-minute count per page (re-keyed by page) ─► clicks.per_minute
temperatures ─ rolling z-score per sensor ─► alerts.temperature
anything malformed ─► demo-pipeline-dead-letters (the runtime does that by itself)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headwater.streams import App, Guarantee, Record

APP_ID = "demo-pipeline"
ENRICHED = "orders.enriched"
REVENUE = "revenue.per_minute"
CLICK_COUNTS = "clicks.per_minute"
ALERTS = "alerts.temperature"
LATE_ORDERS = "orders.late"
DEAD_LETTERS = f"{APP_ID}-dead-letters"
OUTPUT_TOPICS = (ENRICHED, REVENUE, CLICK_COUNTS, ALERTS, LATE_ORDERS)
MINUTE_MS = 60_000


def _event_time(value: Any) -> int:
    return int(value["ts"])


def _enrich(order: dict[str, Any], customer: dict[str, Any] | None) -> dict[str, Any]:
    if customer is None:
        return {**order, "customer_name": None, "tier": None, "country": "unknown"}
    return {
        **order,
        "customer_name": customer["name"],
        "tier": customer["tier"],
        "country": customer["country"],
    }


def _window_row(field: str) -> Any:
    """Window results as flat rows: the group key becomes a column (for SQL upserts)."""

    def to_row(record: Record) -> Record:
        window = record.value
        return record.replace(
            value={
                field: record.key,
                "window_start": window["start"],
                "window_end": window["end"],
                "value": window["value"],
            }
        )

    return to_row


def build_pipeline(bootstrap: str, state_dir: Path, guarantee: Guarantee) -> App:
    app = App(
        APP_ID,
        bootstrap,
        guarantee=guarantee,
        state_dir=state_dir,
        commit_interval_ms=100,
        consumer_overrides={"session.timeout.ms": 6000},
    )
    customers = app.table("customers")
    enriched = (
        app.stream("orders", timestamp_fn=_event_time)
        .filter(lambda order: not order["test"], name="drop-test-orders")
        .join_table(
            customers, _enrich, key_fn=lambda order: order["customer_id"], name="enrich-orders"
        )
    )
    enriched.to_topic(ENRICHED)
    revenue = (
        enriched.rekey(lambda order: order["country"], name="by-country")
        .tumbling_window(MINUTE_MS, grace_ms=5_000)
        .sum(lambda order: order["amount"], emit="update", name="revenue-per-minute")
    )
    revenue.map_record(_window_row("country"), name="revenue-row").to_topic(REVENUE)
    # An order held up longer than the grace (a partition without a leader for a while, say)
    # misses its window; it is kept here rather than dropped, so revenue still adds up.
    revenue.late().to_topic(LATE_ORDERS)
    (
        app.stream("clicks", timestamp_fn=_event_time)
        .rekey(lambda click: click["page"], name="by-page")
        .tumbling_window(MINUTE_MS, grace_ms=5_000)
        .count(emit="update", name="clicks-per-minute")
        .map_record(_window_row("page"), name="clicks-row")
        .to_topic(CLICK_COUNTS)
    )
    (
        app.stream("temperatures", timestamp_fn=_event_time)
        .detect_anomalies(
            lambda reading: reading["celsius"],
            window=60,
            threshold=6.0,
            min_observations=20,
            name="temperature-anomalies",
        )
        .to_topic(ALERTS)
    )
    return app
