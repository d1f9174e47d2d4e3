"""Someone with the database owner's rights but not the audit key changes the log: the
database refuses the ordinary path, and ``verify`` names the record that was touched."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import pytest
from sqlalchemy import Engine, delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from referrals.audit.models import AuditRecord
from referrals.audit.services import AuditLog, VerifyResult, canonical_json, chain_hash
from tests.referrals.audit.cleanup import append_only_lifted, empty_audit_log

RECORDS = 5


@pytest.fixture
def log(audit: AuditLog, session: Session) -> AuditLog:
    for number in range(1, RECORDS + 1):
        audit.record(
            "tip.viewed",
            actor=f"user:{number}",
            subject=f"tip:{number}",
            address="192.0.2.10",
            details={"reason": "triage", "page": number},
        )
    session.commit()
    return audit


def tamper(engine: Engine, statement: Any) -> None:
    with engine.begin() as connection, append_only_lifted(connection):
        connection.execute(statement)


def hash_of(log: AuditLog, record_id: int) -> str:
    record = log.session.get(AuditRecord, record_id)
    assert record is not None
    return record.hash


def verify(log: AuditLog) -> VerifyResult:
    log.session.expire_all()
    return log.verify()


def rehash(record_id: int, log: AuditLog, digest: Any) -> dict[str, str]:
    """What an attacker would write back after changing record ``record_id``'s action."""
    record = log.session.get(AuditRecord, record_id)
    assert record is not None
    canonical = canonical_json(
        id=record.id,
        at=record.at,
        actor=record.actor,
        action="tip.nothing_to_see",
        subject=record.subject,
        address=record.address,
        details=record.details,
    )
    return {"action": "tip.nothing_to_see", "hash": digest(record.prev_hash, canonical)}


def test_an_intact_log_verifies(log: AuditLog) -> None:
    result = verify(log)
    assert result == VerifyResult(
        ok=True,
        checked=RECORDS,
        last_id=RECORDS,
        last_hash=log.search(limit=1)[0].hash,
    )


def test_an_empty_log_verifies(audit: AuditLog) -> None:
    assert audit.verify() == VerifyResult(ok=True, checked=0)


def test_verify_needs_the_same_key(log: AuditLog) -> None:
    other = AuditLog(log.session, key=secrets.token_bytes(32), clock=log.clock)
    result = other.verify()
    assert (result.ok, result.first_broken_id) == (False, 1)


