"""``/api/v1/feedback``: feedback the centre released to this agency about referrals its tips
are in, one OpenPGP message each (signed with the intake key, encrypted to the agency's key).
The partner-facing process opens none of it: it hands over what was sealed."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from referrals.feedback.models import Feedback
from referrals.feedback.services import FeedbackDesk
from tipline import access, database
from tipline.api.auth import require_agency
from tipline.api.tips import ApiBadRequest, limit_param, since_param

blueprint = Blueprint("feedback", __name__, url_prefix="/feedback")


def _item(feedback: Feedback) -> dict[str, Any]:
    return {
        "id": feedback.id,
        "tip_ids": list(feedback.tip_ids or []),
        "released_at": feedback.released_at.isoformat(),
        "message": feedback.armored.decode("ascii"),
    }


@blueprint.get("")
@access.agency_token
def listing() -> Response:
    """This agency's feedback, oldest first, after ``cursor`` (a feedback id) and released at
    or after ``since``; the first fetch of each is recorded for the lead who released it."""
    agency_id = require_agency()
    since = since_param(request.args.get("since"))
    limit = limit_param(request.args.get("limit"))
    cursor = request.args.get("cursor")
    if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 10):
        raise ApiBadRequest("bad_cursor", "cursor is not one this service gave out")
    rt = database.runtime()
    db_session = database.session()
    desk = FeedbackDesk(db_session, audit=rt.audit(db_session), clock=rt.clock)
    page, more = desk.for_agency(
        agency_id, after_id=int(cursor) if cursor else 0, since=since, limit=limit
    )
    following = None
    if more:
        args: dict[str, Any] = {"cursor": str(page[-1].id), "limit": str(limit)}
        if since is not None:
            args["since"] = since.isoformat()
        following = url_for("api.feedback.listing", **args)
    return jsonify({"feedback": [_item(feedback) for feedback in page], "next": following})
