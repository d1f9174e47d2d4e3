"""`tipline tip ...`: the tips quarantined after faults on our side, and retrying them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from referrals.audit.models import AuditRecord
from referrals.intake.models import Tip, TipStatus
from referrals.intake.processing import MAX_ATTEMPTS
from referrals.intake.receiving import TipReceiver
from referrals.intake.sweep import process_tip_job_id
from referrals.jobs import INTAKE_QUEUE
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import NARRATIVE_MARK, PartnerKeys, valid_tip
from tests.support import tipline_env
from tipline.cli import cli
from tipline.config import Settings
from tipline.runtime import Runtime

FAULT = "SecretKeyLocked: the intake key could not be unlocked (check its passphrase)"


@pytest.fixture
def tipline(settings: Settings, runtime: Runtime) -> CliRunner:
    return CliRunner(env=tipline_env(settings))


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def quarantined(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> list[str]:
    """Two tips quarantined after their attempts all failed on our side, and one in triage."""
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        ids = [receiver.receive(agencies["agency-a"].id, body).tip.id for _ in range(3)]
    runtime.redis.flushdb()
    with runtime.session_factory.begin() as session:
        session.execute(
            update(Tip)
            .where(Tip.id.in_(ids[:2]))
            .values(
                status=TipStatus.QUARANTINED,
                attempts=MAX_ATTEMPTS,
                fault=FAULT,
                quarantined_at=runtime.clock.now(),
            )
        )
        session.execute(update(Tip).where(Tip.id == ids[2]).values(status=TipStatus.IN_TRIAGE))
    return ids[:2]


def status(runtime: Runtime, tip_id: str) -> tuple[str, int, str | None]:
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        return tip.status, tip.attempts, tip.fault


def test_quarantined_lists_each_held_tip_with_its_fault_and_attempts_never_content(
    tipline: CliRunner, quarantined: list[str], agencies: dict[str, RegisteredAgency]
) -> None:
    listed = run(tipline, "tip", "quarantined", "--json")

    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [row["id"] for row in rows] == quarantined
    assert rows[0]["agency"] == {"id": agencies["agency-a"].id, "name": "Agency A"}
    assert (rows[0]["attempts"], rows[0]["fault"]) == (MAX_ATTEMPTS, FAULT)
    assert rows[0]["quarantined_at"] and rows[0]["tracking_number"].startswith("TL-")
    assert NARRATIVE_MARK not in listed.output
    text = run(tipline, "tip", "quarantined").output
    assert quarantined[0] in text and FAULT in text


def test_retry_gives_the_tip_fresh_attempts_audits_it_and_a_worker_finishes_it(
    tipline: CliRunner, quarantined: list[str], runtime: Runtime
) -> None:
    first, second = quarantined

    retried = run(tipline, "tip", "retry", first)

    assert retried.exit_code == 0, retried.output
    assert "1 tip(s) queued again" in retried.output
    assert status(runtime, first) == (TipStatus.RECEIVED, 0, None)
    assert status(runtime, second)[0] == TipStatus.QUARANTINED
    assert runtime.queue.queue(INTAKE_QUEUE).job_ids == [process_tip_job_id(first)]
    with runtime.session_factory() as session:
        [record] = session.scalars(
            select(AuditRecord).where(AuditRecord.subject == f"tip:{first}")
        ).all()
        assert (record.action, record.details) == ("tip.retried", {"attempts": MAX_ATTEMPTS})
        assert record.actor.startswith("cli:")
    runtime.queue.worker(runtime.job_context()).work(burst=True)
    assert status(runtime, first) == (TipStatus.IN_TRIAGE, 1, None)


def test_retry_all_sends_back_every_quarantined_tip_and_only_those(
    tipline: CliRunner, quarantined: list[str], runtime: Runtime
) -> None:
    retried = run(tipline, "tip", "retry", "--all")

    assert retried.exit_code == 0, retried.output
    assert "2 tip(s) queued again" in retried.output
    assert sorted(runtime.queue.queue(INTAKE_QUEUE).job_ids) == sorted(
        process_tip_job_id(tip_id) for tip_id in quarantined
    )
    assert json.loads(run(tipline, "tip", "quarantined", "--json").output) == []


def test_retry_of_a_tip_not_quarantined_says_so(
    tipline: CliRunner, quarantined: list[str], runtime: Runtime
) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"

    refused = tipline.invoke(cli, ["tip", "retry", quarantined[0], unknown])

    assert refused.exit_code == 1
    assert f"not quarantined (unknown, or not held): {unknown}" in refused.output
    assert status(runtime, quarantined[0])[0] == TipStatus.RECEIVED
    assert tipline.invoke(cli, ["tip", "retry"]).exit_code == 2
