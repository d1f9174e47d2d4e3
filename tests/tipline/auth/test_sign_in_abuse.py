"""Sign-in abuse through the pages: the pending sign-in, lockouts with their end time, trusted
browsers, enrolment links checked before anything else, disabled accounts, ``?next=``."""

from __future__ import annotations

import html
from datetime import datetime
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from referrals.accounts.lockout import LOCK_AFTER_FAILURES
from referrals.accounts.models import User
from referrals.accounts.services import SIGN_IN_LIFETIME, ApprovalRule
from tests.clock import ManualClock
from tests.tipline.admin.people import (
    PASSWORD,
    Person,
    account_service,
    csrf,
    enrolled,
    session_token,
    signed_in_client,
)
from tipline.auth.views import _safe_next
from tipline.runtime import Runtime

ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}


@pytest.fixture
def clock(runtime: Runtime, app: Flask) -> ManualClock:
    """The app's clock, moved by hand (a time well inside a TOTP step)."""
    moment = ManualClock(datetime.fromisoformat("2026-11-29T09:00:05+00:00"))
    runtime.clock = moment
    app.config["TIPLINE_SIGN_IN_RATE_LIMIT"] = "1000 per minute"
    return moment


@pytest.fixture
def ana(runtime: Runtime, clock: ManualClock) -> Person:
    person = enrolled(runtime, "ana@centre.example", "analyst")
    clock.advance(seconds=30)  # the code used to enrol is spent
    return person


