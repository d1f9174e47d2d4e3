"""Error responses: a status and a reason, never a traceback or the request's content.

The API and ``/healthz`` always answer JSON; browser pages (a client that accepts HTML) get a
small HTML page instead.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

logger = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> Response:
    """The JSON error body every API answer uses: ``{"error": {"code", "message"}}``."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


# What a person reading a page is told, where the exception's own words are not for them.
PAGE_MESSAGES = {
    429: "Too many attempts from your address. Wait a minute, then try again.",
    500: "Something went wrong on our side. Nothing you sent is shown or kept here.",
    503: "Temporarily unavailable: nothing was stored. Try again in a moment.",
}


def _wants_html() -> bool:
    if request.path.startswith("/api/") or request.path == "/healthz":
        return False
    return bool(request.accept_mimetypes.accept_html)


def _page(status: int, title: str, message: str) -> Response | None:
    """The HTML error page, or None if it cannot be rendered (then JSON is answered)."""
    try:
        body = render_template(
            "errors.html", title=title, message=PAGE_MESSAGES.get(status, message)
        )
    except Exception:  # noqa: BLE001 - an error page must not fail in turn
        logger.error("the error page for %s could not be rendered", status)
        return None
    return Response(body, status=status, mimetype="text/html")


def _error(status: int, code: str, message: str, *, title: str) -> Response:
    page = _page(status, title, message) if _wants_html() else None
    return page if page is not None else error_response(status, code, message)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = getattr(exc, "error_code", None) or (exc.name or "error").lower().replace(" ", "_")
    response = _error(status, code, exc.description or exc.name, title=exc.name)
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
        503,
        "service_unavailable",
        "Temporarily unavailable: nothing was stored, retry later.",
        title="Service Unavailable",
    )
    response.headers["Retry-After"] = "30"
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(OperationalError, _unavailable)
    app.register_error_handler(redis.ConnectionError, _unavailable)
    app.register_error_handler(redis.TimeoutError, _unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
