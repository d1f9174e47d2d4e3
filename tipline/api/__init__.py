"""The partner API, ``/api/v1``: machine-to-machine tip intake for partner agencies.

Every endpoint here answers errors as ``{"error": {"code", "message"}}`` and identifies the
agency by its bearer token; every query is scoped to that agency.
"""

from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, Flask, Response
from flask_limiter import Limiter

from tipline import access
from tipline.api import auth, feedback, messages, tips

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
blueprint.register_blueprint(tips.blueprint)
blueprint.register_blueprint(messages.blueprint)
blueprint.register_blueprint(feedback.blueprint)


def init_app(app: Flask, limiter: Limiter) -> None:
    # Per agency: one agency's bulk upload must not slow another's urgent tip. Requests
    # without a valid token are counted per address, which also slows token guessing.
    limiter.limit(lambda: app.config["TIPLINE_API_RATE_LIMIT"], key_func=auth.rate_limit_key)(
        blueprint
    )
    app.register_blueprint(blueprint)
    app.add_url_rule("/api/v1/openapi.json", "openapi", openapi)


@access.public
def openapi() -> Response:
    """The API's OpenAPI 3.1 description (public: it is what partners build against)."""
    spec = files("tipline.api").joinpath("openapi.json").read_bytes()
    return Response(spec, mimetype="application/json")
