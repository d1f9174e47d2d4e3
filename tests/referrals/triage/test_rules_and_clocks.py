"""Versioned rules, re-scoring open tips when they change, and the SLA clocks."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from referrals.audit.models import AuditRecord
from referrals.intake.models import Tip
from referrals.triage.admission import TriageAdmission
from referrals.triage.clocks import SlaClock
from referrals.triage.rules import RuleBook, RulesChangedMeanwhile, TriageRules
from referrals.triage.scoring import Rescorer
from tests.clock import ManualClock
from tests.referrals.triage.fixtures import MakeTip
from tipline.runtime import Runtime


def admit(runtime: Runtime, tip_id: str, clock: ManualClock | None = None) -> Tip:
    with runtime.session_factory.begin() as session:
        TriageAdmission(session, audit=runtime.audit(session), clock=clock or runtime.clock).admit(
            tip_id, {}
        )
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        return tip


def change_rules(runtime: Runtime, based_on: int, **changes: Any) -> int:
    with runtime.session_factory.begin() as session:
        book = RuleBook(session, audit=runtime.audit(session), clock=runtime.clock)
        rules = dataclasses.replace(book.current().rules, **changes)
        return book.change(rules, based_on=based_on, actor="user:7", address="192.0.2.1")


def test_the_defaults_become_version_1_once(runtime: Runtime) -> None:
    for _ in range(2):
        with runtime.session_factory.begin() as session:
            current = RuleBook(session, audit=runtime.audit(session), clock=runtime.clock).current()
            assert (current.version, current.rules) == (1, TriageRules())
    with runtime.session_factory() as session:
        assert (
            len(RuleBook(session, audit=runtime.audit(session), clock=runtime.clock).history()) == 1
        )


def test_a_change_adds_a_version_audited_with_what_changed(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session:
        RuleBook(session, audit=runtime.audit(session), clock=runtime.clock).current()
    assert change_rules(runtime, 1, ongoing_abuse=40, correlation_cap=20) == 2
    with runtime.session_factory() as session:
        record = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "triage_rules.changed")
        ).one()
        assert (record.actor, record.subject) == ("user:7", "triage_rules:2")
        assert record.details == {"version": 2, "changed": "correlation_cap, ongoing_abuse"}


def test_a_change_based_on_an_old_version_changes_nothing(runtime: Runtime) -> None:
    with runtime.session_factory.begin() as session:
        RuleBook(session, audit=runtime.audit(session), clock=runtime.clock).current()
    change_rules(runtime, 1, ongoing_abuse=40)
    with pytest.raises(
        RulesChangedMeanwhile, match="version 2 was added since you opened version 1"
    ):
        change_rules(runtime, 1, live_streaming=0)
    with runtime.session_factory() as session:
        book = RuleBook(session, audit=runtime.audit(session), clock=runtime.clock)
        assert book.current().rules.live_streaming == TriageRules().live_streaming


def test_open_tips_are_rescored_under_new_rules_and_name_the_version(
    runtime: Runtime, make_tip: MakeTip, make_team: Any
) -> None:
    ongoing = make_tip(ongoing_abuse=True, location_precision="region")
    triaged = make_tip(ongoing_abuse=True, location_precision="region")
    assert admit(runtime, ongoing).priority == "P2"  # 25 + 5
    admit(runtime, triaged)
    with runtime.session_factory.begin() as session:
        tip = session.get(Tip, triaged)
        assert tip is not None
        tip.triaged_at = runtime.clock.now()
    team = make_team("Philippines desk", "PH")  # came after the tips: they were unrouted
    version = change_rules(runtime, 1, ongoing_abuse=70)
    assert (
        Rescorer(runtime.session_factory, audit_key=runtime.audit_key, clock=runtime.clock).rescore(
            version
        )
        == 1
    )
    with runtime.session_factory() as session:
        rescored = session.get(Tip, ongoing)
        untouched = session.get(Tip, triaged)
        assert rescored is not None and untouched is not None
        assert (rescored.priority, rescored.rules_version, rescored.team_id) == ("P1", 2, team)
        assert rescored.priority_reasons == [
            "abuse reported as ongoing (+70)",
            "located to a region (+5)",
        ]
        assert rescored.sla_due_at == rescored.processed_at + timedelta(hours=1)  # type: ignore[operator]
        assert (untouched.priority, untouched.rules_version) == ("P2", 1)  # already triaged


def test_a_rescore_for_a_superseded_version_does_nothing(
    runtime: Runtime, make_tip: MakeTip
) -> None:
    admit(runtime, make_tip())
    first = change_rules(runtime, 1, ongoing_abuse=70)
    change_rules(runtime, first, ongoing_abuse=10)
    rescorer = Rescorer(runtime.session_factory, audit_key=runtime.audit_key, clock=runtime.clock)
    assert rescorer.rescore(first) == 0


def test_an_overdue_tip_is_flagged_once_and_audited(runtime: Runtime, make_tip: MakeTip) -> None:
    clock = ManualClock(moment=runtime.clock.now())
    urgent = make_tip(imminent_danger=True, location_precision="city")  # P1: an hour
    routine = make_tip(location_precision="city")  # P3: a week
    for tip_id in (urgent, routine):
        admit(runtime, tip_id, clock)
    sla = SlaClock(runtime.session_factory, audit_key=runtime.audit_key, clock=clock)
    clock.advance(minutes=59)
    assert sla.flag() == 0
    clock.advance(minutes=2)
    assert sla.flag() == 1
    assert sla.flag() == 0  # once
    with runtime.session_factory() as session:
        assert session.get(Tip, urgent).sla_breached_at == clock.now()  # type: ignore[union-attr]
        assert session.get(Tip, routine).sla_breached_at is None  # type: ignore[union-attr]
        record = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "tip.sla_breached")
        ).one()
        assert record.subject == f"tip:{urgent}"
        assert record.details == {"priority": "P1", "team_id": None}


def test_a_triaged_tip_is_never_overdue(runtime: Runtime, make_tip: MakeTip) -> None:
    clock = ManualClock(moment=runtime.clock.now())
    tip_id = make_tip(imminent_danger=True, location_precision="city")
    admit(runtime, tip_id, clock)
    with runtime.session_factory.begin() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        tip.triaged_at = clock.now()
    clock.advance(hours=3)
    assert SlaClock(runtime.session_factory, audit_key=runtime.audit_key, clock=clock).flag() == 0
