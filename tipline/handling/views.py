"""``/referrals/<id>/consents``: a team lead asks an agency, through the message channel, to
consent to passing on what it marked TLP:RED or TLP:AMBER+STRICT to one recipient, and records
the agency's answer from its signed reply. Both go back to the referral's page, where the
markings, the consents and these forms are shown."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from werkzeug.wrappers import Response

from referrals.accounts.models import Role
from referrals.casework.models import Referral
from referrals.handling.models import RecipientKind
from referrals.handling.services import ConsentRefused, Consents, Recipient, recipient
from referrals.typed_values import whole_number
from tipline import access, database
from tipline.addresses import client_address
from tipline.casework.reach import person, referral_or_404
from tipline.handling.forms import ConsentAnswerForm, ConsentRequestForm

blueprint = Blueprint("handling", __name__, url_prefix="/referrals/<int:referral_id>/consents")


def _consents() -> Consents:
    rt = database.runtime()
    db_session = database.session()
    return Consents(db_session, audit=rt.audit(db_session), clock=rt.clock, keyring=rt.keyring)


def _back(referral: Referral) -> Response:
    return redirect(url_for("casework.referral", referral_id=referral.id, _anchor="handling"))


def _recipient(value: str) -> Recipient | None:
    """``unit:3`` or ``agency:5``, if it names one."""
    kind, _, number = value.partition(":")
    if kind not in set(RecipientKind):
        return None
    recipient_id = whole_number(number)
    if recipient_id is None:
        return None
    return recipient(database.session(), RecipientKind(kind), recipient_id)


@blueprint.post("")
@access.roles(Role.LEAD, step_up=True, back="casework.referrals")
def ask(referral_id: int) -> Response:
    referral = referral_or_404(referral_id)
    form = ConsentRequestForm()
    if not form.validate():
        flash("Nothing was sent: the form had expired. Try again.", "error")
        return _back(referral)
    try:
        _consents().request(
            person(),
            referral,
            whole_number(form.agency_id.data or ""),
            _recipient(form.recipient.data or ""),
            form.text.data or "",
            address=client_address(),
        )
    except ConsentRefused as refused:
        flash(str(refused), "error")
        return _back(referral)
    flash(
        "Asked: the request is sealed for the agency and waits for it in its portal and at "
        "its API. Its answer comes back as a reply; record it here.",
        "info",
    )
    return _back(referral)


@blueprint.post("/<int:consent_id>")
@access.roles(Role.LEAD, step_up=True, back="casework.referrals")
def answer(referral_id: int, consent_id: int) -> Response:
    referral = referral_or_404(referral_id)
    form = ConsentAnswerForm()
    if not form.validate():
        flash("Nothing was recorded: choose whether the agency gave its consent.", "error")
        return _back(referral)
    try:
        recorded = _consents().record(
            person(),
            referral,
            consent_id,
            granted=form.answer.data == "granted",
            reply_id=whole_number(form.reply_id.data or ""),
            address=client_address(),
        )
    except ConsentRefused as refused:
        flash(str(refused), "error")
        return _back(referral)
    flash(f"Recorded: consent {recorded.status}.", "info")
    return _back(referral)
