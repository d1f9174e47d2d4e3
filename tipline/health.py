"""``/healthz``: whether this process reaches the database, Redis and live workers.

For load balancers and operators; it says nothing about tips.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, jsonify
from rq import Worker
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from referrals.database import head_revision, schema_revision
from tipline import access
from tipline.database import runtime

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
@access.public
def healthz() -> tuple[Response, int]:
    rt = runtime()
    report: dict[str, Any] = {}
    healthy = True
    try:
        with rt.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        report["database"] = "ok"
        report["schema"] = (
            "current" if schema_revision(rt.engine) == head_revision() else "outdated"
        )
        healthy = report["schema"] == "current"
    except SQLAlchemyError:
        report["database"] = "unreachable"
        healthy = False
    try:
        rt.redis.ping()
        report["redis"] = "ok"
        report["workers"] = Worker.count(connection=rt.redis)
    except (redis.ConnectionError, redis.TimeoutError):
        report["redis"] = "unreachable"
        healthy = False
    report["status"] = "ok" if healthy else "failing"
    return jsonify(report), 200 if healthy else 503
