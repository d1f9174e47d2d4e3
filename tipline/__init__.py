"""The Flask application, its blueprints and the ``tipline`` command: the composition root."""

from __future__ import annotations

import logging

from flask import Flask

from tipline import database, errors, health
from tipline.config import Settings
from tipline.instance import FLASK_SECRET_KEY, read_secret
from tipline.runtime import Runtime

# Requests bigger than this are refused before they are read (413).
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024


def create_app(config: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    """Build the web application.

    Args:
        config: settings; read from the environment when omitted.
        runtime: ready-made connections (tests share one); built from the settings when
            omitted.

    Raises:
        ConfigError: a setting is malformed or the home was not initialised.
    """
    settings = runtime.settings if runtime is not None else (config or Settings.from_environment())
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=read_secret(settings, FLASK_SECRET_KEY),
        MAX_CONTENT_LENGTH=DEFAULT_MAX_REQUEST_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    logging.getLogger("tipline").setLevel(settings.log_level)
    logging.getLogger("referrals").setLevel(settings.log_level)
    app.extensions["tipline"] = runtime or Runtime.build(settings)

    database.init_app(app)
    errors.init_app(app)
    app.register_blueprint(health.blueprint)
    return app
