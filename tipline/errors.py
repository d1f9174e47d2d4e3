"""Error responses: a status and a reason, never a traceback or the request's content."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

logger = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> Response:
    """The JSON error body every API answer uses: ``{"error": {"code", "message"}}``."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = getattr(exc, "error_code", None) or (exc.name or "error").lower().replace(" ", "_")
    response = error_response(status, code, exc.description or exc.name)
    # Keep what the exception says about the answer (WWW-Authenticate, Allow, Retry-After).
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
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
    response = error_response(
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
