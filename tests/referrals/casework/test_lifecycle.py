"""The referral lifecycle: every move the table allows, made by each role it names; refusals
that say what is missing or who may; the timeline, its sealed notes, and its replay."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from referrals.accounts.models import Role
from referrals.audit.models import AuditRecord
from referrals.casework.lifecycle import (
    BY_NAME,
    OPENED,
    TRANSITIONS,
    CloseReason,
    Need,
    moves_from,
    replay,
)
from referrals.casework.models import Referral, ReferralEvent, ReferralStage
from referrals.casework.services import (
    HANDOVER_ANSWER_TIME,
    MoveRefused,
    ReferralNotFound,
    StageChanged,
    time_in_stages,
)
from referrals.operations.services import Outcome
from tests.clock import ManualClock
from tests.referrals.casework.conftest import Cast

S = ReferralStage
# The way a referral usually goes, one move to each next stage, and who makes each.
MAIN_PATH = [
    ("investigate", "lea"),
    ("hand_over", "lea"),
    ("accept_handover", "oli"),
    ("plan_operation", "lea"),
    ("conduct_operation", "oli"),
    ("record_outcome", "lea"),
    ("begin_aftercare", "lea"),
    ("close", "lea"),
]
ACTOR = {Role.ANALYST: "ana", Role.LEAD: "lea", Role.OFFICER: "oli"}


def values(cast: Cast) -> dict[str, str]:
    """What every move may need, valid."""
    return {
        Need.NOTE.value: "Payment trail confirmed with the bank.",
        Need.UNIT.value: str(cast.units["Luzon"]),
        Need.UNIT_REFERENCE.value: "LCPU-2026/0042",
        Need.CHILDREN_SAFEGUARDED.value: "5",
        Need.SUSPECTS_ARRESTED.value: "1",
        Need.CLOSE_REASON.value: CloseReason.DUPLICATE.value,
    }


def move(cast: Cast, referral_id: int, name: str, who: str, given: dict[str, str] | None = None):
    with cast.runtime.session_factory() as session:
        return cast.casework(session).advance(
            cast.user(session, who),
            referral_id,
            name,
            values(cast) if given is None else given,
            address="192.0.2.7",
        )


def walk_to(cast: Cast, referral_id: int, stage: ReferralStage) -> None:
    for name, who in MAIN_PATH:
        current = stage_of(cast, referral_id)
        if current == stage:
            return
        if current not in BY_NAME[name].sources:
            continue
        if BY_NAME[name].via_operation:
            through_operation(cast, referral_id, name)
        else:
            move(cast, referral_id, name, who)
    assert stage_of(cast, referral_id) == stage


def through_operation(cast: Cast, referral_id: int, name: str) -> None:
    """The moves an operation makes: plan one for the referral, or take its operation on."""
    with cast.runtime.session_factory() as session:
        operations = cast.operations(session)
        lead = cast.user(session, "lea")
        if name == "plan_operation":
            operations.plan(
                lead,
                referral_ids=[referral_id],
                lead_unit_id=cast.units["Luzon"],
                planned_for="2026-12-10",
            )
            return
        operation_id = session.get(Referral, referral_id).operation_id  # type: ignore[union-attr]
        assert operation_id is not None
        if name == "conduct_operation":
            operations.step(lead, operation_id, "approve")
            operations.step(lead, operation_id, "conduct")
        else:
            operations.step(
                lead, operation_id, "debrief", outcomes={referral_id: Outcome("5", "1")}
            )


def stage_of(cast: Cast, referral_id: int) -> ReferralStage:
    with cast.runtime.session_factory() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        return ReferralStage(referral.stage)


def referral(cast: Cast, referral_id: int) -> Referral:
    with cast.runtime.session_factory() as session:
        found = session.get(Referral, referral_id)
        assert found is not None
        return found


def timeline(cast: Cast, referral_id: int) -> list[ReferralEvent]:
    with cast.runtime.session_factory() as session:
        return list(
            session.scalars(
                select(ReferralEvent)
                .where(ReferralEvent.referral_id == referral_id)
                .order_by(ReferralEvent.id)
            )
        )


ALLOWED = [
    pytest.param(transition.name, source, role, id=f"{transition.name}-from-{source}-by-{role}")
    for transition in TRANSITIONS
    if not transition.via_operation  # tests/referrals/operations makes those
    for source in sorted(transition.sources, key=list(S).index)
    for role in sorted(transition.roles)
]


@pytest.mark.parametrize(("name", "source", "role"), ALLOWED)
def test_every_move_the_table_allows_is_made_and_lands_on_the_timeline_and_audit_log(
    cast: Cast, clock: ManualClock, name: str, source: ReferralStage, role: Role
) -> None:
    referral_id = cast.new_referral()
    walk_to(cast, referral_id, source)
    clock.advance(hours=1)

    move(cast, referral_id, name, ACTOR[role])

    transition = BY_NAME[name]
    moved = referral(cast, referral_id)
    assert moved.stage == transition.target
    assert moved.stage_entered_at == clock.now()
    last = timeline(cast, referral_id)[-1]
    assert (last.transition, last.from_stage, last.to_stage, last.actor_id, last.at) == (
        name, source.value, transition.target.value, cast.people[ACTOR[role]].id, clock.now()
    )  # fmt: skip
    with cast.runtime.session_factory() as session:
        record = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "referral.moved")
            .order_by(AuditRecord.id.desc())
        ).first()
    assert record is not None
    assert (record.subject, record.actor, record.address) == (
        f"referral:{referral_id}", f"user:{cast.people[ACTOR[role]].id}", "192.0.2.7"
    )  # fmt: skip
    assert record.details == {"move": name, "from": source.value, "to": transition.target.value}


def test_what_a_move_records_on_the_referral(cast: Cast, clock: ManualClock) -> None:
    referral_id = cast.new_referral()
    walk_to(cast, referral_id, S.HANDOVER_PENDING)
    handed = referral(cast, referral_id)
    assert handed.unit_id == cast.units["Luzon"]
    assert handed.handover_due_at == clock.now() + HANDOVER_ANSWER_TIME

    walk_to(cast, referral_id, S.WITH_UNIT)
    accepted = referral(cast, referral_id)
    assert (accepted.unit_reference, accepted.handover_due_at) == ("LCPU-2026/0042", None)

    walk_to(cast, referral_id, S.OUTCOME_RECORDED)
    outcome = referral(cast, referral_id)
    assert (outcome.children_safeguarded, outcome.suspects_arrested) == (5, 1)
    assert timeline(cast, referral_id)[-1].details == {
        "operation_id": outcome.operation_id,
        "children_safeguarded": 5,
        "suspects_arrested": 1,
    }


def test_a_refused_hand_over_goes_back_to_the_team_with_its_reason(cast: Cast) -> None:
    referral_id = cast.new_referral()
    walk_to(cast, referral_id, S.HANDOVER_PENDING)

    move(cast, referral_id, "refuse_handover", "oli", {"note": "Not our region: try Cebu."})

    back = referral(cast, referral_id)
    assert (back.stage, back.unit_id, back.handover_due_at) == (S.INVESTIGATION, None, None)
    # The unit no longer reaches it.
    with pytest.raises(ReferralNotFound):
        move(cast, referral_id, "accept_handover", "oli")
    with cast.runtime.session_factory() as session:
        entries = cast.casework(session).timeline(
            cast.user(session, "lea"), session.get(Referral, referral_id), address=None
        )
    assert (entries[-1].event.transition, entries[-1].note) == (
        "refuse_handover", "Not our region: try Cebu."
    )  # fmt: skip


def test_closing_early_from_each_open_stage_records_why(cast: Cast) -> None:
    assert BY_NAME["close_early"].sources == frozenset(s for s in S if s is not S.CLOSED)
    for stage in BY_NAME["close_early"].sources:
        referral_id = cast.new_referral()
        walk_to(cast, referral_id, stage)
        move(cast, referral_id, "close_early", "lea", {"close_reason": "no_offence"})
        closed = referral(cast, referral_id)
        assert (closed.stage, closed.close_reason, closed.handover_due_at) == (
            S.CLOSED, "no_offence", None
        ), stage  # fmt: skip
        # Out of an operation still under way; still part of one whose outcome it has.
        in_operation = stage in (S.OUTCOME_RECORDED, S.AFTERCARE)
        assert (closed.operation_id is not None) == in_operation, stage


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "name", "who", "message"),
    [
        (S.INVESTIGATION, "hand_over", "ana",
         "Only a team lead may “hand over to a unit”; you are an analyst."),
        (S.HANDOVER_PENDING, "accept_handover", "lea",
         "Only an officer may “accept the hand-over”; you are a team lead."),
        (S.ASSESSMENT, "close_early", "ana",
         "Only a team lead may “close early”; you are an analyst."),
        (S.WITH_UNIT, "close_early", "oli",
         "Only a team lead may “close early”; you are an officer."),
        (S.AFTERCARE, "close", "oli",
         "Only a team lead may “close the referral”; you are an officer."),
        (S.ASSESSMENT, "begin_aftercare", "lea",
         "“Begin aftercare and prosecution” applies to a referral at “Outcome recorded”; this "
         "one is at “Assessment”."),
        (S.WITH_UNIT, "plan_operation", "lea",
         "“Plan an operation” is done on the operation, for all its referrals at once: open it "
         "from Operations."),
        (S.OPERATION_CONDUCTED, "record_outcome", "oli",
         "“Record the outcome” is done on the operation, for all its referrals at once: open it "
         "from Operations."),
        (S.CLOSED, "investigate", "lea",
         "“Start the investigation” applies to a referral at “Assessment”; this one is at "
         "“Closed”."),
    ],
)  # fmt: skip
def test_a_move_not_theirs_or_not_from_this_stage_is_refused_saying_why(
    cast: Cast, stage: ReferralStage, name: str, who: str, message: str
) -> None:
    referral_id = cast.new_referral()
    walk_to(cast, referral_id, stage)
    events = len(timeline(cast, referral_id))

    with pytest.raises(MoveRefused) as refused:
        move(cast, referral_id, name, who)

    assert str(refused.value) == message
    assert stage_of(cast, referral_id) == stage
    assert len(timeline(cast, referral_id)) == events


@pytest.mark.parametrize(
    ("stage", "name", "given", "message"),
    [
        (S.INVESTIGATION, "hand_over", {}, "Nothing was changed. Choose the unit to hand it to."),
        (S.INVESTIGATION, "hand_over", {"unit_id": "999999"},
         "Nothing was changed. Choose the unit to hand it to."),
        (S.HANDOVER_PENDING, "withdraw_handover", {"note": "  "},
         "Nothing was changed. Write a note saying why."),
        (S.ASSESSMENT, "close_early", {"close_reason": "bored"},
         "Nothing was changed. Choose why the referral is closed."),
        (S.ASSESSMENT, "investigate", {"note": "x" * 5001},
         "Nothing was changed. Write a note of at most 5,000 characters."),
    ],
)  # fmt: skip
def test_a_move_missing_what_it_needs_names_each_thing_missing(
    cast: Cast, stage: ReferralStage, name: str, given: dict[str, str], message: str
) -> None:
    referral_id = cast.new_referral()
    walk_to(cast, referral_id, stage)
    who = "lea"

    with pytest.raises(MoveRefused) as refused:
        move(cast, referral_id, name, who, given)

    assert str(refused.value) == message
    assert stage_of(cast, referral_id) == stage


@pytest.mark.parametrize("who", ["lou", "ces", "root"])
def test_people_it_is_not_handed_to_cannot_reach_it(cast: Cast, who: str) -> None:
    """Another team's lead, an officer of another unit, an admin: not told it exists."""
    referral_id = cast.new_referral()
    walk_to(cast, referral_id, S.WITH_UNIT)

    with pytest.raises(ReferralNotFound):
        move(cast, referral_id, "plan_operation", who)
    with cast.runtime.session_factory() as session, pytest.raises(ReferralNotFound):
        cast.casework(session).referral_for(cast.user(session, who), referral_id)


