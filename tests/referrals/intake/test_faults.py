"""Faults on our side: recorded for operators, retried with back-off, and after
MAX_ATTEMPTS quarantined in a state operators see, never looping and never shown to the
partner."""

from __future__ import annotations

import dataclasses
import logging
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq.job import JobStatus
from rq.timeouts import JobTimeoutException
from sqlalchemy import select, update
from sqlalchemy.exc import InvalidRequestError, OperationalError
from sqlalchemy.orm import Session

from crypto import Keyring
from referrals.audit.models import AuditRecord
from referrals.intake import tasks
from referrals.intake.models import Tip, TipStatus
from referrals.intake.processing import MAX_ATTEMPTS, describe_fault, quarantine
from referrals.intake.receiving import TipReceiver
from referrals.intake.sweep import (
    PROCESS_TIP_TIMEOUT,
    Swept,
    TipSweeper,
    due,
    process_tip_job_id,
    queue_processing,
)
from referrals.jobs import INTAKE_QUEUE, JobContext, TiplineJob
from tests.clock import ManualClock
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import NARRATIVE_MARK, SELECTOR_MARKS, PartnerKeys, valid_tip
from tipline.runtime import Runtime

PGP = "application/pgp-encrypted"
REFERENCE = "ECA-2024-CSE-004417"
UNEXPECTED = "RuntimeError: unexpected; its message is not kept (it could quote the tip)"


@pytest.fixture
def sealed(partners: PartnerKeys, intake_keyring: IntakeKeyring) -> bytes:
    return partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")


def receive(runtime: Runtime, agency: RegisteredAgency, body: bytes) -> str:
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        return receiver.receive(agency.id, body, idempotency_key=REFERENCE).tip.id


def load(runtime: Runtime, tip_id: str) -> Tip:
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        return tip


def locked_keyring_context(runtime: Runtime, intake_keyring: IntakeKeyring) -> JobContext:
    """A worker whose intake passphrase is wrong: every decryption fails on our side."""
    return dataclasses.replace(
        runtime.job_context(), keyring=Keyring(intake_keyring.home, passphrase="wrong")
    )


def audit_records(runtime: Runtime, tip_id: str) -> list[tuple[str, dict[str, Any]]]:
    with runtime.session_factory() as session:
        return [
            (record.action, dict(record.details or {}))
            for record in session.scalars(
                select(AuditRecord).where(AuditRecord.subject == f"tip:{tip_id}")
            )
        ]


def test_a_fault_of_ours_is_recorded_retried_and_after_the_last_attempt_quarantined(
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    intake_keyring: IntakeKeyring,
) -> None:
    a = agencies["agency-a"]
    tip_id = receive(runtime, a, sealed)
    broken = locked_keyring_context(runtime, intake_keyring)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pytest.raises(Exception, match="could not be unlocked"):
            tasks.process_tip(broken, tip_id)
        tip = load(runtime, tip_id)
        assert (tip.status, tip.attempts) == (TipStatus.PROCESSING, attempt)
        assert tip.fault == (
            "SecretKeyLocked: the intake key could not be unlocked (check its passphrase)"
        )
        assert tip.reason is None and tip.idempotency_key_hash is not None

    tasks.process_tip(broken, tip_id)  # the claim past the cap quarantines instead of trying

    tip = load(runtime, tip_id)
    assert (tip.status, tip.attempts) == (TipStatus.QUARANTINED, MAX_ATTEMPTS)
    assert tip.quarantined_at is not None and tip.fault is not None
    assert audit_records(runtime, tip_id) == [
        ("tip.quarantined", {"attempts": MAX_ATTEMPTS, "fault_type": "SecretKeyLocked"})
    ]
    tasks.process_tip(runtime.job_context(), tip_id)  # a later delivery changes nothing
    assert load(runtime, tip_id).status == TipStatus.QUARANTINED

    # The partner is told it is held on our side, never our fault, and not to resend; a
    # resend anyway gets the same receipt.
    shown = client.get(f"/api/v1/tips/{tip_id}", headers=a.headers).get_json()
    assert shown["status"] == "held"
    assert "do not send it again" in shown["reason"] and "SecretKeyLocked" not in shown["reason"]
    resent = client.post(
        "/api/v1/tips",
        data=sealed,
        content_type=PGP,
        headers=a.headers | {"Idempotency-Key": REFERENCE},
    )
    assert resent.status_code == 202
    assert (resent.get_json()["id"], resent.get_json()["status"]) == (tip_id, "held")


