"""Debian's Chromium for the browser tests (Playwright drives it; it never downloads one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    """Skip the calling test module when Chromium is missing, except in CI (and whenever
    services are required), where a missing browser fails: never a quiet skip there."""
    if CHROMIUM.exists():
        return
    if os.environ.get("TIPLINE_TEST_REQUIRE_SERVICES") == "1" or os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(  # pragma: no cover - depends on the machine
        f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)",
        allow_module_level=True,
    )
