"""Who may reach each endpoint: declared on the view, checked in one place, denied by default.

Every view declares a rule with one of the decorators below. One ``before_request`` hook looks
the rule up for the endpoint being reached; an endpoint without a rule answers 403 to
everyone (and a test walking the URL map fails for it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, current_app, g, redirect, request, url_for
from werkzeug.wrappers import Response

from referrals.accounts.models import Role, User

F = TypeVar("F", bound=Callable[..., Any])
RULE = "_tipline_access"

PUBLIC = "public"  # anyone, signed in or not (login, enrolment, health, API description)
# Partner systems with a bearer token; the API checks it.
AGENCY_TOKEN = "agency-token"  # noqa: S105 - a rule name, not a token


def public(view: F) -> F:
    """Anyone may reach this view."""
    setattr(view, RULE, PUBLIC)
    return view


def agency_token(view: F) -> F:
    """Reached by partner agencies' systems with an API token (the API checks it)."""
    setattr(view, RULE, AGENCY_TOKEN)
    return view


def roles(*allowed: Role) -> Callable[[F], F]:
    """Only people signed in with one of these roles may reach this view."""

    def declare(view: F) -> F:
        setattr(view, RULE, frozenset(allowed))
        return view

    return declare


def rule_for(endpoint: str | None) -> object:
    """The declared rule of an endpoint, or None if it has none."""
    if endpoint is None:
        return None
    view = current_app.view_functions.get(endpoint)
    return getattr(view, RULE, None)


def current_person() -> User | None:
    """The person signed in on this request (set by the session check), or None."""
    person: User | None = g.get("person")
    return person


def _enforce() -> Response | None:
    if request.endpoint is None:
        return None  # no route: the 404 handler answers
    rule = rule_for(request.endpoint)
    if rule in (PUBLIC, AGENCY_TOKEN):
        return None
    if not isinstance(rule, frozenset):
        abort(403)  # no rule declared: deny
    person = current_person()
    if person is None:
        return redirect(url_for("auth.login", next=request.path))
    if person.role_enum not in rule:
        abort(403)
    return None


def init_app(app: Flask) -> None:
    # Flask's own static route has no decorator to carry a rule.
    if "static" in app.view_functions:
        setattr(app.view_functions["static"], RULE, PUBLIC)
    app.before_request(_enforce)
