"""Processing a received tip: decrypt, verify, validate, extract what triage needs, index.

Runs in a worker, never in the request. The plaintext exists only in this process's memory for
the length of the call; what is written back is the triage facts and the selectors' blind
indexes. A tip that cannot be accepted becomes ``rejected`` with a reason its partner can act
on, and its ciphertext is kept for the record. Anything else that goes wrong (the database,
GnuPG itself) raises, so the job is retried and the tip stays ``processing`` until it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, select, update
from sqlalchemy.orm import Session, sessionmaker

from crypto import (
    BlindIndex,
    DecryptedMessage,
    InvalidSelector,
    Keyring,
    MalformedMessage,
    NotEncryptedToUs,
    PlaintextTooLarge,
    SignatureStatus,
)
from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.intake.document import InvalidTipDocument, TipDocument, parse_tip_document
from referrals.intake.models import (
    AgencyKey,
    IntakeKey,
    Tip,
    TipCiphertext,
    TipSelector,
    TipStatus,
    WebFormKey,
)

logger = logging.getLogger(__name__)

UNFINISHED = (TipStatus.RECEIVED, TipStatus.PROCESSING)

SIGNATURE_REASONS = {
    SignatureStatus.UNSIGNED: (
        "the tip is not signed: sign it with your agency's registered key (gpg --sign --encrypt)"
    ),
    SignatureStatus.UNKNOWN_SIGNER: "the tip is signed by a key that is not pinned to your agency",
    SignatureStatus.BAD: "the signature does not verify: the message was altered or damaged",
    SignatureStatus.SIGNER_KEY_EXPIRED: "the tip is signed by an expired key",
    SignatureStatus.SIGNER_KEY_REVOKED: "the tip is signed by a revoked key",
    SignatureStatus.SIGNATURE_EXPIRED: "the signature has expired",
    SignatureStatus.MULTIPLE_SIGNATURES: "the tip carries several signatures: sign it once",
}
WEB_FORM_SIGNER_REASON = "the web-form tip is not signed by the centre's web-form key"


class SignerKeyUnavailable(RuntimeError):
    """A key that may have signed the tip is neither in this host's keyring nor stored in the
    database (pinned before keys were stored, and `tipline init` has not copied it there yet).
    A fault of the deployment, not of the tip: the job fails and is retried."""


class Rejection(Exception):
    """The tip cannot be accepted; ``reason`` is for its partner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Work:
    armored: bytes
    agency_id: int
    received_at: datetime
    # Set for a web-form tip: the server signed it with the intake key.
    submitted_by_user_id: int | None


