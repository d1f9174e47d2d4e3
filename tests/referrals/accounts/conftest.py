"""Fixtures for the account services: a database session, a clock moved by hand, and the
service on both, with enrolled people whose authenticator codes the tests can compute."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from referrals.accounts import totp
from referrals.accounts.models import User
from referrals.accounts.services import AccountService, ApprovalRule
from referrals.audit.services import AuditLog
from tests.clock import ManualClock
from tests.referrals.accounts.test_totp import rfc6238_code
from tipline.runtime import Runtime

PASSWORD = "correct horse battery staple 42"
ADDRESS = "198.51.100.7"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    with runtime.session_factory() as db_session:
        yield db_session


ServiceFactory = Callable[..., AccountService]


@pytest.fixture
def service_on(runtime: Runtime, clock: ManualClock) -> ServiceFactory:
    """An account service on a session of the caller's (``approval`` off unless given)."""

    def make(session: Session, approval: ApprovalRule = ApprovalRule.OFF) -> AccountService:
        return AccountService(
            session,
            box=runtime.secret_box,
            hashing=runtime.password_hashing,
            audit=AuditLog(session, key=runtime.audit_key, clock=clock),
            clock=clock,
            approval=approval,
        )

    return make


@pytest.fixture
def accounts(service_on: ServiceFactory, session: Session) -> AccountService:
    return service_on(session)


@dataclass(frozen=True)
class Enrolled:
    """An enrolled person and their authenticator's seed."""

    user: User
    secret: str

    def code(self, clock: ManualClock) -> str:
        """The authenticator's code at the clock's time."""
        return rfc6238_code(self.secret, clock.now())


def enrol(
    accounts: AccountService,
    clock: ManualClock,
    email: str = "ana@centre.example",
    role: str = "analyst",
) -> Enrolled:
    """An account created and enrolled now (the code used is spent: move the clock on)."""
    enrolment = accounts.create(email=email, role=role, actor="cli:root")
    secret = totp.new_secret()
    user = accounts.complete_enrolment(
        enrolment.token,
        password=PASSWORD,
        totp_secret=secret,
        code=rfc6238_code(secret, clock.now()),
        address=ADDRESS,
    )
    return Enrolled(user=user, secret=secret)