def test_an_officer_reaches_only_what_was_handed_to_their_unit(cast: Cast) -> None:
    kept = cast.new_referral()
    handed = cast.new_referral()
    walk_to(cast, handed, S.HANDOVER_PENDING)

    with cast.runtime.session_factory() as session:
        listed = cast.casework(session).referrals(cast.user(session, "oli"))
        with pytest.raises(ReferralNotFound):
            cast.casework(session).referral_for(cast.user(session, "oli"), kept)
    assert [r.id for r in listed] == [handed]


def test_a_move_chosen_on_a_page_that_is_out_of_date_changes_nothing(cast: Cast) -> None:
    referral_id = cast.new_referral()
    move(cast, referral_id, "investigate", "ana")

    with cast.runtime.session_factory() as session, pytest.raises(StageChanged) as refused:
        cast.casework(session).advance(
            cast.user(session, "lea"),
            referral_id,
            "close_early",
            {"close_reason": "duplicate"},
            seen_stage=S.ASSESSMENT.value,
        )

    assert "now at “Investigation”" in str(refused.value)
    assert stage_of(cast, referral_id) == S.INVESTIGATION


def test_of_two_people_moving_it_at_once_one_wins(cast: Cast) -> None:
    referral_id = cast.new_referral()
    walk_to(cast, referral_id, S.INVESTIGATION)
    with cast.runtime.session_factory() as slow:
        casework = cast.casework(slow)
        lead = cast.user(slow, "lea")
        # Read while still in investigation (and held, as a request holds what it read).
        seen = casework.referral_for(lead, referral_id)
        move(cast, referral_id, "hand_over", "lea")  # someone else, meanwhile

        assert seen.stage == S.INVESTIGATION
        with pytest.raises(StageChanged):
            casework.advance(lead, referral_id, "close_early", {"close_reason": "duplicate"})

    assert stage_of(cast, referral_id) == S.HANDOVER_PENDING
    assert [e.transition for e in timeline(cast, referral_id)][-1] == "hand_over"


