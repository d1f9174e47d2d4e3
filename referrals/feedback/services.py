"""Releasing feedback on a referral to the agencies whose tips are in it, and their reading it.

A team lead writes it, sees exactly what will leave (``draft``: the agency, its own tips the
feedback is about, the coarse stage it is already told, the outcome's counts if the lead adds
them, the text), and releases that (``release``): sealed as the centre's messages are
(``Correspondence.seal_for``), stored, audited. If the referral changed between the two, nothing
leaves and the lead is shown the new version. The agency fetches it at
``GET /api/v1/feedback`` or reads it in its portal; the first fetch is recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crypto import Keyring
from referrals.accounts.models import Role, User
from referrals.audit.services import AuditLog
from referrals.casework.lifecycle import PARTNER_STAGE
from referrals.casework.models import Referral, ReferralAgency, ReferralStage
from referrals.casework.services import ReferralNotFound, within_reach
from referrals.clock import Clock
from referrals.feedback.models import Feedback
from referrals.intake.models import Agency, PartnerStage, Tip, TipStatus
from referrals.messages.services import Correspondence, MessageRefused

SCHEMA = "tipline.feedback/1"
MAX_TEXT_CHARS = 5000

#: A first wording for the lead to change, by what the agency is already told.
SUGGESTIONS: dict[PartnerStage, str] = {
    PartnerStage.ACCEPTED: "Your tip was accepted and is being assessed by our team.",
    PartnerStage.UNDER_INVESTIGATION: "The case your tip is part of is under investigation.",
    PartnerStage.OPERATION_CONDUCTED: (
        "An operation was conducted on the case your tip is part of."
    ),
    PartnerStage.CLOSED: "Our work on the case your tip was part of has ended.",
}
AFTERCARE_SUGGESTION = " Aftercare of the children and prosecution are under way."


class FeedbackRefused(ValueError):
    """Nothing was released; ``str()`` says why."""


@dataclass(frozen=True)
class Release:
    """Exactly what would leave for one agency, as the lead is shown it before releasing."""

    referral_id: int
    agency_id: int
    agency_name: str
    tips: tuple[tuple[str, str], ...]  # (id, tracking number) of the agency's own tips in it
    stage: str  # the coarse stage the agency is told (``PartnerStage``)
    outcome: dict[str, int] | None  # the counts, if the lead adds them
    text: str

    def document(self, sent_at: datetime) -> dict[str, Any]:
        """The JSON document sealed for the agency."""
        return {
            "schema": SCHEMA,
            "sent_at": sent_at.isoformat(),
            "tips": [{"id": tip_id, "tracking_number": number} for tip_id, number in self.tips],
            "stage": self.stage,
            "outcome": self.outcome,
            "text": self.text,
        }

    @property
    def version(self) -> str:
        """A digest of everything that would leave: the release must match what was shown."""
        shown = self.document(datetime.min) | {"agency_id": self.agency_id}
        return hashlib.sha256(json.dumps(shown, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Released:
    """Feedback as the lead or the agency reads it: ``document`` is what was sealed, None
    where this host cannot open it."""

    feedback: Feedback
    agency_name: str
    document: dict[str, Any] | None


class FeedbackDesk:
    """Args:
    session: the caller's session (the service commits).
    audit: the audit log in that session.
    clock: the clock.
    keyring: a staff host's (to seal and read) or the partner face's (to read in the portal).
    """

    def __init__(
        self, session: Session, *, audit: AuditLog, clock: Clock, keyring: Keyring | None = None
    ) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.keyring = keyring

    # -- the lead writes --------------------------------------------------------------------

    def recipients(self, referral: Referral) -> list[tuple[int, str]]:
        """The agencies whose tips are in the referral (id, name), by name."""
        rows = self.session.execute(
            select(Agency.id, Agency.name)
            .join(ReferralAgency, ReferralAgency.agency_id == Agency.id)
            .where(ReferralAgency.referral_id == referral.id)
            .order_by(Agency.name)
        )
        return [(row.id, row.name) for row in rows]

    def suggestion(self, referral: Referral) -> str:
        """A first wording, from what the agency is already told of the referral."""
        stage = ReferralStage(referral.stage)
        text = SUGGESTIONS[PARTNER_STAGE[stage]]
        return text + (AFTERCARE_SUGGESTION if stage is ReferralStage.AFTERCARE else "")

    def draft(
        self,
        person: User,
        referral_id: int,
        agency_id: int | None,
        text: str,
        *,
        include_outcome: bool,
    ) -> Release:
        """What would leave, checked (nothing is stored).

        Raises:
            ReferralNotFound: not within the person's reach.
            FeedbackRefused: not a lead of its team, an agency with no tip in it, no text or
                too long, counts asked for but none recorded; every problem named at once.
        """
        referral = self._referral(person, referral_id)
        problems = []
        agencies = dict(self.recipients(referral))
        if agency_id not in agencies:
            problems.append("Choose an agency whose tips are in this referral.")
        text = text.replace("\r\n", "\n").strip()
        if not text:
            problems.append("Write what the agency is to be told.")
        elif len(text) > MAX_TEXT_CHARS:
            problems.append(f"Write at most {MAX_TEXT_CHARS:,} characters.")
        recorded = referral.children_safeguarded is not None
        if include_outcome and not recorded:
            problems.append("No outcome is recorded on this referral yet: there are no counts.")
        if problems:
            raise FeedbackRefused("Nothing was released. " + " ".join(problems))
        assert agency_id is not None  # noqa: S101 - checked above
        tips = self.session.execute(
            select(Tip.id, Tip.tracking_number)
            .where(
                Tip.referral_id == referral.id,
                Tip.agency_id == agency_id,
                Tip.status == TipStatus.ACCEPTED,
            )
            .order_by(Tip.received_at, Tip.id)
        ).all()
        outcome = None
        if include_outcome:
            outcome = {
                "children_safeguarded": int(referral.children_safeguarded or 0),
                "suspects_arrested": int(referral.suspects_arrested or 0),
            }
        return Release(
            referral_id=referral.id,
            agency_id=agency_id,
            agency_name=agencies[agency_id],
            tips=tuple((row.id, row.tracking_number) for row in tips),
            stage=PARTNER_STAGE[ReferralStage(referral.stage)].value,
            outcome=outcome,
            text=text,
        )

    def release(
        self,
        person: User,
        referral_id: int,
        agency_id: int | None,
        text: str,
        *,
        include_outcome: bool,
        version: str,
        address: str | None,
    ) -> Feedback:
        """Seal and store what the lead was shown (``version``: its ``Release.version``),
        audited; committed.

        Raises:
            ReferralNotFound, FeedbackRefused: as ``draft``; also when what would leave now is
                not what was shown (the referral moved, the agency's tips changed), or it could
                not be sealed.
        """
        shown = self.draft(person, referral_id, agency_id, text, include_outcome=include_outcome)
        if shown.version != version:
            raise FeedbackRefused(
                "Nothing was released: the referral changed since you looked at what would "
                "leave. Look at it again below, then release it."
            )
        now = self.clock.now()
        correspondence = Correspondence(
            self.session, audit=self.audit, clock=self.clock, keyring=self.keyring
        )
        try:
            armored, key_fingerprint = correspondence.seal_for(shown.agency_id, shown.document(now))
        except MessageRefused as exc:
            raise FeedbackRefused(f"Nothing was released. {exc}") from exc
        feedback = Feedback(
            referral_id=shown.referral_id,
            agency_id=shown.agency_id,
            tip_ids=[tip_id for tip_id, _ in shown.tips],
            armored=armored,
            released_at=now,
            released_by_id=person.id,
            key_fingerprint=key_fingerprint,
        )
        self.session.add(feedback)
        self.session.flush()
        self.audit.record(
            "feedback.released",
            actor=f"user:{person.id}",
            subject=f"referral:{shown.referral_id}",
            address=address,
            details={
                "feedback": feedback.id,
                "agency": shown.agency_id,
                "outcome": shown.outcome is not None,
            },
        )
        self.session.commit()
        return feedback

    def released(self, referral: Referral) -> list[Released]:
        """The feedback released on the referral, oldest first, opened in memory where this
        host can (the page showing it is audited as the referral's)."""
        rows = self.session.execute(
            select(Feedback, Agency.name)
            .join(Agency, Agency.id == Feedback.agency_id)
            .where(Feedback.referral_id == referral.id)
            .order_by(Feedback.id)
        ).all()
        return [Released(row.Feedback, row.name, self._open(row.Feedback)) for row in rows]

    # -- the agency reads -------------------------------------------------------------------

    def for_agency(
        self, agency_id: int, *, after_id: int = 0, since: datetime | None = None, limit: int = 50
    ) -> tuple[list[Feedback], bool]:
        """The agency's feedback after ``after_id`` (and released ``since``), oldest first, at
        most ``limit``, and whether more follow; the first fetch of each item returned is
        recorded (committed)."""
        conditions = [Feedback.agency_id == agency_id, Feedback.id > after_id]
        if since is not None:
            conditions.append(Feedback.released_at >= since)
        found = list(
            self.session.scalars(
                select(Feedback).where(*conditions).order_by(Feedback.id).limit(limit + 1)
            )
        )
        page = found[:limit]
        self._fetched(page, actor=f"agency:{agency_id}", action="feedback.fetched")
        return page, len(found) > limit

    def for_portal(
        self,
        agency_id: int,
        *,
        reader: User,
        address: str | None,
        tip_id: str | None = None,
        limit: int = 100,
    ) -> list[Released]:
        """The agency's feedback (about ``tip_id`` if given), newest first, opened in memory
        with the portal key; reading it is audited and counts as its fetch (committed)."""
        found: Sequence[Feedback] = self.session.scalars(
            select(Feedback)
            .where(Feedback.agency_id == agency_id)
            .order_by(Feedback.id.desc())
            .limit(limit)
        ).all()
        if tip_id is not None:
            found = [feedback for feedback in found if tip_id in (feedback.tip_ids or [])]
        agency = self.session.get(Agency, agency_id)
        name = agency.name if agency is not None else ""
        entries = [Released(feedback, name, self._open(feedback)) for feedback in found]
        shown = [entry.feedback for entry in entries if entry.document is not None]
        self._fetched(shown, actor=f"user:{reader.id}", action="feedback.read", address=address)
        return entries

    # -- helpers ----------------------------------------------------------------------------

    def _referral(self, person: User, referral_id: int) -> Referral:
        referral = self.session.get(Referral, referral_id)
        if referral is None or not within_reach(person, referral):
            raise ReferralNotFound(referral_id)
        if person.role_enum is not Role.LEAD:
            raise FeedbackRefused("Only a team lead may release feedback to partners.")
        return referral

    def _open(self, feedback: Feedback) -> dict[str, Any] | None:
        correspondence = Correspondence(
            self.session, audit=self.audit, clock=self.clock, keyring=self.keyring
        )
        plaintext = correspondence.open_ours(feedback.armored)
        if plaintext is None:
            return None
        try:
            document = json.loads(plaintext)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def _fetched(
        self,
        found: Sequence[Feedback],
        *,
        actor: str,
        action: str,
        address: str | None = None,
    ) -> None:
        unread = sorted(feedback.id for feedback in found if feedback.fetched_at is None)
        if not unread:
            return
        self.session.execute(
            update(Feedback)
            .where(Feedback.id.in_(unread), Feedback.fetched_at.is_(None))
            .values(fetched_at=self.clock.now())
        )
        self.audit.record(
            action,
            actor=actor,
            address=address,
            details={"feedback": len(unread), "first": unread[0], "last": unread[-1]},
        )
        self.session.commit()


_STAGE = re.compile(r"[a-z_]{1,24}")
MAX_FEEDBACK_BYTES = 64 * 1024


def parse_feedback(raw: bytes) -> dict[str, Any] | None:
    """A ``tipline.feedback/1`` document as another centre sealed it, if it is one (the shape
    this module writes: a text, a stage, counts or none, the tips it is about); else None. What
    another system sends is read only through this."""
    if len(raw) > MAX_FEEDBACK_BYTES:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        return None
    text, stage, outcome, tips = (
        document.get("text"),
        document.get("stage"),
        document.get("outcome"),
        document.get("tips", []),
    )
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS * 2:
        return None
    if not isinstance(stage, str) or not _STAGE.fullmatch(stage):
        return None
    if outcome is not None and not (
        isinstance(outcome, dict)
        and all(
            type(outcome.get(count)) is int and 0 <= outcome[count] <= 1_000_000
            for count in ("children_safeguarded", "suspects_arrested")
        )
    ):
        return None
    if not isinstance(tips, list) or not all(
        isinstance(tip, dict) and isinstance(tip.get("id"), str) for tip in tips
    ):
        return None
    return document
