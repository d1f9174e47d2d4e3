"""Checking markings whenever a referral's information leaves the centre, and the consent that
lets it.

``check_leaving`` is asked before a hand-over to a unit and before an onward package: if any
agency whose tip is in the referral marked it TLP:RED or TLP:AMBER+STRICT and has not consented
to this recipient, nothing leaves, and the refusal names each marking, its agency, and what
would allow it. ``Consents`` asks for consent through the message channel and records the
agency's answer, citing its signed reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crypto import Keyring
from referrals.accounts.models import Role, Unit, User
from referrals.audit.services import AuditLog
from referrals.casework.models import Referral
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.handling.markings import TLP_MEANING, needs_consent, stricter_tlp, tlp
from referrals.handling.models import ConsentStatus, HandlingConsent, RecipientKind
from referrals.intake.models import Agency, Tip, TipStatus
from referrals.messages.models import Direction, Message, MessageKind, MessageStatus
from referrals.messages.services import (
    MAX_TEXT_CHARS,
    Correspondence,
    MessageRefused,
    ThreadEntry,
)

UNKNOWN = "unknown"  # a tip whose marking this code does not know


class MarkingRefused(ValueError):
    """The information may not leave for this recipient; ``str()`` says which marking, whose,
    and what would allow it."""


class ConsentRefused(ValueError):
    """A consent request or answer was not recorded; ``str()`` says why."""


@dataclass(frozen=True)
class Recipient:
    """Whom a referral's information would go to."""

    kind: RecipientKind
    id: int
    name: str


@dataclass(frozen=True)
class Restriction:
    """An agency whose tips in a referral may leave only with its consent."""

    agency_id: int
    agency_name: str
    tlp: str  # the strictest marking of its tips in the referral
    tip_ids: tuple[str, ...]  # its tips whose marking needs its consent


@dataclass(frozen=True)
class ConsentEntry:
    consent: HandlingConsent
    agency_name: str
    recipient_name: str


def recipient(session: Session, kind: RecipientKind, recipient_id: int) -> Recipient | None:
    """The unit or agency ``recipient_id`` names, if there is one."""
    found: Unit | Agency | None = (
        session.get(Unit, recipient_id)
        if kind is RecipientKind.UNIT
        else session.get(Agency, recipient_id)
    )
    return Recipient(kind, found.id, found.name) if found is not None else None


def restrictions(session: Session, referral_id: int) -> list[Restriction]:
    """The agencies whose tips in the referral carry a marking that needs their consent to
    leave, with those tips, by name."""
    rows = session.execute(
        select(Tip.id, Tip.agency_id, Tip.tlp, Agency.name)
        .join(Agency, Agency.id == Tip.agency_id)
        .where(Tip.referral_id == referral_id, Tip.status == TipStatus.ACCEPTED)
        .order_by(Tip.id)
    ).all()
    names: dict[int, str] = {}
    strictest: dict[int, str | None] = {}
    restricted: dict[int, list[str]] = {}
    for row in rows:
        # A marking this code does not know counts as the strictest (``needs_consent``).
        marking = row.tlp if tlp(row.tlp) is not None else UNKNOWN
        if not needs_consent(marking):
            continue
        names[row.agency_id] = row.name
        restricted.setdefault(row.agency_id, []).append(row.id)
        held = strictest.get(row.agency_id)
        strictest[row.agency_id] = (
            UNKNOWN if UNKNOWN in (held, marking) else stricter_tlp(held, marking)
        )
    found = [
        Restriction(
            agency_id,
            names[agency_id],
            strictest[agency_id] or UNKNOWN,
            tuple(restricted[agency_id]),
        )  # fmt: skip
        for agency_id in restricted
    ]
    return sorted(found, key=lambda restriction: restriction.agency_name)


def consented_tips(session: Session, referral_id: int, agency_id: int, to: Recipient) -> set[str]:
    """The agency's tips in the referral it consented to pass on to ``to``."""
    consents = session.scalars(
        select(HandlingConsent.tip_ids).where(
            HandlingConsent.referral_id == referral_id,
            HandlingConsent.agency_id == agency_id,
            HandlingConsent.recipient_kind == to.kind.value,
            HandlingConsent.recipient_id == to.id,
            HandlingConsent.status == ConsentStatus.GRANTED.value,
        )
    )
    return {tip_id for tip_ids in consents for tip_id in (tip_ids or [])}


