"""People for web tests: accounts created and enrolled through the services, and signed in
through Flask-Login: a server-side session is started by the service and handed to
Flask-Login's test client, as ``login_user`` puts it in the cookie (no sign-in POSTs to
throttle; the sign-in pages themselves are tested in tests/tipline/auth)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from flask_login import FlaskLoginClient
from sqlalchemy.orm import Session

from referrals.accounts import totp
from referrals.accounts.models import User
from referrals.accounts.services import (
    AccountService,
    ApprovalRule,
    LiveSession,
    TeamService,
    UnitService,
)
from referrals.audit.models import AuditRecord
from tests.referrals.accounts.test_totp import rfc6238_code
from tipline.auth.sessions import USER_ID, SignedInPerson
from tipline.runtime import Runtime

PASSWORD = "a long and unusual passphrase 7"
ADDRESS = "127.0.0.1"  # the test client's address


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    role: str
    seed: str = ""  # the authenticator's seed, for codes

    def code(self, runtime: Runtime, *, steps_ahead: int = 0) -> str:
        """A code from this person's authenticator at the runtime's time (plus some steps)."""
        return rfc6238_code(self.seed, runtime.clock.now() + timedelta(seconds=30 * steps_ahead))


def account_service(
    runtime: Runtime, session: Session, *, approval: ApprovalRule = ApprovalRule.OFF
) -> AccountService:
    """The account service for setting tests up (four-eyes off unless asked for)."""
    return AccountService(
        session,
        box=runtime.secret_box,
        hashing=runtime.password_hashing,
        audit=runtime.audit(session),
        clock=runtime.clock,
        approval=approval,
    )


def add_team(runtime: Runtime, name: str = "Manila", country: str = "PH") -> str:
    with runtime.session_factory() as session:
        TeamService(session, audit=runtime.audit(session)).add(
            name=name, country=country, regions=[], actor="cli:test"
        )
    return name


def add_unit(runtime: Runtime, name: str, country: str = "PH") -> int:
    with runtime.session_factory() as session:
        unit = UnitService(session, audit=runtime.audit(session)).add(
            name=name, country=country, regions=[], actor="cli:test"
        )
        return unit.id


def enrolled(
    runtime: Runtime,
    email: str,
    role: str,
    *,
    agency_id: int | None = None,
    team: str | None = None,
    unit: str | None = None,
) -> Person:
    """An account created and enrolled (password and authenticator) through the service."""
    with runtime.session_factory() as session:
        service = account_service(runtime, session)
        enrolment = service.create(
            email=email, role=role, agency_id=agency_id, team=team, unit=unit, actor="cli:test"
        )
        seed = totp.new_secret()
        user = service.complete_enrolment(
            enrolment.token,
            password=PASSWORD,
            totp_secret=seed,
            code=rfc6238_code(seed, runtime.clock.now()),
            address=ADDRESS,
        )
        return Person(user.id, user.email, user.role, seed)


def signed_in_client(app: Flask, runtime: Runtime, person: Person | int) -> FlaskClient:
    """A new browser signed in as ``person``: a server-side session started by the service,
    put in the cookie by Flask-Login's test client, loaded by Flask-Login's user loader."""
    user_id = person if isinstance(person, int) else person.id
    with runtime.session_factory() as session:
        user = session.get(User, user_id)
        assert user is not None
        token = account_service(runtime, session).start_session(user, address=ADDRESS)
        signed_in = SignedInPerson(LiveSession(user=user, last_code_at=runtime.clock.now()), token)
    return FlaskLoginClient(app, app.response_class, use_cookies=True, user=signed_in)


def session_token(client: FlaskClient) -> str:
    """The server-side session's token in the client's cookie (Flask-Login's user id)."""
    with client.session_transaction() as cookie:
        token = cookie.get(USER_ID)
    assert isinstance(token, str)
    return token


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def audit_records(runtime: Runtime, action: str) -> list[AuditRecord]:
    with runtime.session_factory() as session:
        return runtime.audit(session).search(action=action)
