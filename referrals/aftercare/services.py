"""Aftercare: leads record each safeguarded child (pseudonymously) and assign a caseworker;
caseworkers keep the care plans of their own children.

Every read of a child's record is audited (``child.viewed``), as is every change. Leads see
counts only; a caseworker sees only the children assigned to them, and nothing of any tip.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from referrals.accounts.models import Role, User
from referrals.aftercare.models import (
    CareStatus,
    Child,
    Milestone,
    MilestoneKind,
    Placement,
    Sex,
)
from referrals.audit.services import AuditLog
from referrals.casework.models import Referral, ReferralStage
from referrals.clock import Clock
from referrals.typed_values import whole_number

# No 0/O, 1/I/L: a pseudonym is read aloud and copied by hand.
PSEUDONYM_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MAX_AGE = 17
# Stages at which the children of a referral are recorded.
RECORDING_STAGES = (ReferralStage.OUTCOME_RECORDED.value, ReferralStage.AFTERCARE.value)


class ChildNotFound(LookupError):
    """No such child among those this person may see."""


class AftercareRefused(ValueError):
    """Nothing was done; ``str()`` says why."""


@dataclass(frozen=True)
class AftercareCounts:
    """What a lead sees of aftercare: counts, never a child."""

    children_in_care: int
    milestones_overdue: int


@dataclass(frozen=True)
class ReferralInCare:
    """A referral of the lead's team whose safeguarded children are (being) recorded."""

    referral: Referral
    recorded: int