def check_leaving(session: Session, referral_id: int, to: Recipient) -> None:
    """Raise ``MarkingRefused`` unless each restricted tip of the referral is covered by its
    agency's consent to ``to`` (a consent names the tips it was asked for: a tip merged in
    later needs asking again). Call with the referral's row locked."""
    missing = [
        restriction
        for restriction in restrictions(session, referral_id)
        if set(restriction.tip_ids)
        - consented_tips(session, referral_id, restriction.agency_id, to)
    ]
    if not missing:
        return
    said = "; ".join(f"TLP:{r.tlp} from {r.agency_name} ({_meaning(r.tlp)})" for r in missing)
    whose = " and ".join(r.agency_name for r in missing)
    raise MarkingRefused(
        f"this referral holds information that may not go to {to.name} "
        f"without the consent of the agency that marked it: {said}. Ask {whose} for consent "
        "to share with "
        f"{to.name} (under “Handling markings” on the referral's page); once the answer is "
        "recorded as given, try again."
    )


def _meaning(marking: str) -> str:
    known = tlp(marking)
    return TLP_MEANING[known] if known is not None else "a marking this system does not know"


class Consents:
    """Args:
    session: the caller's session (the service commits).
    audit: the audit log in that session.
    clock: the clock.
    keyring: a staff host's (the request is sealed for the agency).
    """

    def __init__(
        self, session: Session, *, audit: AuditLog, clock: Clock, keyring: Keyring | None = None
    ) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.keyring = keyring

    def for_referral(self, referral: Referral) -> list[ConsentEntry]:
        """Consents asked for on the referral, oldest first."""
        found: Sequence[HandlingConsent] = self.session.scalars(
            select(HandlingConsent)
            .where(HandlingConsent.referral_id == referral.id)
            .order_by(HandlingConsent.id)
        ).all()
        entries = []
        for consent in found:
            agency = self.session.get(Agency, consent.agency_id)
            to = recipient(
                self.session, RecipientKind(consent.recipient_kind), consent.recipient_id
            )
            entries.append(
                ConsentEntry(
                    consent,
                    agency.name if agency is not None else "",
                    to.name if to is not None else "a recipient no longer registered",
                )
            )
        return entries

    def replies(self, consent: HandlingConsent) -> list[Message]:
        """The agency's accepted replies, since the request, about its tips in the referral:
        what an answer may be recorded from."""
        return list(
            self.session.scalars(
                select(Message)
                .join(Tip, Tip.id == Message.tip_id)
                .where(
                    Tip.referral_id == consent.referral_id,
                    Message.agency_id == consent.agency_id,
                    Message.direction == Direction.FROM_PARTNER.value,
                    Message.status == MessageStatus.ACCEPTED.value,
                    Message.id > consent.request_message_id,
                )
                .order_by(Message.id)
            )
        )

    def answers(self, consent: HandlingConsent) -> list[ThreadEntry]:
        """``replies``, opened in memory for the lead to read before recording an answer."""
        replies = {reply.id: reply for reply in self.replies(consent)}
        correspondence = Correspondence(
            self.session, audit=self.audit, clock=self.clock, keyring=self.keyring
        )
        opened = [
            entry
            for tip_id in sorted({reply.tip_id for reply in replies.values()})
            for entry in correspondence.thread(tip_id)
            if entry.message.id in replies
        ]
        return sorted(opened, key=lambda entry: entry.message.id)

    def request(
        self,
        person: User,
        referral: Referral,
        agency_id: int | None,
        to: Recipient | None,
        text: str,
        *,
        address: str | None,
    ) -> HandlingConsent:
        """Ask the agency, through the message channel, to consent to ``to`` receiving what
        it marked; committed.

        Raises:
            ConsentRefused: not a lead, the agency's marking needs no consent, no recipient,
                the text is too long, or the request could not be sealed.
        """
        if person.role_enum is not Role.LEAD:
            raise ConsentRefused("Only a team lead may ask an agency for consent.")
        restriction = next(
            (r for r in restrictions(self.session, referral.id) if r.agency_id == agency_id),
            None,
        )
        problems = []
        if restriction is None:
            problems.append("Choose an agency whose marking on this referral needs its consent.")
        if to is None:
            problems.append("Choose whom the information would go to.")
        text = text.replace("\r\n", "\n").strip()
        if len(text) > MAX_TEXT_CHARS:
            problems.append(f"Write at most {MAX_TEXT_CHARS:,} characters.")
        if problems:
            raise ConsentRefused("Nothing was sent. " + " ".join(problems))
        assert restriction is not None and to is not None  # noqa: S101 - checked above
        tips = self.session.scalars(
            select(Tip)
            .where(
                Tip.referral_id == referral.id,
                Tip.agency_id == restriction.agency_id,
                Tip.status == TipStatus.ACCEPTED,
            )
            .order_by(Tip.received_at, Tip.id)
        ).all()
        numbers = ", ".join(tip.tracking_number for tip in tips)
        what = "a law-enforcement unit" if to.kind is RecipientKind.UNIT else "another centre"
        wording = (
            f"We ask your consent to share the information of your tip(s) {numbers}, which you "
            f"marked TLP:{restriction.tlp}, with {to.name} ({what}), for the investigation of "
            "the case they are part of. Please answer this message saying whether you consent."
        )
        correspondence = Correspondence(
            self.session, audit=self.audit, clock=self.clock, keyring=self.keyring
        )
        try:
            message = correspondence.send(
                person,
                tips[0],
                MessageKind.CONSENT_REQUEST,
                wording + (f"\n\n{text}" if text else ""),
                extra={
                    "tips": [
                        {"id": tip.id, "tracking_number": tip.tracking_number} for tip in tips
                    ],
                    "recipient": {"kind": to.kind.value, "name": to.name},
                    "marking": restriction.tlp,
                },
                address=address,
            )
        except MessageRefused as exc:
            self.session.rollback()
            raise ConsentRefused(f"Nothing was sent. {exc}") from exc
        consent = HandlingConsent(
            referral_id=referral.id,
            agency_id=restriction.agency_id,
            recipient_kind=to.kind.value,
            recipient_id=to.id,
            status=ConsentStatus.REQUESTED.value,
            requested_at=message.created_at,
            requested_by_id=person.id,
            request_message_id=message.id,
            tip_ids=list(restriction.tip_ids),
        )
        self.session.add(consent)
        self.session.flush()
        self.audit.record(
            "consent.requested",
            actor=f"user:{person.id}",
            subject=f"referral:{referral.id}",
            address=address,
            details={
                "consent": consent.id,
                "agency": restriction.agency_id,
                "recipient": f"{to.kind.value}:{to.id}",
                "message": message.id,
            },
        )
        self.session.commit()
        return consent

    def record(
        self,
        person: User,
        referral: Referral,
        consent_id: int | None,
        *,
        granted: bool,
        reply_id: int | None,
        address: str | None,
    ) -> HandlingConsent:
        """Record the agency's answer (given or refused) from its reply; committed.

        Raises:
            ConsentRefused: not a lead, no such request on the referral, already answered, or
                the reply is not the agency's accepted answer since the request.
        """
        if person.role_enum is not Role.LEAD:
            raise ConsentRefused("Only a team lead may record an agency's answer.")
        consent = self.session.get(HandlingConsent, consent_id) if consent_id else None
        if consent is None or consent.referral_id != referral.id:
            raise ConsentRefused("Nothing was recorded: there is no such request on this referral.")
        if consent.status != ConsentStatus.REQUESTED.value:
            raise ConsentRefused("Nothing was recorded: this request was answered already.")
        if reply_id not in {reply.id for reply in self.replies(consent)}:
            raise ConsentRefused(
                "Nothing was recorded: choose the agency's reply that gives its answer (a reply "
                "of the agency, received and checked since the request)."
            )
        status = ConsentStatus.GRANTED if granted else ConsentStatus.REFUSED
        # Guarded: of two leads recording answers at once, one does.
        recorded = self.session.execute(
            update(HandlingConsent)
            .where(
                HandlingConsent.id == consent.id,
                HandlingConsent.status == ConsentStatus.REQUESTED.value,
            )
            .values(
                status=status.value,
                decided_at=self.clock.now(),
                decided_by_id=person.id,
                reply_message_id=reply_id,
            )
        )
        if rows_matched(recorded) == 0:
            self.session.rollback()
            raise ConsentRefused("Nothing was recorded: this request was answered already.")
        self.session.refresh(consent)
        self.audit.record(
            f"consent.{status.value}",
            actor=f"user:{person.id}",
            subject=f"referral:{referral.id}",
            address=address,
            details={"consent": consent.id, "agency": consent.agency_id, "reply": reply_id},
        )
        self.session.commit()
        return consent