def test_a_host_without_the_intake_secret_key_does_not_reject_tips_encrypted_to_it(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    intake_keyring: IntakeKeyring,
    gnupg_home: Path,
) -> None:
    """gpg says "no secret key": for a tip encrypted to our current key that is this host's
    fault (its GnuPG home was not copied), not the partner's."""
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    public_only = Keyring(gnupg_home)
    public_only.import_partner_key(intake_keyring.public_key)
    context = dataclasses.replace(runtime.job_context(), keyring=public_only)

    with pytest.raises(Exception, match="cannot decrypt with the intake key"):
        tasks.process_tip(context, tip_id)

    tip = load(runtime, tip_id)
    assert tip.status == TipStatus.PROCESSING
    assert tip.fault is not None and tip.fault.startswith("IntakeKeyMissing: ")
    tasks.process_tip(runtime.job_context(), tip_id)  # the host is fixed: processed
    assert load(runtime, tip_id).status == TipStatus.IN_TRIAGE


def test_an_unexpected_error_is_recorded_without_its_message(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], sealed: bytes
) -> None:
    class LeakyIndex:
        def compute(self, *_args: object, **_kwargs: object) -> str:
            raise RuntimeError(f"cannot index {SELECTOR_MARKS[0]} from {NARRATIVE_MARK}")

    tip_id = receive(runtime, agencies["agency-a"], sealed)
    context = dataclasses.replace(runtime.job_context(), blind_index=LeakyIndex())  # type: ignore[arg-type]

    with pytest.raises(RuntimeError):
        tasks.process_tip(context, tip_id)

    tip = load(runtime, tip_id)
    assert tip.status == TipStatus.PROCESSING
    assert tip.fault == "RuntimeError: unexpected; its message is not kept (it could quote the tip)"


