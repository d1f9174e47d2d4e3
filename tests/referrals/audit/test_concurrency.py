"""Appends from several connections at once keep one unbroken chain and lose nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from referrals.audit.models import AuditRecord
from referrals.audit.services import AuditLog
from tests.referrals.audit.conftest import SteppingClock

WRITERS = 8
EACH = 25


def test_concurrent_writers_keep_one_chain(
    sessions: sessionmaker[Session], audit_key: bytes
) -> None:
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        clock = SteppingClock()
        with sessions() as session:
            audit = AuditLog(session, key=audit_key, clock=clock)
            start.wait()
            for sequence in range(EACH):
                audit.record("tip.viewed", actor=f"user:{number}", details={"sequence": sequence})
                session.commit()

    with ThreadPoolExecutor(WRITERS) as pool:
        for future in [pool.submit(writer, number) for number in range(WRITERS)]:
            future.result()

    with sessions() as session:
        result = AuditLog(session, key=audit_key, clock=SteppingClock()).verify()
        assert result.ok, result
        assert result.checked == WRITERS * EACH
        written = {
            (actor, details["sequence"])
            for actor, details in session.execute(select(AuditRecord.actor, AuditRecord.details))
        }
    assert written == {
        (f"user:{number}", sequence) for number in range(WRITERS) for sequence in range(EACH)
    }


def test_an_append_waits_for_the_open_one_to_end(
    sessions: sessionmaker[Session], audit_key: bytes
) -> None:
    """The second writer must read the last record only after the first commits: reading it
    earlier would chain both onto the same predecessor."""
    clock = SteppingClock()
    with sessions() as first, sessions() as second:
        AuditLog(first, key=audit_key, clock=clock).record("login.succeeded", actor="user:1")
        first.commit()
        AuditLog(first, key=audit_key, clock=clock).record("tip.viewed", actor="user:1")
        # ... not committed yet: the second writer has to wait.
        done = threading.Event()

        def append() -> None:
            AuditLog(second, key=audit_key, clock=clock).record("tip.viewed", actor="user:2")
            second.commit()
            done.set()

        thread = threading.Thread(target=append)
        thread.start()
        assert not done.wait(0.5)
        first.commit()
        assert done.wait(30)
        thread.join()

    with sessions() as session:
        audit = AuditLog(session, key=audit_key, clock=clock)
        assert audit.verify().ok
        assert [(r.id, r.actor) for r in audit.search()] == [
            (3, "user:2"),
            (2, "user:1"),
            (1, "user:1"),
        ]


def test_an_append_after_a_rolled_back_one_takes_its_place(
    sessions: sessionmaker[Session], audit_key: bytes
) -> None:
    clock = SteppingClock()
    with sessions() as first, sessions() as second:
        AuditLog(first, key=audit_key, clock=clock).record("tip.viewed", actor="user:1")
        done = threading.Event()

        def append() -> None:
            AuditLog(second, key=audit_key, clock=clock).record("tip.viewed", actor="user:2")
            second.commit()
            done.set()

        thread = threading.Thread(target=append)
        thread.start()
        assert not done.wait(0.5)
        first.rollback()
        assert done.wait(30)
        thread.join()

    with sessions() as session:
        audit = AuditLog(session, key=audit_key, clock=clock)
        assert audit.verify().ok
        assert [(r.id, r.actor) for r in audit.search()] == [(1, "user:2")]
