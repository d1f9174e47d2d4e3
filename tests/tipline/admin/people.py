"""People for web tests: accounts created and enrolled through the services, and signed in
by a server-side session set on a test client's cookie (no sign-in POSTs to throttle)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from referrals.accounts import totp
from referrals.accounts.models import User
from referrals.accounts.services import AccountService, TeamService
from referrals.audit.models import AuditRecord
from tests.referrals.accounts.test_totp import rfc6238_code
from tipline.auth.sessions import SESSION_TOKEN
from tipline.runtime import Runtime

PASSWORD = "a long and unusual passphrase 7"
ADDRESS = "127.0.0.1"  # the test client's address


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    role: str


def account_service(runtime: Runtime, session: Session) -> AccountService:
    return AccountService(
        session,
        box=runtime.secret_box,
        hashing=runtime.password_hashing,
        audit=runtime.audit(session),
        clock=runtime.clock,
    )


def add_team(runtime: Runtime, name: str = "Manila", country: str = "PH") -> str:
    with runtime.session_factory() as session:
        TeamService(session, audit=runtime.audit(session)).add(
            name=name, country=country, regions=[], actor="cli:test"
        )
    return name


def enrolled(
    runtime: Runtime,
    email: str,
    role: str,
    *,
    agency_id: int | None = None,
    team: str | None = None,
) -> Person:
    """An account created and enrolled (password and authenticator) through the service."""
    with runtime.session_factory() as session:
        service = account_service(runtime, session)
        enrolment = service.create(
            email=email, role=role, agency_id=agency_id, team=team, actor="cli:test"
        )
        seed = totp.new_secret()
        user = service.complete_enrolment(
            enrolment.token,
            password=PASSWORD,
            totp_secret=seed,
            code=rfc6238_code(seed, datetime.now(UTC)),
            address=ADDRESS,
        )
        return Person(user.id, user.email, user.role)


def sign_in(client: FlaskClient, runtime: Runtime, person: Person) -> None:
    """Start a server-side session for ``person`` and put it in the client's cookie."""
    with runtime.session_factory() as session:
        user = session.get(User, person.id)
        assert user is not None
        token = account_service(runtime, session).start_session(user, address=ADDRESS)
    with client.session_transaction() as cookie:
        cookie[SESSION_TOKEN] = token


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def audit_records(runtime: Runtime, action: str) -> list[AuditRecord]:
    with runtime.session_factory() as session:
        return runtime.audit(session).search(action=action)
