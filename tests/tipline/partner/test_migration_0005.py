"""Migration 0005 on a database that already holds tips (belongs with
tests/referrals/test_database.py; kept beside the feature that needs it)."""

from __future__ import annotations

from sqlalchemy import text

from referrals.database import make_engine, upgrade_schema
from tests.conftest import DatabaseFactory


def test_upgrading_keeps_tips_and_what_points_at_them(databases: DatabaseFactory) -> None:
    # On SQLite a table rebuild (batch mode) would fail here: foreign keys are enforced and
    # ciphertexts point at the tip.
    engine = make_engine(databases.new_url())
    upgrade_schema(engine, "0004")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO agencies (id, name, country, created_at) "
                "VALUES (1, 'A', 'GB', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO tips (id, tracking_number, agency_id, status, received_at, "
                "updated_at, ciphertext_sha256, ciphertext_bytes) VALUES ('t1', 'TL-1', 1, "
                "'received', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'x', 1)"
            )
        )
        connection.execute(
            text("INSERT INTO tip_ciphertexts (tip_id, armored) VALUES ('t1', :armored)"),
            {"armored": b"-----BEGIN PGP MESSAGE-----"},
        )
    upgrade_schema(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT t.id, t.submitted_by_user_id FROM tips t "
                "JOIN tip_ciphertexts c ON c.tip_id = t.id"
            )
        ).all()
    assert [tuple(row) for row in rows] == [("t1", None)]
    engine.dispose()
