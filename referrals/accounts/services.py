"""Accounts: creating them, enrolment and its approval, checking passwords and codes, sessions.

Every change here is written to the audit log in the same transaction as the change itself.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from crypto.secretbox import SecretBox
from referrals.accounts import lockout, totp
from referrals.accounts.models import (
    Approval,
    EnrolmentPurpose,
    EnrolmentToken,
    PendingSignIn,
    Role,
    SessionEnd,
    Team,
    TrustedDevice,
    Unit,
    User,
    UserSession,
)
from referrals.accounts.passwords import PasswordHashing, check_policy
from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.intake.agencies import AgencyError, country_code
from referrals.intake.models import Agency

ENROLMENT_LIFETIME = timedelta(hours=72)
SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)
# Between the password step and the code step.
SIGN_IN_LIFETIME = timedelta(minutes=5)
SIGN_IN_CODE_ATTEMPTS = 3  # wrong codes before the password step must be done again
# How long a code given (at sign-in or step-up) covers sensitive actions.
STEP_UP_WINDOW = timedelta(minutes=10)
# Reading tip content keeps it open; this long without a code or a read asks for a code again.
CONTENT_QUIET = timedelta(minutes=15)
# How long a browser stays trusted after its last sign-in.
DEVICE_TRUST_LIFETIME = timedelta(days=90)
MAX_NEXT_PATH = 2000
MAX_DEVICE_TOKENS = 5  # trusted-browser tokens one browser may present (a shared computer)


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message says why."""


class EnrolmentInvalid(AccountError):
    """The enrolment link is unknown, used, expired, refused, or its account disabled."""


class EnrolmentAwaitingApproval(AccountError):
    """The enrolment link is genuine but waits for a second administrator's approval."""


class ApprovalRule(enum.StrEnum):
    """When an enrolment link needs a second administrator's approval before it works."""

    AUTO = "auto"  # when two or more enrolled, enabled administrators exist
    ON = "on"
    OFF = "off"


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
    awaiting_approval: bool = False  # the link works only once a second admin approves it


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of the first sign-in step."""

    user: User | None  # set only when the password was right and the account may sign in
    # The token of the pending sign-in the code step completes (for the browser's cookie).
    pending_token: str | None = None
    # When refused because of a lock (or this attempt locked it): when the lock runs out.
    locked_until: datetime | None = None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None


class CodeOutcome(enum.Enum):
    SIGNED_IN = "signed in"
    WRONG = "wrong code"  # try again
    RESTART = "start again"  # the pending sign-in is unknown, used, expired or ended
    LOCKED = "locked"


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of the code step."""

    outcome: CodeOutcome
    user: User | None = None
    session_token: str | None = None  # the new session's token, when signed in
    # A new trusted-browser token for the browser's cookie (None: keep the one it has).
    device_token: str | None = None
    remember: bool = False
    next_path: str = "/"
    locked_until: datetime | None = None


class StepUpOutcome(enum.Enum):
    DONE = "done"
    WRONG = "wrong code"
    LOCKED = "locked"
    ENDED = "session ended"  # not (or no longer) signed in


@dataclass(frozen=True)
class StepUp:
    outcome: StepUpOutcome
    locked_until: datetime | None = None


@dataclass(frozen=True)
class LiveSession:
    """A live signed-in session: the person, and when they last gave a code."""

    user: User
    last_code_at: datetime | None
    last_content_at: datetime | None = None

    def needs_step_up(self, now: datetime, *, window: timedelta = STEP_UP_WINDOW) -> bool:
        """Whether a sensitive action must first ask for a current code."""
        return self.last_code_at is None or now - self.last_code_at > window

    def needs_step_up_for_content(self, now: datetime) -> bool:
        """Whether tip content must first ask for a current code: after a quiet period
        (``CONTENT_QUIET`` with neither a code given nor content read), not while someone
        reads on."""
        latest = max(
            (t for t in (self.last_code_at, self.last_content_at) if t is not None), default=None
        )
        return latest is None or now - latest > CONTENT_QUIET


