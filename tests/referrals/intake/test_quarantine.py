"""Held (quarantined) tips sent back to processing by an operator: the service under the
`tipline tip` commands and the admin pages (tests/tipline cover those)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select, update

from referrals.audit.models import AuditRecord
from referrals.intake import quarantine as quarantine_module
from referrals.intake.models import Tip, TipStatus
from referrals.intake.processing import MAX_ATTEMPTS
from referrals.intake.quarantine import NotQuarantined, TipQuarantine
from referrals.intake.receiving import TipReceiver
from referrals.intake.sweep import TipSweeper, process_tip_job_id
from referrals.jobs import INTAKE_QUEUE
from tests.clock import ManualClock
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tipline.runtime import Runtime

FAULT = "SecretKeyLocked: the intake key could not be unlocked (check its passphrase)"


@pytest.fixture
def held(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> str:
    """A tip quarantined after its attempts all failed on our side; its job long gone."""
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        tip_id = receiver.receive(agencies["agency-a"].id, body).tip.id
    with runtime.session_factory.begin() as session:
        session.execute(
            update(Tip)
            .where(Tip.id == tip_id)
            .values(
                status=TipStatus.QUARANTINED,
                attempts=MAX_ATTEMPTS,
                fault=FAULT,
                quarantined_at=runtime.clock.now(),
            )
        )
    runtime.redis.flushdb()
    return tip_id


def test_a_retry_while_redis_is_down_releases_the_tip_for_the_sweep_to_queue(
    runtime: Runtime,
    held: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The operator's retry is not lost to a Redis outage: the tip is released (committed as
    received, with fresh attempts), the log says it is not queued, and the sweep queues it
    once Redis is back."""

    def unavailable(*_args: object, **_kwargs: object) -> str:
        raise redis.ConnectionError("connection refused")

    with (
        runtime.session_factory() as session,
        monkeypatch.context() as patched,
        caplog.at_level(logging.WARNING, logger="referrals.intake.quarantine"),
    ):
        patched.setattr(runtime.queue, "enqueue", unavailable)
        TipQuarantine(
            session, queue=runtime.queue, clock=runtime.clock, audit=runtime.audit(session)
        ).retry(held, actor="cli:operator")

    with runtime.session_factory() as session:
        tip = session.get(Tip, held)
        assert tip is not None
        assert (tip.status, tip.attempts, tip.fault) == (TipStatus.RECEIVED, 0, None)
    assert [
        record.getMessage()
        for record in caplog.records
        if record.name == "referrals.intake.quarantine"
    ] == [f"tip {held} released but not queued (Redis unavailable)"]
    assert runtime.queue.queue(INTAKE_QUEUE).count == 0

    sweeper = TipSweeper(
        runtime.session_factory,
        queue=runtime.queue,
        clock=runtime.clock,
        audit_key=runtime.audit_key,
    )
    assert sweeper.sweep(grace=timedelta(0)).requeued == [held]
    assert runtime.queue.queue(INTAKE_QUEUE).job_ids == [process_tip_job_id(held)]


