"""Processing a received tip: decrypt, verify, validate, extract what triage needs, index.

Runs in a worker, never in the request. The plaintext exists only in this process's memory for
the length of the call; what is written back is the triage facts and the selectors' blind
indexes.

Every tip ends in a final state, whatever it holds. The partner's faults (a damaged message,
a bad signature, an invalid document) make it ``rejected`` with a reason the partner can act
on, at the first attempt; its ciphertext is kept for the record and its Idempotency-Key
released. Our faults (GnuPG, the database, the intake key missing on this host) and anything
unexpected leave it unfinished with the fault recorded and raise, so the job is retried with
back-off. Each claim counts an attempt; a claim at ``MAX_ATTEMPTS`` quarantines the tip
instead (``quarantined``, for operators), which also bounds jobs killed mid-way by their
time limit. :meth:`TipProcessor.judge` is the one place that tells the two kinds apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import redis
from rq.timeouts import BaseTimeoutException
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from crypto import (
    BlindIndex,
    CryptoError,
    DecryptedMessage,
    DecryptError,
    InvalidSelector,
    Keyring,
    MalformedMessage,
    NotEncryptedToUs,
    PlaintextTooLarge,
    SignatureStatus,
    TooManySessionKeys,
)
from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.intake.document import (
    MAX_DOCUMENT_BYTES,
    InvalidTipDocument,
    TipDocument,
    parse_tip_document,
)
from referrals.intake.models import (
    AgencyKey,
    IntakeKey,
    Tip,
    TipCiphertext,
    TipStatus,
    WebFormKey,
)
from referrals.intake.services import IntakeKeyMissing
from referrals.triage.admission import TriageAdmission

logger = logging.getLogger(__name__)

UNFINISHED = (TipStatus.RECEIVED, TipStatus.PROCESSING)
#: Claims a tip gets before it is quarantined: rq's retries (5) and then the sweep's. Enough
#: to ride out a restart of the database or of gpg-agent; a fault that outlasts them needs a
#: person, and the tip waits for one rather than cost a worker for ever.
MAX_ATTEMPTS = 6
FAULT_CHARS = 500
STOPPED = (
    "Stopped: no attempt finished (each was stopped by the job's time limit, or its worker "
    "was killed)"
)

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
        super().__init__(reason)  # pragma: no mutate - only .reason is ever read or shown
        self.reason = reason


@dataclass(frozen=True)
class _Work:
    armored: bytes
    agency_id: int
    received_at: datetime
    # Set for a web-form tip: the server signed it with the intake key.
    submitted_by_user_id: int | None


class TipProcessor:
    """Turns a received tip into one ready for triage, a rejected one, or (after repeated
    faults on our side) a quarantined one.

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
        """Process the tip once; a tip already finished is left as it is.

        Returns:
            The status the tip was left in (``quarantined`` when this claim found its attempts
            used up), or None if there was nothing to do.

        Raises:
            Exception: a fault on our side (recorded on the tip): the job should be retried.
        """
        work = self._claim(tip_id)
        if work is None:
            return None
        if isinstance(work, TipStatus):
            return work
        try:
            try:
                document, signer = self._open(work)
            except Exception as exc:  # noqa: BLE001 - judged: the partner's fault or ours
                rejection = self.judge(exc)
                if rejection is None:
                    raise
                return self._finish(tip_id, rejection=rejection)
            return self._finish(tip_id, document=document, signer=signer)
        except Exception as exc:
            self._record_fault(tip_id, exc)
            raise

    def judge(self, exc: Exception) -> Rejection | None:
        """Whose fault ``exc`` is: a rejection with a reason for the partner when the message
        or the document is at fault, None when the fault is ours (retry, then quarantine)."""
        match exc:
            case Rejection():
                return exc
            case InvalidTipDocument():
                return Rejection(str(exc))
            case TooManySessionKeys():
                return Rejection(str(exc))
            case NotEncryptedToUs():
                return Rejection(
                    f"the tip is not encrypted to the intake key {self._current_intake_key()} "
                    "(fetch the current key and encrypt to it)"
                )
            case PlaintextTooLarge():
                return Rejection(
                    f"the decrypted tip is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB, "
                    "the most a tip document may be: send files as attachments"
                )
            case MalformedMessage():
                return Rejection(f"the body is not an OpenPGP message that can be read: {exc}")
            case DecryptError():
                return Rejection(
                    "the message could not be decrypted: it was damaged or altered after it was "
                    "sealed; seal it again (gpg --sign --encrypt) and send it"
                )
        return None

    def _claim(self, tip_id: str) -> _Work | TipStatus | None:
        with self.sessions.begin() as session:
            # Each claim is an attempt, counted in the same guarded UPDATE; a tip whose
            # attempts are used up is not claimed (see _quarantine).
            claimed = session.execute(
                update(Tip)
                .where(
                    Tip.id == tip_id,
                    Tip.status.in_(UNFINISHED),
                    Tip.attempts < MAX_ATTEMPTS,
                )
                .values(
                    status=TipStatus.PROCESSING,
                    attempts=Tip.attempts + 1,
                    updated_at=self.clock.now(),
                )
            )
            if rows_matched(claimed) == 0:
                if quarantine(session, tip_id, audit_key=self.audit_key, clock=self.clock):
                    return TipStatus.QUARANTINED
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
        signers = self._signers(work, intake_fingerprint=intake_fingerprint)
        self._make_signers_available(signers)
        try:
            message = self.keyring.decrypt_and_verify(work.armored)
        except NotEncryptedToUs as exc:
            if set(exc.recipient_key_ids) & self.keyring.encryption_key_ids(intake_fingerprint):
                # Encrypted to the current intake key, yet gpg has no secret key for it: this
                # host's GnuPG home (or its agent) is at fault, not the message.
                raise IntakeKeyMissing(
                    f"this host cannot decrypt with the intake key {intake_fingerprint}: "
                    "its GnuPG home lacks the secret key, or gpg-agent is unavailable"
                ) from None
            raise
        # Judged by the key that really decrypted it, not by the recipients it names.
        if message.decrypted_with != intake_fingerprint:
            raise Rejection(
                f"the tip is encrypted to a retired intake key, not the current one "
                f"({intake_fingerprint})"
            )
        signer = self._check_signer(message, work, allowed=signers)
        return parse_tip_document(message.plaintext), signer

    def _current_intake_key(self) -> str:
        with self.sessions() as session:
            fingerprint = session.scalar(
                select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
            )
        if fingerprint is None:
            raise IntakeKeyMissing("no current intake key: run `tipline init`")
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

    def _make_signers_available(self, signers: dict[str, str | None]) -> None:
        """Import into this host's keyring, from the database, each key that may have signed
        the tip (GnuPG checks the signature while decrypting, so this comes first): an agency
        added or re-keyed on another host is known here too."""
        for fingerprint, armored in signers.items():
            if not self.keyring.make_available(fingerprint, armored):
                raise SignerKeyUnavailable(
                    f"key {fingerprint} is not in this host's keyring and not stored in the "
                    "database: run `tipline init` on the host where it was pinned"
                )

    def _check_signer(
        self, message: DecryptedMessage, work: _Work, *, allowed: dict[str, str | None]
    ) -> str:
        """The signer, if it is one of the keys ``allowed`` to sign this tip."""
        status, signer = message.signature_status, message.signer_fingerprint
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
        values: dict[str, object] = {"updated_at": now, "processed_at": now, "fault": None}
        selectors: dict[str, str] = {}
        if rejection is not None:
            # The key is released: the partner sends the corrected tip under the same reference.
            values.update(
                status=TipStatus.REJECTED, reason=rejection.reason, idempotency_key_hash=None
            )
        elif document is not None:
            facts = document.facts
            warnings = [
                {"pointer": warning.pointer, "message": warning.message}
                for warning in document.selector_warnings
            ]
            for entry in document.selectors:
                try:
                    # The same default region the document was validated with, so a number
                    # written without its country code gets the index it has with one.
                    index = self.blind_index.compute(
                        entry.type, entry.value, entry.platform, default_region=facts.country
                    )
                except InvalidSelector as exc:  # pragma: no cover - the document checked it
                    # Unreachable (no mutant of it can be seen): parse_tip_document already
                    # left out what does not normalise, with its warning.
                    problem = {"pointer": "/selectors", "message": str(exc)}  # pragma: no mutate
                    warnings.append(problem)  # pragma: no mutate
                    continue  # pragma: no mutate
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
                location_precision=facts.location_precision,
                offence_types=list(facts.offence_types),
                victim_count=facts.victim_count,
                youngest_victim_age=facts.youngest_victim_age,
                tlp=facts.tlp,
                handling_code=facts.handling_code,
                source_reliability=facts.source_reliability,
                information_accuracy=facts.information_accuracy,
                unindexed_selectors=len(warnings),
                selector_warnings=warnings or None,
            )
        with self.sessions.begin() as session:
            # Only the delivery that still sees the tip unfinished writes: a concurrent
            # duplicate of this job finds nothing to update and adds no selectors.
            updated = session.execute(
                update(Tip)
                .where(Tip.id == tip_id, Tip.status == TipStatus.PROCESSING)
                .values(**values)
            )
            if rows_matched(updated) == 0:
                return None
            audit = AuditLog(session, key=self.audit_key, clock=self.clock)
            details: dict[str, str | int | None] = {"status": str(values["status"])}
            if rejection is None:
                # Into triage in this same transaction: links, priority, SLA clock, team.
                admitted = TriageAdmission(session, audit=audit, clock=self.clock).admit(
                    tip_id, selectors
                )
                details.update(
                    selectors=len(selectors),
                    priority=admitted.priority,
                    linked_tips=admitted.linked_tips,
                    team_id=admitted.team_id,
                )
            # The outcome is audited in the same transaction (and last: the audit log's lock
            # is then held only until this commit).
            audit.record(
                "tip.status_changed",
                actor="system:worker",
                subject=f"tip:{tip_id}",
                details=details,
            )
        status = TipStatus.REJECTED if rejection is not None else TipStatus.IN_TRIAGE
        logger.info("tip %s processed: %s", tip_id, status.value)
        return status

    def _record_fault(self, tip_id: str, exc: Exception) -> None:
        """Note the fault on the tip for operators; the tip stays ``processing`` for a retry."""
        fault = describe_fault(exc)
        logger.warning(
            "tip %s: processing failed on our side (%s); it will be retried", tip_id, fault
        )
        try:
            with self.sessions.begin() as session:
                session.execute(
                    update(Tip)
                    .where(Tip.id == tip_id, Tip.status == TipStatus.PROCESSING)
                    .values(fault=fault, updated_at=self.clock.now())
                )
        except SQLAlchemyError:
            # The database may be the fault: the retry and the attempt count still hold.
            logger.warning("tip %s: the fault could not be recorded", tip_id)