class Aftercare:
    """Children's records and care plans.

    Args:
        session: the database session; each change commits.
        audit: where reads and changes are recorded, in the same transaction.
        clock: the clock.
    """

    def __init__(self, session: Session, *, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock

    # -- leads --------------------------------------------------------------------------------

    def referrals_in_care(self, lead: User) -> list[ReferralInCare]:
        """The team's referrals with children safeguarded, with how many are recorded."""
        if lead.role_enum is not Role.LEAD or lead.team_id is None:
            return []
        recorded = (
            select(func.count())
            .select_from(Child)
            .where(Child.referral_id == Referral.id)
            .correlate(Referral)
            .scalar_subquery()
        )
        rows = self.session.execute(
            select(Referral, recorded)
            .where(
                Referral.team_id == lead.team_id,
                Referral.stage.in_(RECORDING_STAGES),
                Referral.children_safeguarded > 0,
            )
            .order_by(Referral.id)
        ).all()
        return [ReferralInCare(referral, int(count or 0)) for referral, count in rows]

    def caseworkers(self) -> Sequence[User]:
        return self.session.scalars(
            select(User)
            .where(User.role == Role.CASEWORKER.value, User.disabled_at.is_(None))
            .order_by(User.email)
        ).all()

    def record_child(
        self,
        lead: User,
        referral_id: int,
        *,
        age: str,
        sex: str,
        caseworker_id: str,
        address: str | None = None,
    ) -> Child:
        """Record one child safeguarded by the referral's operation, under a pseudonym the
        system gives, assigned to a caseworker; committed.

        Raises:
            AftercareRefused: not the team's lead, the referral has no outcome (or all its
                children are recorded), or the age, sex or caseworker is not valid.
        """
        referral = self.session.get(Referral, referral_id)
        if (
            lead.role_enum is not Role.LEAD
            or referral is None
            or referral.team_id != lead.team_id
            or lead.team_id is None
        ):
            raise AftercareRefused("Only a lead of the referral's team records its children.")
        if referral.stage not in RECORDING_STAGES or not referral.children_safeguarded:
            raise AftercareRefused(
                f"{referral.reference} has no children safeguarded recorded: record the "
                "operation's outcome first."
            )
        # The referral's row is locked (PostgreSQL; SQLite writes one at a time): two leads
        # recording at once cannot pass the count together.
        self.session.execute(
            select(Referral.id).where(Referral.id == referral.id).with_for_update()
        )
        recorded = self.session.scalar(
            select(func.count()).select_from(Child).where(Child.referral_id == referral.id)
        )
        if (recorded or 0) >= referral.children_safeguarded:
            raise AftercareRefused(
                f"All {referral.children_safeguarded} children safeguarded in "
                f"{referral.reference} are recorded."
            )
        problems = []
        years = whole_number(age, most=MAX_AGE)
        if years is None:
            problems.append(f"Give the child's age in years (0 to {MAX_AGE}).")
        if sex not in set(Sex):
            problems.append("Choose the child's sex (or “not disclosed”).")
        caseworker_number = whole_number(caseworker_id)
        caseworker = (
            self.session.get(User, caseworker_number) if caseworker_number is not None else None
        )
        if (
            caseworker is None
            or caseworker.role_enum is not Role.CASEWORKER
            or caseworker.disabled_at is not None
        ):
            problems.append("Choose the caseworker who takes the child on.")
        if problems:
            raise AftercareRefused("Nothing was recorded. " + " ".join(problems))
        assert caseworker is not None and years is not None  # noqa: S101 - checked above
        now = self.clock.now()
        child = Child(
            pseudonym=self._pseudonym(),
            age=years,
            sex=sex,
            referral_id=referral.id,
            operation_id=referral.operation_id,
            team_id=referral.team_id,
            caseworker_id=caseworker.id,
            status=CareStatus.IN_CARE.value,
            created_at=now,
            created_by_id=lead.id,
            updated_at=now,
        )
        self.session.add(child)
        self.session.flush()
        self.audit.record(
            "child.recorded",
            actor=f"user:{lead.id}",
            subject=f"child:{child.id}",
            address=address,
            details={"referral": referral.id, "caseworker": f"user:{caseworker.id}"},
        )
        self.session.commit()
        return child

    def counts(self, team_id: int) -> AftercareCounts:
        """Children in care and overdue milestones, for the team's lead."""
        return counts(self.session, team_id, self.clock.now().date())

    # -- caseworkers --------------------------------------------------------------------------

    def my_children(self, caseworker: User, *, address: str | None = None) -> Sequence[Child]:
        """The children assigned to the caseworker (the listing is audited)."""
        if caseworker.role_enum is not Role.CASEWORKER:
            return []
        children = self.session.scalars(
            select(Child).where(Child.caseworker_id == caseworker.id).order_by(Child.id)
        ).all()
        self.audit.record(
            "child.listed",
            actor=f"user:{caseworker.id}",
            address=address,
            details={"children": len(children)},
        )
        self.session.commit()
        return children

    def child_for(self, caseworker: User, child_id: int, *, address: str | None = None) -> Child:
        """The child's record, for their caseworker only; the reading is audited first.

        Raises:
            ChildNotFound: not assigned to this person (whether it exists is not told).
        """
        child = self.session.get(Child, child_id)
        if (
            child is None
            or caseworker.role_enum is not Role.CASEWORKER
            or child.caseworker_id != caseworker.id
        ):
            raise ChildNotFound(child_id)
        self.audit.record(
            "child.viewed", actor=f"user:{caseworker.id}", subject=f"child:{child.id}",
            address=address,
        )  # fmt: skip
        self.session.commit()
        return child

    def milestones(self, child: Child) -> Sequence[Milestone]:
        return self.session.scalars(
            select(Milestone).where(Milestone.child_id == child.id).order_by(Milestone.id)
        ).all()

    def overdue(self, children: Sequence[Child]) -> dict[int, int]:
        """Each child's milestones past their date and not done, in one query."""
        rows = self.session.execute(
            select(Milestone.child_id, func.count())
            .where(
                Milestone.child_id.in_([child.id for child in children]),
                Milestone.done_on.is_(None),
                Milestone.due_on < self.clock.now().date(),
            )
            .group_by(Milestone.child_id)
        ).all()
        found = {child_id: int(count) for child_id, count in rows}
        return {child.id: found.get(child.id, 0) for child in children}

    def plan_milestone(
        self, caseworker: User, child_id: int, *, kind: str, due_on: str,
        address: str | None = None,
    ) -> Milestone:  # fmt: skip
        """Put a milestone on the child's care plan, due on a date; committed."""
        child = self._own(caseworker, child_id)
        kind_value = _kind(kind)
        due = self._date(due_on, "the date it is due")
        return self._add_milestone(caseworker, child, kind_value, due=due, done=None,
                                   address=address)  # fmt: skip

    def record_milestone(
        self, caseworker: User, child_id: int, *, kind: str, done_on: str,
        address: str | None = None,
    ) -> Milestone:  # fmt: skip
        """Record a milestone as done on a date: the earliest planned one of that kind not yet
        done, or a new one (a weekly visit, say); committed."""
        child = self._own(caseworker, child_id)
        kind_value = _kind(kind)
        done = self._date(done_on, "the date it was done")
        if done > self.clock.now().date():
            raise AftercareRefused(
                "Nothing was recorded. A milestone cannot be done in the future."
            )
        planned = self.session.scalars(
            select(Milestone)
            .where(
                Milestone.child_id == child.id,
                Milestone.kind == kind_value,
                Milestone.done_on.is_(None),
            )
            .order_by(Milestone.due_on, Milestone.id)
        ).first()
        if planned is None:
            return self._add_milestone(caseworker, child, kind_value, due=None, done=done,
                                       address=address)  # fmt: skip
        planned.done_on = done
        self._audit_change(caseworker, child, "milestone.done", address)
        self.session.commit()
        return planned

    def set_placement(
        self, caseworker: User, child_id: int, placement: str, *, address: str | None = None
    ) -> None:
        if placement not in set(Placement):
            self._own(caseworker, child_id)  # another's child is "not found" first
            raise AftercareRefused("Nothing was changed. Choose the kind of placement.")
        self._set(caseworker, child_id, "placement", placement, address)

    def set_status(
        self, caseworker: User, child_id: int, status: str, *, address: str | None = None
    ) -> None:
        if status not in set(CareStatus):
            self._own(caseworker, child_id)
            raise AftercareRefused("Nothing was changed. Choose the child's status.")
        self._set(caseworker, child_id, "status", status, address)

    def _set(
        self, caseworker: User, child_id: int, field: str, value: str, address: str | None
    ) -> None:
        """One field of the child's record, checked by the caller; audited as changed."""
        child = self._own(caseworker, child_id)
        self.session.execute(
            update(Child)
            .where(Child.id == child.id)
            .values({field: value, "updated_at": self.clock.now()})
        )
        self._audit_change(caseworker, child, f"child.{field}", address)
        self.session.commit()

    # -- inside -------------------------------------------------------------------------------

    def _own(self, caseworker: User, child_id: int) -> Child:
        child = self.session.get(Child, child_id)
        if (
            child is None
            or caseworker.role_enum is not Role.CASEWORKER
            or child.caseworker_id != caseworker.id
        ):
            raise ChildNotFound(child_id)
        return child

    def _date(self, raw: str, what: str) -> date:
        try:
            day = date.fromisoformat(raw.strip())
        except ValueError:
            raise AftercareRefused(f"Nothing was recorded. Give {what} (YYYY-MM-DD).") from None
        today = self.clock.now().date()
        if not today - timedelta(days=3660) <= day <= today + timedelta(days=3660):
            raise AftercareRefused(f"Nothing was recorded. Give {what} within ten years of today.")
        return day

    def _add_milestone(
        self,
        caseworker: User,
        child: Child,
        kind: str,
        *,
        due: date | None,
        done: date | None,
        address: str | None,
    ) -> Milestone:
        milestone = Milestone(
            child_id=child.id,
            kind=kind,
            due_on=due,
            done_on=done,
            recorded_by_id=caseworker.id,
            recorded_at=self.clock.now(),
        )
        self.session.add(milestone)
        self.session.flush()
        action = "milestone.done" if done else "milestone.planned"
        self._audit_change(caseworker, child, action, address)
        self.session.commit()
        return milestone

    def _audit_change(
        self, caseworker: User, child: Child, action: str, address: str | None
    ) -> None:
        # Which child and what kind of change, not what it is: leads and admins read the audit
        # log, and a care plan is for the child's caseworker alone.
        self.audit.record(
            action, actor=f"user:{caseworker.id}", subject=f"child:{child.id}", address=address
        )

    def _pseudonym(self) -> str:
        # 31**6 pseudonyms: a clash is rare, several in a row mean something is wrong.
        for _ in range(10):
            pseudonym = "C-" + "".join(secrets.choice(PSEUDONYM_ALPHABET) for _ in range(6))
            taken = self.session.scalar(select(Child.id).where(Child.pseudonym == pseudonym))
            if taken is None:
                return pseudonym
        raise RuntimeError("no free pseudonym after 10 draws")  # pragma: no cover


def _kind(kind: str) -> str:
    if kind not in set(MilestoneKind):
        raise AftercareRefused("Nothing was recorded. Choose the milestone.")
    return kind


def counts(session: Session, team_id: int, today: date) -> AftercareCounts:
    """A team's children in care and their milestones overdue on ``today``: counts only."""
    in_care = session.scalar(
        select(func.count())
        .select_from(Child)
        .where(Child.team_id == team_id, Child.status == CareStatus.IN_CARE.value)
    )
    overdue = session.scalar(
        select(func.count())
        .select_from(Milestone)
        .join(Child, Child.id == Milestone.child_id)
        .where(
            Child.team_id == team_id,
            Child.status == CareStatus.IN_CARE.value,
            Milestone.done_on.is_(None),
            Milestone.due_on < today,
        )
    )
    return AftercareCounts(int(in_care or 0), int(overdue or 0))
