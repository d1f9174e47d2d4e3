"""Signed-in partner officers for the partner pages (sessions started by the service and
handed to Flask-Login's test client: the sign-in pages themselves are tested in
tests/tipline/auth and, end to end, in test_browser.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import RegisteredAgency
from tests.tipline.admin.people import account_service, signed_in_client
from tipline.runtime import Runtime


@dataclass(frozen=True)
class Officer:
    user_id: int
    agency_id: int
    client: FlaskClient


def sign_in_directly(
    app: Flask, runtime: Runtime, *, email: str, role: str, agency_id: int | None
) -> Officer:
    """A test client signed in as a new account of that role (and agency, for a partner)."""
    with runtime.session_factory() as session:
        accounts = account_service(runtime, session)
        user = accounts.create(email=email, role=role, agency_id=agency_id, actor="cli:test").user
        user_id = user.id
    client = signed_in_client(app, runtime, user_id)
    return Officer(user_id=user_id, agency_id=agency_id or 0, client=client)


@pytest.fixture
def officer(app: Flask, runtime: Runtime, agencies: dict[str, RegisteredAgency]) -> Officer:
    """An officer of agency A, signed in."""
    return sign_in_directly(
        app,
        runtime,
        email="officer@agency-a.example",
        role="partner",
        agency_id=agencies["agency-a"].id,
    )


@pytest.fixture
def other_officer(app: Flask, runtime: Runtime, agencies: dict[str, RegisteredAgency]) -> Officer:
    """An officer of agency B, signed in."""
    return sign_in_directly(
        app,
        runtime,
        email="officer@agency-b.example",
        role="partner",
        agency_id=agencies["agency-b"].id,
    )


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', page) or re.search(
        rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', page
    )
    assert match, f"no hidden {name} on the page"
    return match.group(1)


def form_data(page: str, **changes: object) -> dict[str, object]:
    """A complete, valid submission of the form on ``page`` (CSRF token and nonce included)."""
    data: dict[str, object] = {
        "csrf_token": hidden(page, "csrf_token"),
        "submission": hidden(page, "submission"),
        "external_reference": "ECA-WEB-0001",
        "summary": "Facilitator in Pampanga offers live-streamed abuse of children.",
        "narrative": "Fictional test tip. The little ones are offered on webcam every week.",
        "imminent_danger": "y",
        "ongoing_abuse": "y",
        "country": "PH",
        "region": "Central Luzon",
        "city": "Angeles",
        "offence_types": ["live_streaming_abuse", "trafficking"],
        "victim_count": "3",
        "victim_ages": "2, 7",
        "selectors": (
            "username@ExampleChat: sunnyday88\n\n"
            "email: sunny.day88@example.com\n"
            "phone: +63 905 123 4567\n"
            "url: https://chat.example.org/u/sunnyday88\n"
        ),
        "tlp": "AMBER",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}
