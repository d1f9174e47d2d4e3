"""``/aftercare``: leads record the children an operation safeguarded (pseudonymously) and see
counts; caseworkers keep the care plans of the children assigned to them.

No page here shows tip content, and none shows a child to anyone but their caseworker; every
read of a child's record is audited (``referrals.aftercare``)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from referrals.accounts.models import Role, User
from referrals.aftercare.services import Aftercare, AftercareRefused, ChildNotFound
from tipline import access, database
from tipline.addresses import client_address
from tipline.aftercare.forms import (
    MILESTONE_LABELS,
    PLACEMENT_LABELS,
    SEX_LABELS,
    STATUS_LABELS,
    AftercareForm,
)

blueprint = Blueprint("aftercare", __name__, url_prefix="/aftercare")


def _aftercare() -> Aftercare:
    rt = database.runtime()
    db_session = database.session()
    return Aftercare(db_session, audit=rt.audit(db_session), clock=rt.clock)


def _person() -> User:
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule admitted only signed-in people
    return person


@blueprint.get("")
@access.roles(Role.LEAD, Role.CASEWORKER)
def index() -> str:
    person = _person()
    aftercare = _aftercare()
    if person.role_enum is Role.CASEWORKER:
        children = aftercare.my_children(person, address=client_address())
        return render_template(
            "aftercare/children.html",
            children=children,
            overdue=aftercare.overdue(children),
            sexes=SEX_LABELS,
            placements=PLACEMENT_LABELS,
            statuses=STATUS_LABELS,
        )
    return render_template(
        "aftercare/lead.html",
        counts=aftercare.counts(person.team_id) if person.team_id else None,
        referrals=aftercare.referrals_in_care(person),
        caseworkers=aftercare.caseworkers(),
        sexes=SEX_LABELS,
        form=AftercareForm(formdata=None),
    )


@blueprint.post("/referrals/<int:referral_id>/children")
@access.roles(Role.LEAD, back="aftercare.index")
def record_child(referral_id: int) -> Response:
    form = AftercareForm()
    if form.validate():
        try:
            child = _aftercare().record_child(
                _person(),
                referral_id,
                age=form.age.data or "",
                sex=form.sex.data or "",
                caseworker_id=form.caseworker.data or "",
                address=client_address(),
            )
        except AftercareRefused as refused:
            flash(str(refused), "error")
        else:
            flash(
                f"Recorded as {child.pseudonym}, and assigned to their caseworker. Only they "
                "see the care plan.",
                "info",
            )
    else:
        flash("Nothing was recorded: a field is too long.", "error")
    return redirect(url_for("aftercare.index"))


@blueprint.get("/children/<int:child_id>")
@access.roles(Role.CASEWORKER)
def child(child_id: int) -> Response:
    aftercare = _aftercare()
    try:
        found = aftercare.child_for(_person(), child_id, address=client_address())
    except ChildNotFound:
        abort(404)
    answer = render_template(
        "aftercare/child.html",
        child=found,
        milestones=aftercare.milestones(found),
        today=database.runtime().clock.now().date(),
        sexes=SEX_LABELS,
        placements=PLACEMENT_LABELS,
        statuses=STATUS_LABELS,
        kinds=MILESTONE_LABELS,
        form=AftercareForm(formdata=None),
    )
    response = Response(answer, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/children/<int:child_id>/<change>")
@access.roles(Role.CASEWORKER, back="aftercare.index")
def change(child_id: int, change: str) -> Response:
    form = AftercareForm()
    if not form.validate():
        flash("Nothing was changed: a field is too long.", "error")
        return redirect(url_for("aftercare.child", child_id=child_id))
    aftercare, person, address = _aftercare(), _person(), client_address()
    try:
        match change:
            case "placement":
                aftercare.set_placement(
                    person, child_id, form.placement.data or "", address=address
                )
            case "status":
                aftercare.set_status(person, child_id, form.status.data or "", address=address)
            case "plan":
                aftercare.plan_milestone(
                    person, child_id, kind=form.kind.data or "", due_on=form.on.data or "",
                    address=address,
                )  # fmt: skip
            case "done":
                aftercare.record_milestone(
                    person, child_id, kind=form.kind.data or "", done_on=form.on.data or "",
                    address=address,
                )  # fmt: skip
            case _:
                abort(404)
    except ChildNotFound:
        abort(404)
    except AftercareRefused as refused:
        flash(str(refused), "error")
    else:
        flash("Saved on the care plan.", "info")
    return redirect(url_for("aftercare.child", child_id=child_id))
