"""Writing, verifying and searching the audit log.

Each record's ``hash`` is ``HMAC-SHA-256(key, prev_hash || canonical JSON of its fields)``,
``prev_hash`` being the hash of the record before it (64 zeros for the first). The key is not
in the database: someone who can write to the database but does not hold the key can change,
remove or insert records, but cannot make the chain whole again, and ``AuditLog.verify``
names the first record that does not fit.

What the chain cannot show by itself is records cut off the *end* of the log: keep the
``last_id``/``last_hash`` that ``verify`` reports somewhere else (a ticket, a printout) and
compare them next time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from referrals.audit.models import AuditRecord
from referrals.clock import Clock

GENESIS_HASH = "0" * 64
MIN_KEY_BYTES = 32

# Any constant will do, as long as nothing else in the database takes the same advisory lock.
_APPEND_LOCK = 0x7469706C696E6541  # "tiplineA"

_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_DETAIL_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_DETAIL_KEYS = 20
MAX_DETAIL_CHARS = 200
_INT_RANGE = range(-(2**63), 2**63)  # what every JSON reader and both databases keep exactly

_MAX_SEARCH = 500
_VERIFY_BATCH = 1000

DetailValue = str | int | bool | None


class AuditError(ValueError):
    """An audit record that may not be written as asked; the message says why."""


@dataclass(frozen=True)
class VerifyResult:
    """What ``AuditLog.verify`` found.

    Attributes:
        ok: every record is intact and chained onto the one before, with no gap.
        checked: records checked (up to and including the first broken one).
        first_broken_id: the id of the first record that does not fit, if any.
        problem: what is wrong with it, in words.
        last_id: the id of the last record read (for comparing with an earlier run: records
            cut off the end leave no other trace).
        last_hash: that record's hash.
    """

    ok: bool
    checked: int
    first_broken_id: int | None = None
    problem: str | None = None
    last_id: int | None = None
    last_hash: str | None = None


#: Text is hashed as written (UTF-8), not \u-escaped. A name rather than the literal in the
#: call: mutation testing would otherwise try ``ensure_ascii=None``, which is the same thing.
UTF8_AS_IS = False


def canonical_json(
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str | None,
    address: str | None,
    details: Any,
) -> str:
    """The fields of a record as hashed: sorted keys, no spaces, UTF-8 as is."""
    fields = {
        "id": id,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "address": address,
        "details": details,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=UTF8_AS_IS)


def chain_hash(key: bytes, prev_hash: str, canonical: str) -> str:
    """The keyed hash that links a record to the one before it."""
    message = (
        prev_hash.encode("ascii")  # pragma: no mutate (codec names ignore case)
        + canonical.encode("utf-8")  # pragma: no mutate (codec names ignore case)
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class AuditLog:
    """The audit log: append, verify, search.

    Args:
        session: the caller's database session. ``record`` writes in the caller's transaction
            and never commits: the audited action and its record are committed together, or
            neither is. An event with no other write to go with it (a failed login, say) is
            recorded and then committed by the caller on its own.
        key: the secret HMAC key of the chain (at least 32 bytes). The same key must be used
            for every record and for ``verify``.
        clock: the clock the records' times are read from.
    """

    def __init__(self, session: Session, *, key: bytes, clock: Clock) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise AuditError(f"the audit key must be at least {MIN_KEY_BYTES} bytes")
        self.session = session
        self._key = key
        self.clock = clock

    def record(
        self,
        action: str,
        *,
        actor: str,
        subject: str | None = None,
        address: str | None = None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> AuditRecord:
        """Append a record to the log, in the caller's transaction (not committed here).

        Appends are serialised from here until the caller's transaction ends (an advisory
        lock on PostgreSQL, the write lock on SQLite), so record last, just before committing.
        On PostgreSQL this needs READ COMMITTED (the default); under a stricter isolation a
        concurrent append makes the flush fail rather than fork the chain.

        Args:
            action: what happened, dotted: ``login.failed``, ``tip.viewed``, ….
            actor: who did it: ``user:12``, ``agency:3``, ``system``, ``cli:root``.
            subject: what it was done to: ``tip:<uuid>``, ``user:5``, ``agency:2``.
            address: the client's IP address.
            details: a few facts, never content: at most 20 keys (lower-case identifiers),
                each value a string of at most 200 characters, an integer, a bool or None.

        Returns:
            The record, flushed (it has its id and hash).

        Raises:
            AuditError: a field is malformed, too long, or looks like content.
        """
        _check_text("action", action, 64)
        if not _ACTION.fullmatch(action):
            raise AuditError("the action must be dotted lower-case words, e.g. 'tip.viewed'")
        _check_text("actor", actor, 120)
        if subject is not None:
            _check_text("subject", subject, 120)
        clean_address = _clean_address(address)
        clean_details = _clean_details(details)
        at = self.clock.now()
        if at.tzinfo is None:
            raise AuditError("the clock gave a naive time")
        at = at.astimezone(UTC)

        self._lock_appends()
        last = self.session.execute(
            select(AuditRecord.id, AuditRecord.hash)
            .order_by(AuditRecord.id.desc())
            .limit(1)  # pragma: no mutate (first() reads one row whatever the limit)
        ).first()
        record_id, prev_hash = (1, GENESIS_HASH) if last is None else (last.id + 1, last.hash)
        canonical = canonical_json(
            id=record_id,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            address=clean_address,
            details=clean_details,
        )
        entry = AuditRecord(
            id=record_id,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            address=clean_address,
            details=clean_details,
            prev_hash=prev_hash,
            hash=chain_hash(self._key, prev_hash, canonical),
        )
        self.session.add(entry)
        self.session.flush()
        return entry

    def verify(self) -> VerifyResult:
        """Check the whole chain, oldest first, a batch at a time.

        Returns:
            ``ok`` with the number of records checked, or the first record that is missing
            its predecessor, does not chain onto it, or whose hash does not match its content.
        """
        columns = (
            AuditRecord.id,
            AuditRecord.at,
            AuditRecord.actor,
            AuditRecord.action,
            AuditRecord.subject,
            AuditRecord.address,
            AuditRecord.details,
            AuditRecord.prev_hash,
            AuditRecord.hash,
        )
        checked = 0
        last_id: int | None = None
        last_hash = GENESIS_HASH
        batch = _VERIFY_BATCH
        while True:
            # SQLite reads a table in id order anyway; PostgreSQL moves a changed row to the
            # end: only there does dropping the order make a tampered log read wrong (checked
            # by hand: test_tampering.py on PostgreSQL).
            query = (
                select(*columns)
                .order_by(AuditRecord.id)  # pragma: no mutate (PostgreSQL only: see above)
                .limit(batch)
            )
            if last_id is not None:
                query = query.where(AuditRecord.id > last_id)
            try:
                rows = self.session.execute(query).all()
            except (ValueError, TypeError, DataError):
                # A stored value no longer parses (a timestamp or JSON edited by hand): go
                # one record at a time to find which.
                if batch > 1:
                    batch = 1
                    continue
                broken = self._next_id(last_id)
                return VerifyResult(
                    ok=False,
                    checked=checked + 1,
                    first_broken_id=broken,
                    problem="a stored value cannot be read back",
                    last_id=last_id,
                    last_hash=None if last_id is None else last_hash,
                )
            if not rows:
                break
            for row in rows:
                checked += 1
                problem = self._problem(row, last_id, last_hash)
                if problem is not None:
                    return VerifyResult(
                        ok=False,
                        checked=checked,
                        first_broken_id=row.id,
                        problem=problem,
                        last_id=last_id,
                        last_hash=None if last_id is None else last_hash,
                    )
                last_id, last_hash = row.id, row.hash
        return VerifyResult(
            ok=True,
            checked=checked,
            last_id=last_id,
            last_hash=None if last_id is None else last_hash,
        )

    def search(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        """Records matching every filter given, newest first.

        Args:
            actor: exactly this actor.
            action: exactly this action or, ending with a dot (``"login."``), every action
                starting with it.
            subject: exactly this subject.
            since: at or after this time.
            until: before this time.
            limit: at most this many (1 to 500).
            before_id: only records older than this id: pass the last id of a page to get
                the next one.
        """
        query = select(AuditRecord).order_by(AuditRecord.id.desc())
        query = query.limit(max(1, min(limit, _MAX_SEARCH)))
        if actor is not None:
            query = query.where(AuditRecord.actor == actor)
        if action is not None:
            if action.endswith("."):
                query = query.where(AuditRecord.action.startswith(action, autoescape=True))
            else:
                query = query.where(AuditRecord.action == action)
        if subject is not None:
            query = query.where(AuditRecord.subject == subject)
        if since is not None:
            query = query.where(AuditRecord.at >= since)
        if until is not None:
            query = query.where(AuditRecord.at < until)
        if before_id is not None:
            query = query.where(AuditRecord.id < before_id)
        return list(self.session.scalars(query))

    def _lock_appends(self) -> None:
        """Hold every other append off until this transaction ends, before reading the last
        record: otherwise two writers could both read the same predecessor."""
        dialect = self.session.get_bind().dialect.name
        # Mutants of this branch are caught only on PostgreSQL (test_concurrency.py with
        # TIPLINE_TEST_DATABASE_URL set), not by the SQLite suite mutmut runs: checked by hand
        # (the SQL in lower case means the same).
        if dialect == "postgresql":  # pragma: no mutate (PostgreSQL only: see above)
            self.session.execute(  # pragma: no mutate (PostgreSQL only: see above)
                text("SELECT pg_advisory_xact_lock(:lock)"),  # pragma: no mutate (see above)
                {"lock": _APPEND_LOCK},  # pragma: no mutate (PostgreSQL only: see above)
            )
        elif dialect == "sqlite":
            # pysqlite opens a (deferred) transaction only at the first write, and a deferred
            # transaction takes the write lock only when it writes: a write that changes no
            # row takes it now, so the read below sees the latest committed record. (A
            # transaction that has written already holds the lock.) It touches no row, so the
            # append-only trigger does not fire.
            self.session.execute(
                text("UPDATE audit_log SET id = id WHERE 0")  # pragma: no mutate (SQL ignores case)
            )
        # Elsewhere the unique prev_hash still refuses a fork; the flush fails instead.

    def _next_id(self, after: int | None) -> int | None:
        query = (
            select(AuditRecord.id)
            .order_by(AuditRecord.id)  # pragma: no mutate (PostgreSQL only: as in verify)
            .limit(1)  # pragma: no mutate (scalar() reads one row whatever the limit)
        )
        if after is not None:
            query = query.where(AuditRecord.id > after)
        return self.session.scalar(query)

    def _problem(self, row: Any, last_id: int | None, last_hash: str) -> str | None:
        if last_id is None and row.id != 1:
            return f"records missing before record {row.id}"
        if last_id is not None and row.id != last_id + 1:
            return f"records missing between {last_id} and {row.id}"
        if not isinstance(row.prev_hash, str) or not hmac.compare_digest(
            row.prev_hash.encode(), last_hash.encode()
        ):
            if last_id is None:
                return "does not chain onto the start of the log"
            return f"does not chain onto record {last_id}"
        canonical = canonical_json(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            address=row.address,
            details=row.details,
        )
        expected = chain_hash(self._key, row.prev_hash, canonical)
        if not isinstance(row.hash, str) or not hmac.compare_digest(
            row.hash.encode(), expected.encode()
        ):
            return "hash does not match its content"
        return None


def _check_text(name: str, value: object, max_chars: int) -> None:
    if not isinstance(value, str) or not value:
        raise AuditError(f"{name} must be a non-empty string")
    if len(value) > max_chars:
        raise AuditError(f"{name} is longer than {max_chars} characters")
    if not value.isprintable():
        raise AuditError(f"{name} holds control characters")


def _clean_address(address: str | None) -> str | None:
    if address is None:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise AuditError(f"{address[:64]!r} is not an IP address") from None


def _clean_details(details: Mapping[str, DetailValue] | None) -> dict[str, DetailValue] | None:
    """The details as stored, or AuditError if they could carry content."""
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise AuditError("details must be a mapping of names to simple values")
    if len(details) > MAX_DETAIL_KEYS:
        raise AuditError(f"details may have at most {MAX_DETAIL_KEYS} keys")
    clean: dict[str, DetailValue] = {}
    for name, value in details.items():
        if not isinstance(name, str) or not _DETAIL_KEY.fullmatch(name):
            raise AuditError("detail names must be lower-case identifiers of 64 characters")
        clean[name] = _clean_detail(name, value)
    return clean or None


def _clean_detail(name: str, value: object) -> DetailValue:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value not in _INT_RANGE:
            raise AuditError(f"detail {name!r} is out of range")
        return int(value)  # an IntEnum is kept as its number
    if isinstance(value, str):
        if len(value) > MAX_DETAIL_CHARS:
            raise AuditError(
                f"detail {name!r} is longer than {MAX_DETAIL_CHARS} characters: "
                "the audit log records facts, not content"
            )
        if "\x00" in value:
            raise AuditError(f"detail {name!r} holds a NUL character")
        try:
            encoded = value.encode("utf-8")  # pragma: no mutate (codec names ignore case)
        except UnicodeEncodeError:
            raise AuditError(f"detail {name!r} is not valid text") from None
        # A plain str, whatever subclass came in.
        return encoded.decode("utf-8")  # pragma: no mutate (codec names ignore case)
    raise AuditError(
        f"detail {name!r} is a {type(value).__name__}: only short strings, integers, "
        "booleans and None are recorded"
    )
