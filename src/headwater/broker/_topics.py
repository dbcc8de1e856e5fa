"""Topics and their partitions: durable metadata, partition logs and append notifications.

Topic metadata (ids, partition counts, config overrides) lives in one JSON file replaced
atomically on every change, so a crash leaves either the old or the new set of topics.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from headwater.broker import _topic_config
from headwater.broker._producer_state import ProducerState
from headwater.storage import LogConfig, PartitionLog
from headwater.storage._durable_file import read_json, write_json

log = logging.getLogger(__name__)

TOPIC_NAME_MAX = 249
_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")
META_DIR = "__meta"
PARTITIONS_MAX = 10_000
T = TypeVar("T")


class TopicError(Exception):
    """A topic operation Kafka would refuse; ``error_code`` is the Kafka error to return."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def check_topic_name(name: str) -> str | None:
    """Why a topic name is invalid, or None when it is fine (Kafka's rules)."""
    if not name:
        return "topic name is empty"
    if name in (".", ".."):
        return "topic name cannot be '.' or '..'"
    if len(name) > TOPIC_NAME_MAX:
        return f"topic name is longer than {TOPIC_NAME_MAX} characters"
    if not _LEGAL.match(name):
        return "topic name may contain only ASCII letters, digits, '.', '_' and '-'"
    return None


@dataclass(eq=False, slots=True)
class Partition:
    """One partition: its log and the fetches waiting for data on it."""

    topic: str
    index: int
    log: PartitionLog
    listeners: set[Callable[[], None]] = field(default_factory=set)
    producers: ProducerState = field(init=False)

    def __post_init__(self) -> None:
        self.producers = ProducerState.load(self.log)

    def notify(self) -> None:
        for listener in list(self.listeners):
            listener()


@dataclass(eq=False)
class Topic:
    name: str
    topic_id: uuid.UUID
    partitions: list[Partition]
    configs: dict[str, str]
    internal: bool = False


