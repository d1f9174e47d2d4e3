"""``/dashboard``: where the lead's team's referrals stand and what became of them.

Charts are SVG drawn here (the pages run no script: the CSP allows none), each with the table
of its numbers beside it, and each table downloadable as CSV. Leads only: the figures are the
team's, and they name nobody.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from flask import Blueprint, abort, render_template
from werkzeug.wrappers import Response

from referrals.accounts.models import Role, Team, User
from referrals.casework.dashboard import Dashboard, LeadDashboard
from referrals.casework.lifecycle import STAGE_LABELS, STAGE_SLA
from tipline import access, database
from tipline.addresses import client_address

blueprint = Blueprint("dashboard", __name__, url_prefix="/dashboard")

CHARTS = ("stages", "funnel", "months", "agencies", "regions")


def _person() -> User:
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule admitted only signed-in leads
    return person


def _figures() -> tuple[Team | None, Dashboard | None]:
    person = _person()
    if person.team_id is None:
        return None, None
    team = database.session().get(Team, person.team_id)
    figures = LeadDashboard(database.session(), clock=database.runtime().clock).current(
        person.team_id
    )
    return team, figures


@blueprint.get("")
@access.roles(Role.LEAD)
def dashboard() -> str:
    team, figures = _figures()
    charts = (
        {
            "funnel": [(step.label, step.count) for step in figures.funnel],
            "stages": [(STAGE_LABELS[s.stage], s.referrals) for s in figures.stages],
            "months": [(m.month.strftime("%b"), m.children_safeguarded) for m in figures.months],
        }
        if figures is not None
        else {}
    )
    return render_template(
        "dashboard/index.html",
        team=team,
        figures=figures,
        charts=charts,
        stages=STAGE_LABELS,
        slas=STAGE_SLA,
        now=database.runtime().clock.now(),
    )


@blueprint.get("/<chart>.csv")
@access.roles(Role.LEAD)
def chart_csv(chart: str) -> Response:
    if chart not in CHARTS:
        abort(404)
    team, figures = _figures()
    if figures is None:
        abort(404)
    header, rows = _table(chart, figures)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_inert(cell) for cell in row] for row in rows)
    person = _person()
    db_session = database.session()
    database.runtime().audit(db_session).record(
        "dashboard.exported",
        actor=f"user:{person.id}",
        subject=f"team:{person.team_id}",
        address=client_address(),
        details={"chart": chart},
    )
    db_session.commit()
    response = Response(out.getvalue(), mimetype="text/csv")
    name = f"{chart}-{database.runtime().clock.now():%Y-%m-%d}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _inert(cell: object) -> object:
    """A cell a spreadsheet will not run as a formula (an agency's or region's name typed by
    someone could start with one)."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


def _table(chart: str, figures: Dashboard) -> tuple[Sequence[str], Iterable[Sequence[object]]]:
    match chart:
        case "stages":
            return ("stage", "referrals", "past the stage's time", "oldest since"), (
                (
                    STAGE_LABELS[s.stage],
                    s.referrals,
                    s.over_sla,
                    s.oldest_since.isoformat() if s.oldest_since else "",
                )
                for s in figures.stages
            )
        case "funnel":
            return ("step", "count"), ((step.label, step.count) for step in figures.funnel)
        case "months":
            return ("month", "operations debriefed", "children safeguarded", "suspects arrested"), (
                (
                    m.month.strftime("%Y-%m"),
                    m.operations,
                    m.children_safeguarded,
                    m.suspects_arrested,
                )
                for m in figures.months
            )
        case "agencies" | "regions":
            groups = figures.by_agency if chart == "agencies" else figures.by_region
            what = "agency" if chart == "agencies" else "region"
            return (what, "referrals", "children safeguarded", "suspects arrested"), (
                (g.name, g.referrals, g.children_safeguarded, g.suspects_arrested) for g in groups
            )
    raise LookupError(chart)  # pragma: no cover - CHARTS lists them
