"""Accounts of the people who read and move tips, their teams, enrolments and sessions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referrals.database import Base, UTCDateTime


class Role(enum.StrEnum):
    """What a person may do (see the brief's table of roles)."""

    PARTNER = "partner"  # an officer of a partner agency: their agency's tips only
    ANALYST = "analyst"  # works the triage queue of their team's jurisdiction
    LEAD = "lead"  # assigns, approves, plans operations, releases feedback
    OFFICER = "officer"  # a law-enforcement unit's member: what was handed to the unit only
    CASEWORKER = "caseworker"  # a social worker: the care plans of the children assigned to them
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


class Unit(Base):
    """A law-enforcement unit referrals are handed to, with the jurisdiction it works; its
    officers see only what was handed to it."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    # Regions of the country the unit covers; empty means the whole country.
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)


class User(Base):
    """A person with an account. Partners belong to an agency; staff may belong to a team."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    role: Mapped[str] = mapped_column(String(16))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), default=None)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None)
    # An officer's unit.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), default=None)
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


class EnrolmentPurpose(enum.StrEnum):
    """Why an enrolment link was made."""

    NEW_ACCOUNT = "new_account"
    SECOND_FACTOR_RESET = "second_factor_reset"
    FIRST_ADMIN = "first_admin"


class Approval(enum.StrEnum):
    """Where an enrolment link stands with the four-eyes rule."""

    NOT_NEEDED = "not_needed"  # the rule was off when it was made (or the first admin)
    PENDING = "pending"  # waits for a second administrator: the link does not work yet
    APPROVED = "approved"
    REFUSED = "refused"  # the link never works


class EnrolmentToken(Base):
    """A one-time link to set a password and enrol a second factor. Only its hash is kept."""

    __tablename__ = "enrolment_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    purpose: Mapped[str] = mapped_column(
        String(24), default=EnrolmentPurpose.NEW_ACCOUNT.value, server_default="new_account"
    )
    # The audit log's actor who asked for the link (``user:3``, ``cli:alice``): never its
    # approver. None on links made before the four-eyes rule.
    requested_by: Mapped[str | None] = mapped_column(String(120), default=None)
    approval: Mapped[str] = mapped_column(
        String(16), default=Approval.NOT_NEEDED.value, server_default="not_needed"
    )
    decided_by: Mapped[str | None] = mapped_column(String(120), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    user: Mapped[User] = relationship()


class TrustedDevice(Base):
    """A browser someone has signed in with (OWASP's *device cookie*).

    The browser keeps a long-lived random token in an HttpOnly cookie; only its hash is kept
    here. A lockout after failed attempts applies to browsers without one, so an attacker who
    knows an e-mail address cannot keep its owner out: a trusted browser has a failure budget
    of its own.
    """

    __tablename__ = "trusted_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Revoked rather than deleted: sessions and sign-ins that came through it still name it.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PendingSignIn(Base):
    """Someone who passed the password step and has a few minutes to give a code.

    The cookie carries only a random token (its hash is the id); the code step uses the row
    once, whatever the browser replays.
    """

    __tablename__ = "pending_sign_ins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The trusted browser the password step came from, if any: its lock applies, not the
    # account's.
    device_id: Mapped[int | None] = mapped_column(ForeignKey("trusted_devices.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    next_path: Mapped[str] = mapped_column(String(2000))
    code_failures: Mapped[int] = mapped_column(Integer, default=0)


class SessionEnd(enum.StrEnum):
    """Why a session ended."""

    SIGNED_OUT = "signed_out"
    IDLE = "idle"  # no request for longer than the idle limit
    EXPIRED = "expired"  # older than the absolute limit
    ACCOUNT_CHANGED = "account_changed"  # disabled, or its second factor reset
    CODE_FAILURES = "code_failures"  # wrong codes at step-up locked the account
    SIGNED_IN_AGAIN = "signed_in_again"  # the browser signed in anew


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
    # When a code from the authenticator was last given (signing in counts): step-up asks
    # for another before sensitive actions once this is older than a few minutes.
    last_code_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    end_reason: Mapped[str | None] = mapped_column(String(24), default=None)
    # When tip content was last shown in this session: reading on keeps it open without a
    # new code; after a quiet period, content asks for one again (step-up).
    last_content_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("trusted_devices.id"), default=None)


class KeptForm(Base):
    """What someone had written in a form when their session timed out, kept for them to get
    back after signing in again.

    The fields are sealed with a random key that only the browser holds (in a cookie): this
    row alone, or a backup of it, reveals nothing of them. Used once; deleted once used or
    expired.
    """

    __tablename__ = "kept_forms"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    path: Mapped[str] = mapped_column(String(2000))  # the form's page, to go back to
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    sealed_fields: Mapped[bytes] = mapped_column(LargeBinary)
