"""Migration 0017 on a database that already holds referrals and accepted tips: each tip's
agency is told its referral's stage, each referral takes its tips' strictest marking."""

from __future__ import annotations

from sqlalchemy import text

from referrals.database import downgrade_schema, make_engine, upgrade_schema
from tests.conftest import DatabaseFactory


def test_tips_and_referrals_held_before_get_their_stage_and_markings(
    databases: DatabaseFactory,
) -> None:
    engine = make_engine(databases.new_url())
    upgrade_schema(engine, "0016")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, email, role, created_at, failed_logins) "
                "VALUES (7, 'lea@centre.example', 'lead', '2026-01-01 00:00:00', 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO agencies (id, name, country, created_at) "
                "VALUES (1, 'NCA', 'GB', '2026-01-01 00:00:00')"
            )
        )
        for referral_id, stage in ((3, "operation_planned"), (4, "aftercare"), (5, "closed")):
            connection.execute(
                text(
                    "INSERT INTO referrals (id, reference, stage, stage_entered_at, created_at, "
                    "created_by_id, updated_at) VALUES (:id, :reference, :stage, "
                    "'2026-02-01 08:00:00', '2026-02-01 08:00:00', 7, '2026-02-03 10:00:00')"
                ),
                {"id": referral_id, "reference": f"RF-2026-00000{referral_id}", "stage": stage},
            )
        tips = [
            ("t1", "accepted", 3, "GREEN", "H2"),
            ("t2", "accepted", 3, "RED", "H0"),
            ("t3", "accepted", 4, "AMBER", None),
            ("t4", "in_triage", None, "RED", "H3"),
            ("t5", "accepted", 5, "AMBER+STRICT", "H1"),
        ]
        for tip_id, status, referral_id, tlp, code in tips:
            connection.execute(
                text(
                    "INSERT INTO tips (id, tracking_number, agency_id, status, received_at, "
                    "updated_at, ciphertext_sha256, ciphertext_bytes, referral_id, tlp, "
                    "handling_code, attempts) VALUES (:id, :id, 1, :status, "
                    "'2026-02-01 07:00:00', '2026-02-01 07:00:00', '0', 1, :referral, :tlp, "
                    ":code, 1)"
                ),
                {"id": tip_id, "status": status, "referral": referral_id, "tlp": tlp, "code": code},
            )
    upgrade_schema(engine)
    with engine.begin() as connection:
        told = dict(connection.execute(text("SELECT id, partner_stage FROM tips")).all())
        markings = {
            row.id: (row.tlp, row.handling_code)
            for row in connection.execute(text("SELECT id, tlp, handling_code FROM referrals"))
        }
    assert told == {
        "t1": "under_investigation",
        "t2": "under_investigation",
        "t3": "operation_conducted",
        "t4": None,
        "t5": "closed",
    }
    assert markings == {3: ("RED", "H2"), 4: ("AMBER", None), 5: ("AMBER+STRICT", "H1")}
    downgrade_schema(engine, "0016")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM tips")) == 5
    engine.dispose()
