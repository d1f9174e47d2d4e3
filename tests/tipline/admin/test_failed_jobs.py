"""Failed jobs, in the web and on the command line: listed by task, ids and error type (never
the error's text), and sent back to their queue (audited)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from referrals.jobs import DEFAULT_QUEUE
from tests.support import tipline_env
from tests.tipline.admin.people import Person, audit_records, csrf, enrolled, signed_in_client
from tipline.cli import cli
from tipline.config import Settings
from tipline.runtime import Runtime


@pytest.fixture
def admin(runtime: Runtime) -> Person:
    return enrolled(runtime, "root@centre.example", "admin")


@pytest.fixture
def admin_client(app: Flask, runtime: Runtime, admin: Person) -> FlaskClient:
    return signed_in_client(app, runtime, admin)


@pytest.fixture
def failed_job(runtime: Runtime) -> str:
    """A job the worker refused for good (it named a function that is not a task)."""
    job = runtime.queue.queue(DEFAULT_QUEUE).enqueue("os.getenv", "SECRET_NAME")
    runtime.queue.worker(runtime.job_context()).work(burst=True)
    job.refresh()
    assert job.is_failed
    return str(job.id)


def test_an_admin_sees_a_failed_job_by_type_and_requeues_it(
    admin_client: FlaskClient, runtime: Runtime, admin: Person, failed_job: str
) -> None:
    page = admin_client.get("/admin/failed-jobs").get_data(as_text=True)
    assert "<code>os.getenv</code>" in page
    assert "ForbiddenJob" in page
    assert "refusing a job" not in page  # the error's message stays out of the page
    answer = admin_client.post(
        f"/admin/failed-jobs/{failed_job}/requeue", data={"csrf_token": csrf(page)}
    )
    assert answer.status_code == 302
    assert "The job is queued again" in admin_client.get("/admin/failed-jobs").get_data(
        as_text=True
    )
    assert runtime.queue.failed() == []
    assert failed_job in runtime.queue.queue(DEFAULT_QUEUE).job_ids
    [record] = audit_records(runtime, "job.requeued")
    assert (record.actor, record.subject) == (f"user:{admin.id}", f"job:{failed_job}")


def test_the_command_line_lists_and_requeues_failed_jobs(
    settings: Settings, runtime: Runtime, failed_job: str
) -> None:
    runner = CliRunner(env=tipline_env(settings))
    listed = json.loads(runner.invoke(cli, ["jobs", "failed", "--json"]).output)
    assert [(j["id"], j["task"], j["ids"], j["error"]) for j in listed] == [
        (failed_job, "os.getenv", ["SECRET_NAME"], "ForbiddenJob")
    ]
    result = runner.invoke(cli, ["jobs", "requeue", "--all"], catch_exceptions=False)
    assert result.output == f"requeued {failed_job}\n"
    assert runner.invoke(cli, ["jobs", "failed"]).output == "no failed jobs\n"
    missing = runner.invoke(cli, ["jobs", "requeue", "nope"])
    assert missing.exit_code == 1
    assert [r.actor.startswith("cli:") for r in audit_records(runtime, "job.requeued")] == [True]
