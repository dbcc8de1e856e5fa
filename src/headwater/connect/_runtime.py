"""The sink runner: a consumer-group member that feeds a sink and commits what it wrote.

Delivery guarantee: offsets are committed synchronously only after the sink has flushed the
records below them and the dead-letter producer has acknowledged the refused ones. A crash
therefore replays at most the records since the last commit, and every sink makes that
replay harmless (unique offsets, upserts, offset-named files, offsets stored with the data).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from headwater.client import (
    Admin,
    AdminError,
    Backoff,
    Consumer,
    DeadLetterQueue,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
    committed_offsets,
    new_consumer,
    new_producer,
    read_to_end,
)
from headwater.connect._records import (
    Decoder,
    Rejected,
    SinkRecord,
    decode_json,
    message_position,
    message_timestamp_ms,
)
from headwater.connect._sink import PartitionStart, Sink, TopicPartitionKey
from headwater.connect._stats import PartitionProgress, SinkStats
from headwater.connect._writer import BatchWriter, SinkFailed, Stopped

log = logging.getLogger(__name__)

_DLQ_FLUSH_TIMEOUT_S = 30.0
# A group coordinator that moves answers again within seconds; longer means it is gone.
_COMMITTED_TIMEOUT_S = 60.0


@dataclass(slots=True)
class SinkSettings:
    """How a sink consumes: topics, group, batch bounds, decoding, retries, dead letters."""

    bootstrap: str
    topics: list[str]
    group_id: str
    dead_letter_topic: str | None = None
    """Default: ``<group_id>.dlq``."""
    batch_size: int = 1000
    poll_timeout_s: float = 0.2
    decoder: Decoder = decode_json
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=0.1, cap_s=5.0))
    stats_interval_s: float = 1.0
    consumer_overrides: dict[str, Any] = field(default_factory=dict)
    producer_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def dlq_topic(self) -> str:
        return self.dead_letter_topic or f"{self.group_id}.dlq"


class SinkRunner:
    """Runs one sink until stopped; ``run`` blocks, ``start``/``stop``/``join`` use a thread."""

    def __init__(
        self,
        sink: Sink,
        settings: SinkSettings,
        on_progress: Callable[[SinkStats], None] | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        if not settings.topics:
            raise ValueError("a sink needs at least one topic to consume")
        if settings.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {settings.batch_size}")
        self.sink = sink
        self.settings = settings
        self.on_progress = on_progress
        self.stats = SinkStats()
        # Sharing one event lets an application stop several runners (and itself) at once.
        self._stop = stop_event or threading.Event()
        self._writer = BatchWriter(sink, settings.backoff, self._stop, self.stats)
        self._pending: dict[TopicPartitionKey, int] = {}
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the runner to flush, commit and leave the group; returns at once."""
        self._stop.set()

    def start(self) -> SinkRunner:
        """Run in a background thread; failures are kept in ``error`` and raised by ``join``."""
        self._thread = threading.Thread(target=self._run_catching, name="sink", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error

    def _run_catching(self) -> None:
        try:
            self.run()
        except BaseException as exc:
            self.error = exc

    def run(self) -> SinkStats:
        """Consume, write and commit until ``stop``; the last written batch is committed."""
        settings = self.settings
        overrides = {
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            **settings.consumer_overrides,
        }
        self._ensure_dead_letter_topic()
        consumer = new_consumer(settings.bootstrap, settings.group_id, overrides)
        producer = new_producer(settings.bootstrap, "durable", settings.producer_overrides)
        self._consumer = consumer
        self._producer = producer
        self._dlq = DeadLetterQueue(producer, settings.dlq_topic, stage=f"sink:{self.sink.name}")
        consumer.subscribe(
            settings.topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            self._loop(consumer)
            self._commit()
        except Stopped:
            log.info("sink stopped while retrying sink=%s", self.sink.name)
            self._pending.clear()
        except BaseException:
            # Leave the group without committing; the restart replays from the last commit.
            self._pending.clear()
            raise
        finally:
            try:
                consumer.close()
            finally:
                producer.flush(_DLQ_FLUSH_TIMEOUT_S)
                self.sink.close()
                # Drop the clients so librdkafka stops reconnecting once the runner is done.
                del self._consumer, self._producer, self._dlq
        return self.stats

    def _ensure_dead_letter_topic(self) -> None:
        """Create the dead-letter topic, replicated like every topic headwater creates.

        Left to auto-creation it would get the broker's default replication (often 1), or
        not exist at all where auto-creation is off, and the first refused record would then
        stop the sink. A cluster that refuses the creation (ACLs) still gets the produce.
        """
        try:
            Admin(self.settings.bootstrap).ensure_topic(self.settings.dlq_topic, 1, {})
        except AdminError as exc:
            log.warning(
                "dead-letter topic not created sink=%s topic=%s error=%s",
                self.sink.name,
                self.settings.dlq_topic,
                exc,
            )

    # -- the loop --------------------------------------------------------------------------

    def _loop(self, consumer: Consumer) -> None:
        settings = self.settings
        next_report = time.monotonic() + settings.stats_interval_s
        while not self._stop.is_set():
            messages = consumer.consume(
                num_messages=settings.batch_size, timeout=settings.poll_timeout_s
            )
            if messages:
                self._handle(messages)
            now = time.monotonic()
            if self._pending and self.sink.flush_due(now):
                self._commit()
            if now >= next_report:
                next_report = now + settings.stats_interval_s
                self._report(consumer)

    def _handle(self, messages: Sequence[Message]) -> None:
        records, rejected = self._decode(messages)
        if records:
            refused = self._writer.write(records)
            rejected.extend(refused)
            self.stats.records_written += len(records) - len(refused)
            self.stats.batches += 1
        for item in rejected:
            self._dlq.send(item.record.message, item.error)
        self.stats.records_dead_lettered += len(rejected)
        for message in messages:
            if message.error() is None:
                topic, partition, offset = message_position(message)
                self._pending[(topic, partition)] = offset + 1
                self._progress(topic, partition).written = offset + 1

    def _decode(self, messages: Sequence[Message]) -> tuple[list[SinkRecord], list[Rejected]]:
        decoder = self.settings.decoder
        records: list[SinkRecord] = []
        rejected: list[Rejected] = []
        for message in messages:
            error = message.error()
            if error is not None:
                self._message_error(error)
                continue
            self.stats.records_consumed += 1
            topic, partition, offset = message_position(message)
            record = SinkRecord(
                topic, partition, offset, message_timestamp_ms(message), message.key(), {}, message
            )
            raw = message.value()
            try:
                record.value = decoder(raw.encode() if isinstance(raw, str) else raw)
            except Exception as exc:
                rejected.append(Rejected(record, exc))
                continue
            records.append(record)
        return records, rejected

    def _message_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error sink=%s error=%s", self.sink.name, error.str())
            self.stats.last_error = error.str()

    # -- offsets ---------------------------------------------------------------------------

    def _commit(self) -> None:
        """Flush the sink and the dead letters, then commit every pending offset synchronously."""
        if not self._pending:
            return
        self._writer.retrying("flush", self.sink.flush)
        remaining = self._producer.flush(_DLQ_FLUSH_TIMEOUT_S)
        if remaining or self._dlq.failures:
            raise SinkFailed(
                f"dead-letter topic {self.settings.dlq_topic!r} did not take "
                f"{remaining or len(self._dlq.failures)} records "
                f"({(self._dlq.failures or ['timed out'])[0]}); offsets were not committed, "
                "so the records will be retried when the sink restarts"
            )
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._pending.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # A rebalance can refuse the commit; the records are then replayed idempotently.
            log.warning("offset commit refused sink=%s error=%s", self.sink.name, exc)
            self.stats.last_error = str(exc)
            return
        for (topic, partition), offset in self._pending.items():
            self._progress(topic, partition).committed = offset
        self._pending.clear()
        self.stats.commits += 1
        self.stats.last_commit_at = time.time()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = committed_offsets(consumer, partitions, _COMMITTED_TIMEOUT_S)
        starts = [
            PartitionStart(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else None)
            for tp in committed
        ]
        for start in starts:
            progress = self._progress(start.topic, start.partition)
            progress.committed = start.committed
        overrides = self._writer.retrying(
            "prepare assigned partitions", lambda: self.sink.assigned(starts)
        )
        for tp in partitions:
            chosen = overrides.get((tp.topic, tp.partition))
            if chosen is not None:
                tp.offset = chosen
        log.info(
            "partitions assigned sink=%s partitions=%s",
            self.sink.name,
            ",".join(f"{tp.topic}/{tp.partition}@{tp.offset}" for tp in partitions),
        )
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what is written before another member takes the partitions over.
        try:
            self._commit()
        finally:
            self._forget([(tp.topic, tp.partition) for tp in partitions])

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self.sink.released(keys)
        self._forget(keys)

    def _forget(self, keys: list[TopicPartitionKey]) -> None:
        for key in keys:
            self._pending.pop(key, None)
            # On the way out the last positions stay in the stats for the final report.
            if not self._stop.is_set():
                self.stats.partitions.pop(key, None)

    # -- progress --------------------------------------------------------------------------

    def _progress(self, topic: str, partition: int) -> PartitionProgress:
        key = (topic, partition)
        found = self.stats.partitions.get(key)
        if found is None:
            found = self.stats.partitions[key] = PartitionProgress(topic, partition)
        return found

    def _report(self, consumer: Consumer) -> None:
        for progress in list(self.stats.partitions.values()):
            tp = TopicPartition(progress.topic, progress.partition)
            try:
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high is not None and high >= 0:
                progress.high_watermark = high
        committed = {
            key: -1 if p.committed is None else p.committed
            for key, p in list(self.stats.partitions.items())
        }
        # Records read are in the sink already (Parquet buffers them until it rotates); a stop
        # now flushes and commits them, so "read to the end" is what a drain waits for.
        caught_up = read_to_end(consumer, committed)
        self.stats.caught_up_at = time.time() if caught_up else None
        if self.on_progress is not None:
            self.on_progress(self.stats)
