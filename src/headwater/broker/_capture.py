"""Recording of real client requests, the seed corpus of the request fuzzer.

Test-only (``frame_capture_dir``): the broker writes request frames it decoded, size-prefixed
as on the wire, keyed by API, version and client id, so the fuzzer starts from what real
clients send instead of from random bytes. A few distinct frames per key are kept, small ones
only, and client ids lose their numeric suffixes ("kafka-python-producer-7" counts as
"kafka-python-producer"), so a whole test-suite run yields a corpus of a few hundred files.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

FRAMES_PER_KEY = 4
FRAME_BYTES_MAX = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_NUMERIC_SUFFIX = re.compile(r"([-_.]?\d[\d.]*)+$")


class FrameCapture:
    """Writes up to ``FRAMES_PER_KEY`` distinct frames per (api_key, version, client)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._counts: dict[str, int] = {}

    def offer(self, frame: bytes, api_key: int, version: int, client_id: str | None) -> None:
        if len(frame) > FRAME_BYTES_MAX:
            return
        client = _NUMERIC_SUFFIX.sub("", _UNSAFE.sub("_", client_id or "none"))[:40] or "none"
        key = f"{api_key:03d}-v{version:02d}-{client}"
        if key not in self._counts:
            self._counts[key] = len(list(self.directory.glob(f"{key}-*.bin")))
        if self._counts[key] >= FRAMES_PER_KEY:
            return
        path = self.directory / f"{key}-{hashlib.sha1(frame).hexdigest()[:10]}.bin"  # noqa: S324
        if path.exists():
            return
        try:
            path.write_bytes(len(frame).to_bytes(4, "big") + frame)  # as sent on the wire
        except OSError as exc:
            log.warning("frame capture failed path=%s error=%s", path, exc)
            return
        self._counts[key] += 1
