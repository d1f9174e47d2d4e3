"""The trusted-browser cookie (OWASP's *device cookie*): long-lived, HttpOnly, random.

A browser gets one token per account signed in with it (a shared computer may hold a few);
the server keeps only their hashes (``TrustedDevice``). At the password step the tokens are
presented, and a lockout of the account applies only to browsers without one of its tokens.
"""

from __future__ import annotations

import re

from flask import current_app, request
from werkzeug.wrappers import Response

from referrals.accounts.services import DEVICE_TRUST_LIFETIME, MAX_DEVICE_TOKENS

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def cookie_name() -> str:
    # __Host-: only ever set by this origin over HTTPS, for the whole site.
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    return "__Host-tipline-device" if secure else "tipline-device"


def presented() -> list[str]:
    """The trusted-browser tokens this request carries (malformed ones ignored)."""
    raw = request.cookies.get(cookie_name(), "")
    tokens = [token for token in raw.split(".") if _TOKEN.fullmatch(token)]
    return tokens[:MAX_DEVICE_TOKENS]


def trust(response: Response, token: str | None) -> None:
    """Add ``token`` to the browser's trusted-browser cookie (newest first); with None, keep
    the tokens it has for another ``DEVICE_TRUST_LIFETIME`` (as the server does)."""
    tokens = presented()
    if token is not None:
        tokens = [token, *(other for other in tokens if other != token)][:MAX_DEVICE_TOKENS]
    if not tokens:
        return
    response.set_cookie(
        cookie_name(),
        ".".join(tokens),
        max_age=int(DEVICE_TRUST_LIFETIME.total_seconds()),
        path="/",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        # Only ever needed by the sign-in form's own POST, which is same-site.
        samesite="Strict",
    )
