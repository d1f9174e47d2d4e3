"""The analysts' desk: the queue, claims, and the triage decisions on a tip.

Who may work a tip: the analysts and leads of the team it was routed to; a lead also works the
tips no team covers (the unrouted / onward-referral queue). Anyone else is told the tip does not
exist (``TipNotFound``), so a tip id says nothing to people it is not for.

Each decision is one transaction, audited in it, and guarded (``UPDATE … WHERE status =
'in_triage'``): of two people deciding at once, one wins and the other is told. The first
decision stops the tip's SLA clock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    union,
    update,
)
from sqlalchemy.orm import Session

from referrals.accounts.models import Role, User
from referrals.audit.services import AuditLog
from referrals.casework.models import Referral, ReferralStage
from referrals.casework.services import opening, take_in
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.handling.services import MarkingRefused
from referrals.intake.models import Agency, Tip, TipStatus
from referrals.triage.models import SelectorRule, SelectorValue, TipLink

PRIORITY_ORDER = ("P1", "P2", "P3", "P4")
#: Link rows read for one tip's page (each is a tip and a shared value).
CORRELATED_ROWS = 2000


class TipNotFound(LookupError):
    """No such tip, or not one this person may work."""


class AlreadyDecided(RuntimeError):
    """Someone decided on the tip first (or it was claimed by someone else)."""


class NotAllowed(PermissionError):
    """The person may see the tip but not do this to it."""


class ReferralNotFound(LookupError):
    """No such referral in this person's reach."""


class DeclineReason(enum.StrEnum):
    DUPLICATE = "duplicate"
    OUT_OF_SCOPE = "out_of_scope"
    INSUFFICIENT = "insufficient_information"


#: What the partner is told for each, in words they can act on.
DECLINE_TEXT = {
    # Never "the centre already holds this": the duplicate may be another agency's report,
    # and a partner must not learn that others reported the same thing.
    DeclineReason.DUPLICATE: "declined: no further action will be taken on this tip",
    DeclineReason.OUT_OF_SCOPE: (
        "declined: outside what the centre handles (not child sexual exploitation, or not in "
        "its jurisdiction)"
    ),
    DeclineReason.INSUFFICIENT: (
        "declined: not enough information to act on; send a new tip if you learn more (an "
        "identifier, a place, a date)"
    ),
}


@dataclass(frozen=True)
class QueueFilters:
    priority: str | None = None
    region: str | None = None
    agency_id: int | None = None
    older_than_days: int | None = None
    newer_than_days: int | None = None
    has_matches: bool = False
    overdue: bool = False  # past the first-triage SLA
    assigned: str | None = None  # "unassigned", "mine", or None for all
    unrouted: bool = False  # leads: the tips no team covers
    # Tips not scored yet (processed before triage existed, until `tipline triage rescore`):
    # listed apart, oldest first, so none is lost below the scored ones.
    unscored: bool = False


@dataclass(frozen=True)
class QueueCursor:
    """Where a page ended: the last row's sort key."""

    priority: str
    sla_due_at: datetime
    tip_id: str


@dataclass(frozen=True)
class QueueRow:
    id: str
    tracking_number: str
    priority: str | None
    priority_reasons: list[str]
    sla_due_at: datetime | None
    sla_breached: bool
    received_at: datetime
    agency_name: str
    country: str | None
    region: str | None
    assignee_id: int | None
    has_matches: bool
    unindexed_selectors: int


