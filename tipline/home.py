"""The landing page, the navigation each role sees, and the site's icon."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, url_for
from werkzeug.wrappers import Response

from referrals.accounts.models import Role
from tipline import access

blueprint = Blueprint("home", __name__)

# (label, endpoint) per role; later pages add themselves here.
NAVIGATION: dict[Role, list[tuple[str, str]]] = {role: [] for role in Role}
NAVIGATION[Role.PARTNER] += [
    ("Your agency's tips", "partner.tips"),
    ("Send a tip", "partner.new_tip"),
    ("Feedback", "partner.feedback"),
]
NAVIGATION[Role.ADMIN] += [
    ("Accounts", "admin.users"),
    ("Pending enrolments", "admin.enrolments"),
    ("Agencies", "admin.agencies"),
    ("Teams", "admin.teams"),
    ("Units", "admin.units"),
    ("Held tips", "admin.held_tips"),
    ("Failed jobs", "admin.failed_jobs"),
    ("Triage rules", "admin.triage_rules"),
    ("Selector values", "admin.selectors"),
    ("Audit log", "audit_log.index"),
]
NAVIGATION[Role.ANALYST] += [
    ("Triage queue", "desk.queue"),
    ("Referrals", "casework.referrals"),
    ("Operations", "operations.board"),
]
NAVIGATION[Role.LEAD] += [
    ("Dashboard", "dashboard.dashboard"),
    ("Triage queue", "desk.queue"),
    ("Referrals", "casework.referrals"),
    ("Operations", "operations.board"),
    ("Aftercare", "aftercare.index"),
    ("Audit log", "audit_log.index"),
]
NAVIGATION[Role.CASEWORKER] += [("Children in your care", "aftercare.index")]
NAVIGATION[Role.OFFICER] += [
    ("Referrals handed to your unit", "casework.referrals"),
    ("Operations", "operations.board"),
]


@blueprint.get("/")
@access.roles(*Role)
def index() -> Response | str:
    return render_template("home/index.html")


@blueprint.get("/favicon.ico")
@access.public
def favicon() -> Response:
    """The icon, for clients that ask for it where browsers used to, not where pages link it:
    a 404 there is an error in every new browser's console."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


def _template_context() -> dict[str, Any]:
    person = access.current_person()
    navigation = NAVIGATION[person.role_enum] if person is not None else []
    return {"person": person, "navigation": navigation}


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    app.context_processor(_template_context)
