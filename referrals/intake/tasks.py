"""Jobs of the intake area."""

from __future__ import annotations

from referrals.intake.processing import TipProcessor
from referrals.jobs import JobContext


def process_tip(context: JobContext, tip_id: str) -> None:
    """Decrypt, verify, validate and index one tip; a second delivery changes nothing.

    Raises (so that rq retries with back-off) when the fault is ours; the tip's attempts
    are counted and capped (see ``referrals.intake.processing``).
    """
    TipProcessor(
        context.session_factory,
        keyring=context.keyring,
        blind_index=context.blind_index,
        audit_key=context.audit_key,
        clock=context.clock,
    ).process(tip_id)
