"""The audit log's table.

A record says who did what to which thing, when and from where; never the content itself.
Each record carries the keyed hash of the one before it, so a record changed, removed or
inserted afterwards breaks the chain (see ``referrals.audit.services``). The database refuses
UPDATE and DELETE on the table too (triggers made by migration 0003).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class AuditRecord(Base):
    """One entry of the audit log.

    Ids are given by ``AuditLog.record`` (one more than the last, under a lock) rather than by
    a sequence: a sequence skips numbers on every rollback, and then a gap could not tell a
    removed record from an abandoned transaction.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_actor_at", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(120))  # "user:12", "agency:3", "system", …
    action: Mapped[str] = mapped_column(String(64))  # dotted: "login.failed", "tip.viewed", …
    subject: Mapped[str | None] = mapped_column(String(120), index=True, default=None)
    address: Mapped[str | None] = mapped_column(String(64), default=None)  # the client's IP
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    # Unique: two records can never chain onto the same predecessor, whatever the locking.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
