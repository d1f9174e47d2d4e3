from __future__ import annotations

import enum
import re
from datetime import timedelta
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


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        ({"narrative": "x" * 201}, "longer than 200"),
        ({"victims": ["a", "b"]}, "only short strings"),
        ({"suspect": {"name": "x"}}, "only short strings"),
        ({"score": 0.5}, "only short strings"),
        ({"blob": b"bytes"}, "only short strings"),
        ({f"k{i}": i for i in range(21)}, "at most 20 keys"),
        ({"Bad Key": 1}, "lower-case identifiers"),
        ({"k" * 65: 1}, "lower-case identifiers"),
        ({"n": 2**63}, "out of range"),
        ({"s": "a\x00b"}, "NUL"),
        ({"s": "\ud800"}, "not valid text"),
    ],
)
def test_details_that_could_carry_content_are_refused(
    audit: AuditLog, details: Any, reason: str
) -> None:
    with pytest.raises(AuditError, match=reason):
        audit.record("tip.viewed", actor="user:1", details=details)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"action": "viewed"}, "dotted"),
        ({"action": "Tip.Viewed"}, "dotted"),
        ({"action": "tip." + "v" * 61}, "longer than 64"),
        ({"actor": ""}, "non-empty"),
        ({"actor": "u" * 121}, "longer than 120"),
        ({"actor": "user:1\nuser:2"}, "control characters"),
        ({"subject": "s" * 121}, "longer than 120"),
        ({"address": "not an address"}, "not an IP address"),
    ],
)
def test_malformed_fields_are_refused(audit: AuditLog, fields: dict[str, Any], reason: str) -> None:
    arguments: dict[str, Any] = {"action": "tip.viewed", "actor": "user:1", **fields}
    with pytest.raises(AuditError, match=reason):
        audit.record(**arguments)


def test_a_short_key_is_refused(session: Session, clock: SteppingClock) -> None:
    with pytest.raises(AuditError, match="at least 32 bytes"):
        AuditLog(session, key=b"k" * 31, clock=clock)


def test_a_naive_clock_is_refused(session: Session, audit_key: bytes) -> None:
    class NaiveClock:
        def now(self) -> Any:
            return SteppingClock().now().replace(tzinfo=None)

    with pytest.raises(AuditError, match="naive"):
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
