"""Migration 0006 on a database that already holds tips and attachments."""

from __future__ import annotations

from sqlalchemy import text

from referrals.database import downgrade_schema, make_engine, upgrade_schema
from tests.conftest import DatabaseFactory

FOUR_GIB = 4 * 1024**3  # does not fit in a 32-bit INTEGER


def test_upgrading_keeps_tips_counts_no_attempts_and_holds_64_bit_sizes(
    databases: DatabaseFactory,
) -> None:
    engine = make_engine(databases.new_url())
    upgrade_schema(engine, "0005")
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
                "'processing', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'x', 1)"
            )
        )
        connection.execute(
            text("INSERT INTO tip_ciphertexts (tip_id, armored) VALUES ('t1', :armored)"),
            {"armored": b"-----BEGIN PGP MESSAGE-----"},
        )
    upgrade_schema(engine)
    with engine.begin() as connection:
        row = connection.execute(text("SELECT status, attempts, fault FROM tips")).one()
        assert tuple(row) == ("processing", 0, None)
        connection.execute(
            text(
                "INSERT INTO attachments (id, tip_id, sha256, size_bytes, storage_name, "
                "received_at) VALUES ('a1', 't1', 'x', :size, 'f.pgp', '2026-01-01 00:00:00')"
            ),
            {"size": FOUR_GIB},
        )
        assert connection.scalar(text("SELECT size_bytes FROM attachments")) == FOUR_GIB
        connection.execute(text("DELETE FROM attachments"))
    downgrade_schema(engine, "0005")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM tips")) == 1
    engine.dispose()
