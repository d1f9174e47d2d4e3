"""Migration 0009 on a database that already holds processed tips: their selector values are
counted and the tips sharing them linked, so correlation covers what was held before it."""

from __future__ import annotations

from sqlalchemy import text

from referrals.database import make_engine, upgrade_schema
from tests.conftest import DatabaseFactory


def test_upgrading_counts_held_values_and_links_the_tips_sharing_them(
    databases: DatabaseFactory,
) -> None:
    engine = make_engine(databases.new_url())
    upgrade_schema(engine, "0008")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO agencies (id, name, country, created_at) "
                "VALUES (1, 'A', 'GB', '2026-01-01 00:00:00')"
            )
        )
        for n in (1, 2, 3):
            connection.execute(
                text(
                    "INSERT INTO tips (id, tracking_number, agency_id, status, received_at, "
                    "updated_at, ciphertext_sha256, ciphertext_bytes, attempts) VALUES "
                    "(:id, :tn, 1, 'in_triage', '2026-01-01 00:00:00', '2026-01-01 00:00:00', "
                    "'x', 1, 1)"
                ),
                {"id": f"t{n}", "tn": f"TL-{n}"},
            )
        # t1 and t3 share a phone; t2 and t3 an e-mail; t1 has one of its own.
        for tip_id, kind, index in (
            ("t1", "phone", "p" * 64),
            ("t1", "ip", "i" * 64),
            ("t2", "email", "e" * 64),
            ("t3", "phone", "p" * 64),
            ("t3", "email", "e" * 64),
        ):
            connection.execute(
                text(
                    "INSERT INTO tip_selectors (tip_id, selector_type, blind_index) "
                    "VALUES (:tip, :kind, :index)"
                ),
                {"tip": tip_id, "kind": kind, "index": index},
            )
    upgrade_schema(engine)
    with engine.connect() as connection:
        counts = dict(
            connection.execute(text("SELECT selector_type, tip_count FROM selector_values")).all()
        )
        links = set(
            connection.execute(
                text("SELECT tip_id, earlier_tip_id, selector_type FROM tip_links")
            ).all()
        )
    assert counts == {"phone": 2, "ip": 1, "email": 2}
    assert links == {("t3", "t1", "phone"), ("t3", "t2", "email")}
    engine.dispose()
