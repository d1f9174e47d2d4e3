"""``/audit``: the audit log, newest first, filtered and paged (admins and team leads).

Reading the log is not itself recorded. Verifying the chain reads the whole log, so it runs
only when asked for (``verify=1``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, render_template, request, url_for

from referrals.accounts.models import Role
from referrals.audit.services import VerifyResult
from tipline import access, database, request_values
from tipline.audit_log.forms import AuditFilterForm

blueprint = Blueprint("audit_log", __name__, url_prefix="/audit")

PAGE_SIZE = 50
FILTERS = ("actor", "action", "subject", "since", "until")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


@blueprint.get("")
@access.roles(Role.ADMIN, Role.LEAD)
def index() -> str:
    form = AuditFilterForm(formdata=request.args)
    rt = database.runtime()
    log = rt.audit(database.session())
    verified: VerifyResult | None = log.verify() if request.args.get("verify") == "1" else None
    records: list[Any] = []
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
        verified=verified,
    )