def password_step(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    *,
    next_path: str | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[int, str]:
    """The password step: (status, Location or page)."""
    url = "/login" if next_path is None else f"/login?next={quote(next_path, safe='')}"
    page = client.get(url).get_data(as_text=True)
    answer = client.post(
        url,
        data={"csrf_token": csrf(page), "email": email, "password": password},
        environ_base=environ or {},
    )
    if answer.status_code == 302:
        return 302, answer.headers["Location"]
    return answer.status_code, answer.get_data(as_text=True)


def code_step(client: FlaskClient, code: str) -> tuple[int, str]:
    page = client.get("/login/code")
    if page.status_code == 302:
        return 302, page.headers["Location"]
    answer = client.post(
        "/login/code", data={"csrf_token": csrf(page.get_data(as_text=True)), "code": code}
    )
    if answer.status_code == 302:
        return 302, answer.headers["Location"]
    return answer.status_code, answer.get_data(as_text=True)


def test_a_sign_in_goes_back_to_the_page_asked_for(
    app: Flask, runtime: Runtime, ana: Person
) -> None:
    browser = app.test_client()
    assert browser.get("/audit?action=x").headers["Location"] == "/login?next=/audit?action%3Dx"
    assert password_step(browser, ana.email, next_path="/partner/tips?x=1") == (
        302,
        "/login/code",
    )
    assert code_step(browser, ana.code(runtime)) == (302, "/partner/tips?x=1")


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/partner/tips", "/partner/tips"),
        ("/audit?action=login.failed", "/audit?action=login.failed"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("\\\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/%0a/evil.example", "/%0a/evil.example"),  # stays a path on this site
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        ("", "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_next_leads_only_to_paths_on_this_site(app: Flask, asked: str, goes_to: str) -> None:
    with app.test_request_context():
        assert _safe_next(asked) == goes_to


def test_the_code_step_is_kept_on_the_server_and_cannot_be_replayed(
    app: Flask, runtime: Runtime, clock: ManualClock, ana: Person
) -> None:
    browser = app.test_client()
    assert password_step(browser, ana.email)[0] == 302
    with browser.session_transaction() as cookie:
        kept = dict(cookie)
    # The cookie names no account and no step passed: only a random token.
    assert list(kept) == ["pending_sign_in"] and len(kept["pending_sign_in"]) == 43
    assert code_step(browser, ana.code(runtime)) == (302, "/")
    browser.post("/logout", data={"csrf_token": csrf(browser.get("/").get_data(as_text=True))})

    # The cookie from between the two steps, replayed with a fresh code: start again.
    clock.advance(seconds=30)
    thief = app.test_client()
    with thief.session_transaction() as cookie:
        cookie.update(kept)
    status, where = code_step(thief, ana.code(runtime))
    assert (status, where) == (302, "/login")
    assert "not finished in time, or was already used" in thief.get("/login").get_data(as_text=True)
    assert thief.get("/").status_code == 302


def test_the_code_step_must_follow_within_minutes(
    app: Flask, runtime: Runtime, clock: ManualClock, ana: Person
) -> None:
    browser = app.test_client()
    assert password_step(browser, ana.email)[0] == 302
    clock.advance(seconds=SIGN_IN_LIFETIME.total_seconds() + 1)
    assert code_step(browser, ana.code(runtime)) == (302, "/login")
    assert browser.get("/").status_code == 302


def test_a_lockout_says_until_when_and_a_trusted_browser_still_signs_in(
    app: Flask, runtime: Runtime, clock: ManualClock, ana: Person
) -> None:
    own = app.test_client()
    assert password_step(own, ana.email)[0] == 302
    assert code_step(own, ana.code(runtime)) == (302, "/")
    own.post("/logout", data={"csrf_token": csrf(own.get("/").get_data(as_text=True))})
    assert own.get_cookie("tipline-device") is not None  # this browser is trusted now

    attacker = app.test_client()
    for _ in range(LOCK_AFTER_FAILURES):
        password_step(attacker, ana.email, "guess guess guess", environ=ATTACKER)
    status, page = password_step(attacker, ana.email, environ=ATTACKER)
    assert status == 200
    # 09:00:35 + 15 minutes, rounded up to the minute.
    assert "locked on this browser until 09:16 UTC (15 minutes from now)" in page

    clock.advance(seconds=30)
    assert password_step(own, ana.email) == (302, "/login/code")
    assert code_step(own, ana.code(runtime)) == (302, "/")
    assert own.get("/").status_code == 200
    status, page = password_step(attacker, ana.email, environ=ATTACKER)
    assert status == 200 and "locked on this browser until 09:16 UTC" in page


def test_an_enrolment_link_is_checked_before_the_visitor_is_signed_out(
    app: Flask, runtime: Runtime, ana: Person
) -> None:
    signed_in = signed_in_client(app, runtime, ana)
    for link in ("/enrol?token=made-up", "/enrol?token=" + "A" * 43):
        answer = signed_in.get(link)
        assert answer.status_code == 410
        assert "Sign in" in answer.get_data(as_text=True)
    assert signed_in.get("/").status_code == 200  # still signed in
    with runtime.session_factory() as session:
        live = account_service(runtime, session).session_user(session_token(signed_in))
        assert live is not None


def test_an_enrolment_link_for_a_disabled_account_is_refused(app: Flask, runtime: Runtime) -> None:
    with runtime.session_factory() as session:
        service = account_service(runtime, session)
        enrolment = service.create(email="bo@centre.example", role="analyst", actor="cli:test")
        service.disable(enrolment.user, actor="cli:test")
    answer = app.test_client().get(f"/enrol?token={enrolment.token}")
    assert answer.status_code == 410
    assert "already been used or has expired" in answer.get_data(as_text=True)


def test_a_link_waiting_for_approval_says_so(app: Flask, runtime: Runtime) -> None:
    with runtime.session_factory() as session:
        waiting = account_service(runtime, session, approval=ApprovalRule.ON).create(
            email="bo@centre.example", role="analyst", actor="cli:test"
        )
    browser = app.test_client()
    answer = browser.get(f"/enrol?token={waiting.token}")
    page = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 403
    assert "waiting for a second administrator's approval" in page
    assert browser.get("/enrol/form").status_code == 410  # nothing was started


def test_a_live_session_of_a_disabled_account_is_refused_where_it_was_not_ended(
    app: Flask, runtime: Runtime, ana: Person
) -> None:
    browser = signed_in_client(app, runtime, ana)
    assert browser.get("/").status_code == 200
    with runtime.session_factory() as session:
        # Disabled without going through the service: its sessions were not ended.
        session.execute(
            update(User).where(User.id == ana.id).values(disabled_at=runtime.clock.now())
        )
        session.commit()
    answer = browser.get("/")
    assert answer.status_code == 302 and urlsplit(answer.headers["Location"]).path == "/login"
