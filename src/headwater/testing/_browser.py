"""Headless Chromium for page tests: load a URL, let its scripts run, return the DOM.

``--virtual-time-budget`` lets timers and polling run for a fixed amount of page time without
the test sleeping, and the returned DOM shows what the scripts did. The flags keep Chromium
from reaching for the network on its own (sync, updates, field trials), which a machine
without internet answers with a stream of refused connections.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

# Generous: a cold start of Chromium on a busy two-core machine can take a while.
_RUN_TIMEOUT_S = 180.0
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)


class BrowserError(RuntimeError):
    """Chromium is missing or failed; the message says which and what to do."""


def chromium_path() -> str:
    """The Chromium executable, or a BrowserError saying how to install it."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found is not None:
            return found
    raise BrowserError(
        "chromium was not found on PATH; run scripts/install-test-tools to install Debian's "
        "chromium package"
    )


def render(
    url: str,
    *,
    screenshot: Path | None,
    wait_ms: int = 4000,
    window: tuple[int, int] = (1280, 900),
) -> str:
    """Load ``url`` in headless Chromium for ``wait_ms`` of page time and return the DOM.

    With ``screenshot`` a PNG of the window is written there in the same run: Chromium takes
    both after the time budget, so the picture and the DOM show the same moment.
    """
    if wait_ms < 0:
        raise ValueError("wait_ms must not be negative")
    width, height = window
    with tempfile.TemporaryDirectory(prefix="headwater-chromium-") as profile:
        args = [
            chromium_path(),
            *_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={wait_ms}",
            "--dump-dom",
            f"--window-size={width},{height}",
        ]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            args.append(f"--screenshot={screenshot}")
        args.append(url)
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, timeout=_RUN_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise BrowserError(
                f"chromium did not finish rendering {url} within {_RUN_TIMEOUT_S:.0f} s"
            ) from None
    if done.returncode != 0 or "<html" not in done.stdout:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BrowserError(f"chromium failed to render {url} (exit {done.returncode}):\n{tail}")
    if screenshot is not None and not screenshot.is_file():
        raise BrowserError(f"chromium rendered {url} but wrote no screenshot to {screenshot}")
    return done.stdout
