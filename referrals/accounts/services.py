"""Accounts: creating them, enrolment, checking passwords and codes, sessions.

Every change here is written to the audit log in the same transaction as the change itself.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crypto.secretbox import SecretBox
from referrals.accounts import totp
from referrals.accounts.models import EnrolmentToken, Role, Team, User, UserSession
from referrals.accounts.passwords import PasswordHashing, check_policy
from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.intake.agencies import AgencyError, country_code
from referrals.intake.models import Agency

ENROLMENT_LIFETIME = timedelta(hours=72)
LOCK_AFTER_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)
SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message says why."""


class EnrolmentInvalid(AccountError):
    """The enrolment link is unknown, used or expired."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(value: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise AccountError("not a valid e-mail address") from None


@dataclass(frozen=True)
class Enrolment:
    user: User
    token: str  # shown once, in the enrolment link
    expires_at: datetime


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of the first login step."""

    user: User | None  # set only when the password was right and the account may log in
    locked: bool = False


class AccountService:
    """Accounts and everything that proves who someone is.

    Args:
        session: the caller's database session (the service commits).
        box: seals TOTP seeds at rest.
        hashing: password hashes.
        audit: where changes are recorded.
        clock: the clock.
    """

    def __init__(
        self,
        session: Session,
        *,
        box: SecretBox,
        hashing: PasswordHashing,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self.session = session
        self.box = box
        self.hashing = hashing
        self.audit = audit
        self.clock = clock

    # -- administration ------------------------------------------------------------------------

    def create(
        self,
        *,
        email: str,
        role: str,
        agency_id: int | None = None,
        team: str | None = None,
        actor: str,
        address: str | None = None,
    ) -> Enrolment:
        """Create an account and its first enrolment link.

        Raises:
            AccountError: bad e-mail, role, agency or team, or the e-mail is taken.
        """
        email = normalise_email(email)
        try:
            role_enum = Role(role)
        except ValueError:
            raise AccountError(f"role must be one of {', '.join(r.value for r in Role)}") from None
        if role_enum is Role.PARTNER and agency_id is None:
            raise AccountError("a partner account belongs to an agency: give --agency")
        if role_enum is not Role.PARTNER and agency_id is not None:
            raise AccountError("only partner accounts belong to an agency")
        if agency_id is not None and self.session.get(Agency, agency_id) is None:
            raise AccountError(f"no agency {agency_id}")
        team_row = None
        if team is not None:
            if not role_enum.is_staff or role_enum is Role.ADMIN:
                raise AccountError("only analysts and leads belong to a team")
            team_row = self.session.scalar(select(Team).where(Team.name == team))
            if team_row is None:
                raise AccountError(f"no team {team!r}")
        if self.session.scalar(select(User.id).where(User.email == email)) is not None:
            raise AccountError("an account with that e-mail exists")
        user = User(
            email=email,
            role=role_enum.value,
            agency_id=agency_id,
            team=team_row,
            created_at=self.clock.now(),
        )
        self.session.add(user)
        self.session.flush()
        enrolment = self._new_enrolment(user)
        self.audit.record(
            "account.created",
            actor=actor,
            subject=f"user:{user.id}",
            address=address,
            details={"role": role_enum.value, "agency": agency_id, "team": team},
        )
        self.session.commit()
        return enrolment

    def find(self, reference: str) -> User:
        """The account with this id or e-mail.

        Raises:
            AccountError: there is none.
        """
        if reference.isdigit():
            user = self.session.get(User, int(reference))
        else:
            user = self.session.scalar(select(User).where(User.email == reference.lower()))
        if user is None:
            raise AccountError(f"no account {reference!r}")
        return user

    def first_admin(self, *, email: str, actor: str) -> Enrolment | None:
        """Make sure someone can administer this instance.

        Returns:
            A new enrolment link for the first admin (created now, or created before but never
            enrolled: the old link is replaced), or None when an enrolled admin exists.
        """
        admins = list(self.session.scalars(select(User).where(User.role == Role.ADMIN.value)))
        if any(admin.enrolled_at is not None and admin.disabled_at is None for admin in admins):
            return None
        pending = next((admin for admin in admins if admin.disabled_at is None), None)
        if pending is None:
            return self.create(email=email, role=Role.ADMIN.value, actor=actor)
        enrolment = self._new_enrolment(pending)
        self.audit.record("account.enrolment_reissued", actor=actor, subject=f"user:{pending.id}")
        self.session.commit()
        return enrolment

    def disable(self, user: User, *, actor: str, address: str | None = None) -> None:
        """Disable the account and end its sessions at once."""
        user.disabled_at = self.clock.now()
        self._end_sessions(user)
        self.audit.record(
            "account.disabled", actor=actor, subject=f"user:{user.id}", address=address
        )
        self.session.commit()

    def enable(self, user: User, *, actor: str, address: str | None = None) -> None:
        user.disabled_at = None
        self.audit.record(
            "account.enabled", actor=actor, subject=f"user:{user.id}", address=address
        )
        self.session.commit()

    def reset_second_factor(
        self, user: User, *, actor: str, address: str | None = None
    ) -> Enrolment:
        """Forget the account's authenticator and password; it must enrol again by a new link."""
        user.totp_secret = None
        user.totp_last_step = None
        user.password_hash = None
        user.enrolled_at = None
        self._end_sessions(user)
        enrolment = self._new_enrolment(user)
        self.audit.record(
            "account.second_factor_reset", actor=actor, subject=f"user:{user.id}", address=address
        )
        self.session.commit()
        return enrolment

    def unlock(self, user: User, *, actor: str, address: str | None = None) -> None:
        """Lift a lockout after failed logins."""
        user.failed_logins = 0
        user.locked_until = None
        self.audit.record(
            "account.unlocked", actor=actor, subject=f"user:{user.id}", address=address
        )
        self.session.commit()

    # -- enrolment -----------------------------------------------------------------------------

    def enrolment_for(self, token: str) -> EnrolmentToken:
        """The live enrolment this link is for.

        Raises:
            EnrolmentInvalid: unknown, used or expired.
        """
        row = self.session.scalar(
            select(EnrolmentToken).where(EnrolmentToken.token_hash == digest(token))
        )
        if row is None or row.used_at is not None or row.expires_at <= self.clock.now():
            raise EnrolmentInvalid(
                "this enrolment link is not valid: ask an administrator for a new one"
            )
        user = self.session.get(User, row.user_id)
        if user is None or user.disabled_at is not None:
            raise EnrolmentInvalid(
                "this enrolment link is not valid: ask an administrator for a new one"
            )
        return row

    def complete_enrolment(
        self, token: str, *, password: str, totp_secret: str, code: str, address: str | None
    ) -> User:
        """Set the password and the authenticator; done only with a valid code from it.

        Raises:
            EnrolmentInvalid: the link is not valid.
            PasswordRejected: the password does not meet the policy.
            AccountError: the code is wrong.
        """
        row = self.enrolment_for(token)
        user = self.session.get(User, row.user_id)
        assert user is not None  # noqa: S101 - enrolment_for checked it
        check_policy(password, email=user.email)
        step = totp.matching_step(totp_secret, code, now=self.clock.now(), after=None)
        if step is None:
            raise AccountError("that code is not right: check the authenticator's clock and retry")
        # Single use even under a double submit: only one request marks it used.
        claimed = self.session.execute(
            update(EnrolmentToken)
            .where(EnrolmentToken.id == row.id, EnrolmentToken.used_at.is_(None))
            .values(used_at=self.clock.now())
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            self.session.rollback()
            raise EnrolmentInvalid("this enrolment link was just used")
        user.password_hash = self.hashing.hash(password)
        user.totp_secret = self.box.seal(totp_secret.encode(), context=_totp_context(user))
        user.totp_last_step = step
        user.enrolled_at = self.clock.now()
        user.failed_logins = 0
        user.locked_until = None
        self.audit.record(
            "account.enrolled", actor=f"user:{user.id}", subject=f"user:{user.id}", address=address
        )
        self.session.commit()
        return user

    # -- login ---------------------------------------------------------------------------------

    def check_password(
        self,
        email: str,
        password: str,
        *,
        address: str | None,
        roles: Collection[Role] | None = None,
    ) -> PasswordCheck:
        """First step of login. The same work is done for an unknown e-mail, so the answer
        takes as long whether or not the account exists.

        Args:
            roles: the roles that may sign in where this is asked (a web face's); an account
                of any other role is answered like an unknown one, and its failed attempts
                are not counted, so a face cannot be used to test or lock out the others'
                passwords.
        """
        try:
            email = normalise_email(email)
        except AccountError:
            email = ""
        user = self.session.scalar(select(User).where(User.email == email)) if email else None
        right = self.hashing.verify(user.password_hash if user else None, password)
        now = self.clock.now()
        if user is None or (roles is not None and user.role_enum not in roles):
            self.audit.record(
                "login.failed",
                actor="anonymous",
                subject=f"user:{user.id}" if user else None,
                address=address,
                details={"reason": "unknown account" if user is None else "not served here"},
            )
            self.session.commit()
            return PasswordCheck(user=None)
        if user.locked_until is not None and user.locked_until > now:
            self._refuse(user, reason="locked", address=address)
            return PasswordCheck(user=None, locked=True)
        if not right:
            locked = self._count_failure(user, address=address, reason="password")
            return PasswordCheck(user=None, locked=locked)
        if user.disabled_at is not None or user.enrolled_at is None or user.totp_secret is None:
            self._refuse(user, reason="disabled or not enrolled", address=address)
            return PasswordCheck(user=None)
        if self.hashing.needs_rehash(user.password_hash or ""):
            user.password_hash = self.hashing.hash(password)
            self.session.commit()
        return PasswordCheck(user=user)

    def check_code(self, user: User, code: str, *, address: str | None) -> bool:
        """Second step of login: a code from the authenticator, never one used before."""
        now = self.clock.now()
        if user.locked_until is not None and user.locked_until > now:
            return False
        if user.totp_secret is None or user.disabled_at is not None:
            return False
        secret = self.box.open(user.totp_secret, context=_totp_context(user)).decode()
        # Guarded so two requests racing with the same code cannot both pass.
        step = totp.matching_step(secret, code, now=now, after=user.totp_last_step)
        if step is not None:
            accepted = self.session.execute(
                update(User)
                .where(
                    User.id == user.id,
                    (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
                )
                .values(totp_last_step=step, failed_logins=0, locked_until=None)
            )
            if accepted.rowcount == 1:  # type: ignore[attr-defined]
                self.audit.record(
                    "login.succeeded",
                    actor=f"user:{user.id}",
                    subject=f"user:{user.id}",
                    address=address,
                )
                self.session.commit()
                return True
            self.session.rollback()
        self._count_failure(user, address=address, reason="code")
        return False

    # -- sessions ------------------------------------------------------------------------------

    def start_session(self, user: User, *, address: str | None) -> str:
        """A new session for a person who passed both steps; returns the cookie's token."""
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        self.session.add(
            UserSession(
                id=digest(token), user_id=user.id, created_at=now, last_seen_at=now, address=address
            )
        )
        self.session.commit()
        return token

    def session_user(self, token: str) -> User | None:
        """The person signed in with this session token, if the session is live; touches it."""
        row = self.session.get(UserSession, digest(token))
        now = self.clock.now()
        if row is None or row.ended_at is not None:
            return None
        if now - row.last_seen_at > SESSION_IDLE or now - row.created_at > SESSION_ABSOLUTE:
            row.ended_at = now
            self.session.commit()
            return None
        user = self.session.get(User, row.user_id)
        if user is None or user.disabled_at is not None:
            return None
        # Written at most once a minute: a page view should not always cost a write.
        if now - row.last_seen_at > timedelta(minutes=1):
            row.last_seen_at = now
            self.session.commit()
        return user

    def end_session(self, token: str, *, address: str | None) -> None:
        row = self.session.get(UserSession, digest(token))
        if row is not None and row.ended_at is None:
            row.ended_at = self.clock.now()
            self.audit.record(
                "session.logged_out",
                actor=f"user:{row.user_id}",
                subject=f"user:{row.user_id}",
                address=address,
            )
            self.session.commit()

    # -- internals -----------------------------------------------------------------------------

    def _new_enrolment(self, user: User) -> Enrolment:
        now = self.clock.now()
        self.session.execute(
            update(EnrolmentToken)
            .where(EnrolmentToken.user_id == user.id, EnrolmentToken.used_at.is_(None))
            .values(used_at=now)
        )
        token = secrets.token_urlsafe(32)
        expires = now + ENROLMENT_LIFETIME
        self.session.add(
            EnrolmentToken(
                user_id=user.id, token_hash=digest(token), created_at=now, expires_at=expires
            )
        )
        return Enrolment(user=user, token=token, expires_at=expires)

    def _end_sessions(self, user: User) -> None:
        self.session.execute(
            update(UserSession)
            .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
            .values(ended_at=self.clock.now())
        )

    def _refuse(self, user: User, *, reason: str, address: str | None) -> None:
        self.audit.record(
            "login.refused",
            actor=f"user:{user.id}",
            subject=f"user:{user.id}",
            address=address,
            details={"reason": reason},
        )
        self.session.commit()

    def _count_failure(self, user: User, *, address: str | None, reason: str) -> bool:
        user.failed_logins += 1
        locked = user.failed_logins >= LOCK_AFTER_FAILURES
        if locked:
            user.locked_until = self.clock.now() + LOCK_DURATION
        self.audit.record(
            "login.failed",
            actor=f"user:{user.id}",
            subject=f"user:{user.id}",
            address=address,
            details={"reason": reason, "failures": user.failed_logins, "locked": locked},
        )
        self.session.commit()
        return locked


def _totp_context(user: User) -> bytes:
    return f"totp:user:{user.id}".encode()


class TeamService:
    """Teams and their jurisdictions.

    Args:
        session: the caller's database session (the service commits).
        audit: where changes are recorded.
    """

    def __init__(self, session: Session, *, audit: AuditLog) -> None:
        self.session = session
        self.audit = audit

    def add(self, *, name: str, country: str, regions: list[str], actor: str) -> Team:
        """Create a team working ``country`` (all of it, or only ``regions``).

        Raises:
            AccountError: the name is taken or the country is not an ISO 3166-1 code.
        """
        name = name.strip()
        if not name:
            raise AccountError("a team needs a name")
        try:
            code = country_code(country)
        except AgencyError as exc:
            raise AccountError(str(exc)) from None
        if self.session.scalar(select(Team.id).where(Team.name == name)) is not None:
            raise AccountError(f"a team named {name!r} exists")
        team = Team(
            name=name, country=code, regions=sorted({r.strip() for r in regions if r.strip()})
        )
        self.session.add(team)
        self.session.flush()
        self.audit.record(
            "team.created", actor=actor, subject=f"team:{team.id}", details={"country": code}
        )
        self.session.commit()
        return team
