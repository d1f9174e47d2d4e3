"""``/referrals``: the referrals a person works on, each one's page (timeline, linked tips, time
in each stage) and its moves.

Who reaches a referral is decided in the queries (``referrals.casework.services.within_reach``):
the analysts and leads of its team, the officers of the unit it is handed to; anyone else is
told it does not exist. The page opens the timeline's notes in memory and writes
``referral.viewed`` to the audit log first; it is ``no-store``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from referrals.accounts.models import Role, Team, Unit, User
from referrals.casework.lifecycle import (
    CLOSE_REASON_LABELS,
    DONE,
    STAGE_LABELS,
    STAGE_SLA,
    CloseReason,
    Need,
    over_sla,
)
from referrals.casework.models import Referral, ReferralStage
from referrals.casework.services import (
    Casework,
    MoveRefused,
    ReferralNotFound,
    time_in_stages,
)
from referrals.feedback.services import FeedbackDesk, Released
from referrals.handling.markings import TLP_MEANING, grading, tlp
from referrals.handling.models import ConsentStatus, RecipientKind
from referrals.handling.services import ConsentEntry, Consents, Restriction, restrictions
from referrals.intake.models import Agency, Tip
from referrals.messages.services import ThreadEntry
from referrals.onward.services import OnwardPackages, PackageEntry
from referrals.operations.models import Operation
from referrals.triage.desk import CorrelatedTip, TriageDesk
from tipline import access, database
from tipline.addresses import client_address
from tipline.casework.forms import MoveForm

blueprint = Blueprint("casework", __name__, url_prefix="/referrals")

PEOPLE = (Role.ANALYST, Role.LEAD, Role.OFFICER)
CORRELATED_TIPS = 20


def _casework() -> Casework:
    rt = database.runtime()
    db_session = database.session()
    return Casework(db_session, audit=rt.audit(db_session), clock=rt.clock, keyring=rt.keyring)


def _person() -> User:
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule admitted only signed-in people
    return person


@blueprint.get("")
@access.roles(*PEOPLE)
def referrals() -> str:
    person = _person()
    wanted = request.args.get("stage") or None
    stage = ReferralStage(wanted) if wanted in set(ReferralStage) else None
    found = _casework().referrals(person, stage=stage)
    units = _unit_names({r.unit_id for r in found if r.unit_id is not None})
    return render_template(
        "casework/referrals.html",
        referrals=found,
        stage=stage,
        stages=STAGE_LABELS,
        over_sla=over_sla,
        units=units,
        now=database.runtime().clock.now(),
        person=person,
    )


@blueprint.get("/<int:referral_id>")
# Its notes are sealed like tip content: a code after a quiet period, as for a tip.
@access.roles(*PEOPLE, content=True)
def referral(referral_id: int) -> Response | str:
    person = _person()
    casework = _casework()
    try:
        found = casework.referral_for(person, referral_id)
    except ReferralNotFound:
        abort(404)
    entries = casework.timeline(person, found, address=client_address())
    db_session = database.session()
    tips = db_session.execute(
        select(Tip.id, Tip.tracking_number, Tip.priority, Tip.received_at, Agency.name)
        .join(Agency, Agency.id == Tip.agency_id)
        .where(Tip.referral_id == found.id)
        .order_by(Tip.received_at)
    ).all()
    now = database.runtime().clock.now()
    sees_tips = person.role_enum in (Role.ANALYST, Role.LEAD)
    form = MoveForm(formdata=None, seen_stage=found.stage)
    units = db_session.execute(select(Unit.id, Unit.name).order_by(Unit.name)).all()
    unit_names = {unit.id: unit.name for unit in units}
    mentioned = {
        entry.event.details[Need.OPERATION.value]
        for entry in entries
        if entry.event.details and Need.OPERATION.value in entry.event.details
    } | ({found.operation_id} if found.operation_id else set())
    operation_refs = {
        row.id: row.reference
        for row in db_session.execute(
            select(Operation.id, Operation.reference).where(Operation.id.in_(mentioned))
        )
    }
    answer = render_template(
        "casework/referral.html",
        referral=found,
        stages=STAGE_LABELS,
        sla=STAGE_SLA.get(ReferralStage(found.stage)),
        close_reasons=CLOSE_REASON_LABELS,
        entries=entries,
        done=DONE,
        described={
            entry.event.id: _described(entry.event.details, unit_names, operation_refs)
            for entry in entries
        },
        spent=time_in_stages([entry.event for entry in entries], now),
        tips=tips,
        moves=casework.moves_for(person, found),
        form=form,
        units=units,
        operation_reference=operation_refs.get(found.operation_id) if found.operation_id else None,
        may_plan=person.role_enum is Role.LEAD and found.stage == ReferralStage.WITH_UNIT,
        needs=Need,
        team=db_session.get(Team, found.team_id) if found.team_id else None,
        unit=db_session.get(Unit, found.unit_id) if found.unit_id else None,
        assignee=db_session.get(User, found.assignee_id) if found.assignee_id else None,
        person=person,
        sees_tips=sees_tips,
        correlated=_correlated([tip.id for tip in tips]) if sees_tips else [],
        feedback=_released(found) if sees_tips else [],
        handling=_handling(found, units) if sees_tips else None,
        packages=_onward(found) if sees_tips else [],
        now=now,
    )
    response = Response(answer, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/<int:referral_id>/moves/<name>")
@access.roles(*PEOPLE, back="casework.referrals")
def move(referral_id: int, name: str) -> Response:
    form = MoveForm()
    if not form.validate():
        flash("Nothing was changed: " + " ".join(_errors(form)), "error")
        return redirect(url_for("casework.referral", referral_id=referral_id))
    # What a person may give on the page (an operation gives its own needs, not a form).
    values = {
        field.name: str(field.data or "")
        for field in (getattr(form, need.value, None) for need in Need)
        if field is not None
    }
    try:
        event = _casework().advance(
            _person(),
            referral_id,
            name,
            values,
            seen_stage=form.seen_stage.data or None,
            address=client_address(),
        )
    except ReferralNotFound:
        abort(404)
    except MoveRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for("casework.referral", referral_id=referral_id))
    flash(f"Done: the referral is now at “{STAGE_LABELS[ReferralStage(event.to_stage)]}”.", "info")
    return redirect(url_for("casework.referral", referral_id=referral_id))


@dataclasses.dataclass(frozen=True)
class _Handling:
    """The referral's markings as its page shows them, with the consents asked for."""

    tlp: str | None
    meaning: str | None
    code: str | None
    grading: str | None  # the least assured source and information grading, in words
    restrictions: list[Restriction]
    consents: list[ConsentEntry]
    answers: dict[int, list[ThreadEntry]]  # for each consent awaiting its answer
    recipients: list[tuple[str, str]]  # ("unit:3", "Luzon child protection unit")


