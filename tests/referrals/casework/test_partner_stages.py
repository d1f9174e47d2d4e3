"""What the agencies whose tips are in a referral are told of it as it moves (a coarse stage,
nothing more), and the handling markings its tips bring into it."""

from __future__ import annotations

import pytest

from referrals.casework.models import Referral, ReferralStage
from referrals.intake.models import Tip
from tests.clock import ManualClock
from tests.referrals.casework.conftest import Cast
from tests.referrals.casework.test_dashboard import tip
from tests.referrals.casework.test_lifecycle import move, walk_to

S = ReferralStage

TOLD = {
    S.ASSESSMENT: "accepted",
    S.INVESTIGATION: "under_investigation",
    S.HANDOVER_PENDING: "under_investigation",
    S.WITH_UNIT: "under_investigation",
    # A planned operation is not told: it is still "under investigation" to the partner.
    S.OPERATION_PLANNED: "under_investigation",
    S.OPERATION_CONDUCTED: "operation_conducted",
    S.OUTCOME_RECORDED: "operation_conducted",
    S.AFTERCARE: "operation_conducted",
    S.CLOSED: "closed",
}


def told(cast: Cast, tip_id: str) -> tuple[str, object]:
    with cast.runtime.session_factory() as session:
        found = session.get(Tip, tip_id)
        assert found is not None
        return found.partner_status, found.updated_at


def test_each_agency_is_told_the_coarse_stage_as_the_referral_moves(
    cast: Cast, clock: ManualClock
) -> None:
    referral_id = cast.new_referral()
    first = tip(cast, "NCA", referral_id, days_ago=3)
    second = tip(cast, "AFP", referral_id, days_ago=1)
    waiting = tip(cast, "AFP", None)  # in triage, in no referral: stays as it is
    assert told(cast, first)[0] == told(cast, second)[0] == "accepted"

    for stage in [
        S.INVESTIGATION,
        S.HANDOVER_PENDING,
        S.WITH_UNIT,
        S.OPERATION_PLANNED,
        S.OPERATION_CONDUCTED,
        S.OUTCOME_RECORDED,
        S.AFTERCARE,
        S.CLOSED,
    ]:
        before = told(cast, first)
        clock.advance(hours=1)
        walk_to(cast, referral_id, stage)
        after = told(cast, first)
        assert after[0] == TOLD[stage], stage
        assert told(cast, second)[0] == TOLD[stage]
        # Listed among the partner's changed tips exactly when what it is told changed.
        assert (after[1] != before[1]) == (after[0] != before[0]), stage
    assert told(cast, waiting)[0] == "in_triage"


def test_a_referral_closed_early_is_closed_to_its_agencies(cast: Cast) -> None:
    referral_id = cast.new_referral()
    first = tip(cast, "NCA", referral_id)
    walk_to(cast, referral_id, S.WITH_UNIT)
    move(cast, referral_id, "close_early", "lea")
    assert told(cast, first)[0] == "closed"


def test_a_tip_merged_later_is_told_where_the_referral_already_is(cast: Cast) -> None:
    referral_id = cast.new_referral()
    tip(cast, "NCA", referral_id)
    walk_to(cast, referral_id, S.OPERATION_PLANNED)
    late = tip(cast, "AFP", referral_id)
    assert told(cast, late)[0] == "under_investigation"


def test_a_referral_is_graded_as_its_least_assured_tip(cast: Cast) -> None:
    referral_id = cast.new_referral()
    for source, information in (("A", 2), ("C", 1), ("B", None)):
        tip(cast, "NCA", referral_id, source_reliability=source, information_accuracy=information)
    with cast.runtime.session_factory() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        assert (referral.source_reliability, referral.information_accuracy) == ("C", 2)


@pytest.mark.parametrize(
    ("markings", "tlp", "code"),
    [
        ([("GREEN", None), ("AMBER", "H1")], "AMBER", "H1"),
        ([("RED", "H0"), ("CLEAR", "H2")], "RED", "H2"),
        ([("AMBER+STRICT", None), ("AMBER", None)], "AMBER+STRICT", None),
        ([("CLEAR", None)], "CLEAR", None),
    ],
)
def test_a_referral_carries_the_most_restrictive_marking_of_its_tips(
    cast: Cast, markings: list[tuple[str, str | None]], tlp: str, code: str | None
) -> None:
    referral_id = cast.new_referral()
    for marking, handling_code in markings:
        tip(cast, "NCA", referral_id, tlp=marking, handling_code=handling_code)
    with cast.runtime.session_factory() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        assert (referral.tlp, referral.handling_code) == (tlp, code)
