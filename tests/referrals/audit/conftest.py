"""Each audit test gets a database of its own: the log is append-only, so the shared test
database's between-tests cleanup cannot empty it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from referrals.audit.services import AuditLog
from referrals.database import make_engine, make_session_factory, upgrade_schema
from tests.conftest import DatabaseFactory


class SteppingClock:
    """A clock that moves on one second each time it is read."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)

    def now(self) -> datetime:
        value = self.current
        self.current += timedelta(seconds=1)
        return value


@pytest.fixture
def engine(databases: DatabaseFactory) -> Iterator[Engine]:
    """A freshly migrated database of this test's own."""
    value = make_engine(databases.new_url())
    upgrade_schema(value)
    yield value
    value.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def audit_key() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as value:
        yield value


@pytest.fixture
def audit(session: Session, audit_key: bytes, clock: SteppingClock) -> AuditLog:
    return AuditLog(session, key=audit_key, clock=clock)