class TopicManager:
    """Owns every topic of the broker. Mutated only from the event-loop thread."""

    def __init__(self, data_dir: Path, broker_defaults: dict[str, str], now_ms: int) -> None:
        self._data_dir = data_dir
        self._broker_defaults = broker_defaults
        self._meta_path = data_dir / META_DIR / "topics.json"
        self.topics: dict[str, Topic] = {}
        self.by_id: dict[uuid.UUID, Topic] = {}
        # Topics whose partition logs a worker thread is opening, and per-topic growth locks.
        self._creating: set[str] = set()
        self._growing: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._closing = False
        (data_dir / META_DIR).mkdir(parents=True, exist_ok=True)
        self._load(now_ms)

    # -- persistence ----------------------------------------------------------------------
    def _load(self, now_ms: int) -> None:
        for leftover in self._data_dir.glob("*-delete"):
            shutil.rmtree(leftover, ignore_errors=True)
        meta = read_json(self._meta_path) or {"topics": {}}
        for name, entry in meta["topics"].items():
            topic = Topic(
                name=name,
                topic_id=uuid.UUID(entry["id"]),
                partitions=[],
                configs=self._known_configs(name, entry.get("configs", {})),
                internal=bool(entry.get("internal", False)),
            )
            config = self.log_config(topic)
            for index in range(int(entry["partitions"])):
                directory = self._data_dir / f"{name}-{index}"
                topic.partitions.append(
                    Partition(name, index, PartitionLog.open(directory, config, now_ms=now_ms))
                )
            self._add(topic)
        log.info("loaded topics count=%d", len(self.topics))

    @staticmethod
    def _known_configs(topic: str, stored: dict[str, str]) -> dict[str, str]:
        """Overrides minus configs Kafka 4 removed (message.format.version, ...), which would
        otherwise make every later config change of the topic invalid."""
        dropped = sorted(set(stored) - set(_topic_config.TOPIC_CONFIGS))
        if dropped:
            log.warning("dropping removed topic configs topic=%s configs=%s", topic, dropped)
        return {k: v for k, v in stored.items() if k in _topic_config.TOPIC_CONFIGS}

    def _save(self) -> None:
        write_json(
            self._meta_path,
            {
                "topics": {
                    t.name: {
                        "id": str(t.topic_id),
                        "partitions": len(t.partitions),
                        "configs": t.configs,
                        "internal": t.internal,
                    }
                    for t in self.topics.values()
                }
            },
        )

    def _add(self, topic: Topic) -> None:
        self.topics[topic.name] = topic
        self.by_id[topic.topic_id] = topic

    # -- configs --------------------------------------------------------------------------
    def effective_configs(self, topic: Topic) -> dict[str, str]:
        return _topic_config.effective(topic.configs, self._broker_defaults)

    def config_source(self, topic: Topic, name: str) -> int:
        return _topic_config.source_of(name, topic.configs, self._broker_defaults)

    def config_synonyms(self, topic: Topic, name: str) -> list[tuple[str, str, int]]:
        return _topic_config.synonyms(name, topic.configs, self._broker_defaults)

    def log_config(self, topic: Topic) -> LogConfig:
        return _topic_config.log_config(self.effective_configs(topic))

    def set_configs(self, topic: Topic, configs: dict[str, str], *, validate_only: bool) -> None:
        for name, value in configs.items():
            _topic_config.validate(name, value)
        if validate_only:
            return
        topic.configs = dict(configs)
        self._save()
        config = self.log_config(topic)
        for partition in topic.partitions:
            partition.log.update_config(config)

    # -- lifecycle ------------------------------------------------------------------------
    def create(
        self,
        name: str,
        num_partitions: int,
        configs: dict[str, str],
        now_ms: int,
        *,
        validate_only: bool = False,
        internal: bool = False,
    ) -> Topic | None:
        """Create a topic durably; raises TopicError with Kafka's error code on refusal.

        Opens the partition logs on the calling thread: for auto-creation and internal topics,
        which have a handful of partitions. CreateTopics uses ``create_async``.
        """
        topic = self._new_topic(name, num_partitions, configs, validate_only, internal)
        if topic is None:
            return None
        topic.partitions = self._open_partitions(topic, 0, num_partitions, now_ms)
        self._register(topic)
        return topic

    async def create_async(
        self,
        name: str,
        num_partitions: int,
        configs: dict[str, str],
        now_ms: int,
        *,
        validate_only: bool = False,
    ) -> Topic | None:
        """``create`` with the partition logs opened in a worker thread.

        A topic of 10,000 partitions is tens of seconds of file creation and fsyncs on a disk,
        which must not stall every other client of the event loop. The creation finishes even
        if the requesting connection goes away meanwhile, as it does in Kafka.
        """
        topic = self._new_topic(name, num_partitions, configs, validate_only, internal=False)
        if topic is None:
            return None
        self._creating.add(name)

        async def finish() -> Topic:
            try:
                topic.partitions = await asyncio.to_thread(
                    self._open_partitions, topic, 0, num_partitions, now_ms
                )
            finally:
                self._creating.discard(name)
            self._register(topic)
            return topic

        return await self._shielded(finish())

    async def add_partitions_async(
        self, topic: Topic, total: int, now_ms: int, *, validate_only: bool
    ) -> None:
        """Grow ``topic`` to ``total`` partitions, the new logs opened in a worker thread."""
        lock = self._growing.setdefault(topic.name, asyncio.Lock())
        async with lock:
            start = len(topic.partitions)
            self._check_growth(topic, total)
            if validate_only:
                return

            async def finish() -> None:
                added = await asyncio.to_thread(self._open_partitions, topic, start, total, now_ms)
                if self.topics.get(topic.name) is not topic:  # deleted meanwhile
                    for partition in added:
                        partition.log.close()
                    raise TopicError(3, f"topic {topic.name!r} was deleted")
                topic.partitions.extend(added)
                self._save()

            await self._shielded(finish())

    def _new_topic(
        self,
        name: str,
        num_partitions: int,
        configs: dict[str, str],
        validate_only: bool,
        internal: bool,
    ) -> Topic | None:
        reason = check_topic_name(name)
        if reason is not None:
            raise TopicError(17, f"invalid topic name {name!r}: {reason}")  # INVALID_TOPIC
        if name in self.topics or name in self._creating:
            raise TopicError(36, f"topic {name!r} already exists")  # TOPIC_ALREADY_EXISTS
        if not 1 <= num_partitions <= PARTITIONS_MAX:
            raise TopicError(37, f"partition count must be 1..{PARTITIONS_MAX}")
        for key, value in configs.items():
            try:
                _topic_config.validate(key, value)
            except _topic_config.InvalidConfigError as exc:
                raise TopicError(40, str(exc)) from None  # INVALID_CONFIG
        if validate_only:
            return None
        return Topic(name, uuid.uuid4(), [], dict(configs), internal)

    def _check_growth(self, topic: Topic, total: int) -> None:
        if total <= len(topic.partitions):
            raise TopicError(
                37,
                f"topic {topic.name!r} has {len(topic.partitions)} partitions; "
                f"the new count must be larger, got {total}",
            )
        if total > PARTITIONS_MAX:
            raise TopicError(37, f"partition count must be at most {PARTITIONS_MAX}")

    def _open_partitions(self, topic: Topic, start: int, stop: int, now_ms: int) -> list[Partition]:
        """Open (creating) logs ``start..stop-1``; touches only their own folders, so it may run
        in a worker thread. On failure it closes what it opened and raises TopicError."""
        config = self.log_config(topic)
        opened: list[Partition] = []
        made: list[Path] = []
        try:
            for index in range(start, stop):
                if self._closing:  # the broker is stopping: give up, closing what is open
                    raise OSError(f"broker shutting down after {index - start} partitions")
                directory = self._data_dir / f"{topic.name}-{index}"
                if not directory.exists():
                    made.append(directory)
                log_ = PartitionLog.open(directory, config, now_ms=now_ms)
                opened.append(Partition(topic.name, index, log_))
        except OSError as exc:
            for partition in opened:
                partition.log.close()
            for directory in made:  # no half-made topic is left on disk to be found later
                shutil.rmtree(directory, ignore_errors=True)
            raise TopicError(56, f"cannot create topic {topic.name!r}: {exc}") from exc
        return opened

    def _register(self, topic: Topic) -> None:
        self._add(topic)
        try:
            self._save()
        except OSError as exc:
            self.topics.pop(topic.name, None)
            self.by_id.pop(topic.topic_id, None)
            for partition in topic.partitions:
                partition.log.close()
            raise TopicError(56, f"cannot create topic {topic.name!r}: {exc}") from exc
        log.info("created topic=%s partitions=%d", topic.name, len(topic.partitions))

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end even if the caller is cancelled (its connection closed)."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Seen here only when the requester went away; it has been answered otherwise.
            log.warning("topic change failed error=%s", task.exception())

    async def drain(self) -> None:
        """Stop opening new partition logs and wait for the worker threads (before close)."""
        self._closing = True
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def delete(self, name: str) -> Topic:
        topic = self.topics.get(name)
        if topic is None:
            raise TopicError(3, f"topic {name!r} does not exist")
        del self.topics[name]
        del self.by_id[topic.topic_id]
        self._growing.pop(name, None)
        self._save()
        for partition in topic.partitions:
            partition.log.close()
            directory = partition.log.directory
            # Rename first so that a crash mid-delete never leaves a half-deleted live log.
            doomed = directory.with_name(f"{directory.name}.{topic.topic_id.hex}-delete")
            directory.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            partition.notify()
        log.info("deleted topic=%s", name)
        return topic

    def partition(self, name: str, index: int) -> Partition | None:
        topic = self.topics.get(name)
        if topic is None or not 0 <= index < len(topic.partitions):
            return None
        return topic.partitions[index]

    def all_partitions(self) -> list[Partition]:
        return [p for t in self.topics.values() for p in t.partitions]

    def snapshot_producers(self) -> None:
        """Flush each log and save its producer state, so restarts read only a short tail."""
        for partition in self.all_partitions():
            end = partition.log.log_end_offset
            partition.producers.forget_before(partition.log.log_start_offset)
            if end != partition.producers.snapshot_offset:
                partition.log.flush()
                partition.producers.snapshot(end)

    def close(self) -> None:
        for partition in self.all_partitions():
            partition.log.flush()
            partition.producers.snapshot(partition.log.log_end_offset)
            partition.log.close()