def test_retry_all_answers_every_tip_it_released_batch_after_batch(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The count an operator reads (`N tip(s) queued again`) is every tip released, not the
    last batch's: batches of one here, as if thousands were held."""
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        tip_ids = [receiver.receive(agencies["agency-a"].id, body).tip.id for _ in range(3)]
    with runtime.session_factory.begin() as session:
        session.execute(
            update(Tip)
            .where(Tip.id.in_(tip_ids))
            .values(status=TipStatus.QUARANTINED, attempts=MAX_ATTEMPTS, fault=FAULT)
        )
    runtime.redis.flushdb()
    monkeypatch.setattr(quarantine_module, "RETRY_BATCH", 1)

    with runtime.session_factory() as session:
        retried = TipQuarantine(
            session, queue=runtime.queue, clock=runtime.clock, audit=runtime.audit(session)
        ).retry_all(actor="cli:operator")

    assert sorted(retried) == sorted(tip_ids)
    assert sorted(runtime.queue.queue(INTAKE_QUEUE).job_ids) == sorted(
        process_tip_job_id(tip_id) for tip_id in tip_ids
    )


def test_held_tips_are_listed_longest_held_first_up_to_the_limit(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        tip_ids = [receiver.receive(agencies["agency-a"].id, body).tip.id for _ in range(3)]
    # The higher a tip's id, the longer it has been held: the ids' order (the tie-break) is
    # the reverse of the one asked for.
    by_id = sorted(tip_ids)
    with runtime.session_factory.begin() as session:
        for tip_id, hours in zip(by_id, (1, 5, 9), strict=True):
            held_at = runtime.clock.now() - timedelta(hours=hours)
            session.execute(
                update(Tip)
                .where(Tip.id == tip_id)
                .values(
                    status=TipStatus.QUARANTINED,
                    attempts=MAX_ATTEMPTS,
                    fault=FAULT,
                    quarantined_at=held_at,
                    updated_at=held_at,
                )
            )

    with runtime.session_factory() as session:
        listed = TipQuarantine(
            session, queue=runtime.queue, clock=runtime.clock, audit=runtime.audit(session)
        ).quarantined(limit=2)

    assert [tip.id for tip in listed] == [by_id[2], by_id[1]]


def test_retrying_all_releases_each_held_tip_and_records_its_own_attempts(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    """Every held tip goes back to processing cleared of its fault and quarantine time, its
    partner sees the change (``updated_at``), and the audit log says how many attempts each
    had; a tip not held is left alone."""

    runtime.clock = ManualClock()
    held_at = runtime.clock.now() - timedelta(hours=3)
    ids = []
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        for _ in range(3):
            body = partners.seal(
                valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a"
            )
            ids.append(receiver.receive(agencies["agency-a"].id, body).tip.id)
    first, second, untouched = ids
    with runtime.session_factory.begin() as session:
        for tip_id, attempts in ((first, MAX_ATTEMPTS), (second, 3)):
            session.execute(
                update(Tip)
                .where(Tip.id == tip_id)
                .values(
                    status=TipStatus.QUARANTINED,
                    attempts=attempts,
                    fault=FAULT,
                    quarantined_at=held_at,
                    updated_at=held_at,
                )
            )
        session.execute(
            update(Tip).where(Tip.id == untouched).values(status=TipStatus.IN_TRIAGE, attempts=1)
        )
    with runtime.session_factory() as session:
        retried = TipQuarantine(
            session, queue=runtime.queue, clock=runtime.clock, audit=runtime.audit(session)
        ).retry_all(actor="cli:operator")
    assert sorted(retried) == sorted([first, second])
    with runtime.session_factory() as session:
        for tip_id in (first, second):
            tip = session.get(Tip, tip_id)
            assert tip is not None
            assert (tip.status, tip.attempts, tip.fault, tip.quarantined_at) == (
                TipStatus.RECEIVED,
                0,
                None,
                None,
            )
            assert tip.updated_at == runtime.clock.now()
        other = session.get(Tip, untouched)
        assert other is not None and (other.status, other.attempts) == (TipStatus.IN_TRIAGE, 1)
        records = session.scalars(select(AuditRecord).where(AuditRecord.action == "tip.retried"))
        recorded = {record.subject: record.details for record in records}
    assert recorded == {
        f"tip:{first}": {"attempts": MAX_ATTEMPTS},
        f"tip:{second}": {"attempts": 3},
    }


def test_retrying_a_tip_that_is_not_held_says_so(runtime: Runtime, held: str) -> None:

    with runtime.session_factory() as session:
        quarantine = TipQuarantine(
            session, queue=runtime.queue, clock=runtime.clock, audit=runtime.audit(session)
        )
        quarantine.retry(held, actor="cli:operator")
        with pytest.raises(NotQuarantined, match=f"^no quarantined tip {held}$"):
            quarantine.retry(held, actor="cli:operator")
