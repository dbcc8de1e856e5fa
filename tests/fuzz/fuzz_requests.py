"""Coverage-guided fuzzing of the broker's request path (atheris, which is libFuzzer).

    .venv/bin/python tests/fuzz/fuzz_requests.py NEW_DIR tests/fuzz/corpus -runs=100000
    scripts/fuzz                      # the long run, with the flags it needs

Inputs are byte streams of size-prefixed request frames (see harness.py). The seed corpus holds
requests recorded from the clients the test suite drives. libFuzzer writes inputs that reach
new code into the first directory and a crashing input to ``-artifact_prefix``; keep every
crashing input in tests/fuzz/regressions/ so the suite replays it for good.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).parent))

with atheris.instrument_imports(include=["headwater", "harness"]):
    from harness import Harness


def main() -> None:
    harness = Harness()
    atheris.Setup(sys.argv, harness.run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
