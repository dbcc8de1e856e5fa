"""Producer state per partition: sequences, duplicates, fencing, and open transactions.

Each partition remembers, per producer id, its epoch and the sequence ranges and offsets of its
last five batches (librdkafka and the Java client keep at most five in flight). A retried batch
is answered with its original offsets instead of being written twice; a gap in the sequence is
OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is fenced. The state is rebuilt on start from a
snapshot plus the batch headers written after it, so recovery never rescans the whole log.

Transactions: the first transactional batch of a producer opens a transaction at its offset;
a control marker closes it. The last stable offset (LSO) is the first offset of the oldest open
transaction. Aborted transactions are remembered as (producer id, first offset, last offset) so
read_committed fetches can tell consumers which records to drop.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from headwater.protocol import BatchHeader, decode_batch, iter_batches
from headwater.storage import PartitionLog
from headwater.storage._durable_file import write_json

log = logging.getLogger(__name__)

BATCHES_REMEMBERED = 5
SNAPSHOT_FILE = "producer-state.json"
_READ_CHUNK_BYTES = 4 * 1024 * 1024
INT32_MAX = 2**31 - 1

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
DUPLICATE_SEQUENCE_NUMBER = 46


@dataclass(slots=True)
class _Producer:
    epoch: int
    last_timestamp: int = -1  # max timestamp of its latest batch, for DescribeProducers
    # (first sequence, last sequence, base offset, last offset) of recent batches, oldest first.
    batches: deque[tuple[int, int, int, int]] = field(
        default_factory=lambda: deque(maxlen=BATCHES_REMEMBERED)
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one batch: append it, answer a duplicate, or refuse it."""

    error_code: int = 0
    duplicate_of: tuple[int, int] | None = None  # (base offset, last offset) already written


def _marker_commits(chunk: bytes, pos: int, header: BatchHeader) -> bool | None:
    """The type of a control batch's marker: True commit, False abort, None if not a marker."""
    if not header.is_control:
        return None
    _, records = decode_batch(chunk, pos)
    key = records[0].key if records else None
    if key is None or len(key) < 4:
        return None
    return int.from_bytes(key[2:4], "big") == 1


def _last_sequence(header: BatchHeader) -> int:
    return (header.base_sequence + header.last_offset_delta) % (INT32_MAX + 1)


