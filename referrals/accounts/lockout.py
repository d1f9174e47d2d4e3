"""Counting failed sign-in attempts, and locking after too many.

Two things can be locked: an account for every browser it has not signed in with before
(``User``), and one trusted browser of an account (``TrustedDevice``). Both keep
``failed_logins`` and ``locked_until``, and both are counted the same way: in one SQL
statement, so concurrent failures all count, and starting again from one when a lock has run
out, so one wrong password after a lockout does not lock the account again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, literal, null, update
from sqlalchemy.orm import Session

from referrals.accounts.models import TrustedDevice, User
from referrals.database import UTCDateTime

LOCK_AFTER_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)

Lockable = User | TrustedDevice
COLUMNS = ["failed_logins", "locked_until"]


@dataclass(frozen=True)
class Failure:
    """A failed attempt, counted."""

    failures: int  # in a row, since the last success or the last lock ran out
    locked_until: datetime | None  # set when it is (now) locked
    locked_now: bool  # this very failure locked it


def count_failure(session: Session, row: Lockable, *, now: datetime) -> Failure:
    """Add one failure to the row's count, atomically, and lock it at the threshold.

    The caller commits (with its audit record).
    """
    model = type(row)
    until = now + LOCK_DURATION
    lock_ran_out = and_(model.locked_until.is_not(None), model.locked_until <= now)
    still_locked = and_(model.locked_until.is_not(None), model.locked_until > now)
    counted = case((lock_ran_out, 1), else_=model.failed_logins + 1)
    counted_row = session.execute(
        update(model)
        .where(model.id == row.id)
        .values(
            failed_logins=counted,
            locked_until=case(
                # A lock is never pushed further by failures during it.
                (still_locked, model.locked_until),
                (counted >= LOCK_AFTER_FAILURES, literal(until, UTCDateTime())),
                else_=null(),
            ),
        )
        .returning(model.failed_logins, model.locked_until)
        .execution_options(synchronize_session=False)  # pragma: no mutate (None: no sync too)
    ).one()
    # The row in the session now differs from the database.
    session.expire(row, COLUMNS)  # pragma: no mutate (expiring all only costs a reload)
    failures, locked_until = counted_row
    return Failure(
        failures=failures,
        locked_until=locked_until if locked_until is not None and locked_until > now else None,
        locked_now=locked_until is not None and locked_until == until,
    )


def reset(session: Session, row: Lockable) -> None:
    """Forget the failures (after a success, or an administrator's unlock)."""
    model = type(row)
    session.execute(
        update(model)
        .where(model.id == row.id)
        .values(failed_logins=0, locked_until=None)
        .execution_options(synchronize_session=False)  # pragma: no mutate (None: no sync too)
    )
    session.expire(row, COLUMNS)  # pragma: no mutate (expiring all only costs a reload)


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def minutes_left(locked_until: datetime, now: datetime) -> int:
    """Whole minutes until the lock runs out, rounded up (never "0 minutes")."""
    return max(1, math.ceil((locked_until - now).total_seconds() / 60))
