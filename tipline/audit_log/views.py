"""``/audit``: the audit log, newest first, filtered and paged (admins and team leads).

Reading the log is not itself recorded. Verifying the chain reads the whole log, so it is an
action (a POST with its CSRF token, not a link anyone could make a browser follow) and rate
limited: once a minute per person, a few times a minute in all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Flask, render_template, request, url_for
from flask_limiter import Limiter
from sqlalchemy import select

from referrals.accounts.models import Role, Team, User
from referrals.audit.models import AuditRecord
from referrals.audit.services import VerifyResult
from referrals.intake.models import Agency
from tipline import access, database, request_values
from tipline.audit_log.forms import AuditFilterForm, VerifyForm

blueprint = Blueprint("audit_log", __name__, url_prefix="/audit")

PAGE_SIZE = 50
FILTERS = ("actor", "action", "subject", "since", "until")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


# How a person's role reads after their name in the log.
ROLE_NAMES = {
    Role.PARTNER: "partner",
    Role.ANALYST: "analyst",
    Role.LEAD: "team lead",
    Role.OFFICER: "officer",
    Role.CASEWORKER: "caseworker",
    Role.ADMIN: "administrator",
}
_REFERENCE = re.compile(r"(user|agency|team):([0-9]{1,18})")  # an id that fits in 64 bits


def _role_name(value: str) -> str:
    try:
        return ROLE_NAMES.get(Role(value), value)
    except ValueError:  # a role added later, not named here yet
        return value


def names_of(records: list[AuditRecord]) -> dict[str, str]:
    """Who or what each ``user:N``, ``agency:N`` and ``team:N`` among the records' actors and
    subjects is, in words: one query per kind of reference, whatever the number of rows."""
    wanted: dict[str, set[int]] = {"user": set(), "agency": set(), "team": set()}
    for record in records:
        for reference in (record.actor, record.subject or ""):
            found = _REFERENCE.fullmatch(reference)
            if found:
                wanted[found[1]].add(int(found[2]))
    db_session = database.session()
    names: dict[str, str] = {}
    if wanted["user"]:
        rows = db_session.execute(
            select(User.id, User.email, User.role).where(User.id.in_(wanted["user"]))
        )
        names.update({f"user:{row.id}": f"{row.email} ({_role_name(row.role)})" for row in rows})
    if wanted["agency"]:
        rows = db_session.execute(
            select(Agency.id, Agency.name).where(Agency.id.in_(wanted["agency"]))
        )
        names.update({f"agency:{row.id}": row.name for row in rows})
    if wanted["team"]:
        rows = db_session.execute(select(Team.id, Team.name).where(Team.id.in_(wanted["team"])))
        names.update({f"team:{row.id}": f"team {row.name}" for row in rows})
    return names


# Per person, and for everyone together: each run reads every record.
VERIFY_LIMIT_PER_PERSON = "1 per minute"
VERIFY_LIMIT_OVERALL = "5 per minute"


@blueprint.get("")
@access.roles(Role.ADMIN, Role.LEAD)
def index() -> str:
    return _page(verified=None)


@blueprint.post("/verify")
@access.roles(Role.ADMIN, Role.LEAD)
def verify() -> str:
    """Check the whole chain and show the result above the records."""
    return _page(verified=database.runtime().audit(database.session()).verify())


def _page(*, verified: VerifyResult | None) -> str:
    form = AuditFilterForm(formdata=request.args)
    rt = database.runtime()
    log = rt.audit(database.session())
    records: list[AuditRecord] = []
    older_url = None
    filters: dict[str, Any] = {
        name: request.args[name] for name in FILTERS if request.args.get(name)
    }
    if form.validate():
        before = request_values.query_int(
            "before", description="That page link is not valid: start from the newest records."
        )
        found = log.search(
            actor=_text(form.actor.data),
            action=_text(form.action.data),
            subject=_text(form.subject.data),
            since=_start_of(form.since.data) if form.since.data else None,
            # The form's "until" includes the day named.
            until=_start_of(form.until.data + timedelta(days=1)) if form.until.data else None,
            limit=PAGE_SIZE + 1,
            before_id=before,
        )
        records = found[:PAGE_SIZE]
        if len(found) > PAGE_SIZE:
            older_url = url_for("audit_log.index", **filters, before=records[-1].id)
    return render_template(
        "audit_log/index.html",
        form=form,
        records=records,
        older_url=older_url,
        filters=filters,
        paged=request.args.get("before") is not None,
        names=names_of(records),
        verified=verified,
        verify_form=VerifyForm(),
    )


def _person_key() -> str:
    person = access.current_person()
    return f"audit-verify:user:{person.id if person is not None else 'none'}"


def limit_verification(app: Flask, limiter: Limiter) -> None:
    """Rate-limit verifying the chain (see ``VERIFY_LIMIT_PER_PERSON`` and ``_OVERALL``)."""
    per_person = limiter.limit(
        VERIFY_LIMIT_PER_PERSON,
        key_func=_person_key,
        error_message="You verified the chain less than a minute ago: wait a minute, then "
        "verify it again.",
    )
    overall = limiter.limit(
        VERIFY_LIMIT_OVERALL,
        key_func=lambda: "audit-verify:everyone",
        error_message="The chain is being verified by others: wait a minute, then try again.",
    )
    # Wrapped where registered (the wrapper keeps the view's access rule).
    view: Callable[..., Any] = app.view_functions["audit_log.verify"]
    app.view_functions["audit_log.verify"] = overall(per_person(view))