class TriageDesk:
    """Args:
    session: the request's session; decisions commit here.
    audit: the audit log in that session.
    clock: the clock.
    """

    def __init__(self, session: Session, *, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock

    # -- reading ------------------------------------------------------------------------------

    def queue(
        self,
        person: User,
        filters: QueueFilters,
        *,
        after: QueueCursor | None = None,
        limit: int = 50,
    ) -> list[QueueRow]:
        """The open tips of the person's team (or, for a lead asking, the unrouted ones), most
        urgent first, then by when triage is due; a page at a time after ``after``. Reads no
        content: only what processing stored in clear."""
        if filters.unrouted:
            if person.role != Role.LEAD:
                return []
            team_condition: ColumnElement[bool] = Tip.team_id.is_(None)
        else:
            if person.team_id is None:
                return []
            team_condition = Tip.team_id == person.team_id
        linked = or_(
            exists().where(TipLink.tip_id == Tip.id, _live_link()),
            exists().where(TipLink.earlier_tip_id == Tip.id, _live_link()),
        )
        conditions = [team_condition, Tip.status == TipStatus.IN_TRIAGE]
        order: tuple[Any, ...]
        if filters.unscored:
            conditions.append(Tip.priority.is_(None))
            order = (Tip.received_at, Tip.id)
        else:
            conditions.append(Tip.priority.is_not(None))
            order = (Tip.priority, Tip.sla_due_at, Tip.id)
        now = self.clock.now()
        if filters.priority:
            conditions.append(Tip.priority == filters.priority)
        if filters.region:
            conditions.append(Tip.region == filters.region)
        if filters.agency_id is not None:
            conditions.append(Tip.agency_id == filters.agency_id)
        if filters.older_than_days is not None:
            conditions.append(Tip.received_at <= now - _days(filters.older_than_days))
        if filters.newer_than_days is not None:
            conditions.append(Tip.received_at > now - _days(filters.newer_than_days))
        if filters.has_matches:
            conditions.append(linked)
        if filters.overdue:
            conditions.append(Tip.sla_due_at < now)
        if filters.assigned == "unassigned":
            conditions.append(Tip.assignee_id.is_(None))
        elif filters.assigned == "mine":
            conditions.append(Tip.assignee_id == person.id)
        if after is not None and not filters.unscored:
            # A row-value comparison, which the queue index answers by starting at the cursor;
            # the same condition spelt with OR read every row before it (deep pages slowed).
            conditions.append(
                tuple_(Tip.priority, Tip.sla_due_at, Tip.id)
                > tuple_(
                    literal(after.priority, Tip.priority.type),
                    literal(after.sla_due_at, Tip.sla_due_at.type),
                    literal(after.tip_id, Tip.id.type),
                )
            )
        rows = self.session.execute(
            select(
                Tip.id,
                Tip.tracking_number,
                Tip.priority,
                Tip.priority_reasons,
                Tip.sla_due_at,
                Tip.received_at,
                Tip.country,
                Tip.region,
                Tip.assignee_id,
                Tip.unindexed_selectors,
                Agency.name.label("agency_name"),
            )
            .join(Agency, Agency.id == Tip.agency_id)
            .where(*conditions)
            .order_by(*order)
            .limit(limit)
        ).all()
        # Which of this page's tips have matches: asked for the page's rows by id (the links'
        # indexes), not as a column of the page's query, where PostgreSQL chose to read every
        # link once per request.
        matched = _with_live_links(self.session, [row.id for row in rows])
        return [
            QueueRow(
                id=row.id,
                tracking_number=row.tracking_number,
                priority=row.priority,
                priority_reasons=list(row.priority_reasons or []),
                sla_due_at=row.sla_due_at,
                sla_breached=row.sla_due_at is not None and row.sla_due_at < now,
                received_at=row.received_at,
                agency_name=row.agency_name,
                country=row.country,
                region=row.region,
                assignee_id=row.assignee_id,
                has_matches=row.id in matched,
                unindexed_selectors=row.unindexed_selectors or 0,
            )
            for row in rows
        ]

    def overdue_count(self, person: User, *, unrouted: bool = False) -> int:
        """How many of the queue's tips are past their first-triage SLA (for the banner)."""
        if unrouted and person.role != Role.LEAD:
            return 0
        if not unrouted and person.team_id is None:
            return 0
        team = Tip.team_id.is_(None) if unrouted else Tip.team_id == person.team_id
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(Tip)
                .where(
                    team,
                    Tip.status == TipStatus.IN_TRIAGE,
                    Tip.priority.is_not(None),
                    Tip.sla_due_at < self.clock.now(),
                )
            )
            or 0
        )

    def tip_for(self, person: User, tip_id: str) -> Tip:
        """The tip, if this person may work it (whatever its status now).

        Raises:
            TipNotFound: no such tip, not yet processed, or not this person's to see.
        """
        tip = self.session.get(Tip, tip_id)
        if tip is None or tip.status not in _TRIAGED_OR_OPEN or not self._reaches(person, tip):
            raise TipNotFound(tip_id)
        return tip

    def correlated(self, tip_id: str) -> list[CorrelatedTip]:
        """The tips this one shares values with (either way), with the selector types shared,
        leaving out values an administrator has excluded since."""
        later = select(TipLink.tip_id.label("other"), TipLink.selector_type).where(
            TipLink.earlier_tip_id == tip_id, _live_link()
        )
        earlier = select(TipLink.earlier_tip_id.label("other"), TipLink.selector_type).where(
            TipLink.tip_id == tip_id, _live_link()
        )
        shared: dict[str, set[str]] = {}
        # Bounded: a value allowed past the cap can link thousands; the page shows the first.
        for row in self.session.execute(later.union_all(earlier).limit(CORRELATED_ROWS)):
            shared.setdefault(row.other, set()).add(row.selector_type)
        if not shared:
            return []
        tips = self.session.execute(
            select(
                Tip.id,
                Tip.tracking_number,
                Tip.status,
                Tip.received_at,
                Tip.referral_id,
                Tip.team_id,
                Agency.name.label("agency_name"),
                Referral.reference.label("referral_reference"),
            )
            .join(Agency, Agency.id == Tip.agency_id)
            .outerjoin(Referral, Referral.id == Tip.referral_id)
            .where(Tip.id.in_(shared))
            .order_by(Tip.received_at)
        ).all()
        return [
            CorrelatedTip(
                id=row.id,
                tracking_number=row.tracking_number,
                status=row.status,
                received_at=row.received_at,
                agency_name=row.agency_name,
                team_id=row.team_id,
                referral_reference=row.referral_reference,
                shared_types=tuple(sorted(shared[row.id])),
            )
            for row in tips
        ]

    def referrals_for(self, person: User) -> Sequence[Referral]:
        """Open referrals a tip of this person's team may be merged into."""
        return self.session.scalars(
            select(Referral)
            .where(
                Referral.team_id == person.team_id,
                Referral.stage != ReferralStage.CLOSED.value,
            )
            .order_by(Referral.id.desc())
            .limit(200)
        ).all()

    # -- claims -------------------------------------------------------------------------------

    def claim(self, person: User, tip_id: str, *, address: str | None) -> None:
        """Take the tip. Of two people claiming at once, one gets it.

        Raises:
            TipNotFound, AlreadyDecided (decided, or claimed by someone else).
        """
        self._open_tip(person, tip_id)
        now = self.clock.now()
        claimed = self.session.execute(
            update(Tip)
            .where(Tip.id == tip_id, Tip.status == TipStatus.IN_TRIAGE, Tip.assignee_id.is_(None))
            .values(assignee_id=person.id, claimed_at=now)
        )
        if rows_matched(claimed) == 0:
            self.session.rollback()
            raise AlreadyDecided("someone else claimed it first, or it was decided")
        self.audit.record(
            "tip.claimed", actor=f"user:{person.id}", subject=f"tip:{tip_id}", address=address
        )
        self.session.commit()

    def release(self, person: User, tip_id: str, *, address: str | None) -> None:
        """Give the tip back to the queue: its assignee, or a lead of its team."""
        tip = self._open_tip(person, tip_id)
        if tip.assignee_id is None:
            return
        if tip.assignee_id != person.id and person.role != Role.LEAD:
            raise NotAllowed("only its assignee or a lead of its team can give it back")
        released = self.session.execute(
            update(Tip)
            .where(Tip.id == tip_id, Tip.assignee_id == tip.assignee_id)
            .values(assignee_id=None, claimed_at=None)
        )
        if rows_matched(released):
            self.audit.record(
                "tip.released",
                actor=f"user:{person.id}",
                subject=f"tip:{tip_id}",
                address=address,
                details={"assignee": f"user:{tip.assignee_id}"},
            )
        self.session.commit()

    # -- decisions ----------------------------------------------------------------------------

    def decline(
        self, person: User, tip_id: str, reason: DeclineReason, *, address: str | None
    ) -> None:
        """Decline the tip; the partner is told why (``DECLINE_TEXT``)."""
        self._open_tip(person, tip_id)
        self._decide(person, tip_id, status=TipStatus.DECLINED, reason=DECLINE_TEXT[reason])
        self.audit.record(
            "tip.declined",
            actor=f"user:{person.id}",
            subject=f"tip:{tip_id}",
            address=address,
            details={"reason": reason.value},
        )
        self.session.commit()

    def accept(self, person: User, tip_id: str, *, address: str | None) -> Referral:
        """Take the tip on in a new referral of its team."""
        tip = self._open_tip(person, tip_id)
        self._require_team(person)
        now = self.clock.now()
        referral = Referral(
            reference=f"pending-{tip_id[:12]}",
            team_id=tip.team_id if tip.team_id is not None else person.team_id,
            stage=ReferralStage.ASSESSMENT.value,
            stage_entered_at=now,
            priority=tip.priority,
            created_at=now,
            created_by_id=person.id,
            assignee_id=person.id,
            updated_at=now,
        )
        self.session.add(referral)
        self.session.flush()
        referral.reference = f"RF-{now:%Y}-{referral.id:06d}"
        self.session.add(opening(referral, person, now))
        take_in(self.session, referral.id, tip)
        self._decide(person, tip_id, status=TipStatus.ACCEPTED, referral_id=referral.id)
        self.audit.record(
            "referral.created",
            actor=f"user:{person.id}",
            subject=f"referral:{referral.id}",
            address=address,
            details={"tip": tip_id, "team_id": referral.team_id},
        )
        self.audit.record(
            "tip.accepted",
            actor=f"user:{person.id}",
            subject=f"tip:{tip_id}",
            address=address,
            details={"referral": referral.reference},
        )
        self.session.commit()
        return referral

    def merge(self, person: User, tip_id: str, reference: str, *, address: str | None) -> Referral:
        """Take the tip into an existing referral of the person's team; the referral's
        priority becomes the more urgent of the two.

        Raises:
            ReferralNotFound: no such open referral in the person's team.
        """
        tip = self._open_tip(person, tip_id)
        self._require_team(person)
        referral = self.session.scalars(
            select(Referral).where(
                Referral.reference == reference.strip().upper(),
                Referral.team_id == person.team_id,
                # A closed referral takes no more tips: open a new one.
                Referral.stage != ReferralStage.CLOSED.value,
            )
        ).first()
        if referral is None:
            raise ReferralNotFound(reference)
        self._decide(person, tip_id, status=TipStatus.ACCEPTED, referral_id=referral.id)
        held_by = referral.reference
        try:
            take_in(self.session, referral.id, tip)
        except MarkingRefused as refused:
            self.session.rollback()
            raise NotAllowed(
                f"{held_by} is handed to a unit, and {str(refused).rstrip('.')}; or accept "
                "this tip into a referral of its own"
            ) from None
        if tip.priority in PRIORITY_ORDER:
            # In one statement: two merges at once must not lose the more urgent ("P1" < "P2").
            self.session.execute(
                update(Referral)
                .where(Referral.id == referral.id)
                .values(
                    priority=case(
                        (
                            or_(Referral.priority.is_(None), Referral.priority > tip.priority),
                            tip.priority,
                        ),
                        else_=Referral.priority,
                    ),
                    updated_at=self.clock.now(),
                )
            )
            self.session.refresh(referral)
        self.audit.record(
            "tip.merged",
            actor=f"user:{person.id}",
            subject=f"tip:{tip_id}",
            address=address,
            details={"referral": referral.reference},
        )
        self.session.commit()
        return referral

    # -- helpers ------------------------------------------------------------------------------

    def _reaches(self, person: User, tip: Tip) -> bool:
        if person.role not in (Role.ANALYST, Role.LEAD):
            return False
        if tip.team_id is None:
            # The unrouted list: any lead may take it on, while it waits (a decision gives it
            # the deciding lead's team, below).
            return person.role == Role.LEAD and tip.status == TipStatus.IN_TRIAGE
        return person.team_id == tip.team_id

    def _require_team(self, person: User) -> None:
        if person.team_id is None:
            raise NotAllowed("only a member of a team can take a tip on: join a team first")

    def _open_tip(self, person: User, tip_id: str) -> Tip:
        tip = self.tip_for(person, tip_id)
        if tip.status != TipStatus.IN_TRIAGE:
            raise AlreadyDecided("it was decided already")
        return tip

    def _decide(self, person: User, tip_id: str, **values: object) -> None:
        """Decide, if the tip is still open and (unless a lead decides) not claimed by someone
        else. The tip takes the deciding person's team if it had none (an unrouted tip a
        lead takes on), so its readers are that team's from then on."""
        now = self.clock.now()
        conditions = [Tip.id == tip_id, Tip.status == TipStatus.IN_TRIAGE]
        if person.role != Role.LEAD:
            conditions.append(or_(Tip.assignee_id.is_(None), Tip.assignee_id == person.id))
        decided = self.session.execute(
            update(Tip)
            .where(*conditions)
            .values(
                updated_at=now,
                triaged_at=func.coalesce(Tip.triaged_at, now),
                team_id=func.coalesce(Tip.team_id, person.team_id),
                **values,
            )
        )
        if rows_matched(decided) == 0:
            self.session.rollback()
            raise AlreadyDecided("someone else claimed it, or decided on it first")


@dataclass(frozen=True)
class CorrelatedTip:
    id: str
    tracking_number: str
    status: str
    received_at: datetime
    agency_name: str
    team_id: int | None
    referral_reference: str | None
    shared_types: tuple[str, ...]


_TRIAGED_OR_OPEN = (TipStatus.IN_TRIAGE, TipStatus.ACCEPTED, TipStatus.DECLINED)


def _with_live_links(session: Session, tip_ids: list[str]) -> set[str]:
    """Of these tips, those sharing a value with another tip, either way, through a value
    nobody has excluded since."""
    if not tip_ids:
        return set()
    later = select(TipLink.tip_id).where(TipLink.tip_id.in_(tip_ids), _live_link())
    earlier = select(TipLink.earlier_tip_id).where(
        TipLink.earlier_tip_id.in_(tip_ids), _live_link()
    )
    return set(session.scalars(union(later, earlier)))


def _live_link() -> ColumnElement[bool]:
    """A link through a value nobody has excluded since."""
    return ~exists().where(
        SelectorValue.blind_index == TipLink.blind_index,
        SelectorValue.rule == SelectorRule.EXCLUDED.value,
    )


def _days(days: int) -> timedelta:
    return timedelta(days=days)