def test_a_fault_is_recorded_on_its_own_tip_only_and_logged_for_operators(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another tip being processed at the same moment keeps its own record; the back-off
    counts from when the attempt failed, not from when it began."""
    clock = ManualClock()

    class SlowFailingIndex:
        def compute(self, *_args: object, **_kwargs: object) -> str:
            clock.advance(seconds=90)
            raise RuntimeError(f"cannot index {SELECTOR_MARKS[0]}")

    failing = receive(runtime, agencies["agency-a"], sealed)
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        other = receiver.receive(agencies["agency-b"].id, sealed).tip.id
    with runtime.session_factory.begin() as session:
        session.execute(update(Tip).where(Tip.id == other).values(status=TipStatus.PROCESSING))
    context = dataclasses.replace(
        runtime.job_context(),
        blind_index=SlowFailingIndex(),  # type: ignore[arg-type]
        clock=clock,
    )

    with (
        caplog.at_level(logging.WARNING, logger="referrals.intake.processing"),
        pytest.raises(RuntimeError),
    ):
        tasks.process_tip(context, failing)

    tip = load(runtime, failing)
    assert (tip.fault, tip.updated_at) == (UNEXPECTED, clock.now())
    assert load(runtime, other).fault is None
    assert [
        record.getMessage()
        for record in caplog.records
        if record.name == "referrals.intake.processing"
    ] == [f"tip {failing}: processing failed on our side ({UNEXPECTED}); it will be retried"]


def test_a_fault_is_not_recorded_on_a_tip_a_duplicate_delivery_has_finished(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], sealed: bytes
) -> None:
    """rq delivers at least once: while this attempt fails, another delivery of the same job
    processes the tip. The finished tip carries no fault of the failed attempt."""
    tip_id = receive(runtime, agencies["agency-a"], sealed)

    class DuplicateThenFail:
        def compute(self, *_args: object, **_kwargs: object) -> str:
            tasks.process_tip(runtime.job_context(), tip_id)  # the other delivery
            raise RuntimeError("this delivery fails")

    context = dataclasses.replace(runtime.job_context(), blind_index=DuplicateThenFail())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        tasks.process_tip(context, tip_id)

    tip = load(runtime, tip_id)
    assert (tip.status, tip.fault) == (TipStatus.IN_TRIAGE, None)


def test_a_database_gone_mid_attempt_fails_the_job_with_its_own_fault(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The fault cannot be written down when the database itself is gone: the job still fails
    with the database's error (so rq retries it), and the log says the note is missing."""
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    gone = OperationalError("BEGIN", {}, OSError("connection lost"))

    class Database:
        """The runtime's sessions until the database goes away."""

        def __init__(self) -> None:
            self.up = True

        def __call__(self) -> Session:
            return runtime.session_factory()

        def begin(self) -> AbstractContextManager[Session]:
            if not self.up:
                raise gone
            return runtime.session_factory.begin()

    database = Database()

    class IndexLosingTheDatabase:
        def compute(self, *_args: object, **_kwargs: object) -> str:
            database.up = False
            raise gone

    context = dataclasses.replace(
        runtime.job_context(),
        session_factory=database,  # type: ignore[arg-type]
        blind_index=IndexLosingTheDatabase(),  # type: ignore[arg-type]
    )
    with (
        caplog.at_level(logging.WARNING, logger="referrals.intake.processing"),
        pytest.raises(OperationalError) as raised,
    ):
        tasks.process_tip(context, tip_id)

    assert raised.value is gone
    assert f"tip {tip_id}: the fault could not be recorded" in [
        record.getMessage()
        for record in caplog.records
        if record.name == "referrals.intake.processing"
    ]
    tip = load(runtime, tip_id)
    assert (tip.status, tip.attempts, tip.fault) == (TipStatus.PROCESSING, 1, None)


@pytest.mark.parametrize(
    ("status", "attempts", "quarantined"),
    [
        (TipStatus.PROCESSING, MAX_ATTEMPTS, True),
        (TipStatus.RECEIVED, MAX_ATTEMPTS + 1, True),
        (TipStatus.PROCESSING, MAX_ATTEMPTS - 1, False),  # attempts left: processed again
        (TipStatus.RECEIVED, 0, False),  # an operator has just retried it
        (TipStatus.IN_TRIAGE, MAX_ATTEMPTS, False),  # its last attempt succeeded
        (TipStatus.REJECTED, MAX_ATTEMPTS, False),
    ],
)
def test_quarantine_takes_only_the_unfinished_tip_out_of_attempts_it_is_given(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    status: TipStatus,
    attempts: int,
    quarantined: bool,
) -> None:
    """The sweep decides from a list read a moment earlier: whatever happened to the tip
    since (processed, retried by an operator), quarantine judges it as it is now. Another tip
    out of attempts, with its own fault, is neither moved nor read."""
    clock = ManualClock()
    neighbour = receive(runtime, agencies["agency-b"], sealed)
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    with runtime.session_factory.begin() as session:
        session.execute(
            update(Tip)
            .where(Tip.id == neighbour)
            .values(status=TipStatus.PROCESSING, attempts=MAX_ATTEMPTS, fault=UNEXPECTED)
        )
        session.execute(
            update(Tip).where(Tip.id == tip_id).values(status=status, attempts=attempts)
        )
    clock.advance(hours=1)

    with runtime.session_factory.begin() as session:
        assert quarantine(session, tip_id, audit_key=runtime.audit_key, clock=clock) is quarantined

    tip = load(runtime, tip_id)
    if quarantined:
        assert (tip.status, tip.quarantined_at, tip.updated_at) == (
            TipStatus.QUARANTINED,
            clock.now(),
            clock.now(),
        )
        assert tip.fault is not None and tip.fault.startswith("Stopped: ")
        assert audit_records(runtime, tip_id) == [
            ("tip.quarantined", {"attempts": attempts, "fault_type": "Stopped"})
        ]
    else:
        assert (tip.status, tip.quarantined_at, tip.fault) == (status, None, None)
        assert audit_records(runtime, tip_id) == []
    other = load(runtime, neighbour)
    assert (other.status, other.fault) == (TipStatus.PROCESSING, UNEXPECTED)
    assert audit_records(runtime, neighbour) == []


LONG_NAME = "Partner" * 10 + "Error"


@pytest.mark.parametrize(
    ("fault", "fault_type"),
    [
        (None, "Stopped"),
        ("IntakeKeyMissing: no current intake key: run `tipline init`", "IntakeKeyMissing"),
        (f"{LONG_NAME}: unexpected; its message is not kept", LONG_NAME[:64]),
    ],
    ids=["no fault recorded", "a message with colons", "a very long type name"],
)
def test_a_quarantine_is_audited_by_the_worker_with_the_fault_type_and_logged(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    caplog: pytest.LogCaptureFixture,
    fault: str | None,
    fault_type: str,
) -> None:
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    with runtime.session_factory.begin() as session:
        session.execute(
            update(Tip)
            .where(Tip.id == tip_id)
            .values(status=TipStatus.PROCESSING, attempts=MAX_ATTEMPTS + 1, fault=fault)
        )

    with (
        caplog.at_level(logging.ERROR, logger="referrals.intake.processing"),
        runtime.session_factory.begin() as session,
    ):
        quarantine(session, tip_id, audit_key=runtime.audit_key, clock=runtime.clock)

    with runtime.session_factory() as session:
        [record] = session.scalars(
            select(AuditRecord).where(AuditRecord.subject == f"tip:{tip_id}")
        ).all()
        assert (record.action, record.actor, record.details) == (
            "tip.quarantined",
            "system:worker",
            {"attempts": MAX_ATTEMPTS + 1, "fault_type": fault_type},
        )
    assert [
        record.getMessage()
        for record in caplog.records
        if record.name == "referrals.intake.processing"
    ] == [
        f"tip {tip_id} quarantined after {MAX_ATTEMPTS + 1} attempts: an operator must look "
        "(tipline tip quarantined)"
    ]


def _age(runtime: Runtime, tip_id: str, *, attempts: int, clock: ManualClock) -> None:
    """As if the tip's last attempt (its ``attempts``-th) was claimed at ``clock``'s time and
    its job then lost."""
    with runtime.session_factory.begin() as session:
        session.execute(
            update(Tip)
            .where(Tip.id == tip_id)
            .values(status=TipStatus.PROCESSING, attempts=attempts, updated_at=clock.now())
        )
    runtime.redis.flushdb()


@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_the_sweep_waits_longer_after_each_attempt(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], sealed: bytes, attempts: int
) -> None:
    clock = ManualClock()
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    _age(runtime, tip_id, attempts=attempts, clock=clock)
    sweeper = TipSweeper(
        runtime.session_factory, queue=runtime.queue, clock=clock, audit_key=runtime.audit_key
    )
    grace = timedelta(minutes=2)
    wait = grace * 2 ** (attempts - 1)

    clock.advance(seconds=wait.total_seconds() - 1)
    assert sweeper.sweep(grace=grace).requeued == []
    clock.advance(seconds=1)
    assert sweeper.sweep(grace=grace).requeued == []  # waited exactly its back-off: not more
    clock.advance(seconds=1)
    assert sweeper.sweep(grace=grace).requeued == [tip_id]
    assert runtime.queue.queue(INTAKE_QUEUE).job_ids == [process_tip_job_id(tip_id)]


