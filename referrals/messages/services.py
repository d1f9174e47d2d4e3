"""Writing to a partner about a tip, receiving its reply, and reading the thread.

The centre's message is sealed where it is written (a staff host holds the intake key): signed
with the intake key, encrypted to the agency's current key, to the intake key and to the portal
key (which partner-facing hosts hold, to show it in the portal). A partner's
reply is stored as it came by the partner-facing host (which can decrypt nothing) and checked by
a worker like a tip: encrypted to the current intake key, signed by a key pinned to the agency
when it arrived; else refused with a reason the partner can act on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crypto import CryptoError, Keyring
from referrals.accounts.models import User
from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.intake.models import Agency, IntakeKey, Tip, TipStatus, WebFormKey
from referrals.jobs import JobQueue
from referrals.messages import tasks
from referrals.messages.checking import MAX_REPLY_BYTES
from referrals.messages.models import Direction, Message, MessageKind, MessageStatus
from referrals.messages.portal_key import PortalKeyService

logger = logging.getLogger(__name__)

SCHEMA = "tipline.message/1"
MAX_TEXT_CHARS = 10_000


class MessageRefused(ValueError):
    """The message cannot be sent or taken; the text says why."""


@dataclass(frozen=True)
class ThreadEntry:
    message: Message
    text: str | None  # None when it could not be read on this host


class Correspondence:
    """Args:
    session: the caller's session (the service commits).
    audit: the audit log in that session.
    clock: the clock.
    keyring: the keyring (a staff host's, to seal and read; None on a partner-facing host).
    queue: where a reply's check is queued.
    """

    def __init__(
        self,
        session: Session,
        *,
        audit: AuditLog,
        clock: Clock,
        keyring: Keyring | None = None,
        queue: JobQueue | None = None,
    ) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.keyring = keyring
        self.queue = queue

    # -- the centre writes -----------------------------------------------------------------

    def ask(self, person: User, tip: Tip, text: str, *, address: str | None) -> Message:
        """Ask the tip's agency for more information (audited; committed). Counts as a first
        triage decision: the tip's SLA clock stops.

        Raises:
            MessageRefused: no text, too long, or the agency has no key to encrypt to.
        """
        # As a browser sends a textarea (CRLF): paragraphs are told apart by blank lines.
        text = text.replace("\r\n", "\n").strip()
        if not text:
            raise MessageRefused("Write what you need from the partner agency.")
        if len(text) > MAX_TEXT_CHARS:
            raise MessageRefused(f"Write at most {MAX_TEXT_CHARS:,} characters.")
        message = self.send(person, tip, MessageKind.INFORMATION_REQUEST, text, address=address)
        self.session.execute(
            update(Tip)
            .where(Tip.id == tip.id, Tip.triaged_at.is_(None))
            .values(triaged_at=message.created_at)
        )
        self.session.commit()
        return message

    def send(
        self,
        person: User,
        tip: Tip,
        kind: MessageKind,
        text: str,
        *,
        extra: Mapping[str, Any] | None = None,
        address: str | None,
    ) -> Message:
        """Seal and store a message of the centre to the tip's agency about the tip, audited
        (``message.sent``); the caller commits. ``extra`` adds fields to the document.

        Raises:
            MessageRefused: as ``seal_for``.
        """
        now = self.clock.now()
        document = {
            "schema": SCHEMA,
            "kind": kind.value,
            "tip_id": tip.id,
            "tracking_number": tip.tracking_number,
            "sent_at": now.isoformat(),
            "text": text,
            **(extra or {}),
        }
        armored, key_fingerprint = self.seal_for(tip.agency_id, document)
        message = Message(
            tip_id=tip.id,
            agency_id=tip.agency_id,
            direction=Direction.TO_PARTNER.value,
            kind=kind.value,
            status=MessageStatus.SENT.value,
            armored=armored,
            created_at=now,
            author_id=person.id,
            key_fingerprint=key_fingerprint,
        )
        self.session.add(message)
        self.session.flush()
        self.audit.record(
            "message.sent",
            actor=f"user:{person.id}",
            subject=f"tip:{tip.id}",
            address=address,
            details={"message": message.id, "kind": message.kind},
        )
        return message

    def seal_for(self, agency_id: int, document: Mapping[str, Any]) -> tuple[bytes, str]:
        """``document`` as the centre sends it to an agency: JSON, signed with the intake key,
        encrypted to the agency's current key, to the intake key (staff read what was sent)
        and to the portal key (the portal shows it). Returns the armored message and the
        fingerprint of the agency key it was sealed for.

        Raises:
            MessageRefused: the agency has no key, or it could not be sealed.
        """
        keyring = self._keyring()
        agency = self.session.get(Agency, agency_id)
        key = agency.current_key if agency is not None else None
        if key is None:
            raise MessageRefused("The agency has no current key to encrypt to.")
        intake = self._intake_key()
        recipients = [key.fingerprint, intake]
        portal = PortalKeyService(self.session, keyring=keyring, clock=self.clock).recorded()
        try:
            if not keyring.make_available(key.fingerprint, key.public_key):
                raise MessageRefused("The agency's key is not available on this host.")
            if portal is not None and keyring.make_available(portal.fingerprint, portal.public_key):
                # So the partner portal can show it (an instance not yet given a portal key
                # by `tipline init` seals for the agency's key alone: its portal offers the
                # sealed message to download).
                recipients.append(portal.fingerprint)
            armored = keyring.encrypt(
                json.dumps(document, ensure_ascii=False).encode("utf-8"),
                recipients,
                sign_with=intake,
            )
        except CryptoError as exc:
            raise MessageRefused(f"The message could not be sealed: {exc}.") from exc
        return armored.encode("ascii"), key.fingerprint

    def open_ours(self, armored: bytes) -> str | None:
        """The JSON document of a message the centre sealed (``seal_for``), opened in memory
        with this host's keyring (a staff host's intake key, a partner host's portal key),
        if it can and the intake key signed it; else None."""
        if self.keyring is None:
            return None
        centre = set(self.session.scalars(select(IntakeKey.fingerprint)))
        try:
            opened = self.keyring.decrypt_and_verify(armored)
            if opened.signature_valid and opened.signer_fingerprint in centre:
                return opened.plaintext.decode("utf-8")
        except (CryptoError, UnicodeDecodeError):
            logger.warning("a message of the centre could not be read on this host")
        return None

    # -- the partner fetches and replies ---------------------------------------------------

    def for_agency(
        self, agency_id: int, *, after_id: int = 0, since: datetime | None = None, limit: int = 50
    ) -> tuple[list[Message], bool]:
        """The centre's messages to the agency after ``after_id`` (and ``since``), oldest
        first, at most ``limit``, and whether more follow; the first fetch of each message
        returned is recorded (committed)."""
        conditions = [
            Message.agency_id == agency_id,
            Message.direction == Direction.TO_PARTNER.value,
            Message.id > after_id,
        ]
        if since is not None:
            conditions.append(Message.created_at >= since)
        found = list(
            self.session.scalars(
                select(Message).where(*conditions).order_by(Message.id).limit(limit + 1)
            )
        )
        page = found[:limit]
        unread = [message.id for message in page if message.fetched_at is None]
        if unread:
            now = self.clock.now()
            self.session.execute(
                update(Message)
                .where(Message.id.in_(unread), Message.fetched_at.is_(None))
                .values(fetched_at=now)
            )
            self.audit.record(
                "message.fetched",
                actor=f"agency:{agency_id}",
                details={"messages": len(unread), "first": unread[0], "last": unread[-1]},
            )
            self.session.commit()
        return page, len(found) > limit

    def for_portal(
        self, agency_id: int, tip_id: str, *, reader: User, address: str | None
    ) -> list[ThreadEntry]:
        """The conversation about the agency's tip, oldest first, for an officer of the agency
        in the portal, decrypted in memory with the portal key (``keyring``: the partner
        face's) where it can: the centre's messages signed by the intake key, and the answers
        officers wrote in the portal, signed by the web-form key. Anything else (a reply sent
        by the API, sealed for the intake key only; a message it cannot read or trust) is
        listed without its text. Reading the centre's messages is audited, and their first
        reading is recorded as their fetch (committed)."""
        messages: Sequence[Message] = self.session.scalars(
            select(Message)
            .where(Message.tip_id == tip_id, Message.agency_id == agency_id)
            .order_by(Message.id)
        ).all()
        if not messages:
            return []
        centre = set(self.session.scalars(select(IntakeKey.fingerprint)))
        portal = set(self.session.scalars(select(WebFormKey.fingerprint)))
        entries = []
        for message in messages:
            ours = message.direction == Direction.TO_PARTNER.value
            text = None
            readable = ours or message.submitted_by_user_id is not None
            if readable and self.keyring is not None:
                try:
                    opened = self.keyring.decrypt_and_verify(message.armored)
                    if opened.signature_valid and opened.signer_fingerprint in (
                        centre if ours else portal
                    ):
                        text = _text_of(opened.plaintext)
                except (CryptoError, UnicodeDecodeError, ValueError):
                    logger.warning("message %s could not be read on this host", message.id)
            entries.append(ThreadEntry(message=message, text=text))
        shown = [
            entry.message.id
            for entry in entries
            if entry.text is not None and entry.message.direction == Direction.TO_PARTNER.value
        ]
        if shown:
            self.session.execute(
                update(Message)
                .where(Message.id.in_(shown), Message.fetched_at.is_(None))
                .values(fetched_at=self.clock.now())
            )
            self.audit.record(
                "message.read",
                actor=f"user:{reader.id}",
                subject=f"tip:{tip_id}",
                address=address,
                details={"messages": len(shown), "first": shown[0], "last": shown[-1]},
            )
            self.session.commit()
        return entries

    def reply_in_portal(
        self,
        person: User,
        tip_id: str,
        text: str,
        *,
        intake_fingerprint: str,
        web_form_fingerprint: str,
        address: str | None,
    ) -> Message:
        """An officer's answer written in the portal: sealed here in memory (encrypted to the
        intake key, signed with the web-form key: ``keyring`` is the partner face's), then
        stored and checked like any reply.

        Raises:
            LookupError: no such tip of the officer's agency.
            MessageRefused: no text, too long, the tip was rejected, or it could not be sealed.
        """
        text = text.replace("\r\n", "\n").strip()
        if not text:
            raise MessageRefused("Write your answer to the centre.")
        if len(text) > MAX_TEXT_CHARS:
            raise MessageRefused(f"Write at most {MAX_TEXT_CHARS:,} characters.")
        if person.agency_id is None:
            raise LookupError(tip_id)
        tip = self.session.get(Tip, tip_id)
        if tip is None or tip.agency_id != person.agency_id:
            raise LookupError(tip_id)
        document = {
            "schema": SCHEMA,
            "kind": MessageKind.REPLY.value,
            "tip_id": tip.id,
            "tracking_number": tip.tracking_number,
            "sent_at": self.clock.now().isoformat(),
            "text": text,
        }
        recipients = [intake_fingerprint]
        portal = PortalKeyService(self.session, keyring=self._keyring(), clock=self.clock)
        recorded = portal.recorded()
        if recorded is not None:
            # So the officer sees in the portal what they sent (the portal key opens nothing
            # a partner did not write or the centre did not send).
            recipients.append(recorded.fingerprint)
        try:
            armored = self._keyring().encrypt(
                json.dumps(document, ensure_ascii=False).encode("utf-8"),
                recipients,
                sign_with=web_form_fingerprint,
            )
        except CryptoError as exc:
            logger.error("portal reply not sealed (%s): nothing stored", type(exc).__name__)
            raise MessageRefused(
                "Your answer could not be sealed on our side, so nothing was sent. Try again in a "
                "few minutes; if it keeps failing, tell the centre."
            ) from None
        return self.receive_reply(
            person.agency_id,
            tip_id,
            armored.encode("ascii"),
            submitted_by=person,
            address=address,
        )

    def receive_reply(
        self,
        agency_id: int,
        tip_id: str,
        armored: bytes,
        *,
        submitted_by: User | None = None,
        address: str | None = None,
    ) -> Message:
        """Store a partner's reply as it came (nothing is decrypted here), commit, then queue
        its check.

        Args:
            submitted_by: the officer who wrote it in the portal (None: sent by the API).

        Raises:
            LookupError: no such tip of this agency.
            MessageRefused: the tip was rejected (nothing to reply to), or the body is too big.
        """
        tip = self.session.get(Tip, tip_id)
        if tip is None or tip.agency_id != agency_id:
            raise LookupError(tip_id)
        if tip.status == TipStatus.REJECTED:
            raise MessageRefused("the tip was rejected: send a corrected tip instead")
        if len(armored) > MAX_REPLY_BYTES:
            raise MessageRefused(f"a reply may be at most {MAX_REPLY_BYTES} bytes")
        message = Message(
            tip_id=tip_id,
            agency_id=agency_id,
            direction=Direction.FROM_PARTNER.value,
            kind=MessageKind.REPLY.value,
            status=MessageStatus.RECEIVED.value,
            armored=bytes(armored),
            created_at=self.clock.now(),
            submitted_by_user_id=submitted_by.id if submitted_by is not None else None,
        )
        self.session.add(message)
        self.session.flush()
        self.audit.record(
            "message.received",
            actor=f"user:{submitted_by.id}" if submitted_by is not None else f"agency:{agency_id}",
            subject=f"tip:{tip_id}",
            address=address,
            details={"message": message.id, "via": "portal" if submitted_by else "api"},
        )
        self.session.commit()
        if self.queue is not None:
            self.queue.enqueue(tasks.check_reply, message.id)
        return message

    # -- staff read the thread -------------------------------------------------------------

    def thread(self, tip_id: str) -> list[ThreadEntry]:
        """The tip's messages both ways, oldest first, decrypted in memory where this host
        can (a reply not yet checked, or refused, is listed without its text)."""
        messages: Sequence[Message] = self.session.scalars(
            select(Message).where(Message.tip_id == tip_id).order_by(Message.id)
        ).all()
        entries = []
        for message in messages:
            text = None
            readable = message.direction == Direction.TO_PARTNER.value or (
                message.status == MessageStatus.ACCEPTED.value
            )
            if readable and self.keyring is not None:
                try:
                    plaintext = self.keyring.decrypt_and_verify(message.armored).plaintext
                    text = _text_of(plaintext)
                except (CryptoError, UnicodeDecodeError, ValueError):
                    logger.warning("message %s could not be read on this host", message.id)
            entries.append(ThreadEntry(message=message, text=text))
        return entries

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise RuntimeError("this process has no keyring to seal or read messages")
        return self.keyring

    def _intake_key(self) -> str:
        fingerprint = self.session.scalar(
            select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
        )
        if fingerprint is None:
            raise MessageRefused("The centre has no intake key: run `tipline init`.")
        return fingerprint


def _text_of(plaintext: bytes) -> str:
    """Ours are JSON documents with a ``text``; a partner's reply is plain UTF-8 text (or such a
    document, if its tooling writes one)."""
    decoded = plaintext.decode("utf-8")
    try:
        document = json.loads(decoded)
    except ValueError:
        return decoded
    if isinstance(document, dict) and isinstance(document.get("text"), str):
        return str(document["text"])
    return decoded
