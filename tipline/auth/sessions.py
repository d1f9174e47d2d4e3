"""Who is signed in: the server-side session named by the cookie, checked on every request."""

from __future__ import annotations

from flask import Flask, g, request, session
from werkzeug.wrappers import Response

from referrals.accounts.services import AccountService
from tipline import addresses, database

SESSION_TOKEN = "sid"  # noqa: S105 - the session key's name


def client_address() -> str | None:
    """The client's IP address, as the trusted proxies (``TIPLINE_TRUSTED_PROXIES``) report
    it; None when it is unknown (gunicorn on a Unix socket, with no proxy trusted)."""
    return addresses.client_address()


def account_service() -> AccountService:
    """The account service on this request's database session."""
    rt = database.runtime()
    db_session = database.session()
    return AccountService(
        db_session,
        box=rt.secret_box,
        hashing=rt.password_hashing,
        audit=rt.audit(db_session),
        clock=rt.clock,
    )


def _load_person() -> None:
    g.person = None
    token = session.get(SESSION_TOKEN)
    if not token or request.endpoint in (None, "static"):
        return
    person = account_service().session_user(token)
    if person is None:
        session.pop(SESSION_TOKEN, None)  # ended, expired or disabled: forget it
    g.person = person


def _no_store(response: Response) -> Response:
    # Pages for signed-in people, and the sign-in pages, must not be kept by a browser or proxy.
    endpoint = request.endpoint or ""
    if g.get("person") is not None or endpoint.startswith("auth."):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def init_app(app: Flask) -> None:
    app.before_request(_load_person)
    app.after_request(_no_store)
