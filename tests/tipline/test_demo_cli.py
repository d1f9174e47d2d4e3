"""`tipline demo`: a fictional, living centre on an empty instance, made through the services."""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import func, select

from referrals.aftercare.models import Child, Milestone
from referrals.casework.models import Referral, ReferralStage
from referrals.feedback.models import Feedback
from referrals.handling.models import HandlingConsent
from referrals.intake.models import Tip, TipStatus
from referrals.onward.models import OnwardPackage
from referrals.operations.models import Operation, OperationStatus
from tests.support import tipline_env
from tests.tipline.admin.people import enrolled
from tipline.cli import cli
from tipline.config import Settings
from tipline.runtime import Runtime


def test_the_demo_fills_an_empty_instance_with_every_state_and_refuses_a_second_time(
    settings: Settings, runtime: Runtime
) -> None:
    runner = CliRunner(env=tipline_env(settings))

    made = runner.invoke(cli, ["demo", "--tips", "80"])

    assert made.exit_code == 0, made.output
    roles = re.findall(r"^  (\w+) +\S+@\S+\.example", made.output, re.M)
    assert set(roles) == {"admin", "analyst", "lead", "officer", "caseworker", "partner"}
    assert len(re.findall(r"/enrol\?token=[\w-]{40,}", made.output)) == len(roles)
    with runtime.session_factory() as session:

        def counted(column):  # type: ignore[no-untyped-def]
            return dict(session.execute(select(column, func.count()).group_by(column)).all())

        tips, stages = counted(Tip.status), counted(Referral.stage)
        statuses = counted(Operation.status)
        children = session.scalar(select(func.count()).select_from(Child))
        milestones = session.scalar(select(func.count()).select_from(Milestone))
        feedback = session.scalar(select(func.count()).select_from(Feedback))
        packages = session.scalar(select(func.count()).select_from(OnwardPackage))
        consents = counted(HandlingConsent.status)
    assert set(tips) == {TipStatus.IN_TRIAGE, TipStatus.ACCEPTED, TipStatus.DECLINED,
                         TipStatus.REJECTED}  # fmt: skip
    assert set(stages) == set(ReferralStage)
    assert set(statuses) == set(OperationStatus)
    assert children and milestones
    # Back across the border: feedback released, a package sealed for a centre abroad,
    # consents asked for restricted referrals (some answered, some awaited).
    assert feedback and packages == 1
    assert set(consents) == {"granted", "requested"}
    assert f"Made 80 tips, {sum(stages.values())} referrals" in made.output
    # Everything went through the audited services: the chain holds.
    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output

    again = runner.invoke(cli, ["demo", "--tips", "80"])
    assert again.exit_code == 1
    assert "the demo fills an empty instance only; this one holds 4 agencies" in again.output


def test_asked_only_if_empty_the_demo_leaves_a_used_instance_alone(
    settings: Settings, runtime: Runtime
) -> None:
    runner = CliRunner(env=tipline_env(settings))
    assert (
        runner.invoke(cli, ["team", "add", "--name", "Real team", "--country", "PH"]).exit_code == 0
    )

    answer = runner.invoke(cli, ["demo", "--if-empty"])

    assert answer.exit_code == 0
    assert "No demo data added: the demo fills an empty instance only; this one holds 1 team." in (
        answer.output
    )
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Tip)) == 0


def test_an_instance_someone_enrolled_in_gets_no_demo_accounts(
    settings: Settings, runtime: Runtime
) -> None:
    enrolled(runtime, "real.admin@centre.example", "admin")

    answer = CliRunner(env=tipline_env(settings)).invoke(cli, ["demo"])

    assert answer.exit_code == 1
    assert "this one holds 1 enrolled account" in answer.output
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Tip)) == 0
