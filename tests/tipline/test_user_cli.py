"""`tipline user ...`: accounts from the command line, each change audited."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from referrals.accounts.models import Approval, EnrolmentToken, User
from referrals.audit.models import AuditRecord
from tests.support import tipline_env
from tests.tipline.admin.people import enrolled
from tipline.cli import cli
from tipline.config import Settings
from tipline.runtime import Runtime


def test_user_commands_change_the_account_and_are_audited(
    settings: Settings, runtime: Runtime
) -> None:
    runner = CliRunner(env=tipline_env(settings))
    added = runner.invoke(
        cli, ["user", "add", "--email", "ana@centre.example", "--role", "analyst", "--json"]
    )
    assert added.exit_code == 0, added.output
    answer = json.loads(added.output)
    assert "/enrol?token=" in answer["enrolment_link"]

    for command in ("disable", "enable", "unlock"):
        result = runner.invoke(cli, ["user", command, "ana@centre.example"])
        assert result.exit_code == 0, result.output
    reset = runner.invoke(cli, ["user", "reset-2fa", str(answer["id"])])
    assert reset.exit_code == 0
    assert "/enrol?token=" in reset.output and answer["enrolment_link"] not in reset.output

    missing = runner.invoke(cli, ["user", "disable", "nobody@centre.example"])
    assert missing.exit_code == 1
    assert "no account 'nobody@centre.example'" in missing.output

    with runtime.session_factory() as session:
        user = session.scalars(select(User)).one()
        assert user.disabled_at is None
        actions = list(session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))
    assert actions == [
        "account.created",
        "account.disabled",
        "account.enabled",
        "account.unlocked",
        "account.second_factor_reset",
    ]


def test_with_two_admins_a_command_line_account_waits_for_approval_in_the_web(
    settings: Settings, runtime: Runtime
) -> None:
    enrolled(runtime, "root@centre.example", "admin")
    enrolled(runtime, "second@centre.example", "admin")
    runner = CliRunner(env=tipline_env(settings))
    added = runner.invoke(cli, ["user", "add", "--email", "ana@centre.example", "--role", "lead"])
    assert added.exit_code == 0, added.output
    assert "works only once an administrator approves it in the web app" in added.output
    as_json = runner.invoke(
        cli, ["user", "add", "--email", "bo@centre.example", "--role", "analyst", "--json"]
    )
    assert json.loads(as_json.output)["awaiting_approval"] is True
    off = runner.invoke(
        cli,
        ["user", "add", "--email", "cy@centre.example", "--role", "analyst", "--json"],
        env={"TIPLINE_ENROLMENT_APPROVAL": "off"},
    )
    assert json.loads(off.output)["awaiting_approval"] is False
    with runtime.session_factory() as session:
        requested = list(
            session.scalars(
                select(EnrolmentToken.requested_by).where(
                    EnrolmentToken.approval == Approval.PENDING.value
                )
            )
        )
    assert len(requested) == 2 and all(actor.startswith("cli:") for actor in requested)


def test_an_officer_belongs_to_a_unit_registered_from_the_command_line(
    settings: Settings, runtime: Runtime
) -> None:
    runner = CliRunner(env=tipline_env(settings))
    unit = runner.invoke(cli, ["unit", "add", "--name", "Luzon unit", "--country", "ph"])
    assert unit.exit_code == 0, unit.output
    assert unit.output.startswith("unit ") and "Luzon unit (PH)" in unit.output

    no_unit = runner.invoke(
        cli, ["user", "add", "--email", "oli@unit.example", "--role", "officer"]
    )
    assert no_unit.exit_code == 1
    assert "an officer belongs to a unit" in no_unit.output
    unknown = runner.invoke(
        cli, ["user", "add", "--email", "oli@unit.example", "--role", "officer", "--unit", "X"]
    )
    assert "no unit 'X'" in unknown.output
    added = runner.invoke(
        cli,
        ["user", "add", "--email", "oli@unit.example", "--role", "officer", "--unit", "Luzon unit"],
    )
    assert added.exit_code == 0, added.output

    with runtime.session_factory() as session:
        officer = session.scalars(select(User)).one()
        assert (officer.role, officer.unit_id is not None, officer.team_id) == (
            "officer",
            True,
            None,
        )
        actions = list(session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))
    assert actions == ["unit.created", "account.created"]
