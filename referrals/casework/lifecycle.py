"""The referral lifecycle as data: its stages, and the moves allowed between them.

One table (``TRANSITIONS``) says, for each move, the stages it starts from, the stage it leads
to, the roles that may make it and what it needs. ``ReferralCases.advance`` applies a move by
reading this table and nothing else; the referral page offers what the table allows the person
reading it, and the tests walk the same table. A new move is one line here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from referrals.accounts.models import Role
from referrals.casework.models import ReferralStage
from referrals.intake.models import PartnerStage

S = ReferralStage
OPEN_STAGES = frozenset(stage for stage in ReferralStage if stage is not S.CLOSED)

STAGE_LABELS: dict[ReferralStage, str] = {
    S.ASSESSMENT: "Assessment",
    S.INVESTIGATION: "Investigation",
    S.HANDOVER_PENDING: "Handed over, awaiting the unit",
    S.WITH_UNIT: "With a law-enforcement unit",
    S.OPERATION_PLANNED: "Operation planned",
    S.OPERATION_CONDUCTED: "Operation conducted",
    S.OUTCOME_RECORDED: "Outcome recorded",
    S.AFTERCARE: "Aftercare and prosecution",
    S.CLOSED: "Closed",
}


#: What the agencies whose tips are in a referral are told of its stage (in the status API and
#: the portal): a planned operation is still "under investigation" to them, so nothing of it
#: leaves before it is done.
PARTNER_STAGE: dict[ReferralStage, PartnerStage] = {
    S.ASSESSMENT: PartnerStage.ACCEPTED,
    S.INVESTIGATION: PartnerStage.UNDER_INVESTIGATION,
    S.HANDOVER_PENDING: PartnerStage.UNDER_INVESTIGATION,
    S.WITH_UNIT: PartnerStage.UNDER_INVESTIGATION,
    S.OPERATION_PLANNED: PartnerStage.UNDER_INVESTIGATION,
    S.OPERATION_CONDUCTED: PartnerStage.OPERATION_CONDUCTED,
    S.OUTCOME_RECORDED: PartnerStage.OPERATION_CONDUCTED,
    S.AFTERCARE: PartnerStage.OPERATION_CONDUCTED,
    S.CLOSED: PartnerStage.CLOSED,
}


#: The longest a referral should stay in each stage (its SLA); past it, the referral is shown
#: as over its time to the team and on the lead's dashboard. The hand-over's answer has its
#: own deadline (``HANDOVER_ANSWER_TIME``, the same 7 days); aftercare and prosecution take
#: as long as the children and the courts need.
STAGE_SLA: dict[ReferralStage, timedelta] = {
    S.ASSESSMENT: timedelta(days=7),
    S.INVESTIGATION: timedelta(days=60),
    S.HANDOVER_PENDING: timedelta(days=7),
    S.WITH_UNIT: timedelta(days=60),
    S.OPERATION_PLANNED: timedelta(days=30),
    S.OPERATION_CONDUCTED: timedelta(days=14),
    S.OUTCOME_RECORDED: timedelta(days=14),
}


def over_sla(stage: ReferralStage, entered_at: datetime, now: datetime) -> bool:
    """Whether a referral that entered ``stage`` at ``entered_at`` is past its time in it."""
    sla = STAGE_SLA.get(stage)
    return sla is not None and now - entered_at > sla


class Need(enum.StrEnum):
    """What a move asks of the person making it (the form field it is read from)."""

    NOTE = "note"  # free text, encrypted at rest
    UNIT = "unit_id"  # the law-enforcement unit it is handed to
    UNIT_REFERENCE = "unit_reference"  # the unit's own case reference
    OPERATION = "operation_id"  # the operation that makes the move
    CHILDREN_SAFEGUARDED = "children_safeguarded"
    SUSPECTS_ARRESTED = "suspects_arrested"
    CLOSE_REASON = "close_reason"


class CloseReason(enum.StrEnum):
    """Why a referral was closed before its end (kept in clear: the dashboard counts them)."""

    NO_OFFENCE = "no_offence"
    INSUFFICIENT_INFORMATION = "insufficient_information"
    OUTSIDE_JURISDICTION = "outside_jurisdiction"
    DUPLICATE = "duplicate"
    NO_FURTHER_ACTION = "no_further_action"


CLOSE_REASON_LABELS: dict[CloseReason, str] = {
    CloseReason.NO_OFFENCE: "No offence found",
    CloseReason.INSUFFICIENT_INFORMATION: "Not enough information to act on",
    CloseReason.OUTSIDE_JURISDICTION: "Outside our jurisdiction (referred onward)",
    CloseReason.DUPLICATE: "Duplicate of another referral",
    CloseReason.NO_FURTHER_ACTION: "No further action decided",
}


@dataclass(frozen=True)
class Transition:
    """One move of the lifecycle.

    Attributes:
        name: its name on the timeline and in the audit log.
        label: what the button says.
        done: what the timeline says once it is made.
        sources: the stages it may start from.
        target: the stage it leads to.
        roles: who may make it (an officer only on a referral handed to their unit).
        needs: what it must be given; a note is optional unless listed.
        via_operation: made only by an operation, on all its referrals at once (the referral's
            page does not offer it).
    """

    name: str
    label: str
    done: str
    sources: frozenset[ReferralStage]
    target: ReferralStage
    roles: frozenset[Role]
    needs: tuple[Need, ...] = ()
    via_operation: bool = False


def _move(
    name: str,
    label: str,
    done: str,
    sources: Iterable[ReferralStage],
    target: ReferralStage,
    roles: Iterable[Role],
    needs: tuple[Need, ...] = (),
) -> Transition:
    via_operation = Need.OPERATION in needs
    return Transition(
        name, label, done, frozenset(sources), target, frozenset(roles), needs, via_operation
    )


TEAM = (Role.ANALYST, Role.LEAD)
LEAD = (Role.LEAD,)
UNIT = (Role.OFFICER,)
LEAD_OR_UNIT = (Role.LEAD, Role.OFFICER)

#: The opening of a referral (an accepted tip): the first event of every timeline.
OPENED = "opened"

TRANSITIONS: tuple[Transition, ...] = (
    # name, button, on the timeline / from -> to / who / what it needs
    _move("investigate", "Start the investigation", "Investigation started",
          [S.ASSESSMENT], S.INVESTIGATION, TEAM),
    _move("hand_over", "Hand over to a unit", "Handed over to a unit",
          [S.INVESTIGATION], S.HANDOVER_PENDING, LEAD, (Need.UNIT,)),
    _move("accept_handover", "Accept the hand-over", "Hand-over accepted",
          [S.HANDOVER_PENDING], S.WITH_UNIT, UNIT, (Need.UNIT_REFERENCE,)),
    _move("refuse_handover", "Refuse the hand-over", "Hand-over refused",
          [S.HANDOVER_PENDING], S.INVESTIGATION, UNIT, (Need.NOTE,)),
    _move("withdraw_handover", "Take the hand-over back", "Hand-over taken back",
          [S.HANDOVER_PENDING], S.INVESTIGATION, LEAD, (Need.NOTE,)),
    # Made by an operation, on all its referrals (referrals.operations).
    _move("plan_operation", "Plan an operation", "Operation planned",
          [S.WITH_UNIT], S.OPERATION_PLANNED, LEAD, (Need.OPERATION,)),
    _move("cancel_operation", "Cancel the operation", "Operation cancelled",
          [S.OPERATION_PLANNED], S.WITH_UNIT, LEAD, (Need.OPERATION,)),
    _move("conduct_operation", "The operation was conducted", "Operation conducted",
          [S.OPERATION_PLANNED], S.OPERATION_CONDUCTED, LEAD_OR_UNIT, (Need.OPERATION,)),
    _move("record_outcome", "Record the outcome", "Outcome recorded",
          [S.OPERATION_CONDUCTED], S.OUTCOME_RECORDED, LEAD_OR_UNIT,
          (Need.OPERATION, Need.CHILDREN_SAFEGUARDED, Need.SUSPECTS_ARRESTED)),
    _move("begin_aftercare", "Begin aftercare and prosecution", "Aftercare and prosecution begun",
          [S.OUTCOME_RECORDED], S.AFTERCARE, LEAD),
    _move("close", "Close the referral", "Closed",
          [S.OUTCOME_RECORDED, S.AFTERCARE], S.CLOSED, LEAD),
    _move("close_early", "Close early", "Closed early",
          OPEN_STAGES, S.CLOSED, LEAD, (Need.CLOSE_REASON,)),
)  # fmt: skip

BY_NAME: dict[str, Transition] = {move.name: move for move in TRANSITIONS}

#: Events on the timeline that are not moves (the referral stays where it is): what left the
#: centre, and what came back.
PACKAGE_EXPORTED = "package_exported"
FEEDBACK_RECEIVED = "feedback_received"
ANNOTATIONS: dict[str, str] = {
    PACKAGE_EXPORTED: "Package exported to another centre",
    FEEDBACK_RECEIVED: "Feedback received from the centre it was sent to",
}

#: What the timeline says of each event.
DONE: dict[str, str] = {
    OPENED: "Opened",
    **{move.name: move.done for move in TRANSITIONS},
    **ANNOTATIONS,
}


def moves_from(stage: ReferralStage, role: Role) -> list[Transition]:
    """The moves a person of ``role`` may make from ``stage``, in the table's order."""
    return [move for move in TRANSITIONS if stage in move.sources and role in move.roles]


def replay(steps: Iterable[tuple[str, str | None, str]]) -> ReferralStage:
    """The stage a timeline leads to, checking each step against the table.

    Args:
        steps: (transition, from stage, to stage) of each event, oldest first.

    Raises:
        ValueError: the timeline does not start with the opening, or a step is not a move the
            table allows from where the referral then stood.
    """
    stage: ReferralStage | None = None
    for name, source, target in steps:
        if stage is None:
            if name != OPENED or source is not None or target != S.ASSESSMENT:
                raise ValueError("a timeline starts with the referral's opening")
            stage = S.ASSESSMENT
            continue
        if name in ANNOTATIONS:
            if source != stage or target != stage:
                raise ValueError(f"note {name} from {source} to {target} at {stage}")
            continue
        move = BY_NAME.get(name)
        if move is None or source != stage or stage not in move.sources or target != move.target:
            raise ValueError(f"step {name} from {source} to {target} does not follow {stage}")
        stage = move.target
    if stage is None:
        raise ValueError("an empty timeline")
    return stage
