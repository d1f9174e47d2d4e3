"""Aftercare: a lead records each child an operation safeguarded, under a pseudonym, for a
caseworker; the caseworker alone keeps the care plan; every read is audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from referrals.aftercare.models import Child, Milestone
from referrals.aftercare.services import AftercareRefused, ChildNotFound
from referrals.audit.models import AuditRecord
from referrals.casework.models import ReferralStage
from tests.clock import ManualClock
from tests.referrals.casework.conftest import Cast
from tests.referrals.casework.test_lifecycle import walk_to

S = ReferralStage


def safeguarded(cast: Cast) -> int:
    """A referral whose operation safeguarded 5 children (see walk_to's outcome)."""
    referral_id = cast.new_referral()
    walk_to(cast, referral_id, S.OUTCOME_RECORDED)
    return referral_id


def record(cast: Cast, referral_id: int, who: str = "lea", **changes: str) -> Child:
    with cast.runtime.session_factory() as session:
        given = {"age": "9", "sex": "female", "caseworker_id": str(cast.people["cas"].id)}
        return cast.aftercare(session).record_child(
            cast.user(session, who), referral_id, **(given | changes)
        )


def actions(cast: Cast) -> list[tuple[str, str | None, str]]:
    with cast.runtime.session_factory() as session:
        rows = session.scalars(
            select(AuditRecord).where(AuditRecord.action.like("child.%")
                                      | AuditRecord.action.like("milestone.%"))
            .order_by(AuditRecord.id)
        ).all()  # fmt: skip
        return [(r.action, r.subject, r.actor) for r in rows]


def test_a_child_is_recorded_under_a_pseudonym_for_one_caseworker(cast: Cast) -> None:
    referral_id = safeguarded(cast)

    child = record(cast, referral_id)

    assert re.fullmatch(r"C-[A-HJKMNP-Z2-9]{6}", child.pseudonym)
    assert (child.age, child.sex, child.caseworker_id, child.status) == (
        9, "female", cast.people["cas"].id, "in_care"
    )  # fmt: skip
    assert actions(cast) == [
        ("child.recorded", f"child:{child.id}", f"user:{cast.people['lea'].id}")
    ]
    with cast.runtime.session_factory() as session:
        mine = cast.aftercare(session).my_children(cast.user(session, "cas"))
        theirs = cast.aftercare(session).my_children(cast.user(session, "cay"))
        assert [c.id for c in mine] == [child.id] and theirs == []
        with pytest.raises(ChildNotFound):
            cast.aftercare(session).child_for(cast.user(session, "cay"), child.id)
        with pytest.raises(ChildNotFound):  # a lead sees counts, never a child
            cast.aftercare(session).child_for(cast.user(session, "lea"), child.id)
        counts = cast.aftercare(session).counts(cast.user(session, "lea").team_id)  # type: ignore[arg-type]
    assert (counts.children_in_care, counts.milestones_overdue) == (1, 0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"age": "18"}, "Give the child's age in years (0 to 17)."),
        ({"age": "nine"}, "Give the child's age in years (0 to 17)."),
        ({"age": "²"}, "Give the child's age in years (0 to 17)."),  # a digit to isdigit()
        ({"caseworker_id": "²"}, "Choose the caseworker who takes the child on."),
        ({"sex": "x"}, "Choose the child's sex (or “not disclosed”)."),
        ({"caseworker_id": "0"}, "Choose the caseworker who takes the child on."),
    ],
)
def test_a_child_s_record_missing_something_is_refused_saying_what(
    cast: Cast, changes: dict[str, str], message: str
) -> None:
    referral_id = safeguarded(cast)
    with pytest.raises(AftercareRefused) as refused:
        record(cast, referral_id, **changes)
    assert str(refused.value) == f"Nothing was recorded. {message}"


