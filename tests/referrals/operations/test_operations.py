"""Operations: planned by a lead for referrals held by units, approved, conducted and
debriefed, each step moving every referral with it in one transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from referrals.audit.models import AuditRecord
from referrals.casework.models import Referral, ReferralEvent, ReferralStage
from referrals.operations.models import Operation, OperationStatus
from referrals.operations.services import OperationNotFound, OperationRefused, Outcome
from tests.referrals.casework.conftest import Cast
from tests.referrals.casework.test_lifecycle import referral, stage_of, timeline, walk_to

S = ReferralStage


def two_with_the_unit(cast: Cast) -> list[int]:
    ids = [cast.new_referral(), cast.new_referral()]
    for referral_id in ids:
        walk_to(cast, referral_id, S.WITH_UNIT)
    return ids


def plan(cast: Cast, referral_ids: list[int], who: str = "lea", **changes: object) -> Operation:
    with cast.runtime.session_factory() as session:
        given: dict[str, object] = {
            "referral_ids": referral_ids,
            "lead_unit_id": cast.units["Luzon"],
            "partner_unit_ids": [cast.units["Cebu"]],
            "planned_for": "2026-12-10",
            "region": "Central Luzon",
        } | changes
        return cast.operations(session).plan(cast.user(session, who), **given)  # type: ignore[arg-type]


def step(cast: Cast, operation_id: int, name: str, who: str = "lea", **kwargs: object) -> Operation:
    with cast.runtime.session_factory() as session:
        return cast.operations(session).step(cast.user(session, who), operation_id, name, **kwargs)  # type: ignore[arg-type]


def status(cast: Cast, operation_id: int) -> str:
    with cast.runtime.session_factory() as session:
        return session.get(Operation, operation_id).status  # type: ignore[union-attr]


def test_an_operation_for_two_referrals_takes_both_from_plan_to_outcome(cast: Cast) -> None:
    first, second = two_with_the_unit(cast)

    operation = plan(cast, [first, second])
    assert operation.reference.startswith("OP-2026-")
    assert [stage_of(cast, r) for r in (first, second)] == [S.OPERATION_PLANNED] * 2
    assert timeline(cast, first)[-1].details == {"operation_id": operation.id}

    step(cast, operation.id, "approve")
    step(cast, operation.id, "conduct", "oli")  # an officer of the lead unit
    assert [stage_of(cast, r) for r in (first, second)] == [S.OPERATION_CONDUCTED] * 2
    done = step(
        cast, operation.id, "debrief", "oli",
        outcomes={first: Outcome("3", "1"), second: Outcome("2", "0")},
    )  # fmt: skip

    assert (done.status, done.children_safeguarded, done.suspects_arrested) == (
        OperationStatus.DEBRIEFED, 5, 1
    )  # fmt: skip
    outcomes = [referral(cast, r) for r in (first, second)]
    assert [(r.stage, r.children_safeguarded) for r in outcomes] == [
        (S.OUTCOME_RECORDED, 3),
        (S.OUTCOME_RECORDED, 2),
    ]
    assert [e.transition for e in timeline(cast, second)][-3:] == [
        "plan_operation", "conduct_operation", "record_outcome"
    ]  # fmt: skip
    with cast.runtime.session_factory() as session:
        actions = session.scalars(
            select(AuditRecord.action)
            .where(AuditRecord.subject == f"operation:{operation.id}")
            .order_by(AuditRecord.id)
        ).all()
    assert actions == [
        "operation.planned", "operation.approved", "operation.conducted", "operation.debriefed"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ids": []}, "Choose at least one referral."),
        ({"lead_unit_id": None}, "Choose the unit that leads the operation."),
        ({"lead_unit_id": 999_999}, "Choose the unit that leads the operation."),
        ({"planned_for": "soon"}, "Give the planned date (YYYY-MM-DD)."),
        ({"planned_for": "2031-01-01"},
         "Give a planned date within a year before or two after today."),
        ({"partner_unit_ids": [999_999]}, "A partner unit chosen is not registered."),
        ({"region": "x" * 101}, "Write the region in at most 100 characters."),
    ],
)  # fmt: skip
def test_a_plan_missing_something_names_it_and_plans_nothing(
    cast: Cast, changes: dict[str, object], message: str
) -> None:
    (first, _) = two_with_the_unit(cast)
    ids = changes.pop("ids", [first])
    with pytest.raises(OperationRefused) as refused:
        plan(cast, ids, **changes)  # type: ignore[arg-type]
    assert str(refused.value) == f"Nothing was planned. {message}"
    assert stage_of(cast, first) == S.WITH_UNIT
    with cast.runtime.session_factory() as session:
        assert session.scalars(select(Operation)).all() == []


def test_only_referrals_of_the_team_accepted_by_a_unit_go_into_an_operation(cast: Cast) -> None:
    ready = cast.new_referral()
    walk_to(cast, ready, S.WITH_UNIT)
    early = cast.new_referral()  # still in assessment
    theirs = cast.new_referral(team="Bangkok")

    with pytest.raises(OperationRefused) as refused:
        plan(cast, [ready, early, theirs])

    early_ref = referral(cast, early).reference
    assert str(refused.value) == (
        f"Nothing was planned. {early_ref} is not with a unit that accepted it: only such "
        f"referrals go into an operation. Your team has no referral {theirs}."
    )
    assert stage_of(cast, ready) == S.WITH_UNIT
    with pytest.raises(OperationRefused, match="Only a team lead plans operations"):
        plan(cast, [ready], who="ana")
    # Its units' officers act on every referral in it: each must be held by one of them.
    with pytest.raises(OperationRefused) as elsewhere:
        plan(cast, [ready], lead_unit_id=cast.units["Cebu"], partner_unit_ids=[])
    assert str(elsewhere.value) == (
        f"Nothing was planned. {referral(cast, ready).reference} is with a unit not in this "
        "operation: make its unit the lead unit or a partner unit."
    )


def test_recording_the_outcome_needs_every_referral_s_counts_or_changes_nothing(
    cast: Cast,
) -> None:
    first, second = two_with_the_unit(cast)
    operation = plan(cast, [first, second])
    step(cast, operation.id, "approve")
    step(cast, operation.id, "conduct")
    second_ref = referral(cast, second).reference

    with pytest.raises(OperationRefused) as refused:
        step(cast, operation.id, "debrief", outcomes={first: Outcome("1", "1"),
                                                      second: Outcome("-1", "")})  # fmt: skip

    assert str(refused.value) == (
        f"Nothing was recorded. Give {second_ref}'s children safeguarded and suspects arrested "
        "(0 if none)."
    )
    assert status(cast, operation.id) == OperationStatus.CONDUCTED
    assert [stage_of(cast, r) for r in (first, second)] == [S.OPERATION_CONDUCTED] * 2


def test_who_may_take_an_operation_on(cast: Cast) -> None:
    (first, _) = two_with_the_unit(cast)
    operation = plan(cast, [first])

    with pytest.raises(OperationRefused, match="Only a team lead may “approve the operation”"):
        step(cast, operation.id, "approve", "oli")
    step(cast, operation.id, "approve")
    # An officer of a partner unit sees it, but only the lead unit's officers act.
    with pytest.raises(OperationRefused, match="or an officer of its lead unit may"):
        step(cast, operation.id, "conduct", "ces")
    # Another team's lead is not told it exists.
    with pytest.raises(OperationNotFound):
        step(cast, operation.id, "conduct", "lou")
    with pytest.raises(OperationRefused, match="does not apply to an operation that is “Approved”"):
        step(cast, operation.id, "approve")
    with pytest.raises(OperationRefused, match="now “Approved”, not what it was"):
        step(cast, operation.id, "cancel", seen_status="planning")
    assert status(cast, operation.id) == OperationStatus.APPROVED


def test_cancelling_gives_the_referrals_back_to_their_unit(cast: Cast) -> None:
    first, second = two_with_the_unit(cast)
    operation = plan(cast, [first, second])
    step(cast, operation.id, "approve")

    step(cast, operation.id, "cancel")

    assert status(cast, operation.id) == OperationStatus.CANCELLED
    back = [referral(cast, r) for r in (first, second)]
    assert [(r.stage, r.operation_id) for r in back] == [(S.WITH_UNIT, None)] * 2


def test_a_referral_closed_early_stays_out_of_its_operation_s_later_steps(cast: Cast) -> None:
    first, second = two_with_the_unit(cast)
    operation = plan(cast, [first, second])
    with cast.runtime.session_factory() as session:
        cast.casework(session).advance(
            cast.user(session, "lea"), second, "close_early", {"close_reason": "duplicate"}
        )
    step(cast, operation.id, "approve")

    step(cast, operation.id, "conduct")
    done = step(cast, operation.id, "debrief", outcomes={first: Outcome("1", "0")})

    assert (stage_of(cast, first), stage_of(cast, second)) == (S.OUTCOME_RECORDED, S.CLOSED)
    assert referral(cast, second).operation_id is None  # out of the operation
    assert done.children_safeguarded == 1
    with cast.runtime.session_factory() as session:
        moves = session.scalars(
            select(ReferralEvent.transition).where(ReferralEvent.referral_id == second)
        ).all()
    assert "conduct_operation" not in moves


def test_the_board_shows_each_person_the_operations_within_their_reach(cast: Cast) -> None:
    (first, _) = two_with_the_unit(cast)
    operation = plan(cast, [first])
    with cast.runtime.session_factory() as session:
        operations = cast.operations(session)
        seen = {
            name: [
                o.id for o in operations.board(cast.user(session, name))[OperationStatus.PLANNING]
            ]
            for name in ("ana", "lea", "oli", "ces", "lou", "root")
        }
    assert seen == {
        "ana": [operation.id], "lea": [operation.id], "oli": [operation.id],
        "ces": [operation.id], "lou": [], "root": [],
    }  # fmt: skip
    with cast.runtime.session_factory() as session:
        assert session.get(Referral, first).operation_id == operation.id  # type: ignore[union-attr]
