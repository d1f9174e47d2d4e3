"""Error responses: a status and a reason, never a traceback or the request's content.

The API and ``/healthz`` always answer JSON; browser pages (a client that accepts HTML) get a
small HTML page instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from flask import Flask, Response, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from referrals.accounts.models import Role
from tipline import access

logger = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> Response:
    """The JSON error body every API answer uses: ``{"error": {"code", "message"}}``."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


@dataclass(frozen=True)
class PageText:
    """What a person reading an error page is told: a heading and a sentence."""

    title: str
    message: str


# In the product's words, not the framework's: a view's own description (``abort(404,
# description=...)``) replaces the message, except where the exception's text is not for them.
PAGES = {
    400: PageText(
        "This request could not be used",
        "Something in it was not what this page expects. Go back, reload the page and try again.",
    ),
    403: PageText("Not open to you", "This page is not open to anyone."),
    404: PageText(
        "Page not found",
        "There is nothing at this address. Check it, or go back to the start page.",
    ),
    405: PageText(
        "Not possible here",
        "This address does not take that kind of request: use the links and buttons on the pages.",
    ),
    410: PageText("Link no longer valid", "This link has expired or has already been used."),
    413: PageText("Too large", "What was sent is larger than this service takes."),
    429: PageText(
        "Too many attempts",
        "Too many attempts from your address. Wait a minute, then try again.",
    ),
    500: PageText(
        "Something went wrong",
        "Something went wrong on our side. Nothing you sent is shown or kept here.",
    ),
    503: PageText(
        "Temporarily unavailable",
        "Temporarily unavailable: nothing was stored. Try again in a moment.",
    ),
}
# Never a view's or a library's own words on these: they may quote what went wrong inside.
FIXED_MESSAGES = {500, 503}
CSRF_MESSAGE = (
    "This form has expired, or was not sent from this site's own page. Go back, reload the "
    "page and send it again."
)
# Who a refused page is for, in the sentence "This page is for …".
ROLE_PLURALS = {
    Role.PARTNER: "officers of partner agencies",
    Role.ANALYST: "analysts",
    Role.LEAD: "team leads",
    Role.ADMIN: "administrators",
}


def _wants_html() -> bool:
    if request.path.startswith("/api/") or request.path == "/healthz":
        return False
    return bool(request.accept_mimetypes.accept_html)


def allowed_roles_text(rule: object) -> str:
    """ "This page is for …" for an endpoint's access rule (see ``access.rule_for``)."""
    if not isinstance(rule, access.RoleRule) or not rule.allowed:
        return PAGES[403].message
    names = [ROLE_PLURALS.get(role, f"{role}s") for role in Role if role in rule.allowed]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"This page is for {listed}."


def _message(status: int, exc: HTTPException | None) -> str:
    if status == 403:
        return allowed_roles_text(access.rule_for(request.endpoint))
    if isinstance(exc, CSRFError):
        return CSRF_MESSAGE
    text = PAGES.get(status, PAGES[500]).message
    if exc is None or status in FIXED_MESSAGES:
        return text
    own = exc.description
    if isinstance(exc, RateLimitExceeded):
        # Flask-Limiter describes a limit as "10 per 1 minute" unless it was given words.
        own = exc.description if exc.limit.error_message else None
    elif own == type(exc).description:
        own = None  # Werkzeug's stock sentence
    return own or text


def _page(status: int, exc: HTTPException | None) -> Response | None:
    """The HTML error page, or None if it cannot be rendered (then JSON is answered)."""
    text = PAGES.get(status)
    try:
        body = render_template(
            "errors.html",
            status=status,
            title=text.title if text else exc.name if exc else PAGES[500].title,
            message=_message(status, exc),
        )
    except Exception:  # noqa: BLE001 - an error page must not fail in turn
        logger.error("the error page for %s could not be rendered", status)
        return None
    return Response(body, status=status, mimetype="text/html")


def _error(status: int, code: str, message: str, *, exc: HTTPException | None = None) -> Response:
    page = _page(status, exc) if _wants_html() else None
    return page if page is not None else error_response(status, code, message)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = getattr(exc, "error_code", None) or (exc.name or "error").lower().replace(" ", "_")
    response = _error(status, code, exc.description or exc.name, exc=exc)
    # Keep what the exception says about the answer (WWW-Authenticate, Allow, Retry-After).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    if isinstance(exc, RateLimitExceeded):
        # The longest the window can take to reset: a safe time to wait before retrying.
        response.headers["Retry-After"] = str(max(1, exc.limit.limit.get_expiry()))
    return response


def _unexpected_error(exc: Exception) -> Response:
    # The exception's text may quote data; log only its type and the endpoint.
    logger.error(
        "unhandled %s in %s %s",
        type(exc).__name__,
        request.method,
        request.endpoint,
        exc_info=False,
    )
    return _http_error(InternalServerError(description="Something went wrong on our side."))


def _unavailable(exc: Exception) -> Response:
    # The database or Redis is down or overloaded: nothing was received, and a partner's
    # system should retry (with its Idempotency-Key) rather than give up as on a 500.
    logger.error("%s in %s %s: answering 503", type(exc).__name__, request.method, request.endpoint)
    response = _error(
        503, "service_unavailable", "Temporarily unavailable: nothing was stored, retry later."
    )
    response.headers["Retry-After"] = "30"
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(OperationalError, _unavailable)
    app.register_error_handler(redis.ConnectionError, _unavailable)
    app.register_error_handler(redis.TimeoutError, _unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
