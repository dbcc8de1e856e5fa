"""The contract between the connector runtime and a sink.

The runtime owns the consumer, offsets, retries and the dead-letter topic; a sink only turns
batches of decoded records into durable writes. Keeping that split means every sink gets the
same delivery guarantee: offsets are committed only after ``flush`` returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from headwater.connect._records import Rejected, SinkRecord

TopicPartitionKey = tuple[str, int]


class TransientError(Exception):
    """The write failed for a reason that may pass (connection lost, lock held); retry it."""


class BatchRejected(Exception):
    """The store refused the batch because of its contents (a constraint, a bad value).

    The write must have left nothing behind. The runtime splits the batch to find the records
    at fault, writes the rest and sends those records to the dead-letter topic.
    """


@dataclass(frozen=True, slots=True)
class PartitionStart:
    """A partition the sink now owns and the group's committed next offset (None if none)."""

    topic: str
    partition: int
    committed: int | None


class Sink(ABC):
    """Writes batches of records durably; subclasses implement ``write`` and maybe the rest."""

    #: Short name used in logs and as the dead-letter ``stage`` header (``sink:<name>``).
    name: str = "sink"

    def assigned(self, partitions: Sequence[PartitionStart]) -> Mapping[TopicPartitionKey, int]:
        """Partitions arrived. Return start offsets that override the group's committed ones.

        Sinks that keep their own offsets with the data (transactionally) return them here;
        sinks that leave partial output behind on a crash clean it up here.
        """
        return {}

    @abstractmethod
    def write(self, batch: Sequence[SinkRecord]) -> list[Rejected]:
        """Write or buffer ``batch``; return the records refused one by one (never written).

        Raise ``TransientError`` to have the same batch retried after a backoff, or
        ``BatchRejected`` when the store refused the batch as a whole.
        """

    def flush_due(self, now_s: float) -> bool:
        """Whether buffered records should be made durable now (then offsets are committed)."""
        return True

    def flush(self) -> None:
        """Make every record accepted by ``write`` durable."""
        return None

    def released(self, partitions: Sequence[TopicPartitionKey]) -> None:
        """Partitions were lost without a clean hand-over; drop anything buffered for them."""
        return None

    def close(self) -> None:
        """Release connections and files; called once after the last flush."""
        return None
