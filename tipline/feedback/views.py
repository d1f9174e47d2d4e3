"""``/referrals/<id>/feedback``: a team lead writes feedback to an agency whose tips are in the
referral, sees exactly what would leave, and releases it (a current authenticator code first,
as for every release). Others are refused as the referral's page refuses them: a referral out of
reach does not exist; a non-lead may not release.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from referrals.accounts.models import Role
from referrals.casework.models import Referral
from referrals.casework.services import ReferralNotFound
from referrals.feedback.services import FeedbackDesk, FeedbackRefused, Release
from referrals.intake.models import PartnerStage
from referrals.typed_values import whole_number
from tipline import access, database
from tipline.addresses import client_address
from tipline.casework import reach
from tipline.feedback.forms import FeedbackForm, ReleaseForm

blueprint = Blueprint("feedback", __name__, url_prefix="/referrals/<int:referral_id>/feedback")

STAGE_WORDS = {
    PartnerStage.ACCEPTED: "accepted",
    PartnerStage.UNDER_INVESTIGATION: "under investigation",
    PartnerStage.OPERATION_CONDUCTED: "operation conducted",
    PartnerStage.CLOSED: "closed",
}


def _desk() -> FeedbackDesk:
    rt = database.runtime()
    db_session = database.session()
    return FeedbackDesk(db_session, audit=rt.audit(db_session), clock=rt.clock, keyring=rt.keyring)


def _compose(referral: Referral, form: FeedbackForm) -> str:
    desk = _desk()
    form.agency_id.choices = [
        SelectChoice(value, name) for value, name in desk.recipients(referral)
    ]
    return render_template("feedback/new.html", referral=referral, form=form)


@blueprint.get("/new")
@access.roles(Role.LEAD, step_up=True)
def new(referral_id: int) -> str:
    referral = reach.referral_or_404(referral_id)
    form = FeedbackForm(formdata=None, text=_desk().suggestion(referral))
    chosen = whole_number(request.args.get("agency", ""))
    if chosen is not None:
        form.agency_id.data = chosen
    return _compose(referral, form)


@blueprint.post("/preview")
@access.roles(Role.LEAD, step_up=True, back="casework.referrals")
def preview(referral_id: int) -> Response | str:
    referral = reach.referral_or_404(referral_id)
    form = FeedbackForm()
    if not form.validate():
        return _compose(referral, form)
    try:
        release = _desk().draft(
            reach.person(),
            referral.id,
            form.agency_id.data,
            form.text.data or "",
            include_outcome=bool(form.include_outcome.data),
        )
    except ReferralNotFound:
        abort(404)
    except FeedbackRefused as refused:
        flash(str(refused), "error")
        return _compose(referral, form)
    return _preview(referral, release)


def _preview(referral: Referral, release: Release) -> str:
    confirm = ReleaseForm(
        formdata=None,
        agency_id=str(release.agency_id),
        text=release.text,
        include_outcome="1" if release.outcome is not None else "",
        version=release.version,
    )
    change = FeedbackForm(
        formdata=None,
        agency_id=release.agency_id,
        text=release.text,
        include_outcome=release.outcome is not None,
    )
    change.agency_id.choices = [
        SelectChoice(value, name) for value, name in _desk().recipients(referral)
    ]
    return render_template(
        "feedback/preview.html",
        referral=referral,
        release=release,
        stage_words=STAGE_WORDS,
        form=confirm,
        change=change,
    )


@blueprint.post("")
@access.roles(Role.LEAD, step_up=True, back="casework.referrals")
def release(referral_id: int) -> Response | str:
    referral = reach.referral_or_404(referral_id)
    form = ReleaseForm()
    agency_id = whole_number(form.agency_id.data or "")
    include_outcome = form.include_outcome.data == "1"
    text = form.text.data or ""
    if not form.validate():
        flash("Nothing was released: the form had expired. Look at it again.", "error")
        return redirect(url_for("casework.referral", referral_id=referral.id))
    desk = _desk()
    person = reach.person()
    try:
        released = desk.release(
            person,
            referral.id,
            agency_id,
            text,
            include_outcome=include_outcome,
            version=form.version.data or "",
            address=client_address(),
        )
    except ReferralNotFound:
        abort(404)
    except FeedbackRefused as refused:
        flash(str(refused), "error")
        try:
            again = desk.draft(
                person, referral.id, agency_id, text, include_outcome=include_outcome
            )
        except FeedbackRefused:
            return redirect(url_for("casework.referral", referral_id=referral.id))
        return _preview(referral, again)
    flash(
        "Released: the feedback is sealed for the agency's key and waits for it in its portal "
        "and at its API; you will see here when it was fetched.",
        "info",
    )
    return redirect(
        url_for("casework.referral", referral_id=referral.id, _anchor=f"feedback-{released.id}")
    )