def quarantine(session: Session, tip_id: str, *, audit_key: bytes, clock: Clock) -> bool:
    """Quarantine the tip if it is unfinished and its attempts are used up, auditing it in the
    caller's transaction. Returns whether it was quarantined."""
    now = clock.now()
    # The UPDATE below is the guard; the fault is read only to keep it (or to say why none).
    fault = session.scalar(select(Tip.fault).where(Tip.id == tip_id))
    # No fault recorded: every attempt was stopped before it could say why.
    fault = fault or STOPPED
    moved = session.execute(
        update(Tip)
        .where(Tip.id == tip_id, Tip.status.in_(UNFINISHED), Tip.attempts >= MAX_ATTEMPTS)
        .values(status=TipStatus.QUARANTINED, quarantined_at=now, updated_at=now, fault=fault)
    )
    if rows_matched(moved) == 0:
        return False
    attempts = session.scalar(select(Tip.attempts).where(Tip.id == tip_id))
    AuditLog(session, key=audit_key, clock=clock).record(
        "tip.quarantined",
        actor="system:worker",
        subject=f"tip:{tip_id}",
        details={"attempts": attempts, "fault_type": fault.partition(":")[0][:64]},
    )
    logger.error(
        "tip %s quarantined after %s attempts: an operator must look (tipline tip quarantined)",
        tip_id,
        attempts,
    )
    return True


def describe_fault(exc: BaseException) -> str:
    """An operator's account of a fault on our side: the exception's type and a message known
    to carry no content (an unexpected exception's own message could quote the tip)."""
    kind = type(exc).__name__
    match exc:
        case CryptoError() | IntakeKeyMissing():
            # crypto's messages never carry plaintext or key material (crypto.errors).
            detail = str(exc)
        case BaseTimeoutException():
            detail = "the job ran past its time limit"
        case DBAPIError():
            detail = f"the database failed ({type(exc.orig).__name__})"
        case SQLAlchemyError():
            detail = "the database layer failed"
        case redis.RedisError():
            detail = "Redis failed"
        case OSError():
            detail = exc.strerror or "an operating system call failed"
        case _:
            detail = "unexpected; its message is not kept (it could quote the tip)"
    return f"{kind}: {detail}"[:FAULT_CHARS]
