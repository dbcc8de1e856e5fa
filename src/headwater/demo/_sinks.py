"""The demo's sinks: SQL tables (append and upsert), time-partitioned Parquet, live DuckDB."""

from __future__ import annotations

from pathlib import Path

from headwater.connect import (
    DuckDBSink,
    DuckDBSinkConfig,
    ParquetSink,
    ParquetSinkConfig,
    SinkRunner,
    SinkSettings,
    SqlMode,
    SqlSink,
    SqlSinkConfig,
)
from headwater.demo._pipeline import ALERTS, CLICK_COUNTS, ENRICHED, REVENUE

LIVE_TABLE = "orders"


def build_sinks(bootstrap: str, data_dir: Path) -> tuple[list[SinkRunner], DuckDBSink]:
    """Runners for every sink (not started) and the live DuckDB sink for queries."""
    sqlite_url = f"sqlite:///{data_dir / 'demo.sqlite'}"

    def settings(topic: str, group: str) -> SinkSettings:
        return SinkSettings(
            bootstrap=bootstrap,
            topics=[topic],
            group_id=group,
            consumer_overrides={"session.timeout.ms": 6000},
        )

    live = DuckDBSink(DuckDBSinkConfig(path=str(data_dir / "live.duckdb"), table=LIVE_TABLE))
    runners = [
        SinkRunner(
            SqlSink(SqlSinkConfig(url=sqlite_url, table="orders")),
            settings(ENRICHED, "demo-sink-orders-sql"),
        ),
        SinkRunner(
            SqlSink(
                SqlSinkConfig(
                    url=sqlite_url,
                    table="revenue_per_minute",
                    mode=SqlMode.UPSERT,
                    key_fields=["country", "window_start"],
                )
            ),
            settings(REVENUE, "demo-sink-revenue-sql"),
        ),
        SinkRunner(
            SqlSink(
                SqlSinkConfig(
                    url=sqlite_url,
                    table="clicks_per_minute",
                    mode=SqlMode.UPSERT,
                    key_fields=["page", "window_start"],
                )
            ),
            settings(CLICK_COUNTS, "demo-sink-clicks-sql"),
        ),
        SinkRunner(
            SqlSink(SqlSinkConfig(url=sqlite_url, table="temperature_alerts")),
            settings(ALERTS, "demo-sink-alerts-sql"),
        ),
        SinkRunner(
            ParquetSink(
                ParquetSinkConfig(
                    base_url=(data_dir / "parquet").resolve().as_uri(),
                    time_field="ts",
                    rotate_seconds=10.0,
                )
            ),
            settings(ENRICHED, "demo-sink-orders-parquet"),
        ),
        SinkRunner(live, settings(ENRICHED, "demo-sink-orders-duckdb")),
    ]
    return runners, live
