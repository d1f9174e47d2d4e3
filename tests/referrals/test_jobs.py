from __future__ import annotations

import zlib

import pytest
from rq.serializers import JSONSerializer

from referrals.health import tasks
from referrals.health.services import QueueProbeService
from referrals.jobs import DEFAULT_QUEUE, TiplineJob, is_task
from tipline.runtime import Runtime


def not_a_task(context: object, value: int) -> None:  # pragma: no cover - must never run
    raise AssertionError("ran")


def test_jobs_take_ids_only(runtime: Runtime) -> None:
    with pytest.raises(TypeError, match="ids"):
        runtime.queue.enqueue(tasks.answer_probe, {"narrative": "x"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ids"):
        runtime.queue.enqueue(tasks.answer_probe, 1.5)  # type: ignore[arg-type]
    assert runtime.queue.queue(DEFAULT_QUEUE).count == 0


def test_only_tasks_can_be_enqueued(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="not a task"):
        runtime.queue.enqueue(not_a_task, 1)
    assert is_task("referrals.health.tasks.answer_probe")
    assert not is_task("os.system")
    assert not is_task("tests.referrals.test_jobs.not_a_task")


def test_jobs_are_stored_as_json_with_the_id_only(runtime: Runtime) -> None:
    with runtime.session_factory() as session:
        probe = QueueProbeService(session, queue=runtime.queue, clock=runtime.clock).send()
    queue = runtime.queue.queue(DEFAULT_QUEUE)
    [job_id] = queue.job_ids
    raw = runtime.redis.hget(f"rq:job:{job_id}", "data")
    assert raw is not None
    assert JSONSerializer.loads(zlib.decompress(raw)) == [
        "referrals.health.tasks.answer_probe",
        None,
        [probe.id],
        {},
    ]


def test_a_worker_answers_a_probe_once_even_when_delivered_twice(runtime: Runtime) -> None:
    with runtime.session_factory() as session:
        service = QueueProbeService(session, queue=runtime.queue, clock=runtime.clock)
        probe = service.send()
        runtime.queue.enqueue(tasks.answer_probe, probe.id)  # a second delivery
        worker = runtime.queue.worker(runtime.job_context())
        assert worker.work(burst=True)
        answered = service.get(probe.id)
        assert answered is not None and answered.answered_at is not None
        first_answer = answered.answered_at
        tasks.answer_probe(runtime.job_context(), probe.id)  # and a third, directly
        again = service.get(probe.id)
        assert again is not None and again.answered_at == first_answer


def test_a_job_naming_a_foreign_function_is_refused_by_the_worker(runtime: Runtime) -> None:
    """Whoever can write to Redis must not get arbitrary functions run."""
    queue = runtime.queue.queue(DEFAULT_QUEUE)
    job = queue.enqueue("os.getcwd")
    assert isinstance(job, TiplineJob)
    worker = runtime.queue.worker(runtime.job_context())
    worker.work(burst=True)
    job.refresh()
    assert job.is_failed
    assert "ForbiddenJob" in (job.latest_result().exc_string or "")
