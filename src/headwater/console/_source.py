"""The contract between whoever owns the numbers and the console that shows them."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class MetricsSource(Protocol):
    """Anything that can describe the pipeline right now as JSON-able data.

    ``snapshot()`` is called from a worker thread once per page refresh, so it should be
    cheap: read counters kept up to date elsewhere rather than query the cluster. The shape
    is documented in ``headwater.console``.
    """

    def snapshot(self) -> dict[str, Any]: ...
