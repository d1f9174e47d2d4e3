"""Casework: opening referrals, moving them through the lifecycle, reading their timelines.

Every move is one transaction: the guarded change of the referral's stage (``UPDATE ... WHERE
stage = <the stage it was in>``, so of two people moving it at once one wins), the event on its
timeline and the audit record. Notes are sealed to the intake key (and signed with it) before
they are stored, like tip content, and opened in memory for the people the referral is
within reach of.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crypto import CryptoError, Keyring, SignatureStatus
from referrals.accounts.models import Role, Unit, User
from referrals.audit.services import AuditLog
from referrals.casework.lifecycle import (
    BY_NAME,
    OPENED,
    PARTNER_STAGE,
    STAGE_LABELS,
    CloseReason,
    Need,
    Transition,
    moves_from,
)
from referrals.casework.models import Referral, ReferralAgency, ReferralEvent, ReferralStage
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.handling.markings import (
    stricter_code,
    stricter_tlp,
    weaker_accuracy,
    weaker_reliability,
)
from referrals.handling.models import RecipientKind
from referrals.handling.services import MarkingRefused, check_leaving, recipient
from referrals.intake.models import IntakeKey, Tip, TipStatus
from referrals.operations.models import Operation
from referrals.typed_values import whole_number

#: How long a unit has to accept or refuse a hand-over before the lead sees it overdue.
HANDOVER_ANSWER_TIME = timedelta(days=7)
MAX_NOTE_CHARS = 5000
MAX_COUNT = 10_000
ROLE_NAMES = {Role.ANALYST: "an analyst", Role.LEAD: "a team lead", Role.OFFICER: "an officer"}
_REFERENCE = re.compile(r"[\w./ -]{1,64}")
_STAFF_OF_TEAM = (Role.ANALYST, Role.LEAD)


class ReferralNotFound(LookupError):
    """No such referral within this person's reach."""


class MoveRefused(ValueError):
    """The move was not made; ``str()`` says what is missing or who may make it."""


class StageChanged(MoveRefused):
    """Someone moved the referral since the person looked at it: nothing was changed."""


@dataclass(frozen=True)
class TimelineEntry:
    """One event as people read it: ``note`` is the opened note (None when there is none),
    ``note_unreadable`` when a note is stored but this host could not open it."""

    event: ReferralEvent
    actor: str
    note: str | None
    note_unreadable: bool = False


@dataclass(frozen=True)
class StageTime:
    """How long a referral spent in a stage (several visits added up); ``current`` for the
    stage it is in now (counted up to now)."""

    stage: ReferralStage
    time: timedelta
    current: bool


def opening(referral: Referral, person: User, now: datetime) -> ReferralEvent:
    """The first event of a referral's timeline (the tip that opened it was accepted)."""
    return ReferralEvent(
        referral_id=referral.id,
        at=now,
        actor_id=person.id,
        transition=OPENED,
        from_stage=None,
        to_stage=ReferralStage.ASSESSMENT.value,
    )