def _handling(referral: Referral, units: Sequence[Any]) -> _Handling:
    rt = database.runtime()
    db_session = database.session()
    consents = Consents(db_session, audit=rt.audit(db_session), clock=rt.clock, keyring=rt.keyring)
    asked = consents.for_referral(referral)
    marking = tlp(referral.tlp)
    return _Handling(
        tlp=referral.tlp,
        meaning=TLP_MEANING[marking] if marking is not None else None,
        code=referral.handling_code,
        grading=grading(referral.source_reliability, referral.information_accuracy),
        restrictions=restrictions(db_session, referral.id),
        consents=asked,
        answers={
            entry.consent.id: consents.answers(entry.consent)
            for entry in asked
            if entry.consent.status == ConsentStatus.REQUESTED.value
        },
        recipients=[(f"{RecipientKind.UNIT.value}:{unit.id}", unit.name) for unit in units]
        + [
            (f"{RecipientKind.AGENCY.value}:{agency_id}", f"{name} (another centre or agency)")
            for agency_id, name, _linked in OnwardPackages(
                db_session, audit=rt.audit(db_session), clock=rt.clock
            ).recipients()
        ],
    )


def _onward(referral: Referral) -> list[PackageEntry]:
    """The packages exported from the referral, with the feedback their recipients sent
    back (opened with the intake key; the page's reading is audited as the referral's)."""
    rt = database.runtime()
    db_session = database.session()
    packages = OnwardPackages(
        db_session, audit=rt.audit(db_session), clock=rt.clock, keyring=rt.keyring
    )
    return packages.for_referral(referral)


def _released(referral: Referral) -> list[Released]:
    """The feedback released on the referral, opened with the intake key (the page's reading
    is audited as the referral's)."""
    rt = database.runtime()
    db_session = database.session()
    desk = FeedbackDesk(db_session, audit=rt.audit(db_session), clock=rt.clock, keyring=rt.keyring)
    return desk.released(referral)


def _errors(form: MoveForm) -> list[str]:
    found: list[str] = []
    for field in form:
        found += [f"{field.label.text}: {error}" for error in field.errors]
    return found or ["the form was not valid: open the page again."]


def _correlated(tip_ids: list[str]) -> list[CorrelatedTip]:
    """Tips outside the referral sharing identifiers with its tips (by blind index), each
    once, with every type shared (the first tips of a large referral: the page stays small)."""
    rt = database.runtime()
    db_session = database.session()
    desk = TriageDesk(db_session, audit=rt.audit(db_session), clock=rt.clock)
    found: dict[str, CorrelatedTip] = {}
    for tip_id in tip_ids[:CORRELATED_TIPS]:
        for other in desk.correlated(tip_id):
            if other.id in tip_ids:
                continue
            known = found.get(other.id)
            types = tuple(
                sorted(set(other.shared_types) | set(known.shared_types if known else ()))
            )
            found[other.id] = dataclasses.replace(other, shared_types=types)
    return sorted(found.values(), key=lambda other: other.received_at)


def _described(
    details: dict[str, Any] | None, units: dict[int, str], operations: dict[int, str]
) -> list[str]:
    """What an event recorded in clear, in words."""
    said: list[str] = []
    for key, value in (details or {}).items():
        match key:
            case Need.UNIT.value:
                said.append(f"to {units.get(value, 'a unit no longer registered')}")
            case Need.UNIT_REFERENCE.value:
                said.append(f"the unit's reference: {value}")
            case Need.OPERATION.value:
                said.append(f"operation {operations.get(value, value)}")
            case Need.CHILDREN_SAFEGUARDED.value:
                said.append(f"{value} child{'' if value == 1 else 'ren'} safeguarded")
            case Need.SUSPECTS_ARRESTED.value:
                said.append(f"{value} suspect{'' if value == 1 else 's'} arrested")
            case Need.CLOSE_REASON.value:
                said.append(CLOSE_REASON_LABELS.get(CloseReason(value), str(value)))
    return said


def _unit_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = database.session().execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids)))
    return {row.id: row.name for row in rows}
