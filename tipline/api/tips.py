"""``/api/v1/tips``: send a tip, follow it, attach files to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import (
    BadRequest,
    Conflict,
    HTTPException,
    NotFound,
    RequestEntityTooLarge,
)

from referrals.intake.attachments import (
    AttachmentQuota,
    AttachmentQuotaExceeded,
    AttachmentRefused,
    AttachmentStore,
    AttachmentTooLarge,
    AttachmentToRejectedTip,
)
from referrals.intake.models import Tip
from referrals.intake.receiving import (
    BadIdempotencyKey,
    Cursor,
    NotAnOpenPGPMessage,
    TipReceiver,
)
from tipline import access, database, request_values
from tipline.api.auth import require_agency

blueprint = Blueprint("tips", __name__, url_prefix="/tips")

PGP_ENCRYPTED = "application/pgp-encrypted"
ATTACHMENT_TYPES = (PGP_ENCRYPTED, "application/octet-stream")
PAGE_DEFAULT = 50
PAGE_MAX = 200
CHUNK = 64 * 1024


class UnsupportedMediaType(HTTPException):
    code = 415
    description = f"send the armored OpenPGP message as Content-Type: {PGP_ENCRYPTED}"


class ApiBadRequest(BadRequest):
    """A 400 with a machine-readable code of its own."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description=description)
        self.error_code = code


class ApiConflict(Conflict):
    """A 409 with a machine-readable code of its own: the tip's state refuses the request."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description=description)
        self.error_code = code


class QuotaExceeded(RequestEntityTooLarge):
    """A 413 because of the tip's attachment quota, not the file's own size."""

    def __init__(self, description: str) -> None:
        super().__init__(description=description)
        self.error_code = "attachment_quota_exceeded"


def _receiver() -> TipReceiver:
    rt = database.runtime()
    return TipReceiver(database.session(), queue=rt.queue, clock=rt.clock)


def _status(tip: Tip) -> dict[str, Any]:
    # As the partner is told it: a tip quarantined after our faults is "held".
    return {
        "id": tip.id,
        "tracking_number": tip.tracking_number,
        "status": tip.partner_status,
        "reason": tip.partner_reason,
        # Only where and why, never the value; nothing of correlation or triage is said here.
        "warnings": tip.selector_warnings or [],
        "updated_at": tip.updated_at.isoformat(),
    }


def _require_body_limit(limit: int) -> None:
    """Refuse a body over ``limit`` before reading any of it (and stop reading at the limit
    when no Content-Length was sent)."""
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(description=f"the body is over the limit of {limit} bytes")


def _media_type() -> str:
    return (request.mimetype or "").lower()


@blueprint.post("")
@access.agency_token
def submit() -> tuple[Response, int]:
    agency_id = require_agency()
    if _media_type() != PGP_ENCRYPTED:
        raise UnsupportedMediaType()
    _require_body_limit(current_app.config["TIPLINE_MAX_TIP_BYTES"])
    body = request.get_data(cache=False)
    try:
        receipt = _receiver().receive(
            agency_id, body, idempotency_key=request.headers.get("Idempotency-Key")
        )
    except NotAnOpenPGPMessage as exc:
        raise ApiBadRequest("not_an_openpgp_message", str(exc)) from None
    except BadIdempotencyKey as exc:
        raise ApiBadRequest("bad_idempotency_key", str(exc)) from None
    tip = receipt.tip
    answer = tip.receipt() | {"status_url": url_for("api.tips.status", tip_id=tip.id)}
    if not receipt.created:
        # The receipt of the first submission, with the tip's status as it is now.
        answer["status"] = tip.partner_status
    response = jsonify(answer)
    response.headers["Location"] = answer["status_url"]
    return response, 202


@blueprint.get("/<tip_id>")
@access.agency_token
def status(tip_id: str) -> Response:
    agency_id = require_agency()
    tip = _receiver().find(agency_id, tip_id)
    if tip is None:
        # Also for another agency's tip: whether it exists is not theirs to know.
        raise NotFound(description="no such tip")
    return jsonify(_status(tip))


@blueprint.get("")
@access.agency_token
def listing() -> Response:
    agency_id = require_agency()
    since = since_param(request.args.get("since"))
    cursor = _cursor(request.args.get("cursor"))
    limit = limit_param(request.args.get("limit"))
    tips = _receiver().updated_since(agency_id, since=since, after=cursor, limit=limit + 1)
    page, more = tips[:limit], len(tips) > limit
    following = None
    if more:
        last = page[-1]
        args: dict[str, Any] = {
            "cursor": Cursor(updated_at=last.updated_at, tip_id=last.id).encode()
        }
        if since is not None:
            args["since"] = since.isoformat()
        args["limit"] = str(limit)
        following = url_for("api.tips.listing", **args)
    return jsonify({"tips": [_status(tip) for tip in page], "next": following})


@blueprint.post("/<tip_id>/attachments")
@access.agency_token
def attach(tip_id: str) -> tuple[Response, int]:
    agency_id = require_agency()
    if _media_type() not in ATTACHMENT_TYPES:
        raise UnsupportedMediaType(
            description="send the encrypted file as Content-Type: application/pgp-encrypted"
        )
    limit = current_app.config["TIPLINE_MAX_ATTACHMENT_BYTES"]
    _require_body_limit(limit)
    rt = database.runtime()
    store = AttachmentStore(rt.settings.attachments_dir)
    quota = AttachmentQuota(
        max_files=rt.settings.max_attachments_per_tip,
        max_bytes=rt.settings.max_attachment_bytes_per_tip,
    )
    try:
        # The tip, its status and its quota are checked before the body is read.
        attachment = _receiver().add_attachment(
            agency_id,
            tip_id,
            _chunks(),
            store=store,
            max_bytes=limit,
            quota=quota,
            declared_bytes=request.content_length,
        )
    except AttachmentToRejectedTip as exc:
        raise ApiConflict("tip_rejected", str(exc)) from None
    except AttachmentQuotaExceeded as exc:
        if exc.files:
            raise ApiConflict("too_many_attachments", str(exc)) from None
        raise QuotaExceeded(str(exc)) from None
    except AttachmentTooLarge as exc:
        raise RequestEntityTooLarge(description=str(exc)) from None
    except AttachmentRefused as exc:
        raise ApiBadRequest("not_an_openpgp_message", str(exc)) from None
    if attachment is None:
        raise NotFound(description="no such tip")
    return jsonify(
        {
            "id": attachment.id,
            "tip_id": tip_id,
            "sha256": attachment.sha256,
            "size": attachment.size_bytes,
        }
    ), 201


def _chunks() -> Iterator[bytes]:
    stream = request.stream
    while chunk := stream.read(CHUNK):
        yield chunk


def since_param(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiBadRequest("bad_since", "since must be an RFC 3339 date-time") from None
    if stamp.tzinfo is None:
        raise ApiBadRequest("bad_since", "since must carry a time zone (e.g. Z)")
    if not request_values.within_range(stamp):
        raise ApiBadRequest("bad_since", f"since must be {request_values.RANGE_TEXT}")
    return stamp


def _cursor(value: str | None) -> Cursor | None:
    if value is None:
        return None
    try:
        return request_values.page_cursor(value)
    except ValueError as exc:
        raise ApiBadRequest("bad_cursor", str(exc)) from None


def limit_param(value: str | None) -> int:
    if value is None:
        return PAGE_DEFAULT
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= PAGE_MAX:
        raise ApiBadRequest("bad_limit", f"limit must be between 1 and {PAGE_MAX}")
    return int(value)
