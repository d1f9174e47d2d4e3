"""Helpers for tests that run the real `tipline` command in processes of their own."""

from __future__ import annotations

import os
import subprocess
import sys

from tipline.config import Settings


def tipline_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `tipline` subprocess needs to use the same home and services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(
        TIPLINE_HOME=str(settings.home),
        TIPLINE_DATABASE_URL=settings.database_url,
        TIPLINE_GNUPG_HOME=str(settings.gnupg_home),
        **extra,
    )
    if settings.redis_url:
        env["TIPLINE_REDIS_URL"] = settings.redis_url
    return env


def run_tipline(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `tipline` command in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "tipline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
