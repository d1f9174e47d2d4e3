from __future__ import annotations

import enum
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from referrals.audit.models import AuditRecord
from referrals.audit.services import (
    GENESIS_HASH,
    AuditError,
    AuditLog,
    canonical_json,
    chain_hash,
)
from referrals.health.models import QueueProbe
from tests.referrals.audit.conftest import SteppingClock

HEX64 = re.compile(r"[0-9a-f]{64}")


def count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_records_chain_onto_each_other(audit: AuditLog, session: Session) -> None:
    first = audit.record(
        "login.succeeded", actor="user:12", address="192.0.2.7", details={"method": "totp"}
    )
    second = audit.record("tip.viewed", actor="user:12", subject="tip:0b9e", address="192.0.2.7")
    session.commit()

    assert (first.id, second.id) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert HEX64.fullmatch(first.hash) and HEX64.fullmatch(second.hash)
    assert first.hash != second.hash
    assert second.at > first.at


def test_the_hash_is_an_hmac_of_the_previous_hash_and_the_fields(
    audit: AuditLog, session: Session, audit_key: bytes
) -> None:
    record = audit.record(
        "tip.status_changed",
        actor="user:3",
        subject="tip:7",
        details={"from": "in_triage", "to": "accepted", "urgent": True, "count": 2},
    )
    canonical = canonical_json(
        id=1,
        at=record.at,
        actor="user:3",
        action="tip.status_changed",
        subject="tip:7",
        address=None,
        details={"to": "accepted", "from": "in_triage", "count": 2, "urgent": True},
    )
    assert canonical == (
        '{"action":"tip.status_changed","actor":"user:3","address":null,'
        f'"at":"{record.at.isoformat(timespec="microseconds")}",'
        '"details":{"count":2,"from":"in_triage","to":"accepted","urgent":true},'
        '"id":1,"subject":"tip:7"}'
    )
    assert record.hash == chain_hash(audit_key, GENESIS_HASH, canonical)


