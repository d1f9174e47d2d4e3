"""Operations: planned by a team lead for one or more referrals held by units, approved,
conducted, and debriefed with the outcome of each referral.

An operation's steps are a table (``STEPS``) like the referral lifecycle's; each step that
concerns the referrals moves every one of them (``Casework.move_in_operation``) in the same
transaction as the operation itself: the operation and its referrals move together or not at
all, and each referral's timeline says so.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from referrals.accounts.models import Role, Team, Unit, User
from referrals.audit.services import AuditLog
from referrals.casework.lifecycle import BY_NAME, Need
from referrals.casework.models import Referral, ReferralStage
from referrals.casework.services import Casework, MoveRefused
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.operations.models import Operation, OperationPartnerUnit, OperationStatus
from referrals.typed_values import whole_number

ST = OperationStatus
MAX_REFERRALS = 50
MAX_REGION_CHARS = 100

STATUS_LABELS: dict[OperationStatus, str] = {
    ST.PLANNING: "Planning",
    ST.APPROVED: "Approved",
    ST.CONDUCTED: "Conducted",
    ST.DEBRIEFED: "Debriefed",
    ST.CANCELLED: "Cancelled",
}


class OperationNotFound(LookupError):
    """No such operation within this person's reach."""


class OperationRefused(ValueError):
    """Nothing was done; ``str()`` says why."""


@dataclass(frozen=True)
class Step:
    """One step of an operation: from which statuses, to which, by whom, and the move it makes
    on each of its referrals (if any)."""

    name: str
    label: str
    sources: frozenset[OperationStatus]
    target: OperationStatus
    roles: frozenset[Role]
    referral_move: str | None


class _Who(enum.Enum):
    LEAD = frozenset({Role.LEAD})
    LEAD_OR_UNIT = frozenset({Role.LEAD, Role.OFFICER})


STEPS: tuple[Step, ...] = (
    Step("approve", "Approve the operation", frozenset({ST.PLANNING}), ST.APPROVED,
         _Who.LEAD.value, None),
    Step("conduct", "The operation was conducted", frozenset({ST.APPROVED}), ST.CONDUCTED,
         _Who.LEAD_OR_UNIT.value, "conduct_operation"),
    Step("debrief", "Record the outcome", frozenset({ST.CONDUCTED}), ST.DEBRIEFED,
         _Who.LEAD_OR_UNIT.value, "record_outcome"),
    Step("cancel", "Cancel the operation", frozenset({ST.PLANNING, ST.APPROVED}), ST.CANCELLED,
         _Who.LEAD.value, "cancel_operation"),
)  # fmt: skip
STEP_BY_NAME = {step.name: step for step in STEPS}


@dataclass(frozen=True)
class Outcome:
    """What an operation achieved for one of its referrals, as typed (checked when used)."""

    children_safeguarded: str
    suspects_arrested: str


