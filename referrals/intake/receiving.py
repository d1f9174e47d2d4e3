"""Receiving tips: store the ciphertext, commit, give a receipt, then queue the processing.

Nothing here decrypts or reads a tip: the request path only checks that the body looks like
an armored OpenPGP message and stores it as it came. A receipt is given only once the tip is
committed; the job is queued after the commit, and if queueing fails the sweep finds the tip.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referrals.clock import Clock
from referrals.intake.attachments import (
    ARMOR_HEADER,
    AttachmentQuota,
    AttachmentQuotaExceeded,
    AttachmentStore,
    AttachmentTooLarge,
    AttachmentToRejectedTip,
)
from referrals.intake.models import Attachment, Tip, TipCiphertext, TipStatus
from referrals.intake.sweep import queue_processing
from referrals.jobs import JobQueue

logger = logging.getLogger(__name__)

ARMOR_FOOTER = b"-----END PGP MESSAGE-----"
MAX_IDEMPOTENCY_KEY = 255
# Crockford's base32: no I, L, O or U, so a number read over the phone is not misheard.
TRACKING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class NotAnOpenPGPMessage(ValueError):
    """The body is not an armored OpenPGP message."""


class BadIdempotencyKey(ValueError):
    """The Idempotency-Key is empty, too long or not printable ASCII."""


@dataclass(frozen=True)
class Receipt:
    tip: Tip
    created: bool  # False when an earlier submission with the same Idempotency-Key is returned


def _bytes_quota_exceeded(quota: AttachmentQuota) -> AttachmentQuotaExceeded:
    return AttachmentQuotaExceeded(
        f"this file would take the tip's attachments past {quota.max_bytes} bytes in all",
        files=False,
    )


def new_tracking_number() -> str:
    chars = "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(10))
    return f"TL-{chars[:5]}-{chars[5:]}"


def check_armored_message(body: bytes) -> None:
    """Raise NotAnOpenPGPMessage unless ``body`` is one armored OpenPGP message."""
    if not body.strip():
        raise NotAnOpenPGPMessage("the body is empty")
    stripped = body.strip()
    if not stripped.startswith(ARMOR_HEADER) or not stripped.endswith(ARMOR_FOOTER):
        raise NotAnOpenPGPMessage(
            "the body is not an armored OpenPGP message (gpg --sign --encrypt --armor)"
        )
    if stripped.count(ARMOR_HEADER) != 1:
        raise NotAnOpenPGPMessage("the body holds more than one OpenPGP message")


def idempotency_key_hash(agency_id: int, key: str) -> str:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise BadIdempotencyKey(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    # Hashed: a partner may use its own case reference as the key.
    return hashlib.sha256(f"{agency_id}\0{key}".encode()).hexdigest()


@dataclass(frozen=True)
class Cursor:
    """Where a listing page ended: opaque to the partner."""

    updated_at: datetime
    tip_id: str

    def encode(self) -> str:
        raw = f"{self.updated_at.isoformat()}|{self.tip_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            stamp, tip_id = raw.split("|", 1)
            updated_at = datetime.fromisoformat(stamp)
        except (ValueError, UnicodeDecodeError):
            raise ValueError("cursor is not one this service gave out") from None
        if updated_at.tzinfo is None:
            raise ValueError("cursor is not one this service gave out")
        return cls(updated_at=updated_at, tip_id=tip_id)


class TipReceiver:
    """What a partner agency can do with its tips: send them, follow them, attach files.

    Every query is scoped to the agency: another agency's tip is simply not found.

    Args:
        session: the caller's database session.
        queue: the job queue.
        clock: the clock.
    """

    def __init__(self, session: Session, *, queue: JobQueue, clock: Clock) -> None:
        self.session = session
        self.queue = queue
        self.clock = clock

    def receive(
        self,
        agency_id: int,
        armored: bytes,
        *,
        idempotency_key: str | None = None,
        submitted_by_user_id: int | None = None,
        on_stored: Callable[[Tip], None] | None = None,
    ) -> Receipt:
        """Store a tip's ciphertext and queue its processing.

        Args:
            agency_id: the sending agency.
            armored: the armored OpenPGP message, as received.
            idempotency_key: a retry with the same key returns the first receipt.
            submitted_by_user_id: the partner officer who wrote the tip in the web form (the
                server encrypted and signed it with the intake key; processing accepts that
                signature only for such tips). None for a tip sent through the API.
            on_stored: called with the new tip in the storing transaction, just before the
                commit (to write an audit record that commits with the tip, or not at all).

        Raises:
            NotAnOpenPGPMessage: the body is not an armored OpenPGP message.
            BadIdempotencyKey: the key is malformed.
        """
        check_armored_message(armored)
        key_hash = (
            None if idempotency_key is None else idempotency_key_hash(agency_id, idempotency_key)
        )
        # No lookup first: a retry is the rare case, so the unique (agency, key) constraint
        # finds it when the insert fails — one round trip fewer for every new tip.
        for _ in range(3):
            now = self.clock.now()
            tip = Tip(
                id=str(uuid.uuid4()),
                tracking_number=new_tracking_number(),
                agency_id=agency_id,
                idempotency_key_hash=key_hash,
                status=TipStatus.RECEIVED,
                received_at=now,
                updated_at=now,
                ciphertext_sha256=hashlib.sha256(armored).hexdigest(),
                ciphertext_bytes=len(armored),
                submitted_by_user_id=submitted_by_user_id,
            )
            tip.ciphertext = TipCiphertext(armored=armored)
            self.session.add(tip)
            try:
                if on_stored is not None:
                    self.session.flush()
                    on_stored(tip)
                self.session.commit()
            except IntegrityError:
                self.session.rollback()
                if key_hash is not None:
                    # A concurrent retry with the same key committed first: its receipt.
                    earlier = self._by_idempotency_key(agency_id, key_hash)
                    if earlier is not None:
                        return Receipt(tip=earlier, created=False)
                continue  # a tracking number collision: draw another
            self.enqueue_processing(tip.id)
            return Receipt(tip=tip, created=True)
        raise RuntimeError("could not store the tip")  # pragma: no cover - 3 collisions in 2^50

    def enqueue_processing(self, tip_id: str) -> None:
        """Queue the tip's processing; if Redis is unavailable, the sweep will do it later."""
        try:
            queue_processing(self.queue, tip_id)
        except (redis.ConnectionError, redis.TimeoutError):
            logger.warning(
                "tip %s stored but not queued (Redis unavailable): the sweep will", tip_id
            )

    def find(self, agency_id: int, tip_id: str) -> Tip | None:
        """The agency's tip, or None (also for another agency's tip)."""
        return self.session.scalar(select(Tip).where(Tip.id == tip_id, Tip.agency_id == agency_id))

    def updated_since(
        self,
        agency_id: int,
        *,
        since: datetime | None,
        after: Cursor | None,
        limit: int,
    ) -> list[Tip]:
        """The agency's tips changed at or after ``since``, oldest change first, one page."""
        query = select(Tip).where(Tip.agency_id == agency_id)
        if since is not None:
            query = query.where(Tip.updated_at >= since)
        if after is not None:
            query = query.where(
                or_(
                    Tip.updated_at > after.updated_at,
                    and_(Tip.updated_at == after.updated_at, Tip.id > after.tip_id),
                )
            )
        query = query.order_by(Tip.updated_at, Tip.id).limit(limit)
        return list(self.session.scalars(query))

    def recent(self, agency_id: int, *, before: Cursor | None, limit: int) -> list[Tip]:
        """The agency's tips, most recently changed first, one page (the one after ``before``,
        the last tip of the previous page)."""
        query = select(Tip).where(Tip.agency_id == agency_id)
        if before is not None:
            query = query.where(
                or_(
                    Tip.updated_at < before.updated_at,
                    and_(Tip.updated_at == before.updated_at, Tip.id < before.tip_id),
                )
            )
        query = query.order_by(Tip.updated_at.desc(), Tip.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def add_attachment(
        self,
        agency_id: int,
        tip_id: str,
        chunks: Iterable[bytes],
        *,
        store: AttachmentStore,
        max_bytes: int,
        quota: AttachmentQuota,
        declared_bytes: int | None = None,
    ) -> Attachment | None:
        """Stream an encrypted file to disk and record it with the tip.

        Everything that can be decided without the body is decided before ``chunks`` is read:
        the tip, its status, its quota, and the ``declared_bytes`` the request announced.

        Returns:
            The attachment, or None if the agency has no such tip (nothing is read then).

        Raises:
            AttachmentToRejectedTip: the tip was rejected.
            AttachmentQuotaExceeded: the tip has all the files, or all the bytes, it may have.
            AttachmentRefused, AttachmentTooLarge: see ``AttachmentStore.write``.
        """
        tip = self.find(agency_id, tip_id)
        if tip is None:
            return None
        room = self._attachment_room(tip, quota)
        if declared_bytes is not None and declared_bytes > room:
            raise _bytes_quota_exceeded(quota)
        try:
            stored = store.write(chunks, max_bytes=min(max_bytes, room))
        except AttachmentTooLarge:
            if room < max_bytes:
                raise _bytes_quota_exceeded(quota) from None
            raise
        try:
            # Again, under a lock on the tip: a concurrent upload may have used the room, or
            # processing rejected the tip, while this one streamed.
            locked = self.session.scalars(
                select(Tip)
                .where(Tip.id == tip_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            if self._attachment_room(locked, quota) < stored.size_bytes:
                raise _bytes_quota_exceeded(quota)
            attachment = Attachment(
                id=str(uuid.uuid4()),
                tip_id=tip_id,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                storage_name=stored.storage_name,
                received_at=self.clock.now(),
            )
            self.session.add(attachment)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            store.remove(stored.storage_name)
            raise
        return attachment

    def _attachment_room(self, tip: Tip, quota: AttachmentQuota) -> int:
        """Bytes the tip may still take, after checking its status and its file count."""
        if tip.status == TipStatus.REJECTED:
            raise AttachmentToRejectedTip(
                "the tip was rejected: send the corrected tip, then attach the files to it"
            )
        files, used = self.session.execute(
            select(func.count(), func.coalesce(func.sum(Attachment.size_bytes), 0)).where(
                Attachment.tip_id == tip.id
            )
        ).one()
        if files >= quota.max_files:
            raise AttachmentQuotaExceeded(
                f"the tip has {files} attachments, the most one tip may have", files=True
            )
        return max(quota.max_bytes - int(used), 0)

    def _by_idempotency_key(self, agency_id: int, key_hash: str) -> Tip | None:
        return self.session.scalar(
            select(Tip).where(Tip.agency_id == agency_id, Tip.idempotency_key_hash == key_hash)
        )