def test_the_database_refuses_updates_and_deletes(log: AuditLog, engine: Engine) -> None:
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(update(AuditRecord).where(AuditRecord.id == 2).values(actor="x"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(delete(AuditRecord).where(AuditRecord.id == 2))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(delete(AuditRecord))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text("TRUNCATE audit_log"))

    session = log.session
    record = session.get(AuditRecord, 3)
    assert record is not None
    record.details = {"reason": "changed"}
    with pytest.raises(DBAPIError, match="append-only"):
        session.commit()
    session.rollback()
    session.delete(session.get(AuditRecord, 3))
    with pytest.raises(DBAPIError, match="append-only"):
        session.commit()
    session.rollback()
    assert verify(log).ok


@pytest.mark.parametrize(
    "change",
    [
        {"action": "tip.nothing_to_see"},
        {"actor": "user:999"},
        {"subject": "tip:other"},
        {"address": "198.51.100.1"},
        {"details": {"reason": "audit", "page": 3}},
        {"details": None},
    ],
)
def test_a_changed_record_is_named(log: AuditLog, engine: Engine, change: dict[str, Any]) -> None:
    tamper(engine, update(AuditRecord).where(AuditRecord.id == 3).values(**change))
    assert verify(log) == VerifyResult(
        ok=False,
        checked=3,
        first_broken_id=3,
        problem="hash does not match its content",
        last_id=2,
        last_hash=hash_of(log, 2),  # the last good record, to compare with next time
    )


def test_a_changed_time_is_named(log: AuditLog, engine: Engine) -> None:
    record = log.session.get(AuditRecord, 4)
    assert record is not None
    tamper(
        engine,
        update(AuditRecord).where(AuditRecord.id == 4).values(at=record.at.replace(year=2020)),
    )
    result = verify(log)
    assert (result.first_broken_id, result.problem) == (4, "hash does not match its content")


def test_a_record_rehashed_without_the_key_is_named(log: AuditLog, engine: Engine) -> None:
    def sha256(prev_hash: str, canonical: str) -> str:
        return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()

    tamper(engine, update(AuditRecord).where(AuditRecord.id == 3).values(**rehash(3, log, sha256)))
    # The next record still chains onto the old hash: the attacker must rewrite it too.
    result = verify(log)
    assert (result.first_broken_id, result.problem) == (3, "hash does not match its content")


def test_a_chain_rewritten_with_another_key_is_named(log: AuditLog, engine: Engine) -> None:
    wrong_key = secrets.token_bytes(32)
    records = sorted(log.search(), key=lambda record: record.id)
    prev_hash = records[1].hash
    with engine.begin() as connection, append_only_lifted(connection):
        for record in records[2:]:  # rewrite 3, 4, 5 consistently, but with the wrong key
            action = "tip.nothing_to_see" if record.id == 3 else record.action
            canonical = canonical_json(
                id=record.id,
                at=record.at,
                actor=record.actor,
                action=action,
                subject=record.subject,
                address=record.address,
                details=record.details,
            )
            new_hash = chain_hash(wrong_key, prev_hash, canonical)
            connection.execute(
                update(AuditRecord)
                .where(AuditRecord.id == record.id)
                .values(action=action, prev_hash=prev_hash, hash=new_hash)
            )
            prev_hash = new_hash
    result = verify(log)
    assert (result.first_broken_id, result.problem) == (3, "hash does not match its content")


def test_a_deleted_record_is_named(log: AuditLog, engine: Engine) -> None:
    tamper(engine, delete(AuditRecord).where(AuditRecord.id == 3))
    result = verify(log)
    assert (result.ok, result.first_broken_id) == (False, 4)
    assert result.problem == "records missing between 2 and 4"


def test_a_deleted_first_record_is_named(log: AuditLog, engine: Engine) -> None:
    tamper(engine, delete(AuditRecord).where(AuditRecord.id == 1))
    result = verify(log)
    assert (result.first_broken_id, result.problem) == (2, "records missing before record 2")


def test_records_renumbered_over_a_gap_are_named(log: AuditLog, engine: Engine) -> None:
    with engine.begin() as connection, append_only_lifted(connection):
        connection.execute(delete(AuditRecord).where(AuditRecord.id == 3))
        for record_id in (4, 5):
            connection.execute(
                update(AuditRecord).where(AuditRecord.id == record_id).values(id=record_id - 1)
            )
    result = verify(log)
    assert (result.first_broken_id, result.problem) == (3, "does not chain onto record 2")


def test_a_broken_link_is_named(log: AuditLog, engine: Engine) -> None:
    tamper(engine, update(AuditRecord).where(AuditRecord.id == 1).values(prev_hash="f" * 64))
    assert verify(log) == VerifyResult(
        ok=False,
        checked=1,
        first_broken_id=1,
        problem="does not chain onto the start of the log",
    )


@pytest.mark.parametrize("record_id", [4, 1])
def test_an_unreadable_record_is_named(log: AuditLog, engine: Engine, record_id: int) -> None:
    if engine.dialect.name == "sqlite":
        bad = text("UPDATE audit_log SET details = 'not json' WHERE id = :id")
    else:
        bad = text("UPDATE audit_log SET at = 'infinity' WHERE id = :id")
    good = record_id - 1
    tamper(engine, bad.bindparams(id=record_id))
    assert verify(log) == VerifyResult(
        ok=False,
        checked=record_id,
        first_broken_id=record_id,
        problem="a stored value cannot be read back",
        last_id=good or None,
        last_hash=hash_of(log, good) if good else None,
    )


def test_verify_reads_in_batches(
    log: AuditLog, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("referrals.audit.services._VERIFY_BATCH", 2)
    assert verify(log).checked == RECORDS
    tamper(engine, update(AuditRecord).where(AuditRecord.id == 5).values(actor="user:0"))
    assert verify(log).first_broken_id == 5


def test_an_unreadable_record_inside_a_batch_is_found_one_by_one(
    log: AuditLog, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("referrals.audit.services._VERIFY_BATCH", 2)
    if engine.dialect.name == "sqlite":
        bad = text("UPDATE audit_log SET details = 'not json' WHERE id = 4")
    else:
        bad = text("UPDATE audit_log SET at = 'infinity' WHERE id = 4")
    tamper(engine, bad)
    result = verify(log)  # the batch of 3 and 4 cannot be read: record 3 is fine
    assert (result.first_broken_id, result.checked, result.last_id) == (4, 4, 3)


def test_the_test_cleanup_empties_the_log_and_keeps_it_append_only(
    log: AuditLog, engine: Engine
) -> None:
    empty_audit_log(engine)
    assert log.search() == []
    log.record("login.failed", actor="user:1")
    log.session.commit()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(delete(AuditRecord))


def test_stored_json_is_what_was_hashed(log: AuditLog, engine: Engine) -> None:
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT details FROM audit_log WHERE id = 1")).scalar_one()
    details = raw if isinstance(raw, dict) else json.loads(raw)
    assert details == {"reason": "triage", "page": 1}
