"""Onward packages, the other centres they are delivered to, and the feedback coming back.

A package is a ``tipline.tip/1`` document built from a referral's tips, signed with the intake
key and encrypted to the recipient agency's key (and to the intake key, so the centre can show
what it sent): stored only as that OpenPGP message. A recipient that runs this system is an
agency with an endpoint (its API's address and the token it issued to this centre, sealed at
rest): packages are delivered there as ordinary tips, and its feedback is fetched from there.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


def token_context(agency_id: int) -> bytes:
    """What a correspondent's sealed token is bound to: it opens for that agency only."""
    return f"correspondent-token:agency:{agency_id}".encode()


class Correspondent(Base):
    """Where another centre running this system takes this centre's tips (an agency here)."""

    __tablename__ = "correspondents"

    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), primary_key=True)
    # "https://tipline.centre.example": its partner API is under /api/v1.
    base_url: Mapped[str] = mapped_column(String(300))
    # The bearer token it issued to this centre, sealed with the instance's secret box.
    token_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The last feedback id fetched from it (its cursor).
    feedback_cursor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The last fault talking to it, for operators (never a token or content).
    fault: Mapped[str | None] = mapped_column(String(500), default=None)


class PackageStatus(enum.StrEnum):
    SEALED = "sealed"  # made; to be delivered by hand (the recipient has no endpoint)
    SENDING = "sending"  # queued for delivery to the recipient's endpoint
    DELIVERED = "delivered"  # the recipient gave a receipt
    REFUSED = "refused"  # the recipient refused it (``fault`` says why): will not be retried
    FAILED = "failed"  # delivery failed at every attempt (``fault``): operators look


class OnwardPackage(Base):
    __tablename__ = "onward_packages"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    # "RF-2026-000042/1": the document's external_reference, the referral's reference and the
    # package's number within it.
    external_reference: Mapped[str] = mapped_column(String(40), unique=True)
    # Sent as the Idempotency-Key: a repeated delivery is answered with the first receipt.
    idempotency_key: Mapped[str] = mapped_column(String(64))
    armored: Mapped[bytes] = mapped_column(LargeBinary)
    tip_count: Mapped[int] = mapped_column(Integer)
    tlp: Mapped[str | None] = mapped_column(String(12), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    fault: Mapped[str | None] = mapped_column(Text, default=None)
    # The recipient's receipt, and the status of the tip there as last fetched.
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    remote_tip_id: Mapped[str | None] = mapped_column(String(64), default=None)
    remote_tracking_number: Mapped[str | None] = mapped_column(String(40), default=None)
    remote_status: Mapped[str | None] = mapped_column(String(24), default=None)
    remote_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ReceivedFeedback(Base):
    """Feedback a correspondent released to this centre about a package it received: stored
    as fetched (the OpenPGP message its centre sealed), once its signature was checked."""

    __tablename__ = "received_feedback"
    __table_args__ = (
        UniqueConstraint("agency_id", "remote_id", name="uq_received_feedback_remote"),
        Index("ix_received_feedback_package", "package_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    remote_id: Mapped[int] = mapped_column(Integer)
    # The package it is about (None: about none of ours that we know; kept for operators).
    package_id: Mapped[int | None] = mapped_column(ForeignKey("onward_packages.id"), default=None)
    armored: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Whether it was signed by the correspondent's pinned key (shown only if so) and, if not,
    # why (for operators).
    verified: Mapped[bool] = mapped_column(default=False)
    fault: Mapped[str | None] = mapped_column(String(500), default=None)
