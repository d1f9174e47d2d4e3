"""Jobs of the messages area."""

from __future__ import annotations

from referrals.audit.services import AuditLog
from referrals.jobs import JobContext
from referrals.messages.checking import ReplyChecker


def check_reply(context: JobContext, message_id: int) -> None:
    """Decrypt and verify a partner's reply; a second delivery changes nothing."""
    with context.session_factory() as session:
        ReplyChecker(
            session,
            audit=AuditLog(session, key=context.audit_key, clock=context.clock),
            clock=context.clock,
            keyring=context.keyring,
        ).check_reply(message_id)
