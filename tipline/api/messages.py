"""``/api/v1/messages`` and ``/api/v1/tips/{id}/messages``: the centre's messages to a partner
agency (one OpenPGP message each, for the agency's key), and the agency's replies.

The partner-facing process decrypts nothing: a reply is stored as it came and checked by a
worker like a tip; its status says whether it was accepted or why not.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from werkzeug.exceptions import NotFound

from referrals.intake.receiving import NotAnOpenPGPMessage, check_armored_message
from referrals.messages.checking import MAX_REPLY_BYTES
from referrals.messages.models import Direction, Message
from referrals.messages.services import Correspondence, MessageRefused
from tipline import access, database
from tipline.api.auth import require_agency
from tipline.api.tips import (
    PGP_ENCRYPTED,
    ApiBadRequest,
    ApiConflict,
    UnsupportedMediaType,
    limit_param,
    since_param,
)
from tipline.api.tips import blueprint as tips_blueprint

blueprint = Blueprint("messages", __name__, url_prefix="/messages")


def _correspondence() -> Correspondence:
    rt = database.runtime()
    db_session = database.session()
    return Correspondence(db_session, audit=rt.audit(db_session), clock=rt.clock, queue=rt.queue)


def _item(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "tip_id": message.tip_id,
        "kind": message.kind,
        "sent_at": message.created_at.isoformat(),
        "message": message.armored.decode("ascii"),
    }


@blueprint.get("")
@access.agency_token
def listing() -> Response:
    """The centre's messages to this agency, oldest first, after ``cursor`` (a message id)."""
    agency_id = require_agency()
    since = since_param(request.args.get("since"))
    limit = limit_param(request.args.get("limit"))
    cursor = request.args.get("cursor")
    if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 10):
        raise ApiBadRequest("bad_cursor", "cursor is not one this service gave out")
    after = int(cursor) if cursor else 0
    page, more = _correspondence().for_agency(agency_id, after_id=after, since=since, limit=limit)
    following = None
    if more:
        args: dict[str, Any] = {"cursor": str(page[-1].id), "limit": str(limit)}
        if since is not None:
            args["since"] = since.isoformat()
        following = url_for("api.messages.listing", **args)
    return jsonify({"messages": [_item(message) for message in page], "next": following})


@tips_blueprint.post("/<tip_id>/messages")
@access.agency_token
def reply(tip_id: str) -> tuple[Response, int]:
    """A reply about one of the agency's tips: stored, then checked by a worker."""
    agency_id = require_agency()
    if (request.mimetype or "").lower() != PGP_ENCRYPTED:
        raise UnsupportedMediaType()
    if (request.content_length or 0) > MAX_REPLY_BYTES:
        raise ApiBadRequest("reply_too_large", f"a reply may be at most {MAX_REPLY_BYTES} bytes")
    body = request.get_data(cache=False)
    try:
        check_armored_message(body)
        message = _correspondence().receive_reply(agency_id, tip_id, body)
    except NotAnOpenPGPMessage as exc:
        raise ApiBadRequest("not_an_openpgp_message", str(exc)) from None
    except LookupError:
        raise NotFound(description="no such tip") from None
    except MessageRefused as exc:
        raise ApiConflict("reply_refused", str(exc)) from None
    status_url = url_for("api.tips.reply_status", tip_id=tip_id, message_id=message.id)
    response = jsonify({"id": message.id, "status": message.status, "status_url": status_url})
    response.headers["Location"] = status_url
    return response, 202


@tips_blueprint.get("/<tip_id>/messages/<int:message_id>")
@access.agency_token
def reply_status(tip_id: str, message_id: int) -> Response:
    agency_id = require_agency()
    message = database.session().get(Message, message_id)
    if (
        message is None
        or message.agency_id != agency_id
        or message.tip_id != tip_id
        or message.direction != Direction.FROM_PARTNER.value
    ):
        raise NotFound(description="no such reply")
    return jsonify({"id": message.id, "status": message.status, "reason": message.reason})
