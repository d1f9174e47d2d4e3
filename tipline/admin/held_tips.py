"""``/admin/held-tips``: tips quarantined after processing failed on our side at every attempt.

What an operator needs to act on (the agency, the attempts, the fault: a type and a message
that never carries content) and the way to send a tip back to processing once the fault is
fixed. The same as ``tipline tip quarantined`` / ``tipline tip retry``, for an admin in the web.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from referrals.accounts.models import Role
from referrals.intake.quarantine import NotQuarantined, TipQuarantine
from tipline import access, database
from tipline.admin.forms import AccountActionForm
from tipline.admin.views import actor, blueprint


def _quarantine() -> TipQuarantine:
    rt = database.runtime()
    db_session = database.session()
    return TipQuarantine(db_session, queue=rt.queue, clock=rt.clock, audit=rt.audit(db_session))


@blueprint.get("/held-tips")
@access.roles(Role.ADMIN)
def held_tips() -> str:
    return render_template(
        "admin/held_tips.html", rows=_quarantine().quarantined(), action_form=AccountActionForm()
    )


@blueprint.post("/held-tips/<tip_id>/retry")
@access.roles(Role.ADMIN, step_up=True, back="admin.held_tips")
def retry_held_tip(tip_id: str) -> Response:
    try:
        _quarantine().retry(tip_id, actor=actor())
    except NotQuarantined:
        flash("That tip is no longer held: someone may have retried it already.", "error")
    else:
        flash("The tip is queued again, with a fresh set of attempts.", "info")
    return redirect(url_for("admin.held_tips"))


@blueprint.post("/held-tips/retry-all")
@access.roles(Role.ADMIN, step_up=True, back="admin.held_tips")
def retry_all_held_tips() -> Response:
    retried = _quarantine().retry_all(actor=actor())
    flash(f"{len(retried)} held tip(s) queued again, each with a fresh set of attempts.", "info")
    return redirect(url_for("admin.held_tips"))
