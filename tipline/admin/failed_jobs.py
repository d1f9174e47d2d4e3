"""``/admin/failed-jobs``: jobs rq gave up on after their retries, and sending them back.

A job carries only its task's name and ids; its error is shown by type only (its message and
traceback could quote what the job worked on). The same as ``tipline jobs failed`` /
``tipline jobs requeue``, for an admin in the web. Tips themselves are never lost here: a tip
whose job failed is found again by the sweep, and held (quarantined) after repeated faults.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from referrals.accounts.models import Role
from tipline import access, database
from tipline.addresses import client_address
from tipline.admin.forms import AccountActionForm
from tipline.admin.views import actor, blueprint


@blueprint.get("/failed-jobs")
@access.roles(Role.ADMIN)
def failed_jobs() -> str:
    return render_template(
        "admin/failed_jobs.html",
        jobs=database.runtime().queue.failed(),
        action_form=AccountActionForm(),
    )


@blueprint.post("/failed-jobs/<job_id>/requeue")
@access.roles(Role.ADMIN, step_up=True, back="admin.failed_jobs")
def requeue_job(job_id: str) -> Response:
    rt = database.runtime()
    if not rt.queue.requeue(job_id):
        flash("That job is no longer failed: someone may have requeued it already.", "error")
        return redirect(url_for("admin.failed_jobs"))
    db_session = database.session()
    rt.audit(db_session).record(
        "job.requeued", actor=actor(), subject=f"job:{job_id[:100]}", address=client_address()
    )
    db_session.commit()
    flash("The job is queued again, with fresh retries.", "info")
    return redirect(url_for("admin.failed_jobs"))
