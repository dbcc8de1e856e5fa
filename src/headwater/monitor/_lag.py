"""Consumer lag: how far each group's committed offsets trail the end of its partitions.

Lag is read from the outside, through the admin API and offset queries, so it can be measured
for any group, running or stopped, without joining it. End offsets are asked for with
``read_committed`` isolation: a transactional producer's open transaction sits past the last
stable offset, and a ``read_committed`` group cannot read it yet, so it is not counted as lag.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from headwater.client import Admin, AdminError, KafkaException, TopicPartition, new_consumer

_log = logging.getLogger(__name__)

_QUERY_TIMEOUT_S = 10.0
# The group id librdkafka is given for consumers that never join a group (see headwater.client);
# it never commits, so it has no lag worth showing.
_CLIENT_GROUP = "headwater-cli"


class LagError(RuntimeError):
    """Lag could not be measured; the message names the group or partition and the cause."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of one group: where the group is, where the log ends, and the gap."""

    topic: str
    partition: int
    committed: int | None
    """None when the group has no commit here; lag then counts every readable record."""
    end: int
    lag: int

    @property
    def label(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(frozen=True, slots=True)
class GroupLag:
    """A group's lag over every partition it has committed offsets for."""

    group: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        """The dashboard's shape: ``{"total": int, "partitions": {"topic[p]": lag}}``."""
        return {"total": self.total, "partitions": {p.label: p.lag for p in self.partitions}}


def is_internal_group(group: str) -> bool:
    """Groups that belong to the platform's plumbing rather than to a user's pipeline."""
    return group.startswith("_") or group == _CLIENT_GROUP


def lag_snapshot(lags: dict[str, GroupLag]) -> dict[str, dict[str, Any]]:
    """Lag per group in the JSON shape of the console's ``lag`` field."""
    return {group: lags[group].to_json() for group in sorted(lags)}


class LagReader:
    """Keeps one admin client and one offset-query consumer for repeated lag readings.

    Creating librdkafka clients costs threads and connections, so a monitor that samples every
    second reuses one reader; ``consumer_lag`` makes a reader for a single reading.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._admin = Admin(bootstrap)
        # Never subscribes, so it never joins or commits to a group.
        self._consumer = new_consumer(
            bootstrap, None, {"isolation.level": "read_committed", "enable.auto.commit": False}
        )

    def groups(self) -> list[str]:
        """Every consumer group the cluster knows, internal ones left out."""
        try:
            listed = self._admin.list_groups()
        except AdminError as exc:
            raise LagError(f"cannot list consumer groups on {self.bootstrap}: {exc}") from None
        return [group for group, _state in listed if not is_internal_group(group)]

    def read(self, groups: list[str] | None = None) -> dict[str, GroupLag]:
        """Lag of ``groups``, or of every non-internal group when None."""
        discovered = groups is None
        names = self.groups() if groups is None else list(groups)
        result: dict[str, GroupLag] = {}
        for group in names:
            try:
                result[group] = self.read_group(group)
            except LagError as exc:
                if not discovered:
                    raise
                # A discovered group can vanish between listing and reading; skip it this time.
                _log.debug("lag skipped group=%s reason=%s", group, exc)
        return result

    def read_group(self, group: str) -> GroupLag:
        try:
            committed = self._admin.committed(group)
        except AdminError as exc:
            raise LagError(f"cannot read committed offsets of group {group!r}: {exc}") from None
        partitions = [
            self._partition_lag(topic, partition, offset)
            for (topic, partition), offset in sorted(committed.items())
        ]
        return GroupLag(group=group, partitions=tuple(partitions))

    def _partition_lag(self, topic: str, partition: int, offset: int) -> PartitionLag:
        try:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=_QUERY_TIMEOUT_S, cached=False
            )
        except KafkaException as exc:
            raise LagError(
                f"cannot read the end offset of {topic}[{partition}]: {exc.args[0]}"
            ) from None
        if offset < 0:
            return PartitionLag(topic, partition, None, high, max(0, high - low))
        return PartitionLag(topic, partition, offset, high, max(0, high - offset))

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> LagReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def consumer_lag(bootstrap: str, groups: list[str] | None = None) -> dict[str, GroupLag]:
    """Lag per group: committed offsets against ``read_committed`` end offsets.

    With ``groups`` None every group on the cluster is read, internal ones left out, and a
    group that disappears mid-reading is skipped; a named group that cannot be read raises
    ``LagError``. A named group with no commits yet has an empty, zero lag.
    """
    with LagReader(bootstrap) as reader:
        return reader.read(groups)
