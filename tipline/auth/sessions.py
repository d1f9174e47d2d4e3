"""Who is signed in: Flask-Login's ``current_user``, loaded from the server-side session.

The cookie (Flask's signed session) carries only the session's random token, as Flask-Login's
user id; ``AccountService.session_user`` checks it against the database on every request, so
ending the row (signing out, an administrator disabling the account, a timeout) ends the
session whatever the browser still holds. Flask-Login's own remember-me cookie is never set:
"keep me signed in" makes the session cookie outlive the browser instead, within the
server-side session's limits.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, g, request, session
from flask_login import LoginManager, UserMixin, current_user
from werkzeug.wrappers import Response

from referrals.accounts.models import User
from referrals.accounts.services import (
    SESSION_ABSOLUTE,
    AccountService,
    ApprovalRule,
    LiveSession,
)
from tipline import addresses, database, faces

ENDED_SESSION = "ended_session_token"  # on g: the token of a session found ended
USER_ID = "_user_id"  # Flask-Login's key in the cookie: here, the session's token


class SignedInPerson(UserMixin):  # type: ignore[misc]  # Flask-Login is untyped
    """``current_user`` on a signed-in request: the person and their live session."""

    def __init__(self, live: LiveSession, token: str) -> None:
        self.live = live
        self.token = token

    @property
    def user(self) -> User:
        return self.live.user

    def get_id(self) -> str:
        # What Flask-Login keeps in the cookie: the session's token, never the account's id
        # (an id would outlive signing out).
        return self.token

    @property
    def is_active(self) -> bool:
        return self.user.disabled_at is None

    def needs_step_up(self, now: datetime, *, content: bool = False) -> bool:
        """Whether a sensitive action (or, with ``content``, tip content after a quiet
        period) must first ask for a current code."""
        if content:
            return self.live.needs_step_up_for_content(now)
        return self.live.needs_step_up(now)


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
        approval=ApprovalRule(rt.settings.enrolment_approval),
    )


def signed_in() -> SignedInPerson | None:
    """The signed-in person on this request, or None."""
    person = current_user._get_current_object()
    if isinstance(person, SignedInPerson) and person.is_authenticated:
        return person
    return None


def login_manager() -> LoginManager:
    manager: LoginManager = current_app.login_manager  # type: ignore[attr-defined]
    return manager


def _load_person(token: object) -> SignedInPerson | None:
    if not isinstance(token, str) or not token:
        return None
    live = account_service().session_user(token)
    if live is None:
        # Kept in the cookie until the browser signs in or out again: a form sent after a
        # timeout, even from another tab, can still be kept for its owner (kept_forms.py).
        g.setdefault(ENDED_SESSION, token)
        return None
    if live.user.role_enum not in faces.roles():
        # A session started on another face (a cookie shared across hosts, say): this face has
        # none of that person's pages, and must not show them its own.
        return None
    return SignedInPerson(live, token)


def _no_store(response: Response) -> Response:
    # Pages for signed-in people, and the sign-in pages, must not be kept by a browser or proxy.
    endpoint = request.endpoint or ""
    if endpoint.startswith("auth.") or (USER_ID in session and signed_in() is not None):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def init_app(app: Flask) -> None:
    manager = LoginManager()
    # Freshness is kept on the server-side session (``UserSession.last_code_at``), not in the
    # cookie's ``_fresh`` flag; and sessions are not tied to an address or browser string
    # (addresses change on mobile networks and behind proxies): a stolen cookie is countered by
    # the server-side session's limits, HttpOnly, SameSite and step-up.
    manager.session_protection = None
    manager.login_view = "auth.login"
    manager.refresh_view = "auth.step_up"
    manager.user_loader(_load_person)
    manager.init_app(app)
    # A form may be sent hours after it was opened: the token lives as long as the longest
    # session (Flask-WTF's default, one hour, would lose a tip written for longer than that).
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", int(SESSION_ABSOLUTE.total_seconds()))
    app.after_request(_no_store)