# -- the timeline -------------------------------------------------------------------------


def test_notes_are_sealed_at_rest_and_read_back_on_the_timeline_with_the_reading_audited(
    cast: Cast,
) -> None:
    referral_id = cast.new_referral()
    move(cast, referral_id, "investigate", "ana", {"note": "Suspect uses two usernames."})

    stored = timeline(cast, referral_id)[-1].note
    assert stored is not None
    assert stored.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert b"usernames" not in stored
    with cast.runtime.session_factory() as session:
        entries = cast.casework(session).timeline(
            cast.user(session, "lea"), session.get(Referral, referral_id), address="192.0.2.8"
        )
        viewed = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "referral.viewed")
        ).all()
    assert [(e.event.transition, e.note) for e in entries] == [
        (OPENED, None),
        ("investigate", "Suspect uses two usernames."),
    ]
    assert [(r.subject, r.actor) for r in viewed] == [
        (f"referral:{referral_id}", f"user:{cast.people['lea'].id}")
    ]


def test_the_timeline_cannot_be_rewritten(cast: Cast) -> None:
    referral_id = cast.new_referral()
    with cast.runtime.engine.connect() as connection:
        for statement in (
            "UPDATE referral_events SET to_stage = 'closed'",
            "DELETE FROM referral_events",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement))
            connection.rollback()
    assert [e.transition for e in timeline(cast, referral_id)] == [OPENED]


