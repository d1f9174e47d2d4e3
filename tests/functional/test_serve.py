"""`tipline serve`: the embedded default in one process tree, stopped cleanly."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.functional.test_embedded_redis import redis_servers_of
from tests.support import PATIENCE, free_port, run_tipline


@pytest.mark.slow
def test_serve_answers_works_jobs_and_stops_everything(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    home, env = home_env
    assert run_tipline("init", env=env).returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tipline", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = None
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:  # noqa: S310
                    health = json.load(r)
                if health["workers"] >= 1:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert health is not None and health["status"] == "ok" and health["workers"] == 1
        # A query string that could carry a token must not reach the access log.
        with contextlib.suppress(OSError):
            urllib.request.urlopen(  # noqa: S310
                f"http://127.0.0.1:{port}/enrol?token=secret-enrolment-token", timeout=5
            ).close()
        probe = run_tipline("probe", "--timeout", "60", env=env)
        assert probe.returncode == 0, probe.stderr
        assert len(redis_servers_of(home)) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=PATIENCE)
    assert server.returncode == 0, output
    assert "Traceback" not in output
    assert "GET /healthz" in output  # requests are logged...
    assert "secret-enrolment-token" not in output  # ...without query strings
    assert redis_servers_of(home) == []
