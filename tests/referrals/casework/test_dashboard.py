"""The lead's dashboard, checked against figures worked out by hand from a small team's
history (made through the services, on a clock moved by hand)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import select

from referrals.accounts.models import Team
from referrals.casework.dashboard import GroupOutcome, LeadDashboard, from_json, to_json
from referrals.casework.models import DashboardSnapshot, ReferralStage
from referrals.casework.services import take_in
from referrals.casework.tasks import refresh_dashboards
from referrals.intake.models import Agency, Tip, TipStatus
from referrals.operations.services import Outcome
from tests.clock import ManualClock
from tests.referrals.casework.conftest import Cast
from tests.referrals.casework.test_lifecycle import move, walk_to
from tests.referrals.operations.test_operations import plan, step

S = ReferralStage


def tip(
    cast: Cast, agency: str, referral_id: int | None, *, days_ago: float = 0, **kw: object
) -> str:
    """A tip held for the Manila team, from ``agency``, in ``referral_id`` (stored directly,
    as processing would leave it, then taken into the referral as the desk does)."""
    with cast.runtime.session_factory() as session:
        agency_id = session.query(Agency.id).filter(Agency.name == agency).scalar()
        if agency_id is None:
            found = Agency(name=agency, country="GB", created_at=cast.runtime.clock.now())
            session.add(found)
            session.flush()
            agency_id = found.id
        team_id = session.query(Team.id).filter(Team.name == "Manila").scalar()
        at = cast.runtime.clock.now() - timedelta(days=days_ago)
        found_tip = Tip(
            id=str(uuid.uuid4()),
            tracking_number=f"TL-{uuid.uuid4().hex[:10]}",
            agency_id=agency_id,
            status=TipStatus.ACCEPTED if referral_id else TipStatus.IN_TRIAGE,
            received_at=at,
            updated_at=at,
            ciphertext_sha256="0" * 64,
            ciphertext_bytes=1,
            team_id=team_id,
            referral_id=referral_id,
            # Processing always records the partner's marking: here one that allows hand-over.
            **({"tlp": "GREEN"} | kw),
        )
        session.add(found_tip)
        session.flush()
        if referral_id is not None:  # as accepting or merging it does
            take_in(session, referral_id, found_tip)
        session.commit()
        return found_tip.id


def test_the_dashboard_adds_up_as_worked_out_by_hand(cast: Cast, clock: ManualClock) -> None:
    # 1 Nov: four referrals opened; two will go through one operation.
    clock.moment = clock.moment.replace(month=11, day=1)
    waiting, handed, first, second = (cast.new_referral() for _ in range(4))
    cast.new_referral(team="Bangkok")  # another team's: counted nowhere here
    tip(cast, "NCA", first, days_ago=10)  # first's tip: 22 Oct
    tip(cast, "NCA", second)
    tip(cast, "AFP", second)  # second was merged from two agencies' tips
    tip(cast, "AFP", None, days_ago=2, sla_due_at=clock.now() - timedelta(days=1))  # overdue
    tip(cast, "AFP", None)
    for referral_id in (first, second):
        walk_to(cast, referral_id, S.WITH_UNIT)
    walk_to(cast, handed, S.HANDOVER_PENDING)  # due 8 Nov
    operation = plan(cast, [first, second])
    step(cast, operation.id, "approve")
    # 21 Nov: conducted, debriefed; first goes into aftercare.
    clock.moment = clock.moment.replace(day=21)
    step(cast, operation.id, "conduct")
    step(
        cast,
        operation.id,
        "debrief",
        outcomes={first: Outcome("3", "1"), second: Outcome("2", "0")},
    )
    move(cast, first, "begin_aftercare", "lea")
    # Two of first's three children recorded so far; one care plan has a milestone due 25 Nov.
    with cast.runtime.session_factory() as session:
        care, lea = cast.aftercare(session), cast.user(session, "lea")
        cas = str(cast.people["cas"].id)
        child = care.record_child(lea, first, age="7", sex="female", caseworker_id=cas)
        care.record_child(lea, first, age="11", sex="male", caseworker_id=cas)
        care.plan_milestone(
            cast.user(session, "cas"), child.id, kind="care_plan_agreed", due_on="2026-11-25"
        )
    # 29 Nov: the dashboard.
    clock.moment = clock.moment.replace(day=29)

    with cast.runtime.session_factory() as session:
        team_id = session.query(Team.id).filter(Team.name == "Manila").scalar()
        figures = LeadDashboard(session, clock=clock).for_team(team_id)

    # (referrals, past the stage's time): assessment allows 7 days, a pending hand-over 7,
    # an outcome recorded 14; aftercare has no limit.
    stages = {s.stage: (s.referrals, s.over_sla) for s in figures.stages}
    assert stages == {
        S.ASSESSMENT: (1, 1),  # waiting: 28 days
        S.INVESTIGATION: (0, 0),
        S.HANDOVER_PENDING: (1, 1),  # handed: 28 days
        S.WITH_UNIT: (0, 0),
        S.OPERATION_PLANNED: (0, 0),
        S.OPERATION_CONDUCTED: (0, 0),
        S.OUTCOME_RECORDED: (1, 0),  # second: 8 days
        S.AFTERCARE: (1, 0),  # first
        S.CLOSED: (0, 0),
    }
    assert (figures.overdue_handovers, figures.overdue_tips, figures.overdue_milestones) == (
        1,
        1,
        1,
    )
    assert [(f.label, f.count) for f in figures.funnel] == [
        ("Tips routed to the team", 5),
        ("Referrals", 4),
        ("Operations conducted", 1),
        ("Children safeguarded", 5),
        ("Children in aftercare", 2),  # recorded and in care
    ]
    # first: 22 Oct to 21 Nov = 30 days; second: 1 Nov to 21 Nov = 20 days; median 25.
    assert figures.median_days_tip_to_operation == 25.0
    assert len(figures.months) == 12
    assert figures.months[0].month == date(2025, 12, 1)
    assert (figures.months[-1].month, figures.months[-1].operations,
            figures.months[-1].children_safeguarded, figures.months[-1].suspects_arrested) == (
        date(2026, 11, 1), 1, 5, 1
    )  # fmt: skip
    assert sum(m.operations for m in figures.months[:-1]) == 0
    assert figures.by_agency == [
        GroupOutcome("NCA", 2, 5, 1),  # first (3, 1) and second (2, 0)
        GroupOutcome("AFP", 1, 2, 0),  # second only
    ]
    assert figures.by_region == [GroupOutcome("Central Luzon, PH", 1, 5, 1)]

    # A week on, second's outcome has waited 15 days for the next step: past its time.
    clock.advance(days=7)
    with cast.runtime.session_factory() as session:
        later = LeadDashboard(session, clock=clock).for_team(team_id)
    assert {s.stage: s.over_sla for s in later.stages}[S.OUTCOME_RECORDED] == 1


def test_the_page_reads_a_snapshot_kept_fresh_by_the_workers(
    cast: Cast, clock: ManualClock
) -> None:
    cast.new_referral()
    with cast.runtime.session_factory() as session:
        team_id = session.query(Team.id).filter(Team.name == "Manila").scalar()
        computed = LeadDashboard(session, clock=clock).current(team_id)
    # What was computed is kept whole (its figures as JSON, then read back).
    assert from_json(to_json(computed)) == computed
    assert {s.stage: s.referrals for s in computed.stages}[S.ASSESSMENT] == 1

    cast.new_referral()
    clock.advance(seconds=30)
    with cast.runtime.session_factory() as session:
        kept = LeadDashboard(session, clock=clock).current(team_id)
    assert kept == computed  # a minute old at most: not computed again

    refresh_dashboards(cast.runtime.job_context())  # the workers' minute
    with cast.runtime.session_factory() as session:
        refreshed = LeadDashboard(session, clock=clock).current(team_id)
        teams = session.scalars(select(DashboardSnapshot.team_id)).all()
    assert {s.stage: s.referrals for s in refreshed.stages}[S.ASSESSMENT] == 2
    assert len(teams) == 2  # every team's
    # With no worker, the page computes it itself once the snapshot is stale.
    cast.new_referral()
    clock.advance(minutes=3)
    with cast.runtime.session_factory() as session:
        later = LeadDashboard(session, clock=clock).current(team_id)
    assert {s.stage: s.referrals for s in later.stages}[S.ASSESSMENT] == 3
    assert later.computed_at == clock.now()
