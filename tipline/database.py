"""One database session per request, closed when the request ends."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from tipline.runtime import Runtime


def runtime() -> Runtime:
    """The current app's runtime."""
    value: Runtime = current_app.extensions["tipline"]
    return value


def session() -> Session:
    """The request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = runtime().session_factory()
    value: Session = g.db_session
    return value


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        # Uncommitted work is rolled back: handlers commit explicitly, through services.
        db_session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
