"""``/partner``: an officer of a partner agency sends tips and follows their agency's tips.

Every query goes through ``TipReceiver``'s agency-scoped methods with the signed-in person's
agency: another agency's tip is not found, exactly like one that does not exist.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from crypto import CryptoError
from referrals.accounts.models import Role
from referrals.feedback.services import FeedbackDesk
from referrals.intake.document import InvalidTipDocument, parse_tip_document
from referrals.intake.models import HELD, PartnerStage, Tip, TipStatus
from referrals.intake.receiving import Cursor, TipReceiver
from referrals.intake.services import (
    IntakeKeyMissing,
    IntakeKeyService,
    WebFormKeyMissing,
    WebFormKeyService,
)
from referrals.messages.models import Direction, Message
from referrals.messages.services import Correspondence, MessageRefused
from tipline import access, database, request_values
from tipline.auth import kept_forms
from tipline.auth.sessions import client_address
from tipline.partner.forms import SELECTOR_HINT, ReplyForm, TipForm, new_submission_nonce

logger = logging.getLogger(__name__)

blueprint = Blueprint("partner", __name__, url_prefix="/partner")

PAGE_SIZE = 25
#: What each status a partner sees means (``Tip.partner_status``): a short name for lists
#: and a sentence for the tip's page.
STATUS_TEXT: dict[str, tuple[str, str]] = {
    TipStatus.RECEIVED: ("Received", "stored, waiting to be checked"),
    TipStatus.PROCESSING: ("Being checked", "being checked (decrypted, verified and validated)"),
    TipStatus.IN_TRIAGE: (
        "In triage",
        "received and valid: with the centre's analysts for triage",
    ),
    PartnerStage.ACCEPTED: ("Accepted", "accepted: the centre has taken it on"),
    PartnerStage.UNDER_INVESTIGATION: (
        "Under investigation",
        "under investigation: the centre is working the case it is part of",
    ),
    PartnerStage.OPERATION_CONDUCTED: (
        "Operation conducted",
        "an operation was conducted on the case it is part of; what the centre releases about "
        "it is under Feedback",
    ),
    PartnerStage.CLOSED: ("Closed", "closed: the centre's work on the case it was part of ended"),
    TipStatus.DECLINED: ("Declined", "declined by the centre: see the reason"),
    TipStatus.REJECTED: (
        "Not accepted",
        "not accepted: see the reason, correct the tip and send it again",
    ),
    HELD: (
        "Held by the centre",
        "held by the centre after a fault on its side: it will be processed once the fault is "
        "fixed; do not send it again",
    ),
}


def _agency_id() -> int:
    person = access.current_person()
    if person is None or person.agency_id is None:
        abort(403)  # a partner account always has an agency; refuse rather than guess
    return person.agency_id


def _receiver() -> TipReceiver:
    rt = database.runtime()
    return TipReceiver(database.session(), queue=rt.queue, clock=rt.clock)


@blueprint.get("/tips")
@access.roles(Role.PARTNER)
def tips() -> str:
    after = request.args.get("after")
    cursor = None
    if after:
        try:
            cursor = request_values.page_cursor(after)
        except ValueError:
            abort(400, description="That page link is not valid: start from the newest tips.")
    found = _receiver().recent(_agency_id(), before=cursor, limit=PAGE_SIZE + 1)
    page, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    older = None
    if more:
        last = page[-1]
        older = url_for(
            "partner.tips", after=Cursor(updated_at=last.updated_at, tip_id=last.id).encode()
        )
    return render_template(
        "partner/tips.html",
        tips=page,
        older=older,
        first_page=cursor is None,
        labels={status: label for status, (label, _) in STATUS_TEXT.items()},
    )


@blueprint.get("/tips/<tip_id>")
@access.roles(Role.PARTNER)
def tip(tip_id: str) -> str:
    return _tip_page(tip_id, ReplyForm())


@blueprint.post("/tips/<tip_id>/messages")
@access.roles(Role.PARTNER)
def reply(tip_id: str) -> Response | tuple[str, int]:
    """The officer's answer, sealed here (encrypted to the intake key, signed with the web-form
    key) and then checked by a worker like any reply."""
    form = ReplyForm()
    found = _receiver().find(_agency_id(), tip_id)
    if found is None:
        abort(404)
    if form.validate_on_submit():
        rt = database.runtime()
        session = database.session()
        person = access.current_person()
        assert person is not None  # noqa: S101 - the access rule let only a partner in
        try:
            if rt.web_form_keyring is None:
                raise WebFormKeyMissing("this process was not given the web-form key's passphrase")
            web_form = WebFormKeyService(session, keyring=rt.web_form_keyring, clock=rt.clock)
            intake = IntakeKeyService(session, keyring=rt.keyring, clock=rt.clock)
            Correspondence(
                session,
                audit=rt.audit(session),
                clock=rt.clock,
                keyring=rt.web_form_keyring,
                queue=rt.queue,
            ).reply_in_portal(
                person,
                found.id,
                form.text.data or "",
                intake_fingerprint=intake.for_encrypting(),
                web_form_fingerprint=web_form.current(),
                address=client_address(),
            )
        except (IntakeKeyMissing, WebFormKeyMissing) as exc:
            logger.error("portal reply not sealed (%s): nothing stored", type(exc).__name__)
            form.text.errors = [
                "Your answer could not be sealed on our side, so nothing was sent. Try again "
                "in a few minutes; if it keeps failing, tell the centre."
            ]
        except MessageRefused as exc:
            form.text.errors = [str(exc)]
        else:
            flash("Your answer was sent to the centre.", "info")
            return redirect(url_for("partner.tip", tip_id=found.id))
    return _tip_page(tip_id, form), 400


def _tip_page(tip_id: str, form: ReplyForm) -> str:
    found = _receiver().find(_agency_id(), tip_id)
    if found is None:
        # Also for another agency's tip: whether it exists is not this partner's to know.
        abort(404)
    rt = database.runtime()
    session = database.session()
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule let only a partner in
    # The portal key (under the partner face's passphrase) opens the conversation.
    conversation = Correspondence(
        session, audit=rt.audit(session), clock=rt.clock, keyring=rt.web_form_keyring
    ).for_portal(found.agency_id, found.id, reader=person, address=client_address())
    feedback = _feedback_desk().for_portal(
        found.agency_id, reader=person, address=client_address(), tip_id=found.id
    )
    return render_template(
        "partner/tip.html",
        tip=found,
        status_text=STATUS_TEXT.get(found.partner_status, ("", found.partner_status))[1],
        conversation=conversation,
        feedback=feedback,
        stage_labels={status: label for status, (label, _) in STATUS_TEXT.items()},
        reply_form=form,
    )


def _feedback_desk() -> FeedbackDesk:
    rt = database.runtime()
    session = database.session()
    # The portal key (under the partner face's passphrase) opens what the centre released.
    return FeedbackDesk(
        session, audit=rt.audit(session), clock=rt.clock, keyring=rt.web_form_keyring
    )


@blueprint.get("/feedback")
@access.roles(Role.PARTNER)
def feedback() -> Response:
    """What the centre released to the agency about cases its tips are in, newest first;
    reading it is audited and tells the lead it arrived."""
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule let only a partner in
    entries = _feedback_desk().for_portal(_agency_id(), reader=person, address=client_address())
    numbers = dict(
        database.session()
        .execute(
            select(Tip.id, Tip.tracking_number).where(
                Tip.agency_id == _agency_id(),
                Tip.id.in_({tip_id for entry in entries for tip_id in entry.feedback.tip_ids}),
            )
        )
        .all()
    )
    page = render_template(
        "partner/feedback.html",
        entries=entries,
        numbers=numbers,
        stage_labels={status: label for status, (label, _) in STATUS_TEXT.items()},
    )
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/tips/<tip_id>/messages/<int:message_id>.asc")
@access.roles(Role.PARTNER)
def message(tip_id: str, message_id: int) -> Response:
    """A message from the centre as it was sealed, to decrypt with ``gpg --decrypt`` and the
    agency's key (and to verify the centre's signature on it)."""
    found = database.session().get(Message, message_id)
    if (
        found is None
        or found.agency_id != _agency_id()
        or found.tip_id != tip_id
        or found.direction != Direction.TO_PARTNER.value
    ):
        abort(404)
    return Response(
        found.armored,
        mimetype="application/pgp-encrypted",
        headers={"Content-Disposition": f'attachment; filename="tipline-message-{found.id}.asc"'},
    )


class _NotEncrypted(Exception):
    """The tip could not be encrypted (no usable intake or web-form key, or GnuPG failed)."""


@blueprint.route("/tips/new", methods=["GET", "POST"])
@access.roles(Role.PARTNER, keep_form=True)
def new_tip() -> Response | tuple[str, int]:
    form = TipForm()
    status = 200
    if request.method == "GET":
        # What the officer wrote when their session timed out, back after signing in again.
        kept = kept_forms.take()
        if kept is not None:
            form = TipForm(formdata=kept)
            flash("Here is the tip you were writing: check it, then send it.", "info")
        if not form.submission.data:
            form.submission.data = new_submission_nonce()
    else:
        status = 400
        if form.validate_on_submit():
            try:
                answer = _submit(form)
            except _NotEncrypted:
                form.form_errors.append(
                    "The tip could not be encrypted on our side, so nothing was stored. "
                    "Try again in a few minutes; if it keeps failing, tell the centre."
                )
                status = 503
            else:
                if answer is not None:
                    return answer
        if form.submission.errors:
            form.submission.data = new_submission_nonce()
    return render_template("partner/new_tip.html", form=form, selector_hint=SELECTOR_HINT), status


def _submit(form: TipForm) -> Response | None:
    """Build, check, encrypt and store the tip; None when the form must be shown again.

    Raises:
        _NotEncrypted: nothing was stored.
    """
    rt = database.runtime()
    db_session = database.session()
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule let only signed-in partners in
    agency_id = _agency_id()
    nonce = form.submission.data or ""
    # Without a reference of the partner's own, one derived from the form's key: a second
    # submission of the same form carries the same document.
    reference = form.external_reference.data or f"WEB-{nonce[:12].upper()}"
    document = form.document(reported_at=rt.clock.now(), reference=reference)
    plaintext = json.dumps(document, ensure_ascii=False).encode("utf-8")
    try:
        parsed = parse_tip_document(plaintext)
    except InvalidTipDocument as exc:
        form.place_error(exc)
        return None
    # Processing keeps a tip whose selector cannot be indexed (a partner's system cannot be
    # asked); an officer at the form can put it right now, so it is shown like any error.
    if parsed.selector_warnings:
        warning = parsed.selector_warnings[0]
        form.place_error(InvalidTipDocument(warning.pointer, warning.message))
        return None
    signer = rt.web_form_keyring
    try:
        if signer is None:
            raise WebFormKeyMissing("this process was not given the web-form key's passphrase")
        intake_key = IntakeKeyService(db_session, keyring=rt.keyring, clock=rt.clock)
        web_form_key = WebFormKeyService(db_session, keyring=signer, clock=rt.clock).current()
        # Encrypted in memory (python-gnupg pipes it to gpg) before anything is written;
        # signed with the web-form key, which processing accepts only for web-form tips.
        armored = signer.encrypt(plaintext, [intake_key.for_encrypting()], sign_with=web_form_key)
    except (IntakeKeyMissing, WebFormKeyMissing, CryptoError) as exc:
        logger.error("web-form tip not encrypted (%s): nothing stored", type(exc).__name__)
        raise _NotEncrypted() from None

    def audit(stored: Tip) -> None:
        rt.audit(db_session).record(
            "tip.submitted",
            actor=f"user:{person.id}",
            subject=f"tip:{stored.id}",
            address=client_address(),
            details={"via": "web_form", "agency": agency_id},
        )

    receipt = _receiver().receive(
        agency_id,
        armored.encode("ascii"),
        idempotency_key=f"web-form:{nonce}",
        submitted_by_user_id=person.id,
        on_stored=audit,
    )
    if receipt.created:
        flash(f"Tip received. Its tracking number is {receipt.tip.tracking_number}.", "info")
    else:
        flash("This form had already been sent: here is the tip it made.", "info")
    return redirect(url_for("partner.tip", tip_id=receipt.tip.id))
