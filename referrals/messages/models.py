"""Messages between the centre and a partner agency about one of the agency's tips.

Every message is an OpenPGP message, stored as it was sealed: the centre's are signed with the
intake key and encrypted to the agency's current key, to the intake key (so staff can read the
thread) and to the portal key (so the partner portal can show it); a partner's are signed with
its pinned key and encrypted to the intake key, like its tips. Nothing of a message is stored
in clear.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class Direction(enum.StrEnum):
    TO_PARTNER = "to_partner"
    FROM_PARTNER = "from_partner"


class MessageKind(enum.StrEnum):
    INFORMATION_REQUEST = "information_request"  # an analyst asks the partner for more
    # A lead asks the agency's consent to pass on what it marked TLP:RED or AMBER+STRICT.
    CONSENT_REQUEST = "consent_request"
    REPLY = "reply"  # the partner's answer


class MessageStatus(enum.StrEnum):
    SENT = "sent"  # ours, waiting for the partner to fetch it
    RECEIVED = "received"  # theirs, waiting for a worker to check it
    ACCEPTED = "accepted"  # theirs, decrypted and signed by the agency's pinned key
    REJECTED = "rejected"  # theirs, refused; ``reason`` says why (for the partner)


class Message(Base):
    __tablename__ = "messages"
    # A partner's listing: its agency's messages after a cursor, in order.
    __table_args__ = (Index("ix_messages_agency_direction_id", "agency_id", "direction", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[str] = mapped_column(ForeignKey("tips.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    direction: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    armored: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Ours: who wrote it; theirs: None.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    # Ours: the agency key it was encrypted to. Theirs: the key that signed it, once checked.
    key_fingerprint: Mapped[str | None] = mapped_column(String(40), default=None)
    # Ours: when the partner first fetched it (the writer sees it was read).
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Theirs, written in the portal: the officer who wrote it (the portal sealed it with the
    # web-form key, which a reply may carry only then); None for a reply sent by the API.
    submitted_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class PortalKey(Base):
    """The centre's key the partner portal reads the centre's messages with.

    Partner-facing hosts hold its secret half (under the same passphrase as the web-form key)
    and no key that decrypts a tip: only the centre's messages to partners are encrypted to it,
    so such a host can show an officer the text of what the centre wrote to their agency. Its
    public key is kept here so that a staff host anywhere can encrypt to it. A retired key stays
    on record for the messages sealed to it.
    """

    __tablename__ = "portal_keys"

    fingerprint: Mapped[str] = mapped_column(String(40), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