class ProducerState:
    """Owned by the event-loop thread; one per partition log."""

    __slots__ = ("_path", "_producers", "aborted", "ongoing", "snapshot_offset")

    def __init__(self, directory: Path) -> None:
        self._path = directory / SNAPSHOT_FILE
        self._producers: dict[int, _Producer] = {}
        self.snapshot_offset = 0
        # producer id -> first offset of its open transaction on this partition
        self.ongoing: dict[int, int] = {}
        # (producer id, first offset, last offset incl. the abort marker), in offset order
        self.aborted: list[tuple[int, int, int]] = []

    @classmethod
    def load(cls, log_: PartitionLog) -> ProducerState:
        """Snapshot, then every batch header written after it (only the tail is read)."""
        state = cls(log_.directory)
        try:
            data = json.loads(state._path.read_bytes())
            state.snapshot_offset = int(data["offset"])
            for pid, entry in data["producers"].items():
                producer = _Producer(int(entry["epoch"]), int(entry.get("ts", -1)))
                producer.batches.extend(tuple(b) for b in entry["batches"])
                state._producers[int(pid)] = producer
            state.ongoing = {int(k): int(v) for k, v in data.get("ongoing", {}).items()}
            state.aborted = [(int(a), int(b), int(c)) for a, b, c in data.get("aborted", [])]
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(
                "producer snapshot unreadable, rebuilding dir=%s error=%s", log_.directory, exc
            )
            state._reset()
        if state.snapshot_offset > log_.log_end_offset:  # the log lost an unflushed tail
            state._reset()
        position = max(state.snapshot_offset, log_.log_start_offset)
        while position < log_.log_end_offset:
            chunk = log_.read(position, _READ_CHUNK_BYTES)
            if not chunk:
                break
            for pos, header in iter_batches(chunk):
                if header.last_offset >= position:
                    state.record(header, _marker_commits(chunk, pos, header))
                position = header.last_offset + 1
        return state

    def _reset(self) -> None:
        self._producers.clear()
        self.ongoing.clear()
        self.aborted.clear()
        self.snapshot_offset = 0

    def forget_before(self, log_start_offset: int) -> None:
        """Drop aborted-transaction entries that retention has already deleted."""
        if self.aborted and self.aborted[0][2] < log_start_offset:
            self.aborted = [a for a in self.aborted if a[2] >= log_start_offset]

    def last_stable_offset(self, log_end_offset: int) -> int:
        return min(self.ongoing.values(), default=log_end_offset)

    def aborted_in(self, start: int, end: int) -> list[dict[str, int]]:
        """Aborted transactions overlapping offsets [start, end), for read_committed fetches."""
        return [
            {"producer_id": pid, "first_offset": first}
            for pid, first, last in self.aborted
            if last >= start and first < end
        ]

    def check(self, header: BatchHeader) -> Verdict:
        """Classify a batch before it is appended."""
        if header.producer_id < 0:
            return Verdict()
        producer = self._producers.get(header.producer_id)
        if producer is None:
            return Verdict()
        if header.producer_epoch < producer.epoch:
            return Verdict(INVALID_PRODUCER_EPOCH)
        if header.producer_epoch > producer.epoch:
            if header.base_sequence != 0:
                return Verdict(OUT_OF_ORDER_SEQUENCE_NUMBER)
            return Verdict()
        last = _last_sequence(header)
        for first_seq, last_seq, base, last_offset in producer.batches:
            if first_seq == header.base_sequence and last_seq == last:
                return Verdict(duplicate_of=(base, last_offset))
        if producer.batches:
            expected = (producer.batches[-1][1] + 1) % (INT32_MAX + 1)
            if header.base_sequence != expected:
                # An older sequence that is no longer cached is a duplicate Kafka cannot place.
                return Verdict(OUT_OF_ORDER_SEQUENCE_NUMBER)
        return Verdict()

    def record(self, header: BatchHeader, commits: bool | None = None) -> None:
        """Remember a batch that was appended (header carries its assigned offsets).

        ``commits`` is the marker type of a control batch: True commit, False abort.
        """
        if header.producer_id < 0:
            return
        if header.is_control:
            first = self.ongoing.pop(header.producer_id, None)
            if commits is False and first is not None:
                self.aborted.append((header.producer_id, first, header.last_offset))
            known = self._producers.get(header.producer_id)
            if known is not None and header.producer_epoch > known.epoch:
                # A marker under a bumped epoch (a timeout, or every transaction with
                # transaction version 2) fences the old epoch here too; the new epoch's
                # sequences start afresh.
                self._producers[header.producer_id] = _Producer(header.producer_epoch)
            return
        if header.is_transactional:
            self.ongoing.setdefault(header.producer_id, header.base_offset)
        producer = self._producers.get(header.producer_id)
        if producer is None or header.producer_epoch > producer.epoch:
            producer = _Producer(header.producer_epoch)
            self._producers[header.producer_id] = producer
        producer.batches.append(
            (header.base_sequence, _last_sequence(header), header.base_offset, header.last_offset)
        )
        producer.last_timestamp = header.max_timestamp

    def snapshot(self, offset: int) -> None:
        """Persist the state as of ``offset`` (everything below it is reflected)."""
        write_json(
            self._path,
            {
                "offset": offset,
                "producers": {
                    str(pid): {
                        "epoch": p.epoch,
                        "ts": p.last_timestamp,
                        "batches": [list(b) for b in p.batches],
                    }
                    for pid, p in self._producers.items()
                },
                "ongoing": {str(k): v for k, v in self.ongoing.items()},
                "aborted": [list(a) for a in self.aborted],
            },
        )
        self.snapshot_offset = offset

    def producers(self) -> dict[int, tuple[int, int, int, int]]:
        """Producer id -> (epoch, last sequence, last offset, last timestamp), for
        DescribeProducers."""
        return {
            pid: (p.epoch, p.batches[-1][1], p.batches[-1][3], p.last_timestamp)
            for pid, p in self._producers.items()
            if p.batches
        }
