"""The job queue: how work is sent to rq workers and how a job reaches its dependencies.

Rules every job follows (rq delivers at least once, so a job may run twice):

* a job takes ids only, serialised as JSON (never pickle, never content);
* it is enqueued only after the transaction that created its input committed;
* its state changes are guarded (``UPDATE ... WHERE status = ...``) so a second run is a no-op.

A job function is ``def name(context: JobContext, *ids) -> None`` in a ``referrals.*.tasks``
module. The worker hands it a ``JobContext`` (sessions, clock) instead of the function reaching
for module globals; only functions in such modules are run, whatever a Redis client enqueued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crypto import BlindIndex, Keyring
from crypto.secretbox import SecretBox
from referrals.clock import Clock

INTAKE_QUEUE = "intake"
DEFAULT_QUEUE = "default"
# Workers take from the first non-empty queue in this order: incoming tips first.
QUEUE_NAMES = (INTAKE_QUEUE, DEFAULT_QUEUE)

# Transient failures (database restarting, lock timeouts) get retried with back-off.
DEFAULT_RETRY = Retry(max=5, interval=[5, 15, 60, 180, 600])


class ForbiddenJob(RuntimeError):
    """A job named a function that is not a Tipline task."""


@dataclass(frozen=True)
class FailedJob:
    """A job rq gave up on, as operators see it: what it was for (its task and ids: a job
    carries nothing else) and the type of its last error (never its message or traceback, which
    could quote what the job was working on)."""

    id: str
    queue: str
    task: str
    ids: tuple[object, ...]
    failed_at: datetime | None
    error: str


def error_type(exc_string: str | None) -> str:
    """The exception's class name from rq's traceback text (``pkg.mod.Error: message``)."""
    lines = [line for line in (exc_string or "").splitlines() if line.strip()]
    if not lines:
        return "unknown"
    head = lines[-1].split(":", 1)[0].strip()
    return head.rsplit(".", 1)[-1][:80] or "unknown"


@dataclass(frozen=True, kw_only=True)
class JobContext:
    """What a job may use, handed over by the worker that runs it."""

    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock
    queue: JobQueue
    keyring: Keyring
    blind_index: BlindIndex
    audit_key: bytes
    # Opens small secrets sealed at rest (another centre's token, to deliver packages).
    secret_box: SecretBox


def is_task(func_name: str) -> bool:
    module, _, _ = func_name.rpartition(".")
    return module.startswith("referrals.") and module.endswith(".tasks")


class TiplineJob(Job):
    """An rq job whose function gets the worker's JobContext as its first argument."""

    context: JobContext | None = None

    def _execute(self) -> Any:
        if not is_task(self.func_name or ""):
            raise ForbiddenJob("refusing a job whose function is not a Tipline task")
        if self.context is None:
            raise RuntimeError("a Tipline job must run in a Tipline worker")
        return self.func(self.context, *self.args, **self.kwargs)


MaintenanceTask = Callable[[JobContext], object]


def at_most_every(seconds: int, name: str, task: MaintenanceTask) -> MaintenanceTask:
    """``task``, run with the workers' maintenance but at most once every ``seconds`` across
    all of them (for work that need not run as often as the sweep)."""

    def run(context: JobContext) -> object:
        ran = context.queue.connection.set(
            f"tipline:maintenance:{name}", "1", nx=True, ex=max(seconds, 1)
        )
        return task(context) if ran else None

    run.__name__ = name
    return run