def test_the_sweep_waits_at_most_an_hour(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], sealed: bytes
) -> None:
    clock = ManualClock()
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    _age(runtime, tip_id, attempts=MAX_ATTEMPTS - 1, clock=clock)
    sweeper = TipSweeper(
        runtime.session_factory, queue=runtime.queue, clock=clock, audit_key=runtime.audit_key
    )

    clock.advance(minutes=61)
    assert sweeper.sweep(grace=timedelta(minutes=10)).requeued == [tip_id]


def test_one_sweep_deals_with_every_tip_past_a_covered_one_and_a_quarantined_one(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Oldest first: a tip whose job is still queued is left to it, one out of attempts is
    quarantined, and the sweep goes on to the lost tip after them."""
    clock = ManualClock()
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        covered, exhausted, lost = (
            receiver.receive(agencies["agency-a"].id, sealed).tip.id for _ in range(3)
        )
    _age(runtime, covered, attempts=1, clock=clock)
    clock.advance(seconds=1)
    _age(runtime, exhausted, attempts=MAX_ATTEMPTS, clock=clock)
    clock.advance(seconds=1)
    _age(runtime, lost, attempts=1, clock=clock)
    job_id = queue_processing(runtime.queue, covered)  # _age emptied Redis: only this job
    sweeper = TipSweeper(
        runtime.session_factory, queue=runtime.queue, clock=clock, audit_key=runtime.audit_key
    )
    clock.advance(minutes=3)

    with caplog.at_level(logging.WARNING, logger="referrals.intake.sweep"):
        swept = sweeper.sweep(grace=timedelta(minutes=2))

    assert (swept.requeued, swept.quarantined) == ([lost], [exhausted])
    assert runtime.queue.queue(INTAKE_QUEUE).job_ids == [job_id, process_tip_job_id(lost)]
    assert [
        record.getMessage() for record in caplog.records if record.name == "referrals.intake.sweep"
    ] == ["sweep: 1 unfinished tip(s) queued again"]


def test_the_sweep_quarantines_a_tip_out_of_attempts_instead_of_queueing_it(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], sealed: bytes
) -> None:
    clock = ManualClock()
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    _age(runtime, tip_id, attempts=MAX_ATTEMPTS, clock=clock)
    sweeper = TipSweeper(
        runtime.session_factory, queue=runtime.queue, clock=clock, audit_key=runtime.audit_key
    )
    clock.advance(minutes=2)
    # Its last attempt may still be starting: it waits out the grace like any other.
    assert sweeper.sweep(grace=timedelta(minutes=2)) == Swept()
    clock.advance(seconds=1)

    swept = sweeper.sweep(grace=timedelta(minutes=2))

    assert (swept.requeued, swept.quarantined) == ([], [tip_id])
    tip = load(runtime, tip_id)
    assert tip.status == TipStatus.QUARANTINED
    assert tip.fault is not None and tip.fault.startswith("Stopped: ")
    assert runtime.queue.queue(INTAKE_QUEUE).count == 0
    assert audit_records(runtime, tip_id) == [
        ("tip.quarantined", {"attempts": MAX_ATTEMPTS, "fault_type": "Stopped"})
    ]
    assert sweeper.sweep(grace=timedelta(minutes=2)) == Swept()


def test_the_sweep_takes_the_longest_waiting_tips_first_a_batch_at_a_time(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], sealed: bytes
) -> None:
    clock = ManualClock()
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        tip_ids = [receiver.receive(agencies["agency-a"].id, sealed).tip.id for _ in range(3)]
    for tip_id in reversed(tip_ids):  # the last received has waited longest
        _age(runtime, tip_id, attempts=1, clock=clock)
        clock.advance(seconds=1)
    with runtime.session_factory.begin() as session:
        # Never claimed (its job was lost before a worker saw it): oldest of all the same,
        # whatever its status.
        session.execute(
            update(Tip).where(Tip.id == tip_ids[2]).values(status=TipStatus.RECEIVED, attempts=0)
        )
    clock.advance(hours=1)

    with runtime.session_factory() as session:
        batch = due(session, clock.now(), timedelta(minutes=2), limit=2)

    assert batch == [(tip_ids[2], 0), (tip_ids[1], 1)]


def test_the_sweep_requeues_a_tip_whose_job_rq_marked_failed(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    intake_keyring: IntakeKeyring,
) -> None:
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    runtime.redis.flushdb()
    # A job without retries left, run by a worker that cannot decrypt: rq marks it failed.
    runtime.queue.enqueue(
        tasks.process_tip,
        tip_id,
        queue=INTAKE_QUEUE,
        job_id=process_tip_job_id(tip_id),
        retry=None,
    )
    runtime.queue.worker(locked_keyring_context(runtime, intake_keyring)).work(burst=True)
    job = TiplineJob.fetch(
        process_tip_job_id(tip_id),
        connection=runtime.redis,
        serializer=runtime.queue.serializer,
    )
    assert job.get_status() == JobStatus.FAILED
    assert load(runtime, tip_id).attempts == 1

    clock = ManualClock(moment=load(runtime, tip_id).updated_at)
    clock.advance(minutes=3)
    sweeper = TipSweeper(
        runtime.session_factory, queue=runtime.queue, clock=clock, audit_key=runtime.audit_key
    )
    assert sweeper.sweep(grace=timedelta(minutes=2)).requeued == [tip_id]

    runtime.queue.worker(runtime.job_context()).work(burst=True)
    tip = load(runtime, tip_id)
    assert (tip.status, tip.attempts, tip.fault) == (TipStatus.IN_TRIAGE, 2, None)


def test_a_tips_job_has_its_own_time_limit_whoever_queues_it(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], sealed: bytes
) -> None:
    """rq stops a job past its limit; the stop then counts as one of the tip's attempts."""
    tip_id = receive(runtime, agencies["agency-a"], sealed)
    queued = TiplineJob.fetch(
        process_tip_job_id(tip_id), connection=runtime.redis, serializer=runtime.queue.serializer
    )
    assert queued.timeout == PROCESS_TIP_TIMEOUT

    clock = ManualClock(moment=load(runtime, tip_id).updated_at)
    _age(runtime, tip_id, attempts=0, clock=clock)
    clock.advance(minutes=3)
    TipSweeper(
        runtime.session_factory, queue=runtime.queue, clock=clock, audit_key=runtime.audit_key
    ).sweep()
    swept = TiplineJob.fetch(
        process_tip_job_id(tip_id), connection=runtime.redis, serializer=runtime.queue.serializer
    )
    assert swept.timeout == PROCESS_TIP_TIMEOUT


def test_a_worker_stops_a_stalled_tip_at_its_time_limit_and_goes_on_to_the_next(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    tmp_path: Path,
) -> None:
    """Jobs run in the worker's own process (no fork per job): rq's time limit must still end
    a job stuck in GnuPG, with the fault recorded, and the worker must take the next job."""
    a = agencies["agency-a"]
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        stalled, after = (
            receiver.receive(
                a.id,
                partners.seal(
                    valid_tip(external_reference=reference),
                    recipient=intake_keyring.fingerprint,
                    signer="agency-a",
                ),
                idempotency_key=reference,
            ).tip.id
            for reference in ("STALLED-1", "AFTER-1")
        )
    runtime.redis.flushdb()
    # A gpg whose first decryption stalls (past the job's limit); later ones run normally.
    stalling, stalled_once = tmp_path / "gpg", tmp_path / "stalled-once"
    stalling.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" --decrypt "*) [ -e "{stalled_once}" ] || '
        f'{{ echo $$ > "{stalled_once}"; exec sleep 30; }};; esac\n'
        'exec gpg "$@"\n'
    )
    stalling.chmod(0o700)
    keyring = Keyring(
        intake_keyring.home, passphrase=intake_keyring.passphrase, gpg_binary=str(stalling)
    )
    for tip_id, limit in ((stalled, 2), (after, None)):
        runtime.queue.enqueue(
            tasks.process_tip, tip_id, queue=INTAKE_QUEUE, job_id=tip_id, retry=None, timeout=limit
        )
    # One worker, one process, both jobs.
    runtime.queue.worker(dataclasses.replace(runtime.job_context(), keyring=keyring)).work(
        burst=True
    )
    job = TiplineJob.fetch(stalled, connection=runtime.redis, serializer=runtime.queue.serializer)
    assert job.get_status() == JobStatus.FAILED
    tip = load(runtime, stalled)
    assert (tip.status, tip.attempts) == (TipStatus.PROCESSING, 1)
    assert tip.fault == "JobTimeoutException: the job ran past its time limit"
    # The stalled gpg was stopped with its job, not left running.
    assert not Path(f"/proc/{stalled_once.read_text().strip()}").exists()
    # The worker went on to the next job, and processed it normally.
    assert load(runtime, after).status == TipStatus.IN_TRIAGE


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            OperationalError(
                "UPDATE tips SET region=%(region)s", {"region": NARRATIVE_MARK}, OSError("gone")
            ),
            "OperationalError: the database failed (OSError)",
        ),
        (
            InvalidRequestError(f"Object '<Tip region={NARRATIVE_MARK}>' is not persisted"),
            "InvalidRequestError: the database layer failed",
        ),
        (
            redis.ConnectionError(f"while sending {SELECTOR_MARKS[0]}"),
            "ConnectionError: Redis failed",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "/usr/bin/gpg"),
            "FileNotFoundError: No such file or directory",
        ),
        (OSError(NARRATIVE_MARK), "OSError: an operating system call failed"),
        (
            JobTimeoutException(f"{NARRATIVE_MARK}"),
            "JobTimeoutException: the job ran past its time limit",
        ),
        (
            KeyError(SELECTOR_MARKS[1]),
            "KeyError: unexpected; its message is not kept (it could quote the tip)",
        ),
    ],
    ids=[
        "database",
        "database layer",
        "redis",
        "gpg missing",
        "operating system",
        "time limit",
        "unexpected",
    ],
)
def test_a_fault_is_described_by_its_type_never_by_what_it_quotes(
    exc: Exception, expected: str
) -> None:
    assert describe_fault(exc) == expected
