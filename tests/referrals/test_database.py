from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from referrals.database import (
    Base,
    downgrade_schema,
    head_revision,
    make_engine,
    make_session_factory,
    schema_revision,
    upgrade_schema,
)
from referrals.health.models import QueueProbe
from tests.conftest import DatabaseFactory


def test_migrations_build_exactly_the_models_schema(databases: DatabaseFactory) -> None:
    engine = make_engine(databases.new_url())
    assert schema_revision(engine) is None
    upgrade_schema(engine)
    assert schema_revision(engine) == head_revision()
    with engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    assert differences == []
    engine.dispose()


def test_migrations_go_down_and_up_again(databases: DatabaseFactory) -> None:
    engine = make_engine(databases.new_url())
    upgrade_schema(engine)
    downgrade_schema(engine, "base")
    assert schema_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_schema(engine)
    assert {"intake_keys", "queue_probes"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_timestamps_come_back_as_the_same_utc_instant(database_url: str) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    manila = timezone(timedelta(hours=8))
    sent = datetime(2026, 11, 29, 9, 30, 15, 123456, tzinfo=manila)
    with sessions() as session:
        probe = QueueProbe(queue_name="default", sent_at=sent)
        session.add(probe)
        session.commit()
        probe_id = probe.id
    with sessions() as session:
        stored = session.get(QueueProbe, probe_id)
        assert stored is not None
        assert stored.sent_at == sent
        assert stored.sent_at.tzinfo is not None
        assert stored.sent_at.utcoffset() == timedelta(0)
        session.delete(stored)
        session.commit()
    engine.dispose()


def test_a_naive_timestamp_is_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        session.add(QueueProbe(queue_name="default", sent_at=datetime(2026, 1, 1)))  # noqa: DTZ001
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()
    engine.dispose()


def test_utc_now_round_trips(database_url: str) -> None:
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        probe = QueueProbe(queue_name="default", sent_at=now)
        session.add(probe)
        session.commit()
        session.expire_all()
        assert session.get(QueueProbe, probe.id).sent_at == now  # type: ignore[union-attr]
        session.delete(probe)
        session.commit()
    engine.dispose()
