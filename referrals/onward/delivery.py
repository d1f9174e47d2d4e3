"""Talking to other centres that run this system: delivering packages to their partner API,
and fetching the feedback (and the status) they give back. Run by workers, never by a web
process, and bounded whatever the other side does: each answer is read up to a size, each
poll within a deadline and a number of pages and items, and everything read is checked
against the shapes this system gives before it is used.

A delivery is idempotent (the package's Idempotency-Key: the other centre answers a repeat
with its first receipt) and retried on faults that may pass (no answer, 429, 5xx) a bounded
number of times, then left ``failed`` with its fault for operators; a refusal (4xx) is final
and shown to the lead with the other centre's reason.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from crypto import CryptoError, Keyring
from crypto.secretbox import SecretBox
from referrals.audit.services import AuditLog
from referrals.casework.lifecycle import FEEDBACK_RECEIVED
from referrals.casework.models import Referral, ReferralEvent
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.feedback.services import parse_feedback
from referrals.intake.models import AgencyKey
from referrals.onward.models import (
    Correspondent,
    OnwardPackage,
    PackageStatus,
    ReceivedFeedback,
    token_context,
)

logger = logging.getLogger(__name__)

#: Tries of one delivery before it is left failed (the job's retries, then the sweep's).
MAX_ATTEMPTS = 8
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a page of 50 feedback items is well under 1 MiB
POLL_DEADLINE = 120.0  # seconds one correspondent's poll may take, all requests together
PAGE_ITEMS = 50
FEEDBACK_PAGES = 10  # pages of feedback fetched per poll: the rest next time
STATUS_CHECKS = 100  # delivered packages whose status is asked per poll
FINAL_REMOTE = ("closed", "declined", "rejected")
_REMOTE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_TRACKING = re.compile(r"[A-Za-z0-9-]{1,40}")
_STATUS = re.compile(r"[a-z_]{1,24}")
_MAX_ID = 2**31 - 1


class DeliveryNotDone(RuntimeError):
    """A fault that may pass (no answer, too busy, an error on their side): the job is
    retried. Its message names the fault, never a token or content."""


class Unusable(ValueError):
    """The other side answered something this system never gives (too big, too slow, not
    the shape it should be); the message says what, never quoting it."""


@dataclass(frozen=True)
class PollReport:
    feedback: int  # new feedback items stored
    statuses: int  # package statuses that changed


class Delivery:
    """Args:
    session_factory: opens the sessions it works in (it commits).
    clock: the clock.
    keyring: the intake keyring (checks the feedback's signature).
    secret_box: opens the correspondents' tokens.
    audit_key: the audit log's key.
    transport: for tests only (an httpx transport); None: the network.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        clock: Clock,
        keyring: Keyring,
        secret_box: SecretBox,
        audit_key: bytes,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.sessions = session_factory
        self.clock = clock
        self.keyring = keyring
        self.secret_box = secret_box
        self.audit_key = audit_key
        self.transport = transport

    # -- packages out -----------------------------------------------------------------------

    def deliver(self, package_id: int) -> str | None:
        """Deliver the package if it is still to be delivered; returns its status after.

        Raises:
            DeliveryNotDone: a fault that may pass, with attempts left (retry).
        """
        with self.sessions() as session:
            package = session.get(OnwardPackage, package_id)
            if package is None or package.status != PackageStatus.SENDING.value:
                return package.status if package is not None else None
            correspondent = session.get(Correspondent, package.agency_id)
            if correspondent is None:
                package.status = PackageStatus.SEALED.value
                package.fault = "the recipient has no endpoint any more: give it by hand"
                session.commit()
                return package.status
            # Counted before the request: a worker killed while sending still used a try.
            package.attempts += 1
            package.attempted_at = self.clock.now()
            attempts = package.attempts
            base_url = correspondent.base_url
            token = self._token(correspondent)
            body = bytes(package.armored)
            key = package.idempotency_key
            session.commit()
        deadline = time.monotonic() + POLL_DEADLINE
        try:
            with self._client(base_url, token) as client:
                status, answer = _exchange(
                    client,
                    "POST",
                    "/api/v1/tips",
                    deadline,
                    content=body,
                    headers={"Content-Type": "application/pgp-encrypted", "Idempotency-Key": key},
                )
        except (httpx.HTTPError, Unusable) as exc:
            return self._not_done(package_id, attempts, f"no usable answer ({_named(exc)})")
        if status == 202:
            return self._delivered(package_id, answer)
        fault = f"HTTP {status}: {_error_message(answer)}"
        if status == 429 or status >= 500:
            return self._not_done(package_id, attempts, fault)
        return self._finish(package_id, PackageStatus.REFUSED, fault)

    def stale(self, *, older_than: timedelta, limit: int = 100) -> list[int]:
        """Packages still to be delivered whose last try (or making, if none) is older than
        ``older_than`` (no job carries them on any more: lost, or out of the job's retries),
        with tries left."""
        last = func.coalesce(OnwardPackage.attempted_at, OnwardPackage.created_at)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(OnwardPackage.id)
                    .where(
                        OnwardPackage.status == PackageStatus.SENDING.value,
                        OnwardPackage.attempts < MAX_ATTEMPTS,
                        last < self.clock.now() - older_than,
                    )
                    .order_by(OnwardPackage.id)
                    .limit(limit)
                )
            )

    def _delivered(self, package_id: int, receipt: Any) -> str:
        remote_id = receipt.get("id") if isinstance(receipt, dict) else None
        number = receipt.get("tracking_number") if isinstance(receipt, dict) else None
        status = receipt.get("status") if isinstance(receipt, dict) else None
        if not (
            isinstance(remote_id, str)
            and _REMOTE_ID.fullmatch(remote_id)
            and (number is None or (isinstance(number, str) and _TRACKING.fullmatch(number)))
            and (status is None or (isinstance(status, str) and _STATUS.fullmatch(status)))
        ):
            return self._finish(
                package_id, PackageStatus.FAILED, "a receipt this system does not give"
            )
        with self.sessions() as session:
            now = self.clock.now()
            session.execute(
                update(OnwardPackage)
                .where(OnwardPackage.id == package_id)
                .values(
                    status=PackageStatus.DELIVERED.value,
                    delivered_at=now,
                    remote_tip_id=remote_id,
                    remote_tracking_number=number,
                    remote_status=status,
                    remote_status_at=now,
                    fault=None,
                )
            )
            package = session.get(OnwardPackage, package_id)
            assert package is not None  # noqa: S101 - it was there before the request
            self._audit(session).record(
                "package.delivered",
                actor="system",
                subject=f"referral:{package.referral_id}",
                details={"package": package_id, "agency": package.agency_id},
            )
            session.commit()
        return PackageStatus.DELIVERED.value

    def _not_done(self, package_id: int, attempts: int, fault: str) -> str:
        if attempts >= MAX_ATTEMPTS:
            return self._finish(
                package_id, PackageStatus.FAILED, f"{fault}; gave up after {attempts} tries"
            )
        with self.sessions() as session:
            session.execute(
                update(OnwardPackage).where(OnwardPackage.id == package_id).values(fault=fault)
            )
            session.commit()
        raise DeliveryNotDone(fault)

    def _finish(self, package_id: int, status: PackageStatus, fault: str) -> str:
        with self.sessions() as session:
            session.execute(
                update(OnwardPackage)
                .where(OnwardPackage.id == package_id)
                .values(status=status.value, fault=fault[:500])
            )
            package = session.get(OnwardPackage, package_id)
            assert package is not None  # noqa: S101
            self._audit(session).record(
                f"package.{status.value}",
                actor="system",
                subject=f"referral:{package.referral_id}",
                details={"package": package_id, "agency": package.agency_id},
            )
            session.commit()
        logger.warning("package %s %s: %s", package_id, status.value, fault[:200])
        return status.value

    # -- feedback in ------------------------------------------------------------------------

    def correspondents(self) -> list[int]:
        with self.sessions() as session:
            return list(session.scalars(select(Correspondent.agency_id)))

    def poll_all(self) -> PollReport:
        """Poll every correspondent in turn (a fault with one is recorded on it and does not
        stop the others)."""
        feedback = statuses = 0
        for agency_id in self.correspondents():
            report = self.poll(agency_id)
            feedback += report.feedback
            statuses += report.statuses
        return PollReport(feedback, statuses)

    def poll(self, agency_id: int) -> PollReport:
        """Fetch the correspondent's new feedback for this centre and the status of the
        packages delivered to it, within ``POLL_DEADLINE``; a fault (theirs or ours) is
        recorded on the correspondent for operators, and the next poll starts after the last
        item stored."""
        with self.sessions() as session:
            correspondent = session.get(Correspondent, agency_id)
            if correspondent is None:
                return PollReport(0, 0)
            base_url, cursor = correspondent.base_url, correspondent.feedback_cursor
            token = self._token(correspondent)
        deadline = time.monotonic() + POLL_DEADLINE
        stored = changed = 0
        fault = None
        try:
            with self._client(base_url, token) as client:
                for _ in range(FEEDBACK_PAGES):
                    status, page = _exchange(
                        client,
                        "GET",
                        "/api/v1/feedback",
                        deadline,
                        params={"cursor": str(cursor), "limit": str(PAGE_ITEMS)},
                    )
                    if status != 200 or not isinstance(page, dict):
                        raise Unusable(f"HTTP {status} for its feedback")
                    items = page.get("feedback")
                    if not isinstance(items, list):
                        raise Unusable("a feedback page this system does not give")
                    for item in items[:PAGE_ITEMS]:
                        remote_id, armored = _item(item, after=cursor)
                        stored += self._store(agency_id, remote_id, armored)
                        cursor = remote_id
                    if not items or page.get("next") is None:
                        break
                changed = self._statuses(client, agency_id, deadline)
        except (httpx.HTTPError, Unusable) as exc:
            fault = f"polling stopped: {_named(exc)}"
        except Exception as exc:  # noqa: BLE001 - recorded for operators; the others go on
            fault = f"polling failed on our side ({type(exc).__name__})"
            logger.exception("correspondent %s: polling failed", agency_id)
        if fault is not None:
            logger.warning("correspondent %s: %s", agency_id, fault)
        with self.sessions() as session:
            session.execute(
                update(Correspondent)
                .where(Correspondent.agency_id == agency_id)
                .values(polled_at=self.clock.now(), fault=fault)
            )
            session.commit()
        return PollReport(stored, changed)

    def _store(self, agency_id: int, remote_id: int, armored: bytes) -> int:
        """Store one item (once, whatever repeats) and move the cursor past it, together."""
        with self.sessions() as session:
            session.execute(
                update(Correspondent)
                .where(Correspondent.agency_id == agency_id)
                .values(feedback_cursor=remote_id)
            )
            document, fault = self._verify(session, agency_id, armored)
            package = None
            if document is not None:
                # Which package it is about, by the tips the signed document names (not the
                # unsigned list around it).
                named = [str(tip["id"]) for tip in document.get("tips", [])][:100]
                if named:
                    package = session.scalars(
                        select(OnwardPackage).where(
                            OnwardPackage.agency_id == agency_id,
                            OnwardPackage.remote_tip_id.in_(named),
                        )
                    ).first()
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            inserted = session.execute(
                dialect.insert(ReceivedFeedback)
                .values(
                    agency_id=agency_id,
                    remote_id=remote_id,
                    package_id=package.id if package is not None else None,
                    armored=armored,
                    received_at=self.clock.now(),
                    verified=document is not None,
                    fault=fault,
                )
                .on_conflict_do_nothing()
            )
            if rows_matched(inserted) == 0:
                session.commit()  # held already: only the cursor moves
                return 0
            if package is not None:
                referral = session.get(Referral, package.referral_id)
                assert referral is not None  # noqa: S101 - a package's referral stays
                session.add(
                    ReferralEvent(
                        referral_id=referral.id,
                        at=self.clock.now(),
                        actor_id=None,
                        transition=FEEDBACK_RECEIVED,
                        from_stage=referral.stage,
                        to_stage=referral.stage,
                        details={"package": package.external_reference},
                    )
                )
            self._audit(session).record(
                "feedback.received",
                actor=f"agency:{agency_id}",
                subject=f"referral:{package.referral_id}" if package is not None else None,
                details={"remote": remote_id, "verified": document is not None},
            )
            session.commit()
        return 1

    def _verify(
        self, session: Session, agency_id: int, armored: bytes
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The feedback document, if a key pinned to the correspondent (and not retired)
        signed it and it is one; else None and why."""
        keys = {
            key.fingerprint: key.public_key
            for key in session.scalars(
                select(AgencyKey).where(
                    AgencyKey.agency_id == agency_id, AgencyKey.retired_at.is_(None)
                )
            )
        }
        try:
            for fingerprint, public_key in keys.items():
                self.keyring.make_available(fingerprint, public_key)
            opened = self.keyring.decrypt_and_verify(armored)
        except CryptoError as exc:
            return None, f"cannot be opened here ({type(exc).__name__})"
        if not opened.signature_valid or opened.signer_fingerprint not in keys:
            return None, "not signed by the key pinned to this correspondent"
        document = parse_feedback(opened.plaintext)
        if document is None:
            return None, "not a feedback document"
        return document, None

    def _statuses(self, client: httpx.Client, agency_id: int, deadline: float) -> int:
        with self.sessions() as session:
            packages: Sequence[OnwardPackage] = session.scalars(
                select(OnwardPackage)
                .where(
                    OnwardPackage.agency_id == agency_id,
                    OnwardPackage.status == PackageStatus.DELIVERED.value,
                    OnwardPackage.remote_tip_id.is_not(None),
                    or_(
                        OnwardPackage.remote_status.is_(None),
                        OnwardPackage.remote_status.not_in(FINAL_REMOTE),
                    ),
                )
                .order_by(OnwardPackage.remote_status_at)
                .limit(STATUS_CHECKS)
            ).all()
            wanted = [(p.id, str(p.remote_tip_id), p.remote_status) for p in packages]
        changed = 0
        for package_id, remote_tip_id, before in wanted:
            status, answer = _exchange(
                client, "GET", f"/api/v1/tips/{quote(remote_tip_id, safe='')}", deadline
            )
            told = answer.get("status") if isinstance(answer, dict) else None
            if status != 200 or not (isinstance(told, str) and _STATUS.fullmatch(told)):
                raise Unusable(f"HTTP {status} for a package's status")
            with self.sessions() as session:
                session.execute(
                    update(OnwardPackage)
                    .where(OnwardPackage.id == package_id)
                    .values(remote_status=told, remote_status_at=self.clock.now())
                )
                session.commit()
            changed += told != before
        return changed

    # -- helpers ----------------------------------------------------------------------------

    def _token(self, correspondent: Correspondent) -> str:
        return self.secret_box.open(
            correspondent.token_sealed, context=token_context(correspondent.agency_id)
        ).decode("ascii")

    def _client(self, base_url: str, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=base_url,
            # Identity: an answer is read raw up to a size, never inflated on our side.
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
            timeout=TIMEOUT,
            transport=self.transport,
            follow_redirects=False,
        )

    def _audit(self, session: Session) -> AuditLog:
        return AuditLog(session, key=self.audit_key, clock=self.clock)


def _exchange(
    client: httpx.Client, method: str, url: str, deadline: float, **kwargs: Any
) -> tuple[int, Any]:
    """One request: its status and its JSON answer (None if it is not JSON), read up to
    ``MAX_ANSWER_BYTES`` and before ``deadline``.

    Raises:
        Unusable: too big, or too slow.
        httpx.HTTPError: no answer.
    """
    if time.monotonic() > deadline:
        raise Unusable("out of time")
    with client.stream(method, url, **kwargs) as answer:
        if answer.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
            raise Unusable("a compressed answer (identity was asked for)")
        body = bytearray()
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise Unusable(f"an answer over {MAX_ANSWER_BYTES} bytes")
            if time.monotonic() > deadline:
                raise Unusable("an answer too slow to arrive")
        status = answer.status_code
    try:
        return status, json.loads(bytes(body))
    except ValueError:
        return status, None


def _item(item: Any, *, after: int) -> tuple[int, bytes]:
    """A feedback item's id and sealed message, if it is one this system gives."""
    if not isinstance(item, dict):
        raise Unusable("a feedback item this system does not give")
    remote_id, message = item.get("id"), item.get("message")
    if type(remote_id) is not int or not after < remote_id <= _MAX_ID:
        raise Unusable("a feedback item whose id is not one this system gives")
    if not isinstance(message, str) or not message.isascii() or len(message) > 256 * 1024:
        raise Unusable(f"feedback {remote_id} without a sealed message")
    return remote_id, message.encode("ascii")


def _named(exc: Exception) -> str:
    return str(exc) if isinstance(exc, Unusable) else type(exc).__name__


def _error_message(answer: Any) -> str:
    """The other centre's reason, as its API words errors (bounded)."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        return f"{str(error.get('code'))[:60]}: {str(error.get('message'))[:300]}"
    return "no reason given"