class AccountService:
    """Accounts and everything that proves who someone is.

    Args:
        session: the caller's database session (the service commits).
        box: seals TOTP seeds at rest.
        hashing: password hashes.
        audit: where changes are recorded.
        clock: the clock.
        approval: when enrolment links need a second administrator's approval.
    """

    def __init__(
        self,
        session: Session,
        *,
        box: SecretBox,
        hashing: PasswordHashing,
        audit: AuditLog,
        clock: Clock,
        approval: ApprovalRule = ApprovalRule.AUTO,
    ) -> None:
        self.session = session
        self.box = box
        self.hashing = hashing
        self.audit = audit
        self.clock = clock
        self.approval = approval

    # -- administration ------------------------------------------------------------------------

    def create(
        self,
        *,
        email: str,
        role: str,
        agency_id: int | None = None,
        team: str | None = None,
        unit: str | None = None,
        actor: str,
        address: str | None = None,
    ) -> Enrolment:
        """Create an account and its first enrolment link (waiting for a second
        administrator's approval when the four-eyes rule is on).

        Raises:
            AccountError: bad e-mail, role, agency, team or unit, or the e-mail is taken.
        """
        return self._create(
            email=email,
            role=role,
            agency_id=agency_id,
            team=team,
            unit=unit,
            actor=actor,
            address=address,
            purpose=EnrolmentPurpose.NEW_ACCOUNT,
        )

    def _create(
        self,
        *,
        email: str,
        role: str,
        agency_id: int | None,
        team: str | None,
        actor: str,
        address: str | None,
        purpose: EnrolmentPurpose,
        unit: str | None = None,
    ) -> Enrolment:
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
            if role_enum not in (Role.ANALYST, Role.LEAD):
                raise AccountError("only analysts and leads belong to a team")
            team_row = self.session.scalar(select(Team).where(Team.name == team))
            if team_row is None:
                raise AccountError(f"no team {team!r}")
        unit_row = None
        if (role_enum is Role.OFFICER) != (unit is not None):
            raise AccountError("an officer belongs to a unit, and only officers do: give --unit")
        if unit is not None:
            unit_row = self.session.scalar(select(Unit).where(Unit.name == unit))
            if unit_row is None:
                raise AccountError(f"no unit {unit!r}")
        if self.session.scalar(select(User.id).where(User.email == email)) is not None:
            raise AccountError("an account with that e-mail exists")
        waits = purpose is not EnrolmentPurpose.FIRST_ADMIN and self.approval_needed()
        user = User(
            email=email,
            role=role_enum.value,
            agency_id=agency_id,
            team=team_row,
            unit_id=unit_row.id if unit_row is not None else None,
            created_at=self.clock.now(),
        )
        self.session.add(user)
        self.session.flush()
        enrolment = self._new_enrolment(user, purpose=purpose, requested_by=actor, waits=waits)
        self.audit.record(
            "account.created",
            actor=actor,
            subject=f"user:{user.id}",
            address=address,
            details={
                "role": role_enum.value,
                "agency": agency_id,
                "team": team,
                "unit": unit,
                "approval": Approval.PENDING.value if enrolment.awaiting_approval else None,
            },
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

        Exempt from the four-eyes rule: there is no second administrator yet.

        Returns:
            A new enrolment link for the first admin (created now, or created before but never
            enrolled: the old link is replaced), or None when an enrolled admin exists.
        """
        admins = list(self.session.scalars(select(User).where(User.role == Role.ADMIN.value)))
        if any(admin.enrolled_at is not None and admin.disabled_at is None for admin in admins):
            return None
        pending = next((admin for admin in admins if admin.disabled_at is None), None)
        if pending is None:
            return self._create(
                email=email,
                role=Role.ADMIN.value,
                agency_id=None,
                team=None,
                actor=actor,
                address=None,
                purpose=EnrolmentPurpose.FIRST_ADMIN,
            )
        enrolment = self._new_enrolment(
            pending, purpose=EnrolmentPurpose.FIRST_ADMIN, requested_by=actor, waits=False
        )
        self.audit.record("account.enrolment_reissued", actor=actor, subject=f"user:{pending.id}")
        self.session.commit()
        return enrolment

    def disable(self, user: User, *, actor: str, address: str | None = None) -> None:
        """Disable the account and end its sessions at once."""
        user.disabled_at = self.clock.now()
        self._end_sessions(user, SessionEnd.ACCOUNT_CHANGED)
        self.audit.record(
            "account.disabled", actor=actor, subject=f"user:{user.id}", address=address
        )
        self.session.commit()

    def enable(self, user: User, *, actor: str, address: str | None = None) -> None:
        """Enable a disabled account again (its sessions stay ended)."""
        user.disabled_at = None
        self.audit.record(
            "account.enabled", actor=actor, subject=f"user:{user.id}", address=address
        )
        self.session.commit()

    def reset_second_factor(
        self, user: User, *, actor: str, address: str | None = None
    ) -> Enrolment:
        """Forget the account's authenticator and password; it must enrol again by a new link
        (waiting for a second administrator's approval when the four-eyes rule is on). The
        browsers it trusted are trusted no more: whoever reset it may suspect one."""
        # Decided before the account stops counting as an enrolled administrator.
        waits = self.approval_needed()
        user.totp_secret = None
        user.totp_last_step = None
        user.password_hash = None
        user.enrolled_at = None
        self._end_sessions(user, SessionEnd.ACCOUNT_CHANGED)
        self.session.execute(
            update(TrustedDevice)
            .where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
        )
        enrolment = self._new_enrolment(
            user, purpose=EnrolmentPurpose.SECOND_FACTOR_RESET, requested_by=actor, waits=waits
        )
        self.audit.record(
            "account.second_factor_reset",
            actor=actor,
            subject=f"user:{user.id}",
            address=address,
            details={"approval": Approval.PENDING.value if enrolment.awaiting_approval else None},
        )
        self.session.commit()
        return enrolment

    def unlock(self, user: User, *, actor: str, address: str | None = None) -> None:
        """Lift a lockout after failed sign-ins: the account's, and each of its browsers'."""
        lockout.reset(self.session, user)
        self.session.execute(
            update(TrustedDevice)
            .where(TrustedDevice.user_id == user.id)
            .values(failed_logins=0, locked_until=None)
        )
        self.audit.record(
            "account.unlocked", actor=actor, subject=f"user:{user.id}", address=address
        )
        self.session.commit()
        self.session.refresh(user)

    # -- four eyes -----------------------------------------------------------------------------

    def approval_needed(self) -> bool:
        """Whether a new enrolment link needs a second administrator's approval now."""
        if self.approval is ApprovalRule.OFF:
            return False
        if self.approval is ApprovalRule.ON:
            return True
        admins = self.session.scalar(
            select(func.count(User.id)).where(
                User.role == Role.ADMIN.value,
                User.enrolled_at.is_not(None),
                User.disabled_at.is_(None),
            )
        )
        return (admins or 0) >= 2

    def pending_enrolments(self) -> list[EnrolmentToken]:
        """Enrolment links waiting for a second administrator, oldest first."""
        return list(
            self.session.scalars(
                select(EnrolmentToken)
                .where(
                    EnrolmentToken.approval == Approval.PENDING.value,
                    EnrolmentToken.used_at.is_(None),
                    EnrolmentToken.expires_at > self.clock.now(),
                )
                .options(selectinload(EnrolmentToken.user))
                .order_by(EnrolmentToken.created_at, EnrolmentToken.id)
            )
        )

    def approve_enrolment(
        self, enrolment_id: int, *, approver: User, address: str | None = None
    ) -> EnrolmentToken:
        """A second administrator lets a waiting enrolment link work, for
        ``ENROLMENT_LIFETIME`` from now.

        Raises:
            AccountError: not waiting (decided, used, expired or replaced), or the approver
                asked for it, is its subject, or is not an enabled administrator.
        """
        return self._decide(enrolment_id, approver=approver, approve=True, address=address)

    def refuse_enrolment(
        self, enrolment_id: int, *, approver: User, address: str | None = None
    ) -> EnrolmentToken:
        """A second administrator refuses a waiting enrolment link: it never works.

        Raises:
            AccountError: as for ``approve_enrolment``.
        """
        return self._decide(enrolment_id, approver=approver, approve=False, address=address)

    def _decide(
        self, enrolment_id: int, *, approver: User, approve: bool, address: str | None
    ) -> EnrolmentToken:
        row = self.session.get(EnrolmentToken, enrolment_id)
        now = self.clock.now()
        if row is None or row.approval != Approval.PENDING.value or row.used_at is not None:
            raise AccountError("that enrolment is not waiting for approval")
        if row.expires_at <= now:
            raise AccountError("that enrolment link has expired: ask for a new one")
        actor = f"user:{approver.id}"
        if approver.role_enum is not Role.ADMIN or approver.disabled_at is not None:
            raise AccountError("only an administrator can decide on an enrolment")
        if row.requested_by == actor or row.user_id == approver.id:
            raise AccountError("another administrator must decide on an enrolment you asked for")
        decision = Approval.APPROVED if approve else Approval.REFUSED
        values: dict[str, object] = {
            "approval": decision.value,
            "decided_by": actor,
            "decided_at": now,
        }
        if approve:
            values["expires_at"] = now + ENROLMENT_LIFETIME
        # Guarded: of two administrators deciding at once, one decides.
        decided = self.session.execute(
            update(EnrolmentToken)
            .where(
                EnrolmentToken.id == row.id,
                EnrolmentToken.approval == Approval.PENDING.value,
                EnrolmentToken.used_at.is_(None),
            )
            .values(**values)
            .execution_options(synchronize_session=False)  # pragma: no mutate (None: no sync too)
        )
        if decided.rowcount != 1:  # type: ignore[attr-defined]
            self.session.rollback()
            raise AccountError("that enrolment is not waiting for approval")
        self.audit.record(
            f"account.enrolment_{'approved' if approve else 'refused'}",
            actor=actor,
            subject=f"user:{row.user_id}",
            address=address,
            details={"enrolment": row.id, "purpose": row.purpose, "requested_by": row.requested_by},
        )
        self.session.commit()
        self.session.refresh(row)
        return row

    # -- enrolment -----------------------------------------------------------------------------

    def enrolment_for(self, token: str) -> EnrolmentToken:
        """The live enrolment this link is for.

        Raises:
            EnrolmentInvalid: unknown, used, expired, refused, or the account is disabled.
            EnrolmentAwaitingApproval: genuine, but a second administrator has not approved it.
        """
        row = self.session.scalar(
            select(EnrolmentToken).where(EnrolmentToken.token_hash == digest(token))
        )
        invalid = EnrolmentInvalid("This enrolment link has already been used or has expired.")
        if row is None or row.used_at is not None or row.expires_at <= self.clock.now():
            raise invalid
        if row.approval == Approval.REFUSED.value:
            raise invalid
        user = self.session.get(User, row.user_id)
        if user is None or user.disabled_at is not None:
            raise invalid
        if row.approval == Approval.PENDING.value:
            raise EnrolmentAwaitingApproval(
                "This enrolment link is waiting for a second administrator's approval."
            )
        return row

    def complete_enrolment(
        self, token: str, *, password: str, totp_secret: str, code: str, address: str | None
    ) -> User:
        """Set the password and the authenticator; done only with a valid code from it.

        Raises:
            EnrolmentInvalid: the link is not valid.
            EnrolmentAwaitingApproval: the link waits for approval.
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
            .where(
                EnrolmentToken.id == row.id,
                EnrolmentToken.used_at.is_(None),
                EnrolmentToken.approval.in_([Approval.NOT_NEEDED.value, Approval.APPROVED.value]),
            )
            .values(used_at=self.clock.now())
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            self.session.rollback()
            raise EnrolmentInvalid("This enrolment link has already been used or has expired.")
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

    # -- signing in ----------------------------------------------------------------------------

    def check_password(
        self,
        email: str,
        password: str,
        *,
        address: str | None,
        roles: Collection[Role] | None = None,
        device_tokens: Sequence[str] = (),
        remember: bool = False,
        next_path: str = "/",
    ) -> PasswordCheck:
        """First step of signing in. The same work is done for an unknown e-mail, so the
        answer takes as long whether or not the account exists.

        Args:
            email, password: what was typed.
            address: the client's address (for the audit log).
            roles: the roles that may sign in where this is asked (a web face's); an account
                of any other role is answered like an unknown one, and its failed attempts
                are not counted, so a face cannot be used to test or lock out the others'
                passwords.
            device_tokens: the trusted-browser tokens the browser presented: if one is the
                account's, that browser's own lock and failures count, not the account's.
            remember: keep the session after the browser closes (carried to the code step).
            next_path: where to go once signed in (a path on this site).

        Returns:
            With ``pending_token`` when the password was right and the account may sign in:
            the code step takes it within ``SIGN_IN_LIFETIME``, once.
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
        device = self._trusted_device(user, device_tokens, now)
        locked_until = device.locked_until if device is not None else user.locked_until
        if lockout.is_locked(locked_until, now):
            self._refuse(user, reason="locked", address=address, device=device)
            return PasswordCheck(user=None, locked_until=locked_until)
        if not right:
            failure = self._count_failure(user, device, address=address, reason="password")
            self.session.commit()
            return PasswordCheck(user=None, locked_until=failure.locked_until)
        if user.disabled_at is not None or user.enrolled_at is None or user.totp_secret is None:
            self._refuse(user, reason="disabled or not enrolled", address=address, device=device)
            return PasswordCheck(user=None)
        if self.hashing.needs_rehash(user.password_hash or ""):
            user.password_hash = self.hashing.hash(password)
        token = secrets.token_urlsafe(32)
        # Expired sign-ins are of no use to anyone: cleared as new ones come.
        self.session.execute(delete(PendingSignIn).where(PendingSignIn.expires_at <= now))
        self.session.add(
            PendingSignIn(
                id=digest(token),
                user_id=user.id,
                device_id=device.id if device is not None else None,
                created_at=now,
                expires_at=now + SIGN_IN_LIFETIME,
                remember=remember,
                next_path=next_path if len(next_path) <= MAX_NEXT_PATH else "/",
                code_failures=0,
            )
        )
        self.session.commit()
        return PasswordCheck(user=user, pending_token=token)

    def pending_sign_in(self, token: str) -> PendingSignIn | None:
        """The pending sign-in this token names, if it can still be completed."""
        row = self.session.get(PendingSignIn, digest(token))
        if row is None or row.used_at is not None or row.expires_at <= self.clock.now():
            return None
        return row

    def check_code(self, pending_token: str, code: str, *, address: str | None) -> CodeCheck:
        """Second step of signing in: a code from the authenticator, never one used before,
        within a few minutes of the password step and at most once for it.

        On success the session is started (its token is in the answer), the browser is
        trusted from now on (a new device token, or the one it has, renewed) and the failures
        of the browser's scope are forgotten.
        """
        now = self.clock.now()
        row = self.pending_sign_in(pending_token)
        if row is None:
            return CodeCheck(CodeOutcome.RESTART)
        user = self.session.get(User, row.user_id)
        if user is None or user.totp_secret is None or user.disabled_at is not None:
            self._end_pending(row, now)
            self.session.commit()
            return CodeCheck(CodeOutcome.RESTART)
        device = self._live_device(row.device_id, now)
        locked_until = device.locked_until if device is not None else user.locked_until
        if lockout.is_locked(locked_until, now):
            # Even a right code: the lock is on guessing, whichever step it happens at.
            self._end_pending(row, now)
            self._refuse(user, reason="locked", address=address, device=device)
            return CodeCheck(CodeOutcome.LOCKED, locked_until=locked_until)
        step = self._matching_step(user, code, now)
        if step is not None and self._claim(row, now) and self._accept_step(user, step):
            lockout.reset(self.session, device or user)
            device_token = None
            if device is not None:
                device.last_used_at = now
                device.expires_at = now + DEVICE_TRUST_LIFETIME
            else:
                device_token, device = self._trust_browser(user, now)
            session_token = self._new_session(user, address=address, device=device, now=now)
            self.audit.record(
                "login.succeeded",
                actor=f"user:{user.id}",
                subject=f"user:{user.id}",
                address=address,
                details={"trusted_browser": device_token is None},
            )
            self.session.commit()
            return CodeCheck(
                CodeOutcome.SIGNED_IN,
                user=user,
                session_token=session_token,
                device_token=device_token,
                remember=row.remember,
                next_path=row.next_path,
            )
        self.session.rollback()  # a claim made for a code that lost a race
        failures = self.session.execute(
            update(PendingSignIn)
            .where(PendingSignIn.id == row.id)
            .values(code_failures=PendingSignIn.code_failures + 1)
            .returning(PendingSignIn.code_failures)
            .execution_options(synchronize_session=False)  # pragma: no mutate (None: no sync too)
        ).scalar_one()
        self.session.expire(row, ["code_failures"])  # pragma: no mutate (expiring all: a reload)
        if failures >= SIGN_IN_CODE_ATTEMPTS:
            self._end_pending(row, now)
        failure = self._count_failure(user, device, address=address, reason="code")
        self.session.commit()
        if failure.locked_until is not None:
            return CodeCheck(CodeOutcome.LOCKED, locked_until=failure.locked_until)
        if failures >= SIGN_IN_CODE_ATTEMPTS:
            return CodeCheck(CodeOutcome.RESTART)
        return CodeCheck(CodeOutcome.WRONG)

    def step_up(self, session_token: str, code: str, *, address: str | None) -> StepUp:
        """A signed-in person gives a current code before a sensitive action.

        Refused like at sign-in (a code once, failures counted towards the lock of the
        browser's scope); a wrong code that locks the account also ends this session.
        """
        now = self.clock.now()
        row = self.session.get(UserSession, digest(session_token))
        live = self.session_user(session_token)
        if row is None or live is None:
            return StepUp(StepUpOutcome.ENDED)
        user = live.user
        device = self._live_device(row.device_id, now)
        locked_until = device.locked_until if device is not None else user.locked_until
        if lockout.is_locked(locked_until, now):
            self._refuse(user, reason="locked", address=address, device=device)
            return StepUp(StepUpOutcome.LOCKED, locked_until=locked_until)
        step = self._matching_step(user, code, now)
        if step is not None and self._accept_step(user, step):
            lockout.reset(self.session, device or user)
            row.last_code_at = now
            self.audit.record(
                "session.stepped_up",
                actor=f"user:{user.id}",
                subject=f"user:{user.id}",
                address=address,
            )
            self.session.commit()
            return StepUp(StepUpOutcome.DONE)
        self.session.rollback()
        failure = self._count_failure(user, device, address=address, reason="step-up code")
        if failure.locked_until is not None:
            self.session.execute(
                update(UserSession)
                .where(UserSession.id == row.id, UserSession.ended_at.is_(None))
                .values(ended_at=now, end_reason=SessionEnd.CODE_FAILURES.value)
            )
        self.session.commit()
        if failure.locked_until is not None:
            return StepUp(StepUpOutcome.LOCKED, locked_until=failure.locked_until)
        return StepUp(StepUpOutcome.WRONG)

    # -- sessions ------------------------------------------------------------------------------

    def start_session(
        self, user: User, *, address: str | None, device: TrustedDevice | None = None
    ) -> str:
        """A new session for a person who passed both steps; returns the cookie's token.
        (``check_code`` does this itself; this is for callers that proved it otherwise.)"""
        token = self._new_session(user, address=address, device=device, now=self.clock.now())
        self.session.commit()
        return token

    def session_user(self, token: str) -> LiveSession | None:
        """The person signed in with this session token, if the session is live; touches it.

        A disabled account's session is refused here, whether or not it was ended.
        """
        row = self.session.get(UserSession, digest(token))
        now = self.clock.now()
        if row is None or row.ended_at is not None:
            return None
        idle = now - row.last_seen_at > SESSION_IDLE
        if idle or now - row.created_at > SESSION_ABSOLUTE:
            self.session.execute(
                update(UserSession)
                .where(UserSession.id == row.id, UserSession.ended_at.is_(None))
                .values(
                    ended_at=now,
                    end_reason=(SessionEnd.IDLE if idle else SessionEnd.EXPIRED).value,
                )
            )
            self.session.commit()
            return None
        user = self.session.get(User, row.user_id)
        if user is None or user.disabled_at is not None:
            return None
        # Written at most once a minute: a page view should not always cost a write.
        if now - row.last_seen_at > timedelta(minutes=1):
            row.last_seen_at = now
            self.session.commit()
        return LiveSession(
            user=user, last_code_at=row.last_code_at, last_content_at=row.last_content_at
        )

    def content_read(self, token: str) -> None:
        """Note that this session was shown tip content now (it keeps content open for the
        next ``CONTENT_QUIET``); committed with the caller's transaction."""
        self.session.execute(
            update(UserSession)
            .where(UserSession.id == digest(token))
            .values(last_content_at=self.clock.now())
        )

    def timed_out_owner(self, token: str) -> int | None:
        """The account whose session this token was, if that session ended by timing out
        (idle or too old), not by signing out or by an administrator; else None."""
        row = self.session.get(UserSession, digest(token))
        if row is None or row.end_reason not in (SessionEnd.IDLE.value, SessionEnd.EXPIRED.value):
            return None
        user = self.session.get(User, row.user_id)
        if user is None or user.disabled_at is not None:
            return None
        return user.id

    def end_session(
        self,
        token: str,
        *,
        address: str | None,
        reason: SessionEnd = SessionEnd.SIGNED_OUT,
    ) -> None:
        """End the session (signing out), audited."""
        row = self.session.get(UserSession, digest(token))
        if row is not None and row.ended_at is None:
            row.ended_at = self.clock.now()
            row.end_reason = reason.value
            self.audit.record(
                "session.logged_out",
                actor=f"user:{row.user_id}",
                subject=f"user:{row.user_id}",
                address=address,
                details={"reason": reason.value},
            )
            self.session.commit()

    # -- internals -----------------------------------------------------------------------------

    def _new_enrolment(
        self, user: User, *, purpose: EnrolmentPurpose, requested_by: str, waits: bool
    ) -> Enrolment:
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
                user_id=user.id,
                token_hash=digest(token),
                created_at=now,
                expires_at=expires,
                purpose=purpose.value,
                requested_by=requested_by,
                approval=(Approval.PENDING if waits else Approval.NOT_NEEDED).value,
            )
        )
        return Enrolment(user=user, token=token, expires_at=expires, awaiting_approval=waits)

    def _end_sessions(self, user: User, reason: SessionEnd) -> None:
        self.session.execute(
            update(UserSession)
            .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
            .values(ended_at=self.clock.now(), end_reason=reason.value)
        )

    def _new_session(
        self, user: User, *, address: str | None, device: TrustedDevice | None, now: datetime
    ) -> str:
        token = secrets.token_urlsafe(32)
        self.session.add(
            UserSession(
                id=digest(token),
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                last_code_at=now,
                address=address,
                device_id=device.id if device is not None else None,
            )
        )
        return token

    def _trusted_device(
        self, user: User, tokens: Sequence[str], now: datetime
    ) -> TrustedDevice | None:
        """The account's trusted browser among those the browser presented, if any."""
        hashes = [digest(token) for token in tokens[:MAX_DEVICE_TOKENS]]
        if not hashes:
            return None
        return self.session.scalar(
            select(TrustedDevice).where(
                TrustedDevice.user_id == user.id,
                TrustedDevice.token_hash.in_(hashes),
                TrustedDevice.revoked_at.is_(None),
                TrustedDevice.expires_at > now,
            )
        )

    def _live_device(self, device_id: int | None, now: datetime) -> TrustedDevice | None:
        device = self.session.get(TrustedDevice, device_id) if device_id is not None else None
        if device is None or device.revoked_at is not None or device.expires_at <= now:
            return None
        return device

    def _trust_browser(self, user: User, now: datetime) -> tuple[str, TrustedDevice]:
        token = secrets.token_urlsafe(32)
        device = TrustedDevice(
            user_id=user.id,
            token_hash=digest(token),
            created_at=now,
            last_used_at=now,
            expires_at=now + DEVICE_TRUST_LIFETIME,
            failed_logins=0,
        )
        self.session.add(device)
        self.session.flush()
        return token, device

    def _matching_step(self, user: User, code: str, now: datetime) -> int | None:
        if user.totp_secret is None:
            return None
        secret = self.box.open(user.totp_secret, context=_totp_context(user)).decode()
        return totp.matching_step(secret, code, now=now, after=user.totp_last_step)

    def _accept_step(self, user: User, step: int) -> bool:
        """Record the code's time step as used; False if another request used it (or a later
        one) first. Guarded so two requests racing with the same code cannot both pass."""
        accepted = self.session.execute(
            update(User)
            .where(
                User.id == user.id,
                (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)  # pragma: no mutate (None: no sync too)
        )
        self.session.expire(user, ["totp_last_step"])  # pragma: no mutate (expiring all: a reload)
        return bool(accepted.rowcount == 1)  # type: ignore[attr-defined]

    def _claim(self, row: PendingSignIn, now: datetime) -> bool:
        """Use the pending sign-in; False if another request used it first."""
        claimed = self.session.execute(
            update(PendingSignIn)
            .where(
                PendingSignIn.id == row.id,
                PendingSignIn.used_at.is_(None),
                PendingSignIn.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)  # pragma: no mutate (None: no sync too)
        )
        self.session.expire(row, ["used_at"])  # pragma: no mutate (expiring all: a reload)
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    def _end_pending(self, row: PendingSignIn, now: datetime) -> None:
        self.session.execute(
            update(PendingSignIn)
            .where(PendingSignIn.id == row.id)
            # One used already (a request that won a race) is over either way: without this
            # only the time it was used would move. Kept so the first use's time stays.
            .where(PendingSignIn.used_at.is_(None))  # pragma: no mutate (see above)
            .values(used_at=now)
            .execution_options(synchronize_session=False)  # pragma: no mutate (None: no sync too)
        )
        self.session.expire(row, ["used_at"])  # pragma: no mutate (expiring all: a reload)

    def _refuse(
        self, user: User, *, reason: str, address: str | None, device: TrustedDevice | None
    ) -> None:
        self.audit.record(
            "login.refused",
            actor=f"user:{user.id}",
            subject=f"user:{user.id}",
            address=address,
            details={"reason": reason, "trusted_browser": device is not None},
        )
        self.session.commit()

    def _count_failure(
        self, user: User, device: TrustedDevice | None, *, address: str | None, reason: str
    ) -> lockout.Failure:
        """Count a failure against the trusted browser it came from, or else against the
        account (for every browser it has not signed in with); audit it, and the lock it
        may cause. Not committed."""
        now = self.clock.now()
        failure = lockout.count_failure(self.session, device or user, now=now)
        self.audit.record(
            "login.failed",
            actor=f"user:{user.id}",
            subject=f"user:{user.id}",
            address=address,
            details={
                "reason": reason,
                "failures": failure.failures,
                "locked": failure.locked_until is not None,
                "trusted_browser": device is not None,
            },
        )
        if failure.locked_now and failure.locked_until is not None:
            self.audit.record(
                "account.locked",
                actor=f"user:{user.id}",
                subject=f"user:{user.id}",
                address=address,
                details={
                    "scope": "trusted_browser" if device is not None else "untrusted_browsers",
                    "device": device.id if device is not None else None,
                    "until": failure.locked_until.isoformat(timespec="seconds"),
                    "failures": failure.failures,
                },
            )
        return failure


def _totp_context(user: User) -> bytes:
    return f"totp:user:{user.id}".encode()


def _add_jurisdiction(
    session: Session,
    audit: AuditLog,
    model: type[Team] | type[Unit],
    *,
    kind: str,
    name: str,
    country: str,
    regions: list[str],
    actor: str,
) -> Team | Unit:
    """A team or a unit: a unique name working ``country`` (all of it, or only ``regions``),
    audited as ``<kind>.created`` and committed."""
    name = name.strip()
    if not name:
        raise AccountError(f"a {kind} needs a name")
    try:
        code = country_code(country)
    except AgencyError as exc:
        raise AccountError(str(exc)) from None
    if session.scalar(select(model.id).where(model.name == name)) is not None:
        raise AccountError(f"a {kind} named {name!r} exists")
    made = model(name=name, country=code, regions=sorted({r.strip() for r in regions if r.strip()}))
    session.add(made)
    session.flush()
    audit.record(f"{kind}.created", actor=actor, subject=f"{kind}:{made.id}",
                 details={"country": code})  # fmt: skip
    session.commit()
    return made


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
        team = _add_jurisdiction(self.session, self.audit, Team, kind="team", name=name,
                                 country=country, regions=regions, actor=actor)  # fmt: skip
        assert isinstance(team, Team)  # noqa: S101 - made from Team
        return team


class UnitService:
    """Law-enforcement units referrals are handed to, and their jurisdictions.

    Args:
        session: the caller's database session (the service commits).
        audit: where changes are recorded.
    """

    def __init__(self, session: Session, *, audit: AuditLog) -> None:
        self.session = session
        self.audit = audit

    def add(self, *, name: str, country: str, regions: list[str], actor: str) -> Unit:
        """Register a unit working ``country`` (all of it, or only ``regions``).

        Raises:
            AccountError: the name is taken or the country is not an ISO 3166-1 code.
        """
        unit = _add_jurisdiction(self.session, self.audit, Unit, kind="unit", name=name,
                                 country=country, regions=regions, actor=actor)  # fmt: skip
        assert isinstance(unit, Unit)  # noqa: S101 - made from Unit
        return unit
