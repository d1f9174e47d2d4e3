"""A form sent after its sender's session timed out is kept for them, sealed, until they are
signed in again (see ``referrals.accounts.kept_forms``).

The key that opens it is only in the browser, in an HttpOnly cookie; nothing of what was
written is in the database in clear, in a log line or in an address. Views opt in with
``@access.roles(..., keep_form=True)``; their GET handler calls ``take`` to fill the form in.
"""

from __future__ import annotations

import base64
import binascii
import re

from flask import after_this_request, current_app, g, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from referrals.accounts.kept_forms import KEPT_FORM_LIFETIME, KeptForms, KeptFormTicket
from tipline import database
from tipline.auth.sessions import ENDED_SESSION, account_service, signed_in

_COOKIE_VALUE = re.compile(r"(?P<id>[0-9a-f]{32})\.(?P<key>[A-Za-z0-9_-]{43})")
CSRF_FIELD = "csrf_token"  # never kept: a new page gets a new one


def cookie_name() -> str:
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    return "__Host-tipline-kept-form" if secure else "tipline-kept-form"


def _service() -> KeptForms:
    return KeptForms(database.session(), clock=database.runtime().clock)


def keep(response: Response) -> bool:
    """Keep this POST's form for the owner of the session that timed out, and give the browser
    the key. Returns whether it was kept (not when the session ended otherwise, say by signing
    out or an administrator disabling the account)."""
    token = g.get(ENDED_SESSION)
    if not token:
        return False
    owner = account_service().timed_out_owner(token)
    if owner is None:
        return False
    fields = [(name, value) for name, value in request.form.items(multi=True) if name != CSRF_FIELD]
    ticket = _service().keep(user_id=owner, path=request.path, fields=fields)
    if ticket is None:
        return False
    key = base64.urlsafe_b64encode(ticket.key).decode().rstrip("=")
    response.set_cookie(
        cookie_name(),
        f"{ticket.form_id}.{key}",
        max_age=int(KEPT_FORM_LIFETIME.total_seconds()),
        path="/",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Lax",
    )
    return True


def take() -> MultiDict[str, str] | None:
    """The form the signed-in person sent to this page when their session had timed out, once;
    None if there is none (or it was kept for another account, left for its owner)."""
    person = signed_in()
    match = _COOKIE_VALUE.fullmatch(request.cookies.get(cookie_name(), ""))
    if person is None or match is None:
        return None
    try:
        key = base64.urlsafe_b64decode(match["key"] + "=")
    except (binascii.Error, ValueError):
        return None
    returned = _service().take(
        KeptFormTicket(form_id=match["id"], key=key), user_id=person.user.id, path=request.path
    )
    if returned is None:
        return None

    @after_this_request
    def _forget(response: Response) -> Response:
        response.delete_cookie(
            cookie_name(),
            path="/",
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            httponly=True,
            samesite="Lax",
        )
        return response

    return MultiDict(returned.fields)
