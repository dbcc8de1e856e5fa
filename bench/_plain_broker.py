"""``headwater`` as a plain install runs it, for the benchmarks' memory figures.

The development environment has the test extras, among them Hypothesis, which kio imports
whenever it can (about 20 MB of resident memory in the broker). ``pip install headwater`` has
no Hypothesis, so the benchmarks start the broker through this file, which hides it.
"""

from __future__ import annotations

import sys

sys.modules["hypothesis"] = None  # type: ignore[assignment]  # import now fails: kio skips it

from headwater.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