class TiplineWorker(SimpleWorker):
    """An rq worker that hands each job the JobContext it was built with.

    Jobs run in the worker's own process, one after another, not in a process forked for each
    (rq's default): a fork cost ~100 ms per tip against ~10 ms of GnuPG work, and lost what the
    worker had learnt (database connections, which partner keys the keyring holds) with every
    job. A job still ends at its time limit (rq's alarm signal raises in it), a worker that dies
    takes only its current job with it (rq retries it; the sweep catches what rq lost), and
    plaintext lives only in the objects of the call that decrypted it, as before.

    Args:
        context: what jobs get.
        maintenance: run with rq's periodic maintenance (``maintenance_interval`` seconds),
            by one worker at a time across every host.
    """

    def __init__(
        self,
        *args: Any,
        context: JobContext,
        maintenance: tuple[MaintenanceTask, ...] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("job_class", TiplineJob)
        kwargs.setdefault("serializer", JSONSerializer)
        super().__init__(*args, **kwargs)
        self.context = context
        self.maintenance = maintenance

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        if not self.maintenance:
            return
        lock = self.connection.set(
            "tipline:maintenance-lock", self.name, nx=True, ex=max(self.maintenance_interval - 1, 1)
        )
        if not lock:
            return  # another worker did it this round
        for task in self.maintenance:
            try:
                task(self.context)
            except Exception:
                # Maintenance must never stop the worker from taking jobs.
                self.log.exception("maintenance task %s failed", getattr(task, "__name__", task))

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        if isinstance(job, TiplineJob):
            job.context = self.context
        succeeded = bool(super().perform_job(job, queue, execution))
        if not succeeded:
            # A job stopped by its time limit may have been stopped mid-query: its connection
            # is in a state nobody knows. The next job starts from fresh ones.
            self.context.engine.dispose()
        return succeeded


class JobQueue:
    """Sends jobs to the queues on one Redis connection.

    Args:
        connection: the Redis the workers listen on.
    """

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def queue(self, name: str = DEFAULT_QUEUE) -> Queue:
        if name not in QUEUE_NAMES:
            raise ValueError(f"unknown queue {name!r}")
        return Queue(
            name, connection=self.connection, serializer=JSONSerializer, job_class=TiplineJob
        )

    def enqueue(
        self,
        func: Callable[..., Any],
        *ids: int | str,
        queue: str = DEFAULT_QUEUE,
        job_id: str | None = None,
        retry: Retry | None = DEFAULT_RETRY,
        timeout: int | None = None,
    ) -> str:
        """Send ``func(context, *ids)`` to a worker; returns the job id.

        Call only after committing what the job reads. ``job_id`` makes a resend of the same
        work (by the sweep, say) replace rather than duplicate a job still waiting;
        ``timeout`` (seconds) is when rq stops the job (rq's default: 180).
        """
        name = f"{func.__module__}.{func.__qualname__}"
        if not is_task(name):
            raise ValueError(f"{name} is not a task (a function in a referrals.*.tasks module)")
        for value in ids:
            # Ids only: anything else could carry tip content into Redis.
            if not isinstance(value, int | str) or isinstance(value, bool):
                raise TypeError("jobs take ids (int or str) only")
        job = self.queue(queue).enqueue(func, *ids, job_id=job_id, retry=retry, job_timeout=timeout)
        return str(job.id)

    def failed(self, *, limit: int = 500) -> list[FailedJob]:
        """Jobs rq gave up on (their retries used up), newest first, on every queue."""
        found: list[FailedJob] = []
        for name in QUEUE_NAMES:
            queue = self.queue(name)
            for job in queue.failed_job_registry.get_job_ids(0, limit - 1):
                fetched = queue.fetch_job(job)
                if fetched is None:
                    continue  # expired between the two calls
                result = fetched.latest_result()
                found.append(
                    FailedJob(
                        id=fetched.id,
                        queue=name,
                        task=fetched.func_name or "?",
                        ids=tuple(fetched.args or ()),
                        failed_at=fetched.ended_at.replace(tzinfo=UTC)
                        if fetched.ended_at and fetched.ended_at.tzinfo is None
                        else fetched.ended_at,
                        error=error_type(result.exc_string if result else None),
                    )
                )
        found.sort(key=lambda job: job.failed_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return found[:limit]

    def requeue(self, job_id: str) -> bool:
        """Send a failed job back to its queue (fresh retries). Returns whether it was failed."""
        for name in QUEUE_NAMES:
            registry = self.queue(name).failed_job_registry
            if job_id in registry.get_job_ids():
                registry.requeue(job_id)
                return True
        return False

    @property
    def serializer(self) -> type[JSONSerializer]:
        return JSONSerializer

    def worker(
        self,
        context: JobContext,
        *,
        name: str | None = None,
        maintenance: tuple[MaintenanceTask, ...] = (),
        maintenance_interval: int = 60,
    ) -> TiplineWorker:
        """A worker on every queue, most urgent first."""
        return TiplineWorker(
            [self.queue(q) for q in QUEUE_NAMES],
            connection=self.connection,
            context=context,
            name=name,
            maintenance=maintenance,
            maintenance_interval=maintenance_interval,
            # An idle worker wakes this often to run maintenance (rq's default is 7 minutes).
            worker_ttl=maintenance_interval + 15,
        )
