"""A worker checks a partner's reply like a tip: encrypted to the current intake key, signed by a
key pinned to the agency when it arrived (or, for a reply an officer wrote in the portal, by the
web-form key then valid, as for a web-form tip); accepted, or refused with a reason for the
partner."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crypto import CryptoError, Keyring, SignatureStatus
from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.intake.models import AgencyKey, IntakeKey, WebFormKey
from referrals.messages.models import Message, MessageStatus

#: A reply's size as received (armored) and decrypted: a message, not a file.
MAX_REPLY_BYTES = 256 * 1024


class ReplyChecker:
    def __init__(
        self, session: Session, *, audit: AuditLog, clock: Clock, keyring: Keyring
    ) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.keyring = keyring

    def check_reply(self, message_id: int) -> MessageStatus | None:
        """Decrypt and verify a received reply; accept it or refuse it with a reason. A reply
        already judged is left as it is."""
        message = self.session.get(Message, message_id)
        if message is None or message.status != MessageStatus.RECEIVED.value:
            return None
        keyring = self.keyring
        intake = self.session.scalar(
            select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
        )
        if intake is None:
            raise RuntimeError("no current intake key: run `tipline init`")
        arrived = message.created_at
        if message.submitted_by_user_id is None:
            # By the API: a key pinned to the agency when it arrived.
            keys = select(AgencyKey.fingerprint, AgencyKey.public_key).where(
                AgencyKey.agency_id == message.agency_id,
                AgencyKey.pinned_at <= arrived,
                (AgencyKey.retired_at.is_(None)) | (AgencyKey.retired_at > arrived),
            )
            unsigned = "the reply is not signed by your agency's registered key"
        else:
            # Written in the portal: the portal sealed it with the web-form key valid then.
            keys = select(WebFormKey.fingerprint, WebFormKey.public_key).where(
                WebFormKey.created_at <= arrived,
                (WebFormKey.retired_at.is_(None)) | (WebFormKey.retired_at > arrived),
            )
            unsigned = "the reply is not signed by the centre's web-form key"
        signers = {row.fingerprint: row.public_key for row in self.session.execute(keys)}
        for fingerprint, armored in signers.items():
            keyring.make_available(fingerprint, armored)
        reason = None
        signer = None
        try:
            opened = keyring.decrypt_and_verify(message.armored)
            if opened.decrypted_with != intake:
                reason = f"the reply is not encrypted to the current intake key ({intake})"
            elif not (
                opened.signature_status == SignatureStatus.VALID
                and opened.signer_fingerprint in signers
            ):
                reason = unsigned
            elif len(opened.plaintext) > MAX_REPLY_BYTES:
                reason = f"the reply is larger than {MAX_REPLY_BYTES} bytes"
            else:
                opened.plaintext.decode("utf-8")
                signer = opened.signer_fingerprint
        except UnicodeDecodeError:
            reason = "the reply is not UTF-8 text"
        except CryptoError as exc:
            reason = f"the reply could not be decrypted: {exc}"
        status = MessageStatus.REJECTED if reason else MessageStatus.ACCEPTED
        judged = self.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == MessageStatus.RECEIVED.value)
            .values(status=status.value, reason=reason, key_fingerprint=signer)
        )
        if rows_matched(judged) == 0:
            self.session.rollback()
            return None
        self.audit.record(
            f"message.{status.value}",
            actor="system:worker",
            subject=f"tip:{message.tip_id}",
            details={"message": message_id},
        )
        self.session.commit()
        return status
