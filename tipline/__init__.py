"""The Flask application, its blueprints and the ``tipline`` command: the composition root."""

from __future__ import annotations

import logging

from flask import Flask
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect

from tipline import (
    access,
    addresses,
    api,
    database,
    errors,
    faces,
    health,
    home,
    request_values,
    security,
)
from tipline.admin import blueprint as admin_blueprint
from tipline.aftercare import blueprint as aftercare_blueprint
from tipline.audit_log.views import blueprint as audit_log_blueprint
from tipline.audit_log.views import limit_verification
from tipline.auth import sessions
from tipline.auth.views import blueprint as auth_blueprint
from tipline.auth.views import limit_sign_in
from tipline.casework import blueprint as casework_blueprint
from tipline.config import Settings
from tipline.dashboard import blueprint as dashboard_blueprint
from tipline.desk import blueprint as desk_blueprint
from tipline.feedback import blueprint as feedback_blueprint
from tipline.handling import blueprint as handling_blueprint
from tipline.instance import FLASK_SECRET_KEY, read_secret
from tipline.onward import blueprint as onward_blueprint
from tipline.operations import blueprint as operations_blueprint
from tipline.partner import blueprint as partner_blueprint
from tipline.runtime import Runtime


def create_app(config: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    """Build the web application, serving the face ``TIPLINE_WEB_FACE`` names (see
    :mod:`tipline.faces`): its blueprints only, with only the secrets it needs.

    Args:
        config: settings; read from the environment when omitted.
        runtime: ready-made connections (tests share one); built from the settings when
            omitted.

    Raises:
        ConfigError: a setting is malformed or the home was not initialised.
    """
    settings = runtime.settings if runtime is not None else (config or Settings.from_environment())
    app = Flask(__name__)
    request_values.init_app(app)  # URL converters: before any route is added
    app.config.update(
        SECRET_KEY=read_secret(settings, FLASK_SECRET_KEY),
        # Bodies bigger than this are refused before they are read (413); the attachment
        # endpoint raises it for its own requests.
        MAX_CONTENT_LENGTH=settings.max_tip_bytes,
        TIPLINE_MAX_TIP_BYTES=settings.max_tip_bytes,
        TIPLINE_MAX_ATTACHMENT_BYTES=settings.max_attachment_bytes,
        TIPLINE_API_RATE_LIMIT=settings.api_rate_limit,
        JSON_SORT_KEYS=False,
    )
    logging.getLogger("tipline").setLevel(settings.log_level)
    logging.getLogger("referrals").setLevel(settings.log_level)
    rt = runtime or Runtime.build(settings, face=settings.web_face)
    app.extensions["tipline"] = rt

    addresses.init_app(app, trusted_proxies=settings.trusted_proxies)
    limiter = Limiter(
        # Limits without a key of their own count per client (an IPv6 client's /64).
        addresses.client_bucket,
        app=app,
        storage_uri="redis://",
        # The same Redis every process uses, so limits hold across gunicorn workers and hosts.
        storage_options={"connection_pool": rt.redis.connection_pool},  # type: ignore[dict-item]
        # No X-RateLimit-* headers: they cost a Redis round trip per request (8% of a tip's
        # time) and put a Retry-After on every answer; a 429 carries its own Retry-After.
        headers_enabled=False,
        # A rate limiter outage must not stop tips from being received.
        swallow_errors=True,
    )
    database.init_app(app)
    errors.init_app(app)
    security.init_app(app, https=settings.base_url.startswith("https://"))
    csrf = CSRFProtect(app)
    sessions.init_app(app)  # who is signed in: before the access check reads it
    faces.init_app(app, rt.face)  # whom this face serves: the session check reads it
    access.init_app(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(auth_blueprint)
    limit_sign_in(app, limiter)
    if rt.face.serves_staff:
        app.register_blueprint(admin_blueprint)
        app.register_blueprint(audit_log_blueprint)
        app.register_blueprint(desk_blueprint)
        app.register_blueprint(casework_blueprint)
        app.register_blueprint(feedback_blueprint)
        app.register_blueprint(handling_blueprint)
        app.register_blueprint(onward_blueprint)
        app.register_blueprint(operations_blueprint)
        app.register_blueprint(dashboard_blueprint)
        app.register_blueprint(aftercare_blueprint)
        limit_verification(app, limiter)
    if rt.face.serves_partners:
        app.register_blueprint(partner_blueprint)
        api.init_app(app, limiter)
        # The token-authenticated machine API: no cookies, no forms, nothing to forge.
        csrf.exempt(api.blueprint)
        csrf.exempt(api.tips.blueprint)
    home.init_app(app)
    return app
