"""Accounts of the people who read and move tips, their teams, enrolments and sessions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referrals.database import Base, UTCDateTime


class Role(enum.StrEnum):
    """What a person may do (see the brief's table of roles)."""

    PARTNER = "partner"  # an officer of a partner agency: their agency's tips only
    ANALYST = "analyst"  # works the triage queue of their team's jurisdiction
    LEAD = "lead"  # assigns, approves, plans operations, releases feedback
    ADMIN = "admin"  # accounts, agencies, keys, jobs; never tip content

    @property
    def is_staff(self) -> bool:
        return self is not Role.PARTNER


class Team(Base):
    """A team of analysts and leads, with the jurisdiction it works."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    # Regions of the country the team covers; empty means the whole country.
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)


class User(Base):
    """A person with an account. Partners belong to an agency; staff may belong to a team."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    role: Mapped[str] = mapped_column(String(16))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), default=None)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    # The TOTP seed, sealed with the instance's secret box (never stored in clear).
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The last time step a code was accepted for: a code is good once.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    team: Mapped[Team | None] = relationship()

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class EnrolmentToken(Base):
    """A one-time link to set a password and enrol a second factor. Only its hash is kept."""

    __tablename__ = "enrolment_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class UserSession(Base):
    """A signed-in browser. The cookie carries a random token; only its hash is kept, and
    ending the row ends the session whatever the browser still holds."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    address: Mapped[str | None] = mapped_column(String(64), default=None)
