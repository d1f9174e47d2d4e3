"""Bearer-token authentication of partner agencies' systems."""

from __future__ import annotations

from flask import g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from referrals.intake.agencies import AgencyService
from tipline import addresses, database

ANONYMOUS = -1


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def agency_id_or_none() -> int | None:
    """The authenticated agency's id (looked up once per request), or None."""
    if "api_agency_id" not in g:
        token = _bearer_token()
        agency_id = None
        if token is not None:
            rt = database.runtime()
            service = AgencyService(database.session(), keyring=rt.keyring, clock=rt.clock)
            agency_id = service.authenticate(token)
        g.api_agency_id = ANONYMOUS if agency_id is None else agency_id
    return None if g.api_agency_id == ANONYMOUS else int(g.api_agency_id)


def require_agency() -> int:
    """The authenticated agency's id; 401 otherwise."""
    agency_id = agency_id_or_none()
    if agency_id is None:
        raise Unauthorized(
            description="a valid API token is required: Authorization: Bearer TOKEN",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "tipline"}),
        )
    return agency_id


def rate_limit_key() -> str:
    """Requests with a valid token count against their agency; others against their
    address (an IPv6 client's /64)."""
    agency_id = agency_id_or_none()
    if agency_id is None:
        return f"address:{addresses.client_bucket()}"
    return f"agency:{agency_id}"
