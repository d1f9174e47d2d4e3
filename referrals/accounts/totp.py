"""Time-based one-time passwords (RFC 6238): enrolment secrets and code checks.

A code is accepted for the current 30-second step or one step either side (clocks drift),
and only for a step later than the last one accepted: a code seen once is good once.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

STEP_SECONDS = 30
WINDOW = 1  # steps either side
ISSUER = "Tipline"


def new_secret() -> str:
    """A new base32 TOTP seed (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, account: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def time_step(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, *, now: datetime, after: int | None) -> int | None:
    """The time step ``code`` is valid for, or None.

    Args:
        secret: the base32 seed.
        code: what the person typed (spaces allowed).
        now: the current time.
        after: the last step accepted before; only later steps count.
    """
    code = code.replace(" ", "").strip()
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = time_step(now)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None
