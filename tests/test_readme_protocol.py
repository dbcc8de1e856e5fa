"""The README's protocol table says exactly what ApiVersions advertises."""

from __future__ import annotations

import re
from pathlib import Path

from headwater.broker._registry import HANDLERS
from headwater.broker._server import Broker  # noqa: F401  (registers handlers)

README = Path(__file__).parent.parent / "README.md"


def test_readme_lists_every_handled_api_with_its_versions() -> None:
    text = README.read_text()
    section = text.split("## Protocol support", 1)[1].split("ApiVersions advertises", 1)[0]
    listed = {
        name: (int(low), int(high) if high else int(low))
        for name, low, high in re.findall(r"([A-Z][A-Za-z]+) v(\d+)(?:-(\d+))?", section)
    }
    handled = {h.name: (h.min_version, h.max_version) for h in HANDLERS.values()}
    assert listed == handled
