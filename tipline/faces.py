"""The face a web process shows (``TIPLINE_WEB_FACE``): whom it serves.

A partner-facing process answers partner agencies, from the internet; a staff-facing one serves
the centre's staff, on an internal network; the embedded default serves both. ``create_app``
registers only the blueprints of its face. Here, each face also serves only its own people: an
account of another kind is refused at sign-in (answered like an unknown account), and a session
of another kind counts as nobody signed in.
"""

from __future__ import annotations

from flask import Flask, current_app

from referrals.accounts.models import Role
from tipline.config import Face

ROLES: dict[Face, frozenset[Role]] = {
    Face.PARTNER: frozenset({Role.PARTNER}),
    Face.STAFF: frozenset(role for role in Role if role.is_staff),
    Face.ALL: frozenset(Role),
}


def current() -> Face:
    """The face of the current app."""
    face: Face = current_app.extensions["tipline.face"]
    return face


def roles() -> frozenset[Role]:
    """The roles that may sign in on the current app's face."""
    return ROLES[current()]


def init_app(app: Flask, face: Face) -> None:
    """Record the app's face (the session check reads it: a session of a person this face
    does not serve, from a cookie shared across hosts say, counts as nobody signed in)."""
    app.extensions["tipline.face"] = face