def test_time_in_each_stage_comes_from_the_timeline(cast: Cast, clock: ManualClock) -> None:
    referral_id = cast.new_referral()
    clock.advance(days=2)
    move(cast, referral_id, "investigate", "ana")
    clock.advance(days=10)
    move(cast, referral_id, "hand_over", "lea")
    clock.advance(days=3)
    move(cast, referral_id, "refuse_handover", "oli", {"note": "Not ours."})
    clock.advance(days=1)

    spent = time_in_stages(timeline(cast, referral_id), clock.now())

    assert [(s.stage, s.time, s.current) for s in spent] == [
        (S.ASSESSMENT, timedelta(days=2), False),
        (S.INVESTIGATION, timedelta(days=11), True),
        (S.HANDOVER_PENDING, timedelta(days=3), False),
    ]


# -- replaying ----------------------------------------------------------------------------

ATTEMPT = st.tuples(
    st.sampled_from([t.name for t in TRANSITIONS] + ["fly_away"]),
    st.sampled_from(["ana", "lea", "oli", "ces"]),
    st.fixed_dictionaries(
        {},
        optional={
            "unit_id": st.sampled_from(["1", "2", "999", "x"]),
            "unit_reference": st.sampled_from(["LC-1", ""]),
            "children_safeguarded": st.sampled_from(["0", "3", "-2"]),
            "suspects_arrested": st.sampled_from(["1", ""]),
            "close_reason": st.sampled_from([r.value for r in CloseReason] + ["why"]),
        },
    ),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(attempts=st.lists(ATTEMPT, max_size=10))
def test_replaying_a_timeline_always_gives_the_referral_its_stage(
    cast: Cast, attempts: list[tuple[str, str, dict[str, str]]]
) -> None:
    referral_id = cast.new_referral()
    for name, who, offered in attempts:
        with contextlib.suppress(MoveRefused, ReferralNotFound):
            move(cast, referral_id, name, who, offered)
        events = timeline(cast, referral_id)
        assert replay((e.transition, e.from_stage, e.to_stage) for e in events) == stage_of(
            cast, referral_id
        )


def test_replay_refuses_a_timeline_the_table_does_not_allow() -> None:
    with pytest.raises(ValueError, match="starts with"):
        replay([("investigate", "assessment", "investigation")])
    with pytest.raises(ValueError, match="does not follow"):
        replay([(OPENED, None, "assessment"), ("close", "assessment", "closed")])
    assert replay([(OPENED, None, "assessment"), ("close_early", "assessment", "closed")]) == (
        S.CLOSED
    )


def test_every_open_stage_has_a_lead_s_way_to_closure_and_closed_has_no_way_out() -> None:
    for stage in S:
        onward = [m for role in Role for m in moves_from(stage, role)]
        closing = [m for m in moves_from(stage, Role.LEAD) if m.target is S.CLOSED]
        assert (bool(onward), bool(closing)) == ((stage is not S.CLOSED),) * 2, stage


def test_several_moves_in_one_session_each_see_the_last(cast: Cast) -> None:
    """As an operation, or a script, makes them, on a referral opened in the same session (as
    accepting a tip opens it): the hand-over's unit reaches the referral at once."""
    with cast.runtime.session_factory() as session:
        lead = cast.user(session, "lea")
        now = cast.runtime.clock.now()
        opened = Referral(
            reference="RF-2026-999999",
            team_id=lead.team_id,
            stage_entered_at=now,
            created_at=now,
            created_by_id=lead.id,
            updated_at=now,
        )
        session.add(opened)
        session.commit()
        casework = cast.casework(session)
        casework.advance(lead, opened.id, "investigate", {})
        casework.advance(lead, opened.id, "hand_over", {"unit_id": str(cast.units["Luzon"])})
        casework.advance(
            cast.user(session, "oli"), opened.id, "accept_handover", {"unit_reference": "L-1"}
        )
        referral_id = opened.id
    assert stage_of(cast, referral_id) == S.WITH_UNIT
