"""Who may reach each endpoint: declared on the view, checked in one place, denied by default.

Every view declares a rule with one of the decorators below. One ``before_request`` hook looks
the rule up for the endpoint being reached; an endpoint without a rule answers 403 to
everyone (and a test walking the URL map fails for it).

A role rule may also ask for *step-up*: the person must have given a code from their
authenticator within the last few minutes (``STEP_UP_WINDOW``; signing in counts), or they
are sent to give one first (Flask-Login's "refresh"), then back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask, abort, current_app, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from referrals.accounts.kept_forms import KEPT_FORM_LIFETIME
from referrals.accounts.models import Role, User
from tipline import database
from tipline.auth import kept_forms
from tipline.auth.sessions import login_manager, signed_in

F = TypeVar("F", bound=Callable[..., Any])
RULE = "_tipline_access"

PUBLIC = "public"  # anyone, signed in or not (login, enrolment, health, API description)
# Partner systems with a bearer token; the API checks it.
AGENCY_TOKEN = "agency-token"  # noqa: S105 - a rule name, not a token


@dataclass(frozen=True)
class RoleRule:
    """People signed in with one of ``allowed`` roles.

    Attributes:
        step_up: a current code is needed first (sensitive actions).
        back: for a POST, the page (endpoint) its form was on, to return to after signing in
            or stepping up; a POST is never repeated by a redirect.
        keep_form: a POST arriving after the sender's session timed out is kept for them
            (sealed) and given back on the form's page once they are signed in again.
    """

    allowed: frozenset[Role]
    step_up: bool = False
    # Shows tip content: a code is asked for after a quiet period (see
    # ``LiveSession.needs_step_up_for_content``), not every few minutes of steady reading.
    content: bool = False
    back: str | None = None
    keep_form: bool = False


def public(view: F) -> F:
    """Anyone may reach this view."""
    setattr(view, RULE, PUBLIC)
    return view


def agency_token(view: F) -> F:
    """Reached by partner agencies' systems with an API token (the API checks it)."""
    setattr(view, RULE, AGENCY_TOKEN)
    return view


def roles(
    *allowed: Role,
    step_up: bool = False,
    back: str | None = None,
    keep_form: bool = False,
    content: bool = False,
) -> Callable[[F], F]:
    """Only people signed in with one of these roles may reach this view (see ``RoleRule``)."""

    def declare(view: F) -> F:
        setattr(
            view,
            RULE,
            RoleRule(
                frozenset(allowed),
                step_up=step_up,
                back=back,
                keep_form=keep_form,
                content=content,
            ),
        )
        return view

    return declare


def rule_for(endpoint: str | None) -> object:
    """The declared rule of an endpoint, or None if it has none."""
    if endpoint is None:
        return None
    view = current_app.view_functions.get(endpoint)
    return getattr(view, RULE, None)


def current_person() -> User | None:
    """The person signed in on this request (Flask-Login's ``current_user``), or None."""
    person = signed_in()
    return person.user if person is not None else None


def _enforce() -> Response | None:
    if request.endpoint is None:
        return None  # no route: the 404 handler answers
    rule = rule_for(request.endpoint)
    if rule in (PUBLIC, AGENCY_TOKEN):
        return None
    if not isinstance(rule, RoleRule):
        abort(403)  # no rule declared: deny
    person = signed_in()
    if person is None:
        answer: Response = login_manager().unauthorized()
        return answer
    if person.user.role_enum not in rule.allowed:
        abort(403)
    now = database.runtime().clock.now()
    if (rule.step_up and person.needs_step_up(now)) or (
        rule.content and person.needs_step_up(now, content=True)
    ):
        refresh: Response = login_manager().needs_refresh()
        return refresh
    return None


def _return_path() -> str:
    """Where to come back to after signing in or stepping up: this page for a GET; for a POST,
    the page its form was on (a redirect cannot repeat a POST)."""
    if request.method in ("GET", "HEAD"):
        return request.full_path.rstrip("?")
    rule = rule_for(request.endpoint)
    if isinstance(rule, RoleRule) and rule.back is not None:
        return url_for(rule.back)
    if request.url_rule is not None and "GET" in (request.url_rule.methods or ()):
        return request.path
    return url_for("home.index")


def _sign_in_first() -> Response:
    """Flask-Login's "unauthorized": not signed in (or no longer)."""
    response = redirect(url_for("auth.login", next=_return_path()))
    rule = rule_for(request.endpoint)
    keeps = request.method == "POST" and isinstance(rule, RoleRule) and rule.keep_form
    if keeps and kept_forms.keep(response):
        minutes = KEPT_FORM_LIFETIME // timedelta(minutes=1)
        flash(
            "Your session ended while you were writing. Sign in again within "
            f"{minutes} minutes: what you wrote is kept, encrypted, and will be back in "
            "the form.",
            "info",
        )
        return response
    if request.method == "POST":
        flash("Your session has ended: sign in again. Nothing was changed or sent.", "info")
    return response


def _step_up_first() -> Response:
    """Flask-Login's "needs refresh": signed in, but no code given for a while."""
    if request.method in ("GET", "HEAD"):
        flash("This page needs a current code from your authenticator.", "info")
    else:
        flash(
            "That needs a current code from your authenticator. Nothing was changed: "
            "give a code, then do it again.",
            "info",
        )
    return redirect(url_for("auth.step_up", next=_return_path()))


def init_app(app: Flask) -> None:
    # Flask's own static route has no decorator to carry a rule.
    if "static" in app.view_functions:
        setattr(app.view_functions["static"], RULE, PUBLIC)
    manager = app.login_manager  # type: ignore[attr-defined]
    manager.unauthorized_handler(_sign_in_first)
    manager.needs_refresh_handler(_step_up_first)
    app.before_request(_enforce)