def test_the_hashed_form_is_utf8_as_is_and_in_utc_whatever_the_hosts_time_zone(
    session: Session, audit_key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone holding the key can check a record with the format documented above; two
    hosts in different time zones write the same form."""
    manila = timezone(timedelta(hours=8))
    monkeypatch.setenv("TZ", "America/Lima")  # the host's zone, neither UTC nor the clock's
    time.tzset()
    try:
        recorded = AuditLog(
            session, key=audit_key, clock=SteppingClock(datetime(2026, 12, 1, 17, tzinfo=manila))
        ).record("team.created", actor="user:3")
        assert recorded.at == datetime(2026, 12, 1, 9, tzinfo=UTC)
        assert recorded.at.utcoffset() == timedelta(0)  # the time a record says is in UTC
        canonical = canonical_json(
            id=7,
            at=datetime(2026, 12, 1, 17, 0, 0, 5, tzinfo=manila),
            actor="user:3",
            action="team.created",
            subject=None,
            address=None,
            details={"name": "Parañaque"},
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    assert canonical == (
        '{"action":"team.created","actor":"user:3","address":null,'
        '"at":"2026-12-01T09:00:00.000005+00:00","details":{"name":"Parañaque"},'
        '"id":7,"subject":null}'
    )
    assert (
        chain_hash(audit_key, GENESIS_HASH, canonical)
        == hmac.new(
            audit_key, (GENESIS_HASH + canonical).encode("utf-8"), hashlib.sha256
        ).hexdigest()
    )


def test_record_writes_in_the_callers_transaction(
    audit: AuditLog, session: Session, sessions: sessionmaker[Session], clock: SteppingClock
) -> None:
    session.add(QueueProbe(queue_name="default", sent_at=clock.now()))
    audit.record("probe.sent", actor="system")
    session.rollback()
    assert count(sessions, AuditRecord) == 0
    assert count(sessions, QueueProbe) == 0

    session.add(QueueProbe(queue_name="default", sent_at=clock.now()))
    audit.record("probe.sent", actor="system")
    session.commit()
    assert count(sessions, AuditRecord) == 1
    assert count(sessions, QueueProbe) == 1


def test_a_rolled_back_append_leaves_no_gap(audit: AuditLog, session: Session) -> None:
    audit.record("login.failed", actor="user:1")
    session.commit()
    audit.record("login.failed", actor="user:1")
    session.rollback()
    third = audit.record("login.succeeded", actor="user:1")
    session.commit()
    assert third.id == 2
    assert audit.verify().ok


def test_addresses_are_stored_in_their_canonical_form(audit: AuditLog) -> None:
    record = audit.record("login.failed", actor="user:1", address="2001:DB8:0:0::1")
    assert record.address == "2001:db8::1"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"


def test_details_keep_plain_values(audit: AuditLog) -> None:
    record = audit.record(
        "tip.status_changed",
        actor="user:1",
        details={"to": Outcome.ACCEPTED, "note": "x" * 200, "n": -(2**63), "flag": False},
    )
    assert record.details == {"to": "accepted", "note": "x" * 200, "n": -(2**63), "flag": False}
    assert type(record.details["to"]) is str
    assert audit.record("account.enrolled", actor="user:1", details={}).details is None


def test_details_at_their_limits_are_kept(audit: AuditLog) -> None:
    details = {f"k{i}": None for i in range(19)} | {"k" * 64: 2**63 - 1}
    assert audit.record("tip.viewed", actor="user:1", details=details).details == details


NOT_SIMPLE = "only short strings, integers, booleans and None are recorded"


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        (
            {"narrative": "x" * 201},
            "detail 'narrative' is longer than 200 characters: "
            "the audit log records facts, not content",
        ),
        ({"victims": ["a", "b"]}, f"detail 'victims' is a list: {NOT_SIMPLE}"),
        ({"suspect": {"name": "x"}}, f"detail 'suspect' is a dict: {NOT_SIMPLE}"),
        ({"score": 0.5}, f"detail 'score' is a float: {NOT_SIMPLE}"),
        ({"blob": b"bytes"}, f"detail 'blob' is a bytes: {NOT_SIMPLE}"),
        ([("victims", "a")], "details must be a mapping of names to simple values"),
        ({f"k{i}": i for i in range(21)}, "details may have at most 20 keys"),
        ({"Bad Key": 1}, "detail names must be lower-case identifiers of 64 characters"),
        ({"k" * 65: 1}, "detail names must be lower-case identifiers of 64 characters"),
        ({1: "x"}, "detail names must be lower-case identifiers of 64 characters"),
        ({"n": 2**63}, "detail 'n' is out of range"),
        ({"n": -(2**63) - 1}, "detail 'n' is out of range"),
        ({"s": "a\x00b"}, "detail 's' holds a NUL character"),
        ({"s": "\ud800"}, "detail 's' is not valid text"),
    ],
)
def test_details_that_could_carry_content_are_refused(
    audit: AuditLog, details: Any, reason: str
) -> None:
    with pytest.raises(AuditError) as refused:
        audit.record("tip.viewed", actor="user:1", details=details)
    assert str(refused.value) == reason


def test_fields_at_their_longest_are_kept(audit: AuditLog) -> None:
    action, actor, subject = "tip." + "v" * 60, "u" * 120, "s" * 120
    record = audit.record(action, actor=actor, subject=subject)
    assert (record.action, record.actor, record.subject) == (action, actor, subject)


DOTTED = "the action must be dotted lower-case words, e.g. 'tip.viewed'"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"action": "viewed"}, DOTTED),
        ({"action": "Tip.Viewed"}, DOTTED),
        ({"action": ""}, "action must be a non-empty string"),
        ({"action": "tip." + "v" * 61}, "action is longer than 64 characters"),
        ({"action": "tip.viewed\n"}, "action holds control characters"),
        ({"actor": ""}, "actor must be a non-empty string"),
        ({"actor": 12}, "actor must be a non-empty string"),
        ({"actor": "u" * 121}, "actor is longer than 120 characters"),
        ({"actor": "user:1\nuser:2"}, "actor holds control characters"),
        ({"subject": ""}, "subject must be a non-empty string"),
        ({"subject": "s" * 121}, "subject is longer than 120 characters"),
        ({"subject": "tip:1\x1b"}, "subject holds control characters"),
        ({"address": "not an address"}, "'not an address' is not an IP address"),
        ({"address": "1" * 100}, f"{'1' * 64!r} is not an IP address"),
    ],
)
def test_malformed_fields_are_refused(audit: AuditLog, fields: dict[str, Any], reason: str) -> None:
    arguments: dict[str, Any] = {"action": "tip.viewed", "actor": "user:1", **fields}
    with pytest.raises(AuditError) as refused:
        audit.record(**arguments)
    assert str(refused.value) == reason


def test_a_short_key_is_refused(session: Session, clock: SteppingClock) -> None:
    for key in (b"k" * 31, "k" * 32):
        with pytest.raises(AuditError, match="^the audit key must be at least 32 bytes$"):
            AuditLog(session, key=key, clock=clock)  # type: ignore[arg-type]


def test_a_naive_clock_is_refused(session: Session, audit_key: bytes) -> None:
    class NaiveClock:
        def now(self) -> Any:
            return SteppingClock().now().replace(tzinfo=None)

    with pytest.raises(AuditError, match="^the clock gave a naive time$"):
        AuditLog(session, key=audit_key, clock=NaiveClock()).record("x.y", actor="system")


@pytest.fixture
def populated(audit: AuditLog, session: Session) -> AuditLog:
    audit.record("login.failed", actor="user:1", address="192.0.2.1")  # 1
    audit.record("login.succeeded", actor="user:1", address="192.0.2.1")  # 2
    audit.record("tip.viewed", actor="user:1", subject="tip:a")  # 3
    audit.record("tip.status_changed", actor="user:2", subject="tip:a")  # 4
    audit.record("login.succeeded", actor="user:2")  # 5
    audit.record("tip_x.viewed", actor="user:2", subject="tip:b")  # 6
    audit.record("tipax.viewed", actor="user:2", subject="tip:b")  # 7
    session.commit()
    return audit


def ids(records: list[AuditRecord]) -> list[int]:
    return [record.id for record in records]


def test_search_is_newest_first_and_filters(populated: AuditLog) -> None:
    assert ids(populated.search()) == [7, 6, 5, 4, 3, 2, 1]
    assert ids(populated.search(actor="user:1")) == [3, 2, 1]
    assert ids(populated.search(action="login.succeeded")) == [5, 2]
    assert ids(populated.search(action="login.")) == [5, 2, 1]
    assert ids(populated.search(action="tip_x.")) == [6]  # "_" is not a wildcard
    assert ids(populated.search(action="tip.")) == [4, 3]
    assert ids(populated.search(action="login")) == []
    assert ids(populated.search(subject="tip:a")) == [4, 3]
    assert ids(populated.search(actor="user:2", subject="tip:b")) == [7, 6]


def test_search_by_time(populated: AuditLog) -> None:
    third, second = populated.search(actor="user:1", limit=2)
    assert ids(populated.search(since=second.at, until=third.at)) == [2]
    assert ids(populated.search(since=third.at + timedelta(microseconds=1), actor="user:1")) == []


def test_search_pages_by_id(populated: AuditLog) -> None:
    page = populated.search(limit=3)
    assert ids(page) == [7, 6, 5]
    page = populated.search(limit=3, before_id=page[-1].id)
    assert ids(page) == [4, 3, 2]
    page = populated.search(limit=3, before_id=page[-1].id)
    assert ids(page) == [1]
    assert ids(populated.search(limit=0)) == [7]
    assert len(populated.search(limit=10_000)) == 7


def test_search_gives_the_newest_hundred_unless_told(audit: AuditLog, session: Session) -> None:
    for number in range(101):
        audit.record("tip.viewed", actor=f"user:{number}")
    session.commit()
    newest = audit.search()
    assert len(newest) == 100 and (newest[0].id, newest[-1].id) == (101, 2)