def take_in(session: Session, referral_id: int, tip: Tip) -> None:
    """Record on the referral a tip accepted or merged into it: the earliest tip's time, its
    agency among those the referral's outcome is owed to (once each, whatever races), the more
    restrictive of its handling markings and the referral's, and the stage its agency is told.

    The referral's row is locked first (PostgreSQL), so a move made at the same time waits
    for this tip and tells its agency too, and a hand-over sees its marking.

    Raises:
        MarkingRefused: the referral is handed to a unit, and the tip's marking does not let
            it go there (the caller rolls back).
    """
    # Loaded (and locked) through the session: a caller that goes on with the referral
    # (accepting, merging, exporting) reads what this wrote.
    referral = session.scalars(
        select(Referral)
        .where(Referral.id == referral_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if referral.first_tip_at is None or referral.first_tip_at > tip.received_at:
        referral.first_tip_at = tip.received_at
    referral.tlp = stricter_tlp(referral.tlp, tip.tlp)
    referral.handling_code = stricter_code(referral.handling_code, tip.handling_code)
    referral.source_reliability = weaker_reliability(
        referral.source_reliability, tip.source_reliability
    )
    referral.information_accuracy = weaker_accuracy(
        referral.information_accuracy, tip.information_accuracy
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(ReferralAgency)
        .values(referral_id=referral_id, agency_id=tip.agency_id)
        .on_conflict_do_nothing()
    )
    session.execute(
        update(Tip)
        .where(Tip.id == tip.id)
        .values(partner_stage=PARTNER_STAGE[ReferralStage(referral.stage)].value)
    )
    if referral.unit_id is not None:
        # Handed to a unit: what the tip brings goes there too, so its marking must allow it.
        session.flush()
        unit = recipient(session, RecipientKind.UNIT, referral.unit_id)
        if unit is not None:
            check_leaving(session, referral_id, unit)


def time_in_stages(events: Sequence[ReferralEvent], now: datetime) -> list[StageTime]:
    """Time spent in each stage, from the timeline (oldest first), in the order first
    entered."""
    spent: dict[ReferralStage, timedelta] = {}
    for event, following in zip(events, [*events[1:], None], strict=True):
        stage = ReferralStage(event.to_stage)
        until = following.at if following is not None else now
        spent[stage] = spent.get(stage, timedelta()) + max(until - event.at, timedelta())
    current = ReferralStage(events[-1].to_stage) if events else None
    return [
        StageTime(
            stage=stage, time=time, current=stage is current and stage is not ReferralStage.CLOSED
        )
        for stage, time in spent.items()
    ]


class Casework:
    """The referrals people work on, and their moves.

    Args:
        session: the database session; each move commits.
        audit: where moves and readings are recorded, in the same transaction.
        clock: the clock.
        keyring: seals and opens notes (a keyring that holds the intake key's secret half).
    """

    def __init__(
        self, session: Session, *, audit: AuditLog, clock: Clock, keyring: Keyring | None = None
    ) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.keyring = keyring

    # -- reading ------------------------------------------------------------------------------

    def referral_for(self, person: User, referral_id: int) -> Referral:
        """The referral, if it is within the person's reach: analysts and leads of its team;
        officers of the unit it is handed to.

        Raises:
            ReferralNotFound: otherwise (whether it exists is not told).
        """
        referral = self.session.get(Referral, referral_id)
        if referral is None or not within_reach(person, referral):
            raise ReferralNotFound(referral_id)
        return referral

    def referrals(
        self, person: User, *, stage: ReferralStage | None = None, limit: int = 200
    ) -> Sequence[Referral]:
        """The referrals within the person's reach, most recently moved first."""
        query = select(Referral).order_by(Referral.stage_entered_at.desc(), Referral.id.desc())
        if person.role_enum in _STAFF_OF_TEAM and person.team_id is not None:
            query = query.where(Referral.team_id == person.team_id)
        elif person.role_enum is Role.OFFICER and person.unit_id is not None:
            query = query.where(Referral.unit_id == person.unit_id)
        else:
            return []
        if stage is not None:
            query = query.where(Referral.stage == stage.value)
        return self.session.scalars(query.limit(limit)).all()

    def moves_for(self, person: User, referral: Referral) -> list[Transition]:
        """The moves this person may make on the referral's page now (an operation makes its
        own)."""
        moves = moves_from(ReferralStage(referral.stage), person.role_enum)
        return [move for move in moves if not move.via_operation]

    def events(self, referral: Referral) -> Sequence[ReferralEvent]:
        return self.session.scalars(
            select(ReferralEvent)
            .where(ReferralEvent.referral_id == referral.id)
            .order_by(ReferralEvent.id)
        ).all()

    def timeline(
        self, person: User, referral: Referral, *, address: str | None
    ) -> list[TimelineEntry]:
        """The referral's events, oldest first, with their notes opened in memory; the reading
        is audited (``referral.viewed``) and committed before anything is returned."""
        events = self.events(referral)
        self.audit.record(
            "referral.viewed",
            actor=f"user:{person.id}",
            subject=f"referral:{referral.id}",
            address=address,
        )
        self.session.commit()
        actors = self._names({event.actor_id for event in events if event.actor_id is not None})
        intake = set(self.session.scalars(select(IntakeKey.fingerprint)))
        entries = []
        for event in events:
            note, unreadable = None, False
            if event.note is not None:
                note = self._open_note(event.note, intake)
                unreadable = note is None
            actor = actors.get(event.actor_id, "system") if event.actor_id else "system"
            entries.append(TimelineEntry(event, actor, note, unreadable))
        return entries

    # -- moving -------------------------------------------------------------------------------

    def advance(
        self,
        person: User,
        referral_id: int,
        move_name: str,
        values: Mapping[str, str],
        *,
        seen_stage: str | None = None,
        address: str | None = None,
    ) -> ReferralEvent:
        """Make the move ``move_name`` on the referral, with what the move needs read from
        ``values`` (by ``Need`` names; a ``note`` is optional unless the move needs one), and
        commit.

        Args:
            seen_stage: the stage the person saw when they chose the move; if the referral has
                moved since, nothing is changed.

        Raises:
            ReferralNotFound: not within the person's reach.
            StageChanged: it moved since the person saw it (or while this move was made).
            MoveRefused: the move does not apply to its stage, is not the person's to make, is
                made on an operation, or lacks what it needs; the message says which.
        """
        referral = self.referral_for(person, referral_id)
        event = self._move(person, referral, move_name, values, seen_stage, address, False)
        self.session.commit()
        return event

    def move_in_operation(
        self,
        person: User,
        referral: Referral,
        move_name: str,
        values: Mapping[str, str],
        *,
        address: str | None = None,
    ) -> ReferralEvent:
        """A move an operation makes on one of its referrals (planning, conducting, recording
        its outcome, cancelling), in the operation's transaction: the caller commits, so the
        operation and all its referrals move together or not at all. Who may act on the
        operation is the caller's check (its units' officers act on all its referrals).
        Raises as ``advance``."""
        return self._move(person, referral, move_name, values, None, address, True)

    def _move(
        self,
        person: User,
        referral: Referral,
        move_name: str,
        values: Mapping[str, str],
        seen_stage: str | None,
        address: str | None,
        by_operation: bool,
    ) -> ReferralEvent:
        move = BY_NAME.get(move_name)
        if move is None:
            raise MoveRefused("There is no such step for a referral.")
        stage = ReferralStage(referral.stage)
        if seen_stage is not None and seen_stage != referral.stage:
            raise StageChanged(
                f"Nothing was changed: the referral is now at “{STAGE_LABELS[stage]}”, "
                "not where it was when you opened the page. Look again and choose."
            )
        if move.via_operation and not by_operation:
            raise MoveRefused(
                f"“{move.label}” is done on the operation, for all its referrals at once: "
                "open it from Operations."
            )
        if stage not in move.sources:
            where = ", ".join(f"“{STAGE_LABELS[s]}”" for s in sorted(move.sources, key=_order))
            raise MoveRefused(
                f"“{move.label}” applies to a referral at {where}; this one is at "
                f"“{STAGE_LABELS[stage]}”."
            )
        if person.role_enum not in move.roles:
            who = " or ".join(ROLE_NAMES.get(role, role.value) for role in sorted(move.roles))
            raise MoveRefused(f"Only {who} may “{move.label.lower()}”; you are "
                              f"{ROLE_NAMES.get(person.role_enum, person.role)}.")  # fmt: skip
        given = self._read(move, values)
        if move.target is ReferralStage.HANDOVER_PENDING:
            # Handing over passes the referral's information to the unit: its markings must
            # allow that (referrals.handling).
            unit = recipient(self.session, RecipientKind.UNIT, given[Need.UNIT])
            assert unit is not None  # noqa: S101 - _read found the unit
            # Locked first: a tip merged at the same time waits, then sees the unit.
            self.session.execute(
                select(Referral.id).where(Referral.id == referral.id).with_for_update()
            )
            try:
                check_leaving(self.session, referral.id, unit)
            except MarkingRefused as refused:
                raise MoveRefused(f"Nothing was changed: {refused}") from None
        now = self.clock.now()
        changes = _effects(move, given, now, stage)
        moved = self.session.execute(
            update(Referral)
            .where(Referral.id == referral.id, Referral.stage == stage.value)
            .values(stage=move.target.value, stage_entered_at=now, updated_at=now, **changes)
        )
        if rows_matched(moved) == 0:
            self.session.rollback()
            raise StageChanged("Nothing was changed: someone moved the referral at the same time.")
        told = PARTNER_STAGE[move.target]
        if told is not PARTNER_STAGE[stage]:
            # The agencies whose tips are in it see the new coarse stage (and, through
            # ``updated_at``, find the tips among those changed since they last asked).
            self.session.execute(
                update(Tip)
                .where(Tip.referral_id == referral.id, Tip.status == TipStatus.ACCEPTED)
                .values(partner_stage=told.value, updated_at=now)
            )
        # The object in this session is read again: a caller making several moves in one
        # session (an operation) must see each one's effects.
        self.session.refresh(referral)
        note = given.pop(Need.NOTE, None)
        event = ReferralEvent(
            referral_id=referral.id,
            at=now,
            actor_id=person.id,
            transition=move.name,
            from_stage=stage.value,
            to_stage=move.target.value,
            details={need.value: value for need, value in given.items()} or None,
            note=self._seal(str(note)) if note else None,
        )
        self.session.add(event)
        self.session.flush()
        self.audit.record(
            "referral.moved",
            actor=f"user:{person.id}",
            subject=f"referral:{referral.id}",
            address=address,
            details={"move": move.name, "from": stage.value, "to": move.target.value},
        )
        return event

    def _read(self, move: Transition, values: Mapping[str, str]) -> dict[Need, Any]:
        """What the move needs, checked; every problem named at once."""
        given: dict[Need, Any] = {}
        problems: list[str] = []
        note = (values.get(Need.NOTE.value) or "").replace("\r\n", "\n").strip()
        if len(note) > MAX_NOTE_CHARS:
            problems.append(f"Write a note of at most {MAX_NOTE_CHARS:,} characters.")
        elif note:
            given[Need.NOTE] = note
        elif Need.NOTE in move.needs:
            problems.append("Write a note saying why.")
        for need in move.needs:
            if need is Need.NOTE:
                continue
            raw = (values.get(need.value) or "").strip()
            try:
                given[need] = self._value(need, raw)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise MoveRefused("Nothing was changed. " + " ".join(problems))
        return given

    def _value(self, need: Need, raw: str) -> object:
        match need:
            case Need.UNIT:
                unit_id = whole_number(raw)
                unit = self.session.get(Unit, unit_id) if unit_id is not None else None
                if unit is None:
                    raise ValueError("Choose the unit to hand it to.")
                return unit.id
            case Need.UNIT_REFERENCE:
                if not _REFERENCE.fullmatch(raw):
                    raise ValueError(
                        "Give your unit's reference for the case (up to 64 letters, digits, "
                        "spaces, and . / - _)."
                    )
                return raw
            case Need.OPERATION:
                operation_id = whole_number(raw)
                operation = (
                    self.session.get(Operation, operation_id) if operation_id is not None else None
                )
                if operation is None:
                    raise ValueError("Name the operation.")
                return operation.id
            case Need.CHILDREN_SAFEGUARDED | Need.SUSPECTS_ARRESTED:
                what = (
                    "children safeguarded"
                    if need is Need.CHILDREN_SAFEGUARDED
                    else "suspects arrested"
                )
                count = whole_number(raw, most=MAX_COUNT)
                if count is None:
                    raise ValueError(f"Give the number of {what} (0 if none).")
                return count
            case Need.CLOSE_REASON:
                try:
                    return CloseReason(raw).value
                except ValueError:
                    raise ValueError("Choose why the referral is closed.") from None
        raise ValueError(f"unknown need {need}")  # pragma: no cover - the table lists Needs

    # -- notes --------------------------------------------------------------------------------

    def _seal(self, note: str) -> bytes:
        keyring = self._keyring()
        intake = self.session.scalar(
            select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
        )
        if intake is None:
            raise MoveRefused("Nothing was changed: the centre has no intake key to seal notes.")
        try:
            armored = keyring.encrypt(note.encode("utf-8"), [intake], sign_with=intake)
        except CryptoError as exc:
            raise MoveRefused(
                f"Nothing was changed: the note could not be sealed ({exc})."
            ) from exc
        return armored.encode("ascii")

    def _open_note(self, sealed: bytes, intake: set[str]) -> str | None:
        """The note, if this host can open it and it was sealed by the centre."""
        try:
            opened = self._keyring().decrypt_and_verify(sealed)
        except CryptoError:
            return None
        if (
            opened.signature_status != SignatureStatus.VALID
            or opened.signer_fingerprint not in intake
        ):
            return None
        try:
            return opened.plaintext.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise RuntimeError("this process has no keyring to seal or open notes")
        return self.keyring

    def _names(self, ids: set[int]) -> dict[int | None, str]:
        if not ids:
            return {}
        rows = self.session.execute(select(User.id, User.email).where(User.id.in_(ids)))
        return {row.id: row.email for row in rows}


def within_reach(person: User, referral: Referral) -> bool:
    """Analysts and leads of the referral's team; officers of the unit it is handed to."""
    role = person.role_enum
    if role in _STAFF_OF_TEAM:
        return person.team_id is not None and referral.team_id == person.team_id
    if role is Role.OFFICER:
        return person.unit_id is not None and referral.unit_id == person.unit_id
    return False


def _effects(
    move: Transition, given: Mapping[Need, Any], now: datetime, stage: ReferralStage
) -> dict[str, Any]:
    """What the move records on the referral itself, besides its stage."""
    match move.name:
        case "hand_over":
            return {
                "unit_id": given[Need.UNIT],
                "unit_reference": None,
                "handover_due_at": now + HANDOVER_ANSWER_TIME,
            }
        case "accept_handover":
            return {"unit_reference": given[Need.UNIT_REFERENCE], "handover_due_at": None}
        case "refuse_handover" | "withdraw_handover":
            return {"unit_id": None, "unit_reference": None, "handover_due_at": None}
        case "plan_operation":
            return {"operation_id": given[Need.OPERATION]}
        case "cancel_operation":
            return {"operation_id": None}
        case "record_outcome":
            return {
                "children_safeguarded": given[Need.CHILDREN_SAFEGUARDED],
                "suspects_arrested": given[Need.SUSPECTS_ARRESTED],
            }
        case "close_early":
            changes = {"close_reason": given[Need.CLOSE_REASON], "handover_due_at": None}
            if stage in (ReferralStage.OPERATION_PLANNED, ReferralStage.OPERATION_CONDUCTED):
                # Out of the operation it was in: the operation's later steps pass it by.
                # (Once its outcome is recorded, it stays part of what the operation did.)
                changes["operation_id"] = None
            return changes
        case "close":
            return {"handover_due_at": None}
    return {}


_STAGE_ORDER = {stage: position for position, stage in enumerate(ReferralStage)}


def _order(stage: ReferralStage) -> int:
    return _STAGE_ORDER[stage]
