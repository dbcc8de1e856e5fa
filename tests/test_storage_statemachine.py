"""State-machine test: append, flush, crash at byte N, reopen.

Nothing flushed is lost, nothing torn is visible, offsets stay consecutive and lookups by
timestamp agree with a plain model of the log.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from headwater.protocol import NewRecord, build_batch, split_batches
from headwater.storage import LogConfig, PartitionLog
from test_storage_support import crash, read_all

CONFIG = LogConfig(segment_bytes=700, index_interval_bytes=150, retention_ms=-1)
SUFFIXES = (".log", ".index", ".timeindex")


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="headwater-sm-"))
        self.log = PartitionLog.open(self.directory, CONFIG, now_ms=0)
        self.model: list[tuple[bytes, int]] = []  # (value, timestamp) per offset
        self.start = 0
        self.flushed = 0
        self.flushed_sizes: dict[str, int] = {}  # file name -> size at the last flush
        self.now_ms = 0

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(
        values=st.lists(st.binary(max_size=90), min_size=1, max_size=4),
        ts=st.integers(0, 1_000),
        append_time=st.booleans(),
        batches=st.integers(1, 2),
    )
    def append(self, values: list[bytes], ts: int, append_time: bool, batches: int) -> None:
        self.now_ms += 7
        payload = bytearray()
        stamped = []
        for _ in range(batches):
            payload += build_batch([NewRecord(None, v, ts) for v in values])
            stamped += [(v, self.now_ms if append_time else ts) for v in values]
        result = self.log.append(
            payload, split_batches(payload), now_ms=self.now_ms, log_append_time=append_time
        )
        assert result.base_offset == len(self.model)
        assert result.last_offset == len(self.model) + len(stamped) - 1
        self.model.extend(stamped)

    @rule()
    def flush(self) -> None:
        assert self.log.flush() == len(self.model)
        self.flushed = len(self.model)
        self.flushed_sizes = {
            p.name: p.stat().st_size for p in self.directory.iterdir() if p.suffix in SUFFIXES
        }

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(0, len(self.model)), label="delete before")
        self.start = max(self.start, target)
        assert self.log.delete_records(target) == self.start

    @precondition(lambda self: self.log.log_end_offset > self.flushed)
    @rule(data=st.data())
    def crash_and_recover(self, data: st.DataObject) -> None:
        crash(self.log)
        files = sorted(p for p in self.directory.iterdir() if p.suffix in SUFFIXES)
        torn = [p for p in files if p.stat().st_size > self.flushed_sizes.get(p.name, 0)]
        for path in data.draw(st.lists(st.sampled_from(torn), max_size=3, unique=True)):
            floor = self.flushed_sizes.get(path.name, 0)
            cut = data.draw(st.integers(floor, path.stat().st_size), label=f"cut {path.name}")
            garbage = data.draw(st.binary(max_size=80), label="garbage")
            with path.open("r+b") as f:
                f.truncate(cut)
                f.seek(cut)
                f.write(garbage)
        self._reopen()

    @rule()
    def close_and_reopen(self) -> None:
        self.log.close()
        end = len(self.model)
        self._reopen()
        assert self.log.log_end_offset == end

    def _reopen(self) -> None:
        self.log = PartitionLog.open(self.directory, CONFIG, now_ms=self.now_ms)
        end = self.log.log_end_offset
        assert self.flushed <= end <= len(self.model)
        del self.model[end:]
        self.start = min(self.start, end)
        assert self.log.log_start_offset == self.start
        self.flushed = end
        self.flushed_sizes = {
            p.name: p.stat().st_size for p in self.directory.iterdir() if p.suffix in SUFFIXES
        }

    @invariant()
    def contents_match_model(self) -> None:
        assert self.log.log_end_offset == len(self.model)
        assert self.log.log_start_offset == self.start
        visible = [(o, v) for o, (v, _) in enumerate(self.model) if o >= self.start]
        assert read_all(self.log) == visible

    @invariant()
    def timestamps_match_model(self) -> None:
        for target in (0, 250, 500, 999, self.now_ms):
            want = next(
                ((o, t) for o, (_, t) in enumerate(self.model) if o >= self.start and t >= target),
                None,
            )
            assert self.log.offset_for_timestamp(target) == want
        visible = [t for _, t in self.model[self.start :]]
        if visible:
            # Whole segments below the log start may still count; never a record not appended.
            last = self.log.last_timestamp()
            assert max(visible) <= last <= max(t for _, t in self.model)
        else:
            assert self.log.last_timestamp() == -1


LogMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestLogMachine = LogMachine.TestCase
