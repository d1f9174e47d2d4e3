"""``/desk``: the analysts' queue, the tip page and the triage decisions (analysts and leads).

The queue decrypts nothing: it shows what processing stored in clear (priority and reasons, the
SLA clock, country and region, the agency, whether it has matches). The tip page decrypts the
tip in memory for the analysts and leads of its team, writes ``tip.viewed`` to the audit log
before showing it, and asks for a code after a quiet period (``content=True``). Nothing of it is
kept: the page is ``no-store`` and the plaintext lives only for the request.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from sqlalchemy import select
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Response

from crypto import CryptoError
from referrals.accounts.models import Role, User
from referrals.handling.markings import grading
from referrals.intake.attachments import AttachmentStore
from referrals.intake.document import InvalidTipDocument, parse_tip_document
from referrals.intake.models import Agency, Attachment, Tip, TipCiphertext
from referrals.messages.services import Correspondence, MessageRefused
from referrals.triage.desk import (
    AlreadyDecided,
    DeclineReason,
    NotAllowed,
    QueueCursor,
    QueueFilters,
    ReferralNotFound,
    TipNotFound,
    TriageDesk,
)
from referrals.triage.rules import PRIORITIES
from tipline import access, database, request_values
from tipline.addresses import client_address
from tipline.auth.sessions import account_service, signed_in
from tipline.desk.forms import ANY, ActionForm, AskForm, DeclineForm, MergeForm, QueueFilterForm

blueprint = Blueprint("desk", __name__, url_prefix="/desk")

PAGE_SIZE = 50
STAFF = (Role.ANALYST, Role.LEAD)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BAD_PAGE_LINK = "That page link is not valid: start again from the first page of the queue."


def _desk() -> TriageDesk:
    rt = database.runtime()
    db_session = database.session()
    return TriageDesk(db_session, audit=rt.audit(db_session), clock=rt.clock)


def _person() -> User:
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule admitted only signed-in staff
    return person


def _tip_id(tip_id: str) -> str:
    if not _UUID.fullmatch(tip_id):
        abort(404)
    return tip_id


# -- the queue ------------------------------------------------------------------------------


@blueprint.get("")
@access.roles(*STAFF)
def queue() -> str:
    person = _person()
    unrouted = request.args.get("queue") == "unrouted" and person.role == Role.LEAD
    form = QueueFilterForm(formdata=request.args)
    agencies = database.session().execute(select(Agency.id, Agency.name).order_by(Agency.name))
    form.agency.choices = [("", "Any"), *((str(row.id), row.name) for row in agencies)]
    rows: list[Any] = []
    unscored: list[Any] = []
    next_url = None
    if form.validate():
        filters = QueueFilters(
            priority=form.priority.data or None,
            region=(form.region.data or "").strip() or None,
            agency_id=int(form.agency.data) if form.agency.data else None,
            older_than_days=form.older_than.data,
            newer_than_days=form.newer_than.data,
            has_matches=bool(form.has_matches.data),
            overdue=bool(form.overdue.data),
            assigned=form.assigned.data or None,
            unrouted=unrouted,
        )
        after = _cursor(request.args.get("after"))
        found = _desk().queue(person, filters, after=after, limit=PAGE_SIZE + 1)
        rows = found[:PAGE_SIZE]
        if after is None:
            unscored = _desk().queue(
                person, dataclasses.replace(filters, unscored=True), limit=PAGE_SIZE
            )
        if len(found) > PAGE_SIZE:
            last = rows[-1]
            # Scored rows always have a due time (admission sets both together).
            due = last.sla_due_at.isoformat() if last.sla_due_at else ""
            args: dict[str, Any] = {
                k: v for k, v in request.args.items() if k != "after" and v != ANY
            }
            args["after"] = f"{last.priority}~{due}~{last.id}"
            next_url = url_for("desk.queue", **args)
    return render_template(
        "desk/queue.html",
        form=form,
        rows=rows,
        unscored=unscored,
        next_url=next_url,
        paged="after" in request.args,
        unrouted=unrouted,
        overdue=_desk().overdue_count(person, unrouted=unrouted),
        is_lead=person.role == Role.LEAD,
        person=person,
        action_form=ActionForm(),
        now=database.runtime().clock.now(),
    )


def _cursor(value: str | None) -> QueueCursor | None:
    if value is None:
        return None
    parts = value.split("~")
    try:
        priority, due, tip_id = parts
        moment = datetime.fromisoformat(due)
    except ValueError:
        raise BadRequest(description=BAD_PAGE_LINK) from None
    if (
        priority not in PRIORITIES
        or moment.tzinfo is None
        or not request_values.within_range(moment)
        or not _UUID.fullmatch(tip_id)
    ):
        raise BadRequest(description=BAD_PAGE_LINK)
    return QueueCursor(priority=priority, sla_due_at=moment, tip_id=tip_id)


@blueprint.post("/tips/<tip_id>/claim")
@access.roles(*STAFF, back="desk.queue")
def claim(tip_id: str) -> Response:
    try:
        _desk().claim(_person(), _tip_id(tip_id), address=client_address())
    except AlreadyDecided:
        flash("Someone else claimed that tip first, or it was decided.", "error")
        return redirect(url_for("desk.queue"))
    flash("The tip is yours: it shows as claimed by you in the queue.", "info")
    return redirect(url_for("desk.tip", tip_id=tip_id))


@blueprint.post("/tips/<tip_id>/release")
@access.roles(*STAFF, back="desk.queue")
def release(tip_id: str) -> Response:
    try:
        _desk().release(_person(), _tip_id(tip_id), address=client_address())
    except (AlreadyDecided, NotAllowed) as exc:
        flash(f"The tip was not given back: {exc}.", "error")
    else:
        flash("The tip is back in the queue, claimed by no one.", "info")
    return redirect(url_for("desk.queue"))


# -- the tip --------------------------------------------------------------------------------


@blueprint.get("/tips/<tip_id>")
@access.roles(*STAFF, content=True)
def tip(tip_id: str) -> str:
    person = _person()
    desk = _desk()
    found = desk.tip_for(person, _tip_id(tip_id))
    document, problem = _content(found)
    rt = database.runtime()
    db_session = database.session()
    # Recorded before anything is shown; committed with the note that content was read.
    rt.audit(db_session).record(
        "tip.viewed",
        actor=f"user:{person.id}",
        subject=f"tip:{found.id}",
        address=client_address(),
    )
    signed = signed_in()
    if signed is not None:
        account_service().content_read(signed.token)
    db_session.commit()
    agency = db_session.get(Agency, found.agency_id)
    assignee = db_session.get(User, found.assignee_id) if found.assignee_id else None
    return render_template(
        "desk/tip.html",
        tip=found,
        grading=grading,
        agency=agency,
        assignee=assignee,
        document=document,
        problem=problem,
        correlated=desk.correlated(found.id),
        thread=_correspondence().thread(found.id),
        ask_form=AskForm(),
        attachments=_attachments(found.id),
        referrals=desk.referrals_for(person),
        person=person,
        now=rt.clock.now(),
        action_form=ActionForm(),
        decline_form=DeclineForm(),
        merge_form=MergeForm(),
    )


def _content(found: Tip) -> tuple[dict[str, Any] | None, str | None]:
    """The tip document, decrypted in memory; or why it cannot be shown (never its text)."""
    armored = database.session().scalar(
        select(TipCiphertext.armored).where(TipCiphertext.tip_id == found.id)
    )
    if armored is None:
        return None, "The tip's ciphertext is missing."
    try:
        message = database.runtime().keyring.decrypt_and_verify(armored)
        return dict(parse_tip_document(message.plaintext).data), None
    except (CryptoError, InvalidTipDocument) as exc:
        return None, f"The tip cannot be decrypted on this server ({type(exc).__name__})."


# -- decisions ------------------------------------------------------------------------------


@blueprint.errorhandler(TipNotFound)
def _not_found(_exc: TipNotFound) -> Any:
    # Also a tip of another team: whether it exists is not this person's to know. The app's
    # own 404 answer (an error handler cannot abort).
    return current_app.handle_user_exception(NotFound())


@blueprint.errorhandler(AlreadyDecided)
@blueprint.errorhandler(NotAllowed)
def _refused(exc: Exception) -> Response:
    """A decision someone else made first, or one this person may not make: nothing changed,
    back to the tip (views that answer otherwise catch it themselves)."""
    flash(f"Nothing was changed: {exc}.", "error")
    return redirect(url_for("desk.tip", tip_id=(request.view_args or {}).get("tip_id", "")))


def _decided(tip_id: str, done: str) -> Response:
    flash(done, "info")
    return redirect(url_for("desk.tip", tip_id=tip_id))


@blueprint.post("/tips/<tip_id>/accept")
@access.roles(*STAFF, back="desk.queue")
def accept(tip_id: str) -> Response:
    referral = _desk().accept(_person(), _tip_id(tip_id), address=client_address())
    return _decided(tip_id, f"Accepted: referral {referral.reference} was opened for it.")


@blueprint.post("/tips/<tip_id>/merge")
@access.roles(*STAFF, back="desk.queue")
def merge(tip_id: str) -> Response:
    form = MergeForm()
    if not form.validate():
        flash(" ".join(form.referral.errors) or "Give the referral's reference.", "error")
        return redirect(url_for("desk.tip", tip_id=tip_id))
    try:
        referral = _desk().merge(
            _person(), _tip_id(tip_id), form.referral.data or "", address=client_address()
        )
    except ReferralNotFound:
        flash("Nothing was changed: your team has no open referral with that reference.", "error")
        return redirect(url_for("desk.tip", tip_id=tip_id))
    return _decided(tip_id, f"Merged into referral {referral.reference}.")


@blueprint.post("/tips/<tip_id>/decline")
@access.roles(*STAFF, back="desk.queue")
def decline(tip_id: str) -> Response:
    form = DeclineForm()
    if not form.validate():
        flash("Nothing was changed: choose why the tip is declined.", "error")
        return redirect(url_for("desk.tip", tip_id=tip_id))
    _desk().decline(
        _person(), _tip_id(tip_id), DeclineReason(form.reason.data), address=client_address()
    )
    return _decided(tip_id, "Declined: the partner agency is told why.")


# -- attachments ----------------------------------------------------------------------------

# Plaintext may be larger than the ciphertext (a partner may compress); past this a download
# is cut off (a compression bomb must not stream for ever).
PLAINTEXT_FACTOR = 4


def _attachments(tip_id: str) -> list[Attachment]:
    return list(
        database.session().scalars(
            select(Attachment).where(Attachment.tip_id == tip_id).order_by(Attachment.received_at)
        )
    )


def _attachment(tip_id: str, attachment_id: str) -> tuple[Tip, Attachment]:
    found = _desk().tip_for(_person(), _tip_id(tip_id))
    attachment = database.session().get(Attachment, _tip_id(attachment_id))
    if attachment is None or attachment.tip_id != found.id:
        abort(404)
    return found, attachment


@blueprint.get("/tips/<tip_id>/attachments/<attachment_id>")
@access.roles(*STAFF)
def attachment(tip_id: str, attachment_id: str) -> str:
    """The warning before a file is downloaded: nothing of it is decrypted here."""
    found, file = _attachment(tip_id, attachment_id)
    return render_template(
        "desk/attachment.html", tip=found, attachment=file, action_form=ActionForm()
    )


@blueprint.post("/tips/<tip_id>/attachments/<attachment_id>/download")
@access.roles(*STAFF, content=True, back="desk.queue")
def download_attachment(tip_id: str, attachment_id: str) -> Response:
    """The file, decrypted as it is sent (never whole in memory, never on disk), as a download
    the browser saves rather than shows; recorded in the audit log before the first byte."""
    found, file = _attachment(tip_id, attachment_id)
    rt = database.runtime()
    db_session = database.session()
    person = _person()
    rt.audit(db_session).record(
        "attachment.downloaded",
        actor=f"user:{person.id}",
        subject=f"tip:{found.id}",
        address=client_address(),
        details={"attachment": file.id, "bytes": file.size_bytes},
    )
    signed = signed_in()
    if signed is not None:
        account_service().content_read(signed.token)
    db_session.commit()
    path = AttachmentStore(rt.settings.attachments_dir).path(file.storage_name)
    if not path.exists():
        abort(404)
    chunks = rt.keyring.decrypt_file_stream(
        path, max_bytes=rt.settings.max_attachment_bytes * PLAINTEXT_FACTOR
    )
    name = f"{found.tracking_number}-{file.id[:8]}.bin"
    return Response(
        stream_with_context(chunks),
        mimetype="application/octet-stream",
        headers={
            # Saved, never shown by the browser (this server renders no evidence inline).
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


# -- messages to the partner ----------------------------------------------------------------


def _correspondence() -> Correspondence:
    rt = database.runtime()
    db_session = database.session()
    return Correspondence(
        db_session, audit=rt.audit(db_session), clock=rt.clock, keyring=rt.keyring, queue=rt.queue
    )


@blueprint.post("/tips/<tip_id>/ask")
@access.roles(*STAFF, back="desk.queue")
def ask(tip_id: str) -> Response:
    """Ask the partner agency for more information: sealed for its key, sent to its portal and
    API. The text is never stored in clear."""
    found = _desk().tip_for(_person(), _tip_id(tip_id))
    form = AskForm()
    if not form.validate():
        flash(" ".join(form.text.errors) or "Write what you need.", "error")
        return redirect(url_for("desk.tip", tip_id=tip_id))
    try:
        _correspondence().ask(_person(), found, form.text.data or "", address=client_address())
    except MessageRefused as exc:
        flash(f"Nothing was sent: {exc}", "error")
        return redirect(url_for("desk.tip", tip_id=tip_id))
    return _decided(tip_id, "Sent: the partner agency can read it with its key.")
