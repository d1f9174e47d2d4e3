"""Intake: partner agencies, their keys and tokens, the tips they send and the keys sent to.

What is stored in clear is only what triage needs (urgency, country and region, offence
types, counts, TLP, timestamps) and keyed hashes of selectors. The tip itself is kept only as
the partner's OpenPGP ciphertext.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referrals.database import Base, UTCDateTime


class IntakeKey(Base):
    """An OpenPGP key pair of the centre that partners encrypt tips to.

    The database, shared by every host, says which key is current; each host's GnuPG home holds
    the secret key itself. A retired key stays on record so older tips can still be read.
    """

    __tablename__ = "intake_keys"

    fingerprint: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class WebFormKey(Base):
    """The centre's sign-only key that signs tips officers write in the web form.

    A table of its own rather than a kind of intake key: nothing is ever encrypted to it, it
    lives on different hosts (partner-facing ones hold its secret half and not the intake
    key's) and every query of intake keys would otherwise have to tell the two apart. Its
    public key is kept here so that a worker on any host can verify what it signed. A retired
    key stays on record for the tips it signed.
    """

    __tablename__ = "web_form_keys"

    fingerprint: Mapped[str] = mapped_column(String(40), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Agency(Base):
    """A partner agency abroad: a police unit, a hotline, an NGO."""

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    keys: Mapped[list[AgencyKey]] = relationship(
        back_populates="agency", order_by="AgencyKey.pinned_at"
    )

    @property
    def current_key(self) -> AgencyKey | None:
        return next((key for key in reversed(self.keys) if key.retired_at is None), None)


class AgencyKey(Base):
    """An OpenPGP public key pinned to an agency by its full fingerprint.

    The key itself is kept too (``public_key``, armored): each host imports it into its own
    keyring when it first verifies a tip that key may have signed, so an agency added or
    re-keyed on one host is known on all. Rotating a key retires the old one rather than
    deleting it: the tips it signed stay attributable.
    """

    __tablename__ = "agency_keys"

    fingerprint: Mapped[str] = mapped_column(String(40), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    # None only for a key pinned before keys were stored (until `tipline init` fills it in).
    public_key: Mapped[str | None] = mapped_column(Text, default=None)
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    agency: Mapped[Agency] = relationship(back_populates="keys")


class ApiToken(Base):
    """A bearer token an agency's systems submit with. Only its SHA-256 is stored: a token
    is 256 random bits, so a plain hash is as good as a slow one and costs nothing per call."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class TipStatus(enum.StrEnum):
    """Where a tip stands. ``received`` and ``processing`` are unfinished; ``in_triage`` and
    ``rejected`` are final. ``quarantined`` is where a tip waits for an operator after its
    processing failed on our side (GnuPG, the database) at every one of its attempts; a
    partner sees it as ``held`` (:attr:`Tip.partner_status`)."""

    RECEIVED = "received"
    PROCESSING = "processing"
    IN_TRIAGE = "in_triage"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    # Decided in triage (final for intake): taken on in a referral, or declined with a reason
    # the partner sees (a duplicate, out of scope, not enough to act on).
    ACCEPTED = "accepted"
    DECLINED = "declined"


class PartnerStage(enum.StrEnum):
    """How far the referral an accepted tip went into has come, as the sending agency is told
    it: coarse on purpose (nothing of who works it, where, or when an operation is planned)."""

    ACCEPTED = "accepted"
    UNDER_INVESTIGATION = "under_investigation"
    OPERATION_CONDUCTED = "operation_conducted"
    CLOSED = "closed"


#: The partner cannot act on a fault of ours: they are told the tip is held, and not to resend.
HELD = "held"
HELD_NOTE = (
    "held by the centre after a fault on its side; it will be processed once the fault is "
    "fixed: do not send it again"
)

# 64-bit sizes; SQLite's INTEGER already is, and keeps its declared type (a table rebuild to
# rename it would fail on a populated database with foreign keys).
Size = BigInteger().with_variant(Integer(), "sqlite")


class Tip(Base):
    """A tip from a partner agency: its receipt, its status, and what triage needs in clear."""

    __tablename__ = "tips"
    __table_args__ = (
        # A retry with the same Idempotency-Key finds the first tip instead of making another.
        UniqueConstraint("agency_id", "idempotency_key_hash", name="uq_tips_agency_idempotency"),
        Index("ix_tips_agency_updated", "agency_id", "updated_at", "id"),
        Index("ix_tips_status_updated", "status", "updated_at"),
        # The analysts' queue: a team's open tips by priority, then by when triage is due.
        Index("ix_tips_queue", "team_id", "status", "priority", "sla_due_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a random UUID
    tracking_number: Mapped[str] = mapped_column(String(24), unique=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    idempotency_key_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default=TipStatus.RECEIVED)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ciphertext_sha256: Mapped[str] = mapped_column(String(64))
    ciphertext_bytes: Mapped[int] = mapped_column(Size)

    # Set for a tip a partner's officer wrote in the web form: the server encrypted it and
    # signed it with the web-form key (the intake key before that existed), which processing
    # accepts in place of the agency's key.
    submitted_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)

    # Filled in by processing.
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    signed_by: Mapped[str | None] = mapped_column(String(40), default=None)
    schema: Mapped[str | None] = mapped_column(String(32), default=None)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    imminent_danger: Mapped[bool | None] = mapped_column(Boolean, default=None)
    ongoing_abuse: Mapped[bool | None] = mapped_column(Boolean, default=None)
    live_streaming: Mapped[bool | None] = mapped_column(Boolean, default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    region: Mapped[str | None] = mapped_column(String(200), default=None)
    offence_types: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    victim_count: Mapped[int | None] = mapped_column(Integer, default=None)
    youngest_victim_age: Mapped[int | None] = mapped_column(Integer, default=None)
    tlp: Mapped[str | None] = mapped_column(String(12), default=None)
    handling_code: Mapped[str | None] = mapped_column(String(2), default=None)
    # The partner's grading of its source (A, B, C, X) and of the information (1 to 4).
    source_reliability: Mapped[str | None] = mapped_column(String(1), default=None)
    information_accuracy: Mapped[int | None] = mapped_column(Integer, default=None)
    # Selectors that could not be normalised (a malformed phone number, say) are not indexed;
    # the tip is kept all the same, and analysts see how many were left out.
    unindexed_selectors: Mapped[int | None] = mapped_column(Integer, default=None)
    # Where each of those is in the document and why it was left out (never its value), for
    # the partner's status answer: [{"pointer": "/selectors/3/value", "message": "..."}].
    selector_warnings: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, default=None)
    # "country", "region" or "city": how closely the document places it (never the place).
    location_precision: Mapped[str | None] = mapped_column(String(8), default=None)

    # Set by triage (referrals.triage) when the tip is processed; never shown to the partner.
    # P1 (most urgent) to P4 (informational), with the score, its reasons and the version of
    # the rules that gave them.
    priority: Mapped[str | None] = mapped_column(String(2), default=None)
    priority_score: Mapped[int | None] = mapped_column(Integer, default=None)
    priority_reasons: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    rules_version: Mapped[int | None] = mapped_column(Integer, default=None)
    # When its first triage is due (the priority's SLA), and when the SLA was found broken.
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    sla_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The first triage decision (accept, merge, reject, ask for information): stops the clock.
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The team whose jurisdiction covers the tip's location; None: no team covers it (the
    # unrouted / onward referral queue).
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None)
    # The analyst who claimed it.
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The referral an accepted tip was taken into (or merged into), and how far that referral
    # has come as the partner is told it (kept by casework as the referral moves).
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referrals.id"), default=None, index=True
    )
    partner_stage: Mapped[str | None] = mapped_column(String(24), default=None)

    # How many times processing was started (each claim counts, also one whose worker was
    # killed); at the cap the tip is quarantined instead of processed again.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The last fault on our side, for operators: an exception type and a message that never
    # carries content. Never shown to the partner.
    fault: Mapped[str | None] = mapped_column(String(500), default=None)
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    agency: Mapped[Agency] = relationship()
    ciphertext: Mapped[TipCiphertext] = relationship(
        back_populates="tip", cascade="all, delete-orphan"
    )

    @property
    def partner_status(self) -> str:
        """The status as the sending agency is told it: an accepted tip's follows its
        referral's coarse stage."""
        if self.status == TipStatus.QUARANTINED:
            return HELD
        if self.status == TipStatus.ACCEPTED and self.partner_stage is not None:
            return self.partner_stage
        return self.status

    @property
    def partner_reason(self) -> str | None:
        """Why the tip is where it is, for the sending agency (never our fault's details)."""
        return HELD_NOTE if self.status == TipStatus.QUARANTINED else self.reason

    def receipt(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tracking_number": self.tracking_number,
            "status": self.partner_status,
        }


class TipCiphertext(Base):
    """The partner's armored OpenPGP message, exactly as received. Kept apart from ``tips`` so
    that listing and triage queries never drag megabytes of ciphertext along."""

    __tablename__ = "tip_ciphertexts"

    tip_id: Mapped[str] = mapped_column(ForeignKey("tips.id"), primary_key=True)
    armored: Mapped[bytes] = mapped_column(LargeBinary)

    tip: Mapped[Tip] = relationship(back_populates="ciphertext")


class TipSelector(Base):
    """The blind index of one selector of a tip: correlation without the identifier."""

    __tablename__ = "tip_selectors"
    __table_args__ = (UniqueConstraint("tip_id", "blind_index", name="uq_tip_selectors_tip"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[str] = mapped_column(ForeignKey("tips.id"), index=True)
    selector_type: Mapped[str] = mapped_column(String(20))
    blind_index: Mapped[str] = mapped_column(String(64), index=True)


class Attachment(Base):
    """An encrypted file sent with a tip, stored as received on disk (never decrypted here)."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tip_id: Mapped[str] = mapped_column(ForeignKey("tips.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Size)
    # Unique and indexed: housekeeping looks files on disk up by name.
    storage_name: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