def test_no_more_children_than_were_safeguarded_and_only_by_the_team_s_lead(cast: Cast) -> None:
    referral_id = safeguarded(cast)
    for _ in range(5):
        record(cast, referral_id)
    with pytest.raises(AftercareRefused, match="All 5 children safeguarded in RF-"):
        record(cast, referral_id)
    # The caseworker given must be a caseworker.
    with pytest.raises(AftercareRefused, match="Choose the caseworker"):
        record(cast, safeguarded(cast), caseworker_id=str(cast.people["ana"].id))
    with pytest.raises(AftercareRefused, match="Only a lead of the referral's team"):
        record(cast, referral_id, who="lou")
    early = cast.new_referral()
    with pytest.raises(AftercareRefused, match="record the operation's outcome first"):
        record(cast, early)


def test_the_caseworker_keeps_the_care_plan_and_overdue_milestones_are_counted(
    cast: Cast, clock: ManualClock
) -> None:
    child = record(cast, safeguarded(cast))
    today = clock.now().date()
    with cast.runtime.session_factory() as session:
        care = cast.aftercare(session)
        cas = cast.user(session, "cas")
        care.plan_milestone(cas, child.id, kind="school_enrolled",
                            due_on=(today + timedelta(days=3)).isoformat())  # fmt: skip
        care.plan_milestone(cas, child.id, kind="care_plan_agreed",
                            due_on=(today - timedelta(days=1)).isoformat())  # fmt: skip
        care.record_milestone(cas, child.id, kind="story_documented", done_on=today.isoformat())
        care.set_placement(cas, child.id, "ngo_shelter")
        with pytest.raises(AftercareRefused, match="cannot be done in the future"):
            care.record_milestone(cas, child.id, kind="weekly_visit",
                                  done_on=(today + timedelta(days=1)).isoformat())  # fmt: skip
        with pytest.raises(AftercareRefused, match="Choose the kind of placement"):
            care.set_placement(cas, child.id, "12 Mabini Street")
        with pytest.raises(ChildNotFound):
            care.set_placement(cast.user(session, "cay"), child.id, "foster_family")
        overdue = care.counts(cast.user(session, "lea").team_id).milestones_overdue  # type: ignore[arg-type]
        # Done late: the planned one is marked, not a new one added.
        care.record_milestone(cas, child.id, kind="care_plan_agreed", done_on=today.isoformat())
        after = care.counts(cast.user(session, "lea").team_id).milestones_overdue  # type: ignore[arg-type]
        plan = [(m.kind, m.due_on is not None, m.done_on is not None)
                for m in session.scalars(select(Milestone).order_by(Milestone.id))]  # fmt: skip
        placement = session.get(Child, child.id).placement  # type: ignore[union-attr]
    assert (overdue, after) == (1, 0)
    assert plan == [
        ("school_enrolled", True, False),
        ("care_plan_agreed", True, True),
        ("story_documented", False, True),
    ]
    assert placement == "ngo_shelter"
    with cast.runtime.session_factory() as session:
        # Which child and what kind of change only: leads and admins read the audit log.
        details = session.scalars(
            select(AuditRecord.details).where(AuditRecord.action.like("milestone.%")
                                              | AuditRecord.action.like("child.placement"))
        ).all()  # fmt: skip
    assert details and all(d is None for d in details)
    cas_id = f"user:{cast.people['cas'].id}"
    assert [a for a in actions(cast) if a[2] == cas_id] == [
        ("milestone.planned", f"child:{child.id}", cas_id),
        ("milestone.planned", f"child:{child.id}", cas_id),
        ("milestone.done", f"child:{child.id}", cas_id),
        ("child.placement", f"child:{child.id}", cas_id),
        ("milestone.done", f"child:{child.id}", cas_id),
    ]


def test_every_read_of_a_child_s_record_is_audited(cast: Cast) -> None:
    child = record(cast, safeguarded(cast))
    with cast.runtime.session_factory() as session:
        care = cast.aftercare(session)
        care.my_children(cast.user(session, "cas"), address="192.0.2.9")
        care.child_for(cast.user(session, "cas"), child.id, address="192.0.2.9")
        reads = session.scalars(
            select(AuditRecord.action).where(
                AuditRecord.action.in_(("child.listed", "child.viewed"))
            )
        ).all()
    assert reads == ["child.listed", "child.viewed"]
