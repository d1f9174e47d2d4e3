"""`tipline triage ...`: the rules, re-scoring after an upgrade, the SLA clocks by hand."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from referrals.audit.models import AuditRecord
from referrals.intake.models import Tip
from referrals.triage.rules import TriageRules
from tests.referrals.triage.fixtures import MakeTip
from tests.support import tipline_env
from tipline.cli import cli
from tipline.config import Settings
from tipline.runtime import Runtime


def audit_records_of(runtime: Runtime, action: str) -> list[AuditRecord]:
    with runtime.session_factory() as session:
        return runtime.audit(session).search(action=action)


def test_rescore_scores_and_routes_tips_processed_before_triage_existed(
    settings: Settings, runtime: Runtime, make_tip: MakeTip, make_team: Any
) -> None:
    # As after upgrading: in triage, never scored.
    old = make_tip(imminent_danger=True, region="Central Luzon", location_precision="region")
    team = make_team("Luzon desk", "PH", ["Central Luzon"])
    runner = CliRunner(env=tipline_env(settings))
    result = runner.invoke(cli, ["triage", "rescore"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == "re-scored 1 open tips\n"
    with runtime.session_factory() as session:
        tip = session.scalars(select(Tip).where(Tip.id == old)).one()
        assert (tip.priority, tip.team_id, tip.rules_version) == ("P1", team, 1)
        assert tip.sla_due_at is not None
    # Routing changes who may read it: audited.
    [routed] = audit_records_of(runtime, "tip.routed")
    assert (routed.subject, routed.details) == (f"tip:{old}", {"team_id": team})
    shown = json.loads(runner.invoke(cli, ["triage", "rules"], catch_exceptions=False).output)
    assert shown == {"version": 1, "rules": TriageRules().as_json()}
    flagged = runner.invoke(cli, ["triage", "flag-overdue"], catch_exceptions=False)
    assert flagged.output == "flagged 0 overdue tips\n"
