"""Security headers on every answer, and cookie settings."""

from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

# No script at all: every page works without JavaScript, so none is allowed to run.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


def _headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # A Referer only to our own pages: page addresses can name tips, so none leaves the site;
    # but Flask-WTF's CSRF check on HTTPS requires a same-origin Referer on every form post.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    return response


def init_app(app: Flask, *, https: bool) -> None:
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_NAME="__Host-tipline" if https else "tipline",
        # "Keep me signed in" makes the cookie outlive the browser, no longer than this;
        # the server-side session's own limits still apply.
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    if https:
        app.after_request(_hsts)
    app.after_request(_headers)


def _hsts(response: Response) -> Response:
    response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
