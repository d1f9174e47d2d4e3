"""``/operations``: the board of a team's (or a unit's) operations by status, planning one,
and each operation's page with its referrals and its next steps."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from referrals.accounts.models import Role, Unit, User
from referrals.casework.lifecycle import STAGE_LABELS
from referrals.casework.services import Casework
from referrals.operations.models import OperationStatus
from referrals.operations.services import (
    STATUS_LABELS,
    OperationNotFound,
    OperationRefused,
    Operations,
    Outcome,
)
from referrals.typed_values import whole_number
from tipline import access, database
from tipline.addresses import client_address
from tipline.operations.forms import PlanForm, StepForm

blueprint = Blueprint("operations", __name__, url_prefix="/operations")

PEOPLE = (Role.ANALYST, Role.LEAD, Role.OFFICER)
MAX_IDS = 60


def _operations() -> Operations:
    rt = database.runtime()
    db_session = database.session()
    audit = rt.audit(db_session)
    casework = Casework(db_session, audit=audit, clock=rt.clock, keyring=rt.keyring)
    return Operations(db_session, audit=audit, clock=rt.clock, casework=casework)


def _person() -> User:
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule admitted only signed-in people
    return person


def _units() -> dict[int, str]:
    rows = database.session().execute(select(Unit.id, Unit.name).order_by(Unit.name))
    return {row.id: row.name for row in rows}


def _ids(name: str) -> list[int]:
    values = request.form.getlist(name)[:MAX_IDS]
    return [number for number in map(whole_number, values) if number is not None]


@blueprint.get("")
@access.roles(*PEOPLE)
def board() -> str:
    person = _person()
    return render_template(
        "operations/board.html",
        board=_operations().board(person),
        statuses=STATUS_LABELS,
        units=_units(),
        may_plan=person.role_enum is Role.LEAD,
    )


@blueprint.get("/new")
@access.roles(Role.LEAD)
def new_operation() -> str:
    chosen = whole_number(request.args.get("referral", ""))
    return _plan_page(PlanForm(formdata=None), chosen={chosen} if chosen is not None else set())


@blueprint.post("/new")
@access.roles(Role.LEAD, back="operations.board")
def plan() -> Response | str:
    form = PlanForm()
    chosen = set(_ids("referral"))
    if not form.validate():
        flash("Nothing was planned: a field is too long.", "error")
        return _plan_page(form, chosen=chosen)
    lead = request.form.get("lead_unit", "")
    try:
        operation = _operations().plan(
            _person(),
            referral_ids=sorted(chosen),
            lead_unit_id=whole_number(lead),
            partner_unit_ids=_ids("partner_unit"),
            planned_for=form.planned_for.data or "",
            region=form.region.data or "",
            address=client_address(),
        )
    except OperationRefused as refused:
        flash(str(refused), "error")
        return _plan_page(form, chosen=chosen)
    flash(f"Operation {operation.reference} is planned: it waits for approval.", "info")
    return redirect(url_for("operations.operation", operation_id=operation.id))


def _plan_page(form: PlanForm, *, chosen: set[int]) -> str:
    return render_template(
        "operations/new.html",
        form=form,
        candidates=_operations().candidates(_person()),
        chosen=chosen,
        units=_units(),
        lead_unit=request.form.get("lead_unit", ""),
        partners=set(_ids("partner_unit")) if request.method == "POST" else set(),
    )


@blueprint.get("/<int:operation_id>")
@access.roles(*PEOPLE)
def operation(operation_id: int) -> str:
    person = _person()
    operations = _operations()
    try:
        found = operations.operation_for(person, operation_id)
    except OperationNotFound:
        abort(404)
    units = _units()
    return render_template(
        "operations/operation.html",
        operation=found,
        status_label=STATUS_LABELS[OperationStatus(found.status)],
        referrals=operations.referrals_of(found),
        stages=STAGE_LABELS,
        partner_units=operations.partner_units(found),
        steps=operations.steps_for(person, found),
        form=StepForm(formdata=None, seen_status=found.status),
        units=units,
        person=person,
    )


@blueprint.post("/<int:operation_id>/steps/<name>")
@access.roles(*PEOPLE, back="operations.board")
def step(operation_id: int, name: str) -> Response:
    form = StepForm()
    if not form.validate():
        flash("Nothing was changed: open the page again.", "error")
        return redirect(url_for("operations.operation", operation_id=operation_id))
    outcomes = {
        referral_id: Outcome(
            children_safeguarded=request.form.get(f"children-{referral_id}", "")[:20],
            suspects_arrested=request.form.get(f"suspects-{referral_id}", "")[:20],
        )
        for referral_id in _ids("outcome_for")
    }
    try:
        done = _operations().step(
            _person(),
            operation_id,
            name,
            outcomes=outcomes,
            seen_status=form.seen_status.data or None,
            address=client_address(),
        )
    except OperationNotFound:
        abort(404)
    except OperationRefused as refused:
        flash(str(refused), "error")
    else:
        label = STATUS_LABELS[OperationStatus(done.status)]
        flash(f"Done: the operation is now “{label}”, with its referrals.", "info")
    return redirect(url_for("operations.operation", operation_id=operation_id))