class Operations:
    """Operations and their steps.

    Args:
        session: the database session; each change commits.
        audit: where changes are recorded, in the same transaction.
        clock: the clock.
        casework: moves the operation's referrals (same session).
    """

    def __init__(
        self, session: Session, *, audit: AuditLog, clock: Clock, casework: Casework
    ) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.casework = casework

    # -- reading ------------------------------------------------------------------------------

    def operation_for(self, person: User, operation_id: int) -> Operation:
        """The operation, if within reach: its team's analysts and leads, the officers of its
        lead and partner units.

        Raises:
            OperationNotFound: otherwise.
        """
        operation = self.session.get(Operation, operation_id)
        if operation is None or not self._within_reach(person, operation):
            raise OperationNotFound(operation_id)
        return operation

    def board(self, person: User) -> dict[OperationStatus, list[Operation]]:
        """The operations within reach by status, soonest planned first."""
        query = select(Operation).order_by(Operation.planned_for, Operation.id).limit(500)
        role = person.role_enum
        if role in (Role.ANALYST, Role.LEAD) and person.team_id is not None:
            query = query.where(Operation.team_id == person.team_id)
        elif role is Role.OFFICER and person.unit_id is not None:
            joined = select(OperationPartnerUnit.operation_id).where(
                OperationPartnerUnit.unit_id == person.unit_id
            )
            query = query.where(
                (Operation.lead_unit_id == person.unit_id) | Operation.id.in_(joined)
            )
        else:
            return {status: [] for status in ST}
        board: dict[OperationStatus, list[Operation]] = {status: [] for status in ST}
        for operation in self.session.scalars(query):
            board[OperationStatus(operation.status)].append(operation)
        return board

    def partner_units(self, operation: Operation) -> list[int]:
        return list(
            self.session.scalars(
                select(OperationPartnerUnit.unit_id)
                .where(OperationPartnerUnit.operation_id == operation.id)
                .order_by(OperationPartnerUnit.unit_id)
            )
        )

    def referrals_of(self, operation: Operation) -> Sequence[Referral]:
        return self.session.scalars(
            select(Referral)
            .where(Referral.operation_id == operation.id)
            .order_by(Referral.id)
            # As they are now, not as this session last saw them.
            .execution_options(populate_existing=True)
        ).all()

    def candidates(self, person: User) -> Sequence[Referral]:
        """The team's referrals an operation can be planned for (accepted by a unit)."""
        if person.role_enum is not Role.LEAD or person.team_id is None:
            return []
        return self.session.scalars(
            select(Referral)
            .where(
                Referral.team_id == person.team_id,
                Referral.stage == ReferralStage.WITH_UNIT.value,
            )
            .order_by(Referral.id)
        ).all()

    def _within_reach(self, person: User, operation: Operation) -> bool:
        """Its team's analysts and leads; the officers of its lead and partner units."""
        role = person.role_enum
        if role in (Role.ANALYST, Role.LEAD):
            return person.team_id is not None and person.team_id == operation.team_id
        if role is Role.OFFICER and person.unit_id is not None:
            return person.unit_id == operation.lead_unit_id or person.unit_id in (
                self.partner_units(operation)
            )
        return False

    def steps_for(self, person: User, operation: Operation) -> list[Step]:
        status = OperationStatus(operation.status)
        return [
            step
            for step in STEPS
            if status in step.sources and person.role_enum in step.roles
            and (person.role_enum is not Role.OFFICER or person.unit_id == operation.lead_unit_id)
        ]  # fmt: skip

    # -- changing -----------------------------------------------------------------------------

    def plan(
        self,
        person: User,
        *,
        referral_ids: Sequence[int],
        lead_unit_id: int | None,
        partner_unit_ids: Sequence[int] = (),
        planned_for: str,
        region: str = "",
        address: str | None = None,
    ) -> Operation:
        """Plan an operation for the team's referrals (each with a unit, accepted), moving
        each to "operation planned"; committed.

        Raises:
            OperationRefused: not a lead of a team, no referral or one that cannot be part of
                it, no lead unit, a date out of range; every problem is named.
        """
        if person.role_enum is not Role.LEAD or person.team_id is None:
            raise OperationRefused("Only a team lead plans operations, for their team.")
        team = self.session.get(Team, person.team_id)
        assert team is not None  # noqa: S101 - a foreign key
        problems: list[str] = []
        wanted = list(dict.fromkeys(referral_ids))
        if not wanted:
            problems.append("Choose at least one referral.")
        if len(wanted) > MAX_REFERRALS:
            problems.append(f"Choose at most {MAX_REFERRALS} referrals.")
        referrals = [self.session.get(Referral, rid) for rid in wanted[:MAX_REFERRALS]]
        for rid, referral in zip(wanted, referrals, strict=False):
            if referral is None or referral.team_id != person.team_id:
                problems.append(f"Your team has no referral {rid}.")
            elif referral.stage != ReferralStage.WITH_UNIT.value:
                problems.append(
                    f"{referral.reference} is not with a unit that accepted it: only such "
                    "referrals go into an operation."
                )
        lead_unit = self.session.get(Unit, lead_unit_id) if lead_unit_id else None
        if lead_unit is None:
            problems.append("Choose the unit that leads the operation.")
        partners = sorted(set(partner_unit_ids) - {lead_unit_id or 0})
        if any(self.session.get(Unit, unit_id) is None for unit_id in partners):
            problems.append("A partner unit chosen is not registered.")
        # Its units' officers will see and act on every referral in it: each must be held by
        # one of them.
        acting = {lead_unit_id, *partners}
        for referral in referrals if lead_unit is not None else []:
            if (
                referral is not None
                and referral.stage == ReferralStage.WITH_UNIT.value
                and referral.team_id == person.team_id
                and referral.unit_id not in acting
            ):
                problems.append(
                    f"{referral.reference} is with a unit not in this operation: make its unit "
                    "the lead unit or a partner unit."
                )
        try:
            day = date.fromisoformat(planned_for.strip())
        except ValueError:
            problems.append("Give the planned date (YYYY-MM-DD).")
        else:
            today = self.clock.now().date()
            if not today - timedelta(days=366) <= day <= today + timedelta(days=731):
                problems.append("Give a planned date within a year before or two after today.")
        region = region.strip()
        if len(region) > MAX_REGION_CHARS:
            problems.append(f"Write the region in at most {MAX_REGION_CHARS} characters.")
        if problems:
            raise OperationRefused("Nothing was planned. " + " ".join(problems))
        now = self.clock.now()
        operation = Operation(
            reference="pending",
            team_id=person.team_id,
            lead_unit_id=lead_unit_id,
            planned_for=day,
            country=team.country,
            region=region or None,
            status=ST.PLANNING.value,
            created_at=now,
            created_by_id=person.id,
            updated_at=now,
        )
        self.session.add(operation)
        self.session.flush()
        operation.reference = f"OP-{now:%Y}-{operation.id:04d}"
        self.session.add_all(
            OperationPartnerUnit(operation_id=operation.id, unit_id=unit_id) for unit_id in partners
        )
        self._move_referrals(person, referrals, "plan_operation", operation, address=address)
        self.audit.record(
            "operation.planned",
            actor=f"user:{person.id}",
            subject=f"operation:{operation.id}",
            address=address,
            details={"referrals": len(referrals)},
        )
        self.session.commit()
        return operation

    def step(
        self,
        person: User,
        operation_id: int,
        name: str,
        *,
        outcomes: Mapping[int, Outcome] | None = None,
        seen_status: str | None = None,
        address: str | None = None,
    ) -> Operation:
        """Take the operation a step on (``STEPS``), moving its referrals with it; committed.
        Recording the outcome needs, for each referral still in the operation, its counts.

        Raises:
            OperationNotFound: not within reach.
            OperationRefused: the step does not apply now, is not the person's, or lacks an
                outcome; the message says which.
        """
        operation = self.operation_for(person, operation_id)
        step = STEP_BY_NAME.get(name)
        if step is None:
            raise OperationRefused("There is no such step for an operation.")
        status = OperationStatus(operation.status)
        if seen_status is not None and seen_status != operation.status:
            raise OperationRefused(
                f"Nothing was changed: the operation is now “{STATUS_LABELS[status]}”, not "
                "what it was when you opened the page. Look again and choose."
            )
        if step not in self.steps_for(person, operation):
            if status not in step.sources:
                raise OperationRefused(
                    f"“{step.label}” does not apply to an operation that is "
                    f"“{STATUS_LABELS[status]}”."
                )
            who = (
                "a team lead or an officer of its lead unit"
                if Role.OFFICER in step.roles
                else ("a team lead")
            )
            raise OperationRefused(f"Only {who} may “{step.label.lower()}”.")
        now = self.clock.now()
        referrals = [
            referral
            for referral in self.referrals_of(operation)
            if step.referral_move is None
            or ReferralStage(referral.stage) in _sources(step.referral_move)
        ]
        values: dict[str, object] = {"status": step.target.value, "updated_at": now}
        if step.target is ST.APPROVED:
            values.update(approved_at=now, approved_by_id=person.id)
        elif step.target is ST.CONDUCTED:
            values.update(conducted_at=now)
        elif step.target is ST.DEBRIEFED:
            totals = self._check_outcomes(referrals, outcomes or {})
            values.update(debriefed_at=now, **totals)
        moved = self.session.execute(
            update(Operation)
            .where(Operation.id == operation.id, Operation.status == status.value)
            .values(**values)
        )
        if rows_matched(moved) == 0:
            self.session.rollback()
            raise OperationRefused("Nothing was changed: someone changed the operation just now.")
        if step.referral_move is not None:
            self._move_referrals(
                person, referrals, step.referral_move, operation, outcomes=outcomes, address=address
            )
        self.audit.record(
            f"operation.{step.target.value}",
            actor=f"user:{person.id}",
            subject=f"operation:{operation.id}",
            address=address,
            details={"referrals": len(referrals)},
        )
        self.session.commit()
        self.session.refresh(operation)
        return operation

    def _check_outcomes(
        self, referrals: Sequence[Referral], outcomes: Mapping[int, Outcome]
    ) -> dict[str, int]:
        problems: list[str] = []
        children = suspects = 0
        for referral in referrals:
            outcome = outcomes.get(referral.id)
            counts = (
                (outcome.children_safeguarded.strip(), outcome.suspects_arrested.strip())
                if outcome
                else ("", "")
            )
            numbers = [whole_number(count, most=10_000) for count in counts]
            if None in numbers:
                problems.append(
                    f"Give {referral.reference}'s children safeguarded and suspects arrested "
                    "(0 if none)."
                )
                continue
            children += numbers[0] or 0
            suspects += numbers[1] or 0
        if problems:
            raise OperationRefused("Nothing was recorded. " + " ".join(problems))
        return {"children_safeguarded": children, "suspects_arrested": suspects}

    def _move_referrals(
        self,
        person: User,
        referrals: Sequence[Referral | None],
        move: str,
        operation: Operation,
        *,
        outcomes: Mapping[int, Outcome] | None = None,
        address: str | None,
    ) -> None:
        for referral in referrals:
            if referral is None:
                continue
            values = {Need.OPERATION.value: str(operation.id)}
            if outcomes is not None and referral.id in outcomes:
                values[Need.CHILDREN_SAFEGUARDED.value] = outcomes[referral.id].children_safeguarded
                values[Need.SUSPECTS_ARRESTED.value] = outcomes[referral.id].suspects_arrested
            try:
                self.casework.move_in_operation(person, referral, move, values, address=address)
            except MoveRefused as refused:
                self.session.rollback()
                raise OperationRefused(f"{referral.reference}: {refused}") from None


def _sources(move: str) -> frozenset[ReferralStage]:
    return BY_NAME[move].sources
