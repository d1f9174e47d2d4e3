"""The real worker: a job sent by the web side is run by a separate `tipline worker` process."""

from __future__ import annotations

import os

from flask import Flask

from referrals.health.services import QueueProbeService
from tests.support import run_tipline, tipline_env
from tipline import database
from tipline.config import Settings
from tipline.runtime import Runtime


def test_a_job_sent_by_the_web_side_is_run_by_a_worker_process(
    app: Flask, runtime: Runtime, settings: Settings
) -> None:
    with app.app_context():
        service = QueueProbeService(database.session(), queue=runtime.queue, clock=runtime.clock)
        probe_id = service.send().id

    result = run_tipline("worker", "--burst", env=tipline_env(settings))

    assert result.returncode == 0, result.stderr
    with runtime.session_factory() as session:
        probe = QueueProbeService(session, queue=runtime.queue, clock=runtime.clock).get(probe_id)
        assert probe is not None and probe.answered_at is not None
        assert probe.answered_by is not None
        assert not probe.answered_by.endswith(f":{os.getpid()}")  # not this process


def test_probe_command_fails_when_no_worker_answers(settings: Settings, runtime: Runtime) -> None:
    result = run_tipline("probe", "--timeout", "1", env=tipline_env(settings))
    assert result.returncode == 1
    assert "no worker answered" in result.stderr
