"""The connector runtime's own duties, seen through a real sink: riding out a database outage,
committing before partitions move to another member, and reporting lag."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from _sinks import create_topic, produce_json, run_until, wait_for
from headwater.client import Backoff
from headwater.connect import SinkRunner, SinkSettings, SqlSink, SqlSinkConfig
from headwater.testing import PostgresServer, postgres_server


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, because the test stops and restarts it."""
    with postgres_server() as server:
        yield server


def _count(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())
    except sa.exc.OperationalError:
        return -1
    finally:
        engine.dispose()


def test_writes_resume_after_the_database_comes_back(
    bootstrap: str, own_postgres: PostgresServer
) -> None:
    url = own_postgres.create_database("outage")
    produce_json(bootstrap, "events", ({"id": i} for i in range(500)))
    # Patient enough to outlast a restart of the server.
    settings = SinkSettings(
        bootstrap,
        ["events"],
        "g-outage",
        batch_size=100,
        backoff=Backoff(base_s=0.05, cap_s=0.5, max_attempts=200),
    )
    runner = SinkRunner(SqlSink(SqlSinkConfig(url, "events")), settings).start()
    try:
        wait_for(lambda: runner.stats.records_written >= 500, "the first 500 rows")
        own_postgres.pause()
        produce_json(bootstrap, "events", ({"id": i} for i in range(500, 1000)))
        wait_for(lambda: runner.stats.retries >= 3, "the sink to retry during the outage")
        own_postgres.resume()
        wait_for(lambda: runner.stats.records_written >= 1000, "the rows after the outage")
    finally:
        runner.stop()
        runner.join()
    assert _count(url) == 1000
    assert runner.stats.records_dead_lettered == 0


def test_partitions_move_to_a_new_member_without_replays(bootstrap: str, tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/moved.db"
    create_topic(bootstrap, "events", 4)
    produce_json(bootstrap, "events", ({"id": i} for i in range(2000)))

    def member() -> SinkRunner:
        settings = SinkSettings(bootstrap, ["events"], "g-move", batch_size=50)
        return SinkRunner(SqlSink(SqlSinkConfig(url, "events")), settings)

    first = member().start()
    second = member()
    try:
        wait_for(lambda: first.stats.records_written >= 2000, "the first member to catch up")
        second.start()
        wait_for(lambda: len(second.stats.partitions) > 0, "the second member to get partitions")
        # Every partition gets records (key-less ones would stick to one), so the second
        # member has something to write whichever partitions it got.
        for partition in range(4):
            rows = ({"id": i} for i in range(2000 + partition, 4000, 4))
            produce_json(bootstrap, "events", rows, partition=partition)
        wait_for(lambda: _count(url) >= 4000, "all rows")
    finally:
        first.stop()
        second.stop()
        first.join()
        second.join()
    assert _count(url) == 4000
    # Each member committed before giving partitions away, so no record was written twice.
    assert first.stats.records_written + second.stats.records_written == 4000
    assert second.stats.records_written > 0


def test_progress_reports_high_watermarks_and_lag(bootstrap: str, tmp_path: object) -> None:
    produce_json(bootstrap, "events", ({"id": i} for i in range(300)))
    seen: list[int] = []
    settings = SinkSettings(bootstrap, ["events"], "g-lag", stats_interval_s=0.05)
    runner = SinkRunner(
        SqlSink(SqlSinkConfig(f"sqlite:///{tmp_path}/lag.db", "events")),
        settings,
        on_progress=lambda stats: seen.append(stats.records_written),
    )
    run_until(
        runner,
        lambda: (
            any(p.high_watermark == 300 for p in runner.stats.partitions.values())
            and runner.stats.lag == 0
        ),
        "the log end to be known and caught up",
    )
    (progress,) = runner.stats.partitions.values()
    assert (progress.written, progress.committed, progress.lag) == (300, 300, 0)
    assert seen and seen[-1] == 300
    assert "written=300" in runner.stats.summary()
