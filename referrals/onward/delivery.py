"""Talking to other centres that run this system: delivering packages to their partner API,
and fetching the feedback (and the status) they give back. Run by workers, never by a web
process; bounded in time (a timeout per request) and in work (pages per poll).

A delivery is idempotent (the package's Idempotency-Key: the other centre answers a repeat
with its first receipt) and retried on faults that may pass (no answer, 429, 5xx) a bounded
number of times, then left ``failed`` with its fault for operators; a refusal (4xx) is final
and shown to the lead with the other centre's reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from crypto import CryptoError, Keyring
from crypto.secretbox import SecretBox
from referrals.audit.services import AuditLog
from referrals.casework.lifecycle import FEEDBACK_RECEIVED
from referrals.casework.models import Referral, ReferralEvent
from referrals.clock import Clock
from referrals.database import rows_matched
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
FEEDBACK_PAGES = 10  # pages of feedback fetched per poll (50 each): the rest next time
STATUS_CHECKS = 100  # delivered packages whose status is asked per poll
FINAL_REMOTE = ("closed", "declined", "rejected")


class DeliveryNotDone(RuntimeError):
    """A fault that may pass (no answer, too busy, an error on their side): the job is
    retried. Its message names the fault, never a token or content."""


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
        try:
            with self._client(base_url, token) as client:
                answer = client.post(
                    "/api/v1/tips",
                    content=body,
                    headers={"Content-Type": "application/pgp-encrypted", "Idempotency-Key": key},
                )
        except httpx.HTTPError as exc:
            return self._not_done(package_id, attempts, f"no answer ({type(exc).__name__})")
        if answer.status_code == 202:
            return self._delivered(package_id, answer)
        fault = f"HTTP {answer.status_code}: {_error_message(answer)}"
        if answer.status_code == 429 or answer.status_code >= 500:
            return self._not_done(package_id, attempts, fault)
        return self._finish(package_id, PackageStatus.REFUSED, fault)

    def stale(self, *, older_than: timedelta, limit: int = 100) -> list[int]:
        """Packages still to be delivered whose last try is older than ``older_than`` (no job
        carries them on any more: lost, or out of the job's retries), with tries left."""
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(OnwardPackage.id)
                    .where(
                        OnwardPackage.status == PackageStatus.SENDING.value,
                        OnwardPackage.attempts < MAX_ATTEMPTS,
                        or_(
                            OnwardPackage.attempted_at.is_(None),
                            OnwardPackage.attempted_at < self.clock.now() - older_than,
                        ),
                    )
                    .order_by(OnwardPackage.id)
                    .limit(limit)
                )
            )

    def _delivered(self, package_id: int, answer: httpx.Response) -> str:
        try:
            receipt = answer.json()
            remote_id = str(receipt["id"])[:64]
            number = str(receipt.get("tracking_number") or "")[:40] or None
            status = str(receipt.get("status") or "")[:24] or None
        except (ValueError, KeyError, TypeError):
            return self._finish(package_id, PackageStatus.FAILED, "a receipt that is not JSON")
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

    def poll_all(self) -> PollReport:
        """Poll every correspondent (a fault with one is recorded and does not stop the
        others)."""
        with self.sessions() as session:
            agencies = list(session.scalars(select(Correspondent.agency_id)))
        feedback = statuses = 0
        for agency_id in agencies:
            report = self.poll(agency_id)
            feedback += report.feedback
            statuses += report.statuses
        return PollReport(feedback, statuses)

    def poll(self, agency_id: int) -> PollReport:
        """Fetch the correspondent's new feedback for this centre and the status of the
        packages delivered to it; a fault is recorded on the correspondent for operators."""
        with self.sessions() as session:
            correspondent = session.get(Correspondent, agency_id)
            if correspondent is None:
                return PollReport(0, 0)
            base_url, cursor = correspondent.base_url, correspondent.feedback_cursor
            token = self._token(correspondent)
        stored = changed = 0
        fault = None
        try:
            with self._client(base_url, token) as client:
                for _ in range(FEEDBACK_PAGES):
                    answer = client.get(
                        "/api/v1/feedback", params={"cursor": str(cursor), "limit": "50"}
                    )
                    answer.raise_for_status()
                    items = answer.json()["feedback"]
                    if not items:
                        break
                    for item in items:
                        stored += self._store(agency_id, item)
                        cursor = max(cursor, int(item["id"]))
                    self._save_cursor(agency_id, cursor)
                    if answer.json().get("next") is None:
                        break
                changed = self._statuses(client, agency_id)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            fault = f"polling failed ({type(exc).__name__})"
            logger.warning("correspondent %s: %s", agency_id, fault)
        with self.sessions() as session:
            session.execute(
                update(Correspondent)
                .where(Correspondent.agency_id == agency_id)
                .values(polled_at=self.clock.now(), fault=fault)
            )
            session.commit()
        return PollReport(stored, changed)

    def _store(self, agency_id: int, item: dict[str, Any]) -> int:
        remote_id = int(item["id"])
        armored = str(item["message"]).encode("ascii")
        tip_ids = [str(tip_id) for tip_id in item.get("tip_ids", [])]
        with self.sessions() as session:
            package = (
                session.scalars(
                    select(OnwardPackage).where(
                        OnwardPackage.agency_id == agency_id,
                        OnwardPackage.remote_tip_id.in_(tip_ids),
                    )
                ).first()
                if tip_ids
                else None
            )
            verified, fault = self._verify(session, agency_id, armored)
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            inserted = session.execute(
                dialect.insert(ReceivedFeedback)
                .values(
                    agency_id=agency_id,
                    remote_id=remote_id,
                    package_id=package.id if package is not None else None,
                    armored=armored,
                    received_at=self.clock.now(),
                    verified=verified,
                    fault=fault,
                )
                .on_conflict_do_nothing()
            )
            if rows_matched(inserted) == 0:
                session.rollback()
                return 0
            if package is not None and verified:
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
                details={"remote": remote_id, "verified": verified},
            )
            session.commit()
        return 1

    def _verify(self, session: Session, agency_id: int, armored: bytes) -> tuple[bool, str | None]:
        """Whether a key pinned to the correspondent (and not retired) signed it."""
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
            return False, f"cannot be opened here ({type(exc).__name__})"
        if not opened.signature_valid or opened.signer_fingerprint not in keys:
            return False, "not signed by the key pinned to this correspondent"
        try:
            json.loads(opened.plaintext)
        except ValueError:
            return False, "not a feedback document"
        return True, None

    def _statuses(self, client: httpx.Client, agency_id: int) -> int:
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
            wanted = [
                (package.id, package.remote_tip_id, package.remote_status) for package in packages
            ]
        changed = 0
        for package_id, remote_tip_id, before in wanted:
            answer = client.get(f"/api/v1/tips/{remote_tip_id}")
            answer.raise_for_status()
            status = str(answer.json()["status"])[:24]
            with self.sessions() as session:
                session.execute(
                    update(OnwardPackage)
                    .where(OnwardPackage.id == package_id)
                    .values(remote_status=status, remote_status_at=self.clock.now())
                )
                session.commit()
            changed += status != before
        return changed

    def _save_cursor(self, agency_id: int, cursor: int) -> None:
        with self.sessions() as session:
            session.execute(
                update(Correspondent)
                .where(Correspondent.agency_id == agency_id)
                .values(feedback_cursor=cursor)
            )
            session.commit()

    # -- helpers ----------------------------------------------------------------------------

    def _token(self, correspondent: Correspondent) -> str:
        return self.secret_box.open(
            correspondent.token_sealed, context=token_context(correspondent.agency_id)
        ).decode("ascii")

    def _client(self, base_url: str, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
            transport=self.transport,
            follow_redirects=False,
        )

    def _audit(self, session: Session) -> AuditLog:
        return AuditLog(session, key=self.audit_key, clock=self.clock)


def _error_message(answer: httpx.Response) -> str:
    """The other centre's reason, as its API words errors (bounded; never echoed raw)."""
    try:
        error = answer.json()["error"]
        return f"{str(error['code'])[:60]}: {str(error['message'])[:300]}"
    except (ValueError, KeyError, TypeError):
        return "no reason given"
