"""A tip written in the web form is never lost to an idle timeout: sent after the session timed
out, it is kept sealed (the key only in the officer's browser) and given back, filled in,
once the officer has signed in again."""

from __future__ import annotations

import html

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.accounts.models import KeptForm
from referrals.accounts.services import SESSION_IDLE
from referrals.intake.models import Tip
from tests.clock import ManualClock
from tests.conftest import RegisteredAgency
from tests.tipline.admin.people import (
    PASSWORD,
    Person,
    account_service,
    csrf,
    enrolled,
    signed_in_client,
)
from tests.tipline.partner.conftest import form_data
from tipline.runtime import Runtime

FORM = "/partner/tips/new"
NARRATIVE = "Fictional: sessions are offered on webcam every Friday; the youngest is two."
SELECTOR = "username@ExampleChat: sunnyday88"
COOKIE = "tipline-kept-form"


@pytest.fixture
def clock(runtime: Runtime, app: Flask) -> ManualClock:
    runtime.clock = ManualClock()
    app.config["TIPLINE_SIGN_IN_RATE_LIMIT"] = "1000 per minute"
    return runtime.clock


@pytest.fixture
def officer(runtime: Runtime, clock: ManualClock, agencies: dict[str, RegisteredAgency]) -> Person:
    return enrolled(
        runtime, "officer@agency-a.example", "partner", agency_id=agencies["agency-a"].id
    )


def _sign_in(browser: FlaskClient, runtime: Runtime, person: Person, login: str) -> str:
    """Both sign-in steps through the pages (the form posts to its own address, ``?next=``
    and all); returns where the browser is sent."""
    page = browser.get(login).get_data(as_text=True)
    step = browser.post(
        login, data={"csrf_token": csrf(page), "email": person.email, "password": PASSWORD}
    )
    assert step.headers["Location"] == "/login/code"
    page = browser.get("/login/code").get_data(as_text=True)
    done = browser.post(
        "/login/code", data={"csrf_token": csrf(page), "code": person.code(runtime)}
    )
    assert done.status_code == 302
    return done.headers["Location"]


def _write_and_time_out(
    app: Flask, runtime: Runtime, clock: ManualClock, officer: Person
) -> tuple[FlaskClient, str]:
    """The officer opens the form, writes for longer than the idle limit, sends it."""
    browser = signed_in_client(app, runtime, officer)
    page = browser.get(FORM).get_data(as_text=True)
    clock.advance(seconds=SESSION_IDLE.total_seconds() + 60)
    answer = browser.post(FORM, data=form_data(page, narrative=NARRATIVE))
    assert answer.status_code == 302
    return browser, answer.headers["Location"]


def test_a_tip_sent_after_a_timeout_comes_back_filled_in_after_signing_in(
    app: Flask, runtime: Runtime, clock: ManualClock, officer: Person
) -> None:
    browser, location = _write_and_time_out(app, runtime, clock, officer)
    assert location == f"/login?next={FORM}"
    assert "webcam" not in location and "sunnyday" not in location
    with runtime.session_factory() as session:
        assert session.scalars(select(Tip)).all() == []  # nothing was sent
        stored = session.scalars(select(KeptForm)).one()
    assert stored.user_id == officer.id and stored.path == FORM
    for text in (NARRATIVE, "webcam", "sunnyday88", "Pampanga"):
        assert text.encode() not in stored.sealed_fields  # ciphertext at rest
    key_cookie = browser.get_cookie(COOKIE)
    assert key_cookie is not None and key_cookie.http_only
    login_page = html.unescape(browser.get(location).get_data(as_text=True))
    assert "what you wrote is kept, encrypted" in login_page

    clock.advance(seconds=30)
    assert _sign_in(browser, runtime, officer, location) == FORM
    page = html.unescape(browser.get(FORM).get_data(as_text=True))
    assert "Here is the tip you were writing" in page
    assert NARRATIVE in page and SELECTOR in page and "Central Luzon" in page
    assert browser.get_cookie(COOKIE) is None
    with runtime.session_factory() as session:
        assert session.scalars(select(KeptForm)).all() == []  # used once, then gone
    # Only once: a reload shows an empty form.
    assert NARRATIVE not in html.unescape(browser.get(FORM).get_data(as_text=True))

    # What came back can be sent as it is.
    sent = browser.post(FORM, data=form_data(page, narrative=NARRATIVE))
    assert sent.status_code == 302 and "/partner/tips/" in sent.headers["Location"]
    with runtime.session_factory() as session:
        assert len(session.scalars(select(Tip)).all()) == 1


def test_someone_else_signing_in_on_that_browser_does_not_get_it(
    app: Flask,
    runtime: Runtime,
    clock: ManualClock,
    officer: Person,
    agencies: dict[str, RegisteredAgency],
) -> None:
    colleague = enrolled(
        runtime, "colleague@agency-a.example", "partner", agency_id=agencies["agency-a"].id
    )
    browser, location = _write_and_time_out(app, runtime, clock, officer)
    clock.advance(seconds=30)
    assert _sign_in(browser, runtime, colleague, location) == FORM
    assert NARRATIVE not in html.unescape(browser.get(FORM).get_data(as_text=True))
    with runtime.session_factory() as session:
        assert len(session.scalars(select(KeptForm)).all()) == 1  # still its owner's


def test_a_form_sent_after_the_session_was_ended_otherwise_is_not_kept(
    app: Flask, runtime: Runtime, clock: ManualClock, officer: Person
) -> None:
    browser = signed_in_client(app, runtime, officer)
    page = browser.get(FORM).get_data(as_text=True)
    with runtime.session_factory() as session:
        # An administrator disables the account (ending its sessions), then enables it again.
        service = account_service(runtime, session)
        user = service.find(officer.email)
        service.disable(user, actor="user:1")
        service.enable(user, actor="user:1")
    answer = browser.post(FORM, data=form_data(page, narrative=NARRATIVE))
    assert answer.status_code == 302 and answer.headers["Location"] == f"/login?next={FORM}"
    assert browser.get_cookie(COOKIE) is None
    with runtime.session_factory() as session:
        assert session.scalars(select(KeptForm)).all() == []
    told = html.unescape(browser.get(answer.headers["Location"]).get_data(as_text=True))
    assert "Nothing was changed or sent." in told
