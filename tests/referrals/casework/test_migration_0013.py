"""Migration 0013 on a database that already holds referrals."""

from __future__ import annotations

from sqlalchemy import text

from referrals.database import downgrade_schema, make_engine, upgrade_schema
from tests.conftest import DatabaseFactory


def test_referrals_held_before_get_their_opening_on_the_timeline(
    databases: DatabaseFactory,
) -> None:
    engine = make_engine(databases.new_url())
    upgrade_schema(engine, "0012")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, email, role, created_at, failed_logins) "
                "VALUES (7, 'lea@centre.example', 'lead', '2026-01-01 00:00:00', 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO referrals (id, reference, stage, created_at, created_by_id, "
                "updated_at) VALUES (3, 'RF-2026-000003', 'assessment', "
                "'2026-02-01 08:00:00', 7, '2026-02-03 10:00:00')"
            )
        )
    upgrade_schema(engine)
    with engine.begin() as connection:
        event = connection.execute(
            text(
                "SELECT referral_id, actor_id, transition, from_stage, to_stage FROM "
                "referral_events"
            )
        ).one()
        entered = connection.scalar(text("SELECT stage_entered_at FROM referrals"))
    assert tuple(event) == (3, 7, "opened", None, "assessment")
    assert str(entered).startswith("2026-02-03 10:00:00")
    downgrade_schema(engine, "0012")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM referrals")) == 1
    engine.dispose()
