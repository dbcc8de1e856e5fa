"""A compacted topic held in memory: read fully at start, then followed in the background.

Services that keep their state in a topic (the schema registry's ``_schemas``, global tables
of the streams library) stay stateless this way: every instance rebuilds the same dict from
the log, and a write counts only once it is in the topic *and* this instance has read it back,
so a caller always sees its own writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from headwater.client._offsets import watermarks
from headwater.client._replication import new_topic, replication_for, wait_until_led
from headwater.client._security import with_security

log = logging.getLogger(__name__)

OnRecord = Callable[[bytes, bytes | None, int], None]
_POLL_S = 0.1
_START_TIMEOUT_S = 60.0


class TopicTableError(RuntimeError):
    """The table's topic could not be created, read or written; the message says why."""


def ensure_topic(
    bootstrap: str, topic: str, partitions: int, configs: dict[str, str], timeout_s: float
) -> None:
    """Create ``topic`` unless it exists; an existing topic is left as it is.

    A new topic is replicated as the cluster allows (min(3, brokers), min ISR 2 at three):
    the table is the service's only copy of its state.
    """
    admin = AdminClient(with_security({"bootstrap.servers": bootstrap}))
    metadata = admin.list_topics(timeout=timeout_s)
    if topic in metadata.topics and metadata.topics[topic].error is None:
        return
    replication = replication_for(len(metadata.brokers))
    futures = admin.create_topics(
        [new_topic(topic, partitions, configs, replication)], operation_timeout=timeout_s
    )
    try:
        futures[topic].result(timeout=timeout_s)
    except Exception as exc:
        err = exc.args[0] if exc.args else None
        if not isinstance(err, KafkaError) or err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise TopicTableError(f"cannot create topic {topic!r}: {exc}") from exc
    wait_until_led(admin, [topic], timeout_s)


class TopicTable:
    """Key → value view of a compacted topic, kept current by a follower thread.

    ``on_record(key, value, offset)`` is called from the follower thread for every record in
    log order (``value`` is None for a tombstone), before the table's dict changes become
    visible to ``put`` callers waiting for their write.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        on_record: OnRecord | None = None,
        partitions: int = 1,
        configs: dict[str, str] | None = None,
        create: bool = True,
        consumer_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._on_record = on_record
        self._partitions = partitions
        self._configs = {"cleanup.policy": "compact", **(configs or {})}
        self._create = create
        self._consumer_overrides = consumer_overrides or {}
        self._data: dict[bytes, bytes] = {}
        self._next: dict[int, int] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._producer: Producer | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout_s: float = _START_TIMEOUT_S) -> TopicTable:
        """Create the topic if asked, read it to its end, and keep following it."""
        if self._create:
            ensure_topic(self.bootstrap, self.topic, self._partitions, self._configs, timeout_s)
        consumer = Consumer(
            with_security(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": f"headwater-table-{self.topic}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "fetch.wait.max.ms": 50,
                    "topic.metadata.refresh.interval.ms": 5000,
                    **self._consumer_overrides,
                }
            )
        )
        metadata = consumer.list_topics(self.topic, timeout=timeout_s)
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            consumer.close()
            raise TopicTableError(f"topic {self.topic!r} does not exist; create it or pass create")
        ends = {}
        for p in found.partitions:
            try:
                _low, high = watermarks(consumer, self.topic, p, timeout_s)
            except KafkaException as exc:
                consumer.close()
                raise TopicTableError(f"cannot read the end of {self.topic!r}: {exc}") from None
            ends[p] = high
            self._next[p] = 0
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in ends])
        self._producer = Producer(
            with_security(
                {
                    "bootstrap.servers": self.bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": 0,
                }
            )
        )
        self._thread = threading.Thread(
            target=self._follow, args=(consumer, ends), name=f"table-{self.topic}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.close()
            raise TopicTableError(f"topic {self.topic!r} was not read to its end in {timeout_s} s")
        if self._error is not None:
            self.close()
            raise TopicTableError(self._error)
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None

    def __enter__(self) -> TopicTable:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        with self._cond:
            return self._data.get(key)

    def snapshot(self) -> dict[bytes, bytes]:
        with self._cond:
            return dict(self._data)

    def __len__(self) -> int:
        with self._cond:
            return len(self._data)

    # -- writes ---------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes | None, timeout_s: float = 30.0) -> int:
        """Write ``key`` (``None`` deletes it) with acks=all; return once it has been read back."""
        if self._producer is None:
            raise TopicTableError(f"table for {self.topic!r} is not started")
        outcome: list[tuple[KafkaError | None, Message]] = []

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            outcome.append((err, msg))

        self._producer.produce(self.topic, key=key, value=value, on_delivery=on_delivery)
        self._producer.flush(timeout_s)
        if not outcome:
            raise TopicTableError(f"write to {self.topic!r} not acknowledged in {timeout_s} s")
        err, msg = outcome[0]
        if err is not None:
            raise TopicTableError(f"write to {self.topic!r} failed: {err.str()}")
        partition, offset = msg.partition(), msg.offset()
        assert partition is not None and offset is not None
        self.wait_for(partition, offset, timeout_s)
        return offset

    def wait_for(self, partition: int, offset: int, timeout_s: float = 30.0) -> None:
        """Block until the follower has applied ``offset`` of ``partition``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._next.get(partition, 0) <= offset:
                left = deadline - time.monotonic()
                if left <= 0 or self._error is not None:
                    raise TopicTableError(
                        f"record {partition}/{offset} of {self.topic!r} was not read back: "
                        f"{self._error or 'timed out'}"
                    )
                self._cond.wait(left)

    # -- the follower ---------------------------------------------------------------------
    def _follow(self, consumer: Consumer, ends: dict[int, int]) -> None:
        pending = {p for p, end in ends.items() if end > 0}
        if not pending:
            self._ready.set()
        try:
            while not self._stop.is_set():
                msg = consumer.poll(_POLL_S)
                if msg is None:
                    continue
                err = msg.error()
                partition = msg.partition()
                offset = msg.offset()
                assert partition is not None and offset is not None
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("table read error topic=%s error=%s", self.topic, err.str())
                        continue
                    with self._cond:
                        self._next[partition] = max(self._next.get(partition, 0), offset)
                        self._cond.notify_all()
                else:
                    self._apply(msg.key() or b"", msg.value(), partition, offset)
                if pending and self._next.get(partition, 0) >= ends.get(partition, 0):
                    pending.discard(partition)
                    if not pending:
                        self._ready.set()
        except Exception as exc:  # the follower must report, not vanish
            log.exception("table follower stopped topic=%s", self.topic)
            with self._cond:
                self._error = f"follower of {self.topic!r} stopped: {exc}"
                self._cond.notify_all()
            self._ready.set()
        finally:
            consumer.close()

    def _apply(self, key: bytes, value: bytes | None, partition: int, offset: int) -> None:
        with self._cond:
            if self._on_record is not None:
                self._on_record(key, value, offset)
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value
            self._next[partition] = offset + 1
            self._cond.notify_all()