class TipProcessor:
    """Turns a received tip into one ready for triage, or a rejected one.

    Args:
        session_factory: makes the sessions each step runs in.
        keyring: the keyring holding the intake key and partner keys.
        blind_index: computes selectors' blind indexes.
        audit_key: keys the audit log, where the outcome is recorded.
        clock: the clock.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        keyring: Keyring,
        blind_index: BlindIndex,
        audit_key: bytes,
        clock: Clock,
    ) -> None:
        self.sessions = session_factory
        self.audit_key = audit_key
        self.keyring = keyring
        self.blind_index = blind_index
        self.clock = clock

    def process(self, tip_id: str) -> TipStatus | None:
        """Process the tip once; a tip already processed is left as it is.

        Returns:
            The status the tip was left in, or None if there was nothing to do.
        """
        work = self._claim(tip_id)
        if work is None:
            return None
        try:
            document, signer = self._open(work)
        except Rejection as rejection:
            return self._finish(tip_id, rejection=rejection)
        return self._finish(tip_id, document=document, signer=signer)

    def _claim(self, tip_id: str) -> _Work | None:
        with self.sessions.begin() as session:
            claimed = session.execute(
                update(Tip)
                .where(Tip.id == tip_id, Tip.status.in_(UNFINISHED))
                .values(status=TipStatus.PROCESSING, updated_at=self.clock.now())
            )
            if _rowcount(claimed) == 0:
                return None
            row = session.execute(
                select(
                    TipCiphertext.armored,
                    Tip.agency_id,
                    Tip.received_at,
                    Tip.submitted_by_user_id,
                )
                .join(Tip, Tip.id == TipCiphertext.tip_id)
                .where(Tip.id == tip_id)
            ).one()
            return _Work(
                armored=row.armored,
                agency_id=row.agency_id,
                received_at=row.received_at,
                submitted_by_user_id=row.submitted_by_user_id,
            )

    def _open(self, work: _Work) -> tuple[TipDocument, str]:
        intake_fingerprint = self._current_intake_key()
        self._make_signers_available(work, intake_fingerprint=intake_fingerprint)
        try:
            message = self.keyring.decrypt_and_verify(work.armored)
        except NotEncryptedToUs:
            raise Rejection(
                f"the tip is not encrypted to the intake key {intake_fingerprint} "
                "(fetch the current key and encrypt to it)"
            ) from None
        except MalformedMessage:
            raise Rejection("the body is not an OpenPGP message that can be read") from None
        except PlaintextTooLarge:
            raise Rejection("the decrypted tip is larger than the limit") from None
        if not set(message.encrypted_to) & self.keyring.encryption_key_ids(intake_fingerprint):
            raise Rejection(
                f"the tip is encrypted to a retired intake key, not the current one "
                f"({intake_fingerprint})"
            )
        signer = self._check_signer(message, work, intake_fingerprint=intake_fingerprint)
        try:
            document = parse_tip_document(message.plaintext)
        except InvalidTipDocument as exc:
            raise Rejection(str(exc)) from None
        return document, signer

    def _current_intake_key(self) -> str:
        with self.sessions() as session:
            fingerprint = session.scalar(
                select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
            )
        if fingerprint is None:
            raise RuntimeError("no current intake key: run `tipline init`")
        return fingerprint

    def _signers(self, work: _Work, *, intake_fingerprint: str) -> dict[str, str | None]:
        """The keys that may have signed this tip, each with its stored copy (None when the
        database has none).

        An API tip: the keys pinned to its agency when it arrived (a key retired before then,
        rotated away and perhaps compromised, no longer speaks for the agency). A web-form tip:
        the web-form keys valid when it arrived, or the intake key for a tip received before
        any web-form key existed (the web form signed with it then). Never both: the web-form
        key is not an agency's, and an agency's key does not sign for the web form.
        """
        received = work.received_at
        with self.sessions() as session:
            if work.submitted_by_user_id is None:
                rows = session.execute(
                    select(AgencyKey.fingerprint, AgencyKey.public_key).where(
                        AgencyKey.agency_id == work.agency_id,
                        AgencyKey.pinned_at <= received,
                        (AgencyKey.retired_at.is_(None)) | (AgencyKey.retired_at > received),
                    )
                )
                return {row.fingerprint: row.public_key for row in rows}
            existed = session.scalar(
                select(WebFormKey.fingerprint).where(WebFormKey.created_at <= received).limit(1)
            )
            if existed is None:
                return {intake_fingerprint: None}
            rows = session.execute(
                select(WebFormKey.fingerprint, WebFormKey.public_key).where(
                    WebFormKey.created_at <= received,
                    (WebFormKey.retired_at.is_(None)) | (WebFormKey.retired_at > received),
                )
            )
            return {row.fingerprint: row.public_key for row in rows}

    def _make_signers_available(self, work: _Work, *, intake_fingerprint: str) -> None:
        """Import into this host's keyring, from the database, each key that may have signed
        the tip (GnuPG checks the signature while decrypting, so this comes first): an agency
        added or re-keyed on another host is known here too."""
        for fingerprint, armored in self._signers(
            work, intake_fingerprint=intake_fingerprint
        ).items():
            if not self.keyring.make_available(fingerprint, armored):
                raise SignerKeyUnavailable(
                    f"key {fingerprint} is not in this host's keyring and not stored in the "
                    "database: run `tipline init` on the host where it was pinned"
                )

    def _check_signer(
        self, message: DecryptedMessage, work: _Work, *, intake_fingerprint: str
    ) -> str:
        status, signer = message.signature_status, message.signer_fingerprint
        allowed = self._signers(work, intake_fingerprint=intake_fingerprint)
        if status == SignatureStatus.VALID and signer is not None and signer in allowed:
            return signer
        if status in (SignatureStatus.VALID, SignatureStatus.UNKNOWN_SIGNER):
            # Signed, but by a key that may not sign this tip. Whether this host's keyring
            # happens to hold that key must not change the answer.
            if work.submitted_by_user_id is not None:
                raise Rejection(WEB_FORM_SIGNER_REASON)
            raise Rejection(SIGNATURE_REASONS[SignatureStatus.UNKNOWN_SIGNER])
        raise Rejection(SIGNATURE_REASONS.get(status, "the signature could not be verified"))

    def _finish(
        self,
        tip_id: str,
        *,
        rejection: Rejection | None = None,
        document: TipDocument | None = None,
        signer: str | None = None,
    ) -> TipStatus | None:
        now = self.clock.now()
        values: dict[str, object] = {"updated_at": now, "processed_at": now}
        selectors: dict[str, str] = {}
        if rejection is not None:
            # The key is released: the partner sends the corrected tip under the same reference.
            values.update(
                status=TipStatus.REJECTED, reason=rejection.reason, idempotency_key_hash=None
            )
        elif document is not None:
            facts = document.facts
            unindexed = 0
            for entry in document.selectors:
                try:
                    # The same default region the document was validated with, so a number
                    # written without its country code gets the index it has with one.
                    index = self.blind_index.compute(
                        entry.type, entry.value, entry.platform, default_region=facts.country
                    )
                except InvalidSelector:
                    unindexed += 1
                    continue
                selectors.setdefault(index, entry.type)
            values.update(
                status=TipStatus.IN_TRIAGE,
                reason=None,
                signed_by=signer,
                schema=str(document.data["schema"]),
                reported_at=facts.reported_at,
                imminent_danger=facts.imminent_danger,
                ongoing_abuse=facts.ongoing_abuse,
                live_streaming=facts.live_streaming,
                country=facts.country,
                region=facts.region,
                offence_types=list(facts.offence_types),
                victim_count=facts.victim_count,
                youngest_victim_age=facts.youngest_victim_age,
                tlp=facts.tlp,
                handling_code=facts.handling_code,
                unindexed_selectors=unindexed,
            )
        with self.sessions.begin() as session:
            # Only the delivery that still sees the tip unfinished writes: a concurrent
            # duplicate of this job finds nothing to update and adds no selectors.
            updated = session.execute(
                update(Tip)
                .where(Tip.id == tip_id, Tip.status == TipStatus.PROCESSING)
                .values(**values)
            )
            if _rowcount(updated) == 0:
                return None
            session.add_all(
                TipSelector(tip_id=tip_id, selector_type=kind, blind_index=index)
                for index, kind in selectors.items()
            )
            # The outcome is audited in the same transaction (and last: the audit log's lock
            # is then held only until this commit).
            AuditLog(session, key=self.audit_key, clock=self.clock).record(
                "tip.status_changed",
                actor="system:worker",
                subject=f"tip:{tip_id}",
                details={"status": str(values["status"]), "selectors": len(selectors)},
            )
        status = TipStatus.REJECTED if rejection is not None else TipStatus.IN_TRIAGE
        logger.info("tip %s processed: %s", tip_id, status.value)
        return status


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (typed access: SQLAlchemy only declares it on CursorResult)."""
    return int(cast(CursorResult[Any], result).rowcount)


def unfinished_before(session: Session, cutoff: datetime, *, limit: int = 1000) -> list[str]:
    """Ids of tips still received or processing whose last change is older than ``cutoff``."""
    return list(
        session.scalars(
            select(Tip.id)
            .where(Tip.status.in_(UNFINISHED), Tip.updated_at < cutoff)
            .order_by(Tip.updated_at)
            .limit(limit)
        )
    )
