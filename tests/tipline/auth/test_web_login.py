"""Enrolment and sign-in through the web pages (the test client, CSRF on)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from referrals.accounts.services import AccountService
from tests.referrals.accounts.test_totp import rfc6238_code
from tipline import access
from tipline.runtime import Runtime

PASSWORD = "a long and unusual passphrase 7"


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def new_account(runtime: Runtime, email: str = "ana@centre.example", role: str = "analyst") -> str:
    with runtime.session_factory() as session:
        service = AccountService(
            session,
            box=runtime.secret_box,
            hashing=runtime.password_hashing,
            audit=runtime.audit(session),
            clock=runtime.clock,
        )
        return service.create(email=email, role=role, actor="cli:test").token


def enrol(client: FlaskClient, token: str) -> str:
    """Goes through the enrolment pages; returns the TOTP seed shown."""
    first = client.get(f"/enrol?token={token}")
    assert first.status_code == 302 and first.headers["Location"].endswith("/enrol/form")
    page = client.get("/enrol/form").get_data(as_text=True)
    seed_match = re.search(r'id="totp-seed">([A-Z2-7 ]+)<', page)
    assert seed_match and "<svg" in page
    seed = seed_match.group(1).replace(" ", "")
    done = client.post(
        "/enrol/form",
        data={
            "csrf_token": csrf(page),
            "password": PASSWORD,
            "confirm": PASSWORD,
            "code": rfc6238_code(seed, datetime.now(UTC)),
        },
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    return seed


def sign_in(client: FlaskClient, email: str, code: str) -> int:
    page = client.get("/login").get_data(as_text=True)
    step = client.post(
        "/login", data={"csrf_token": csrf(page), "email": email, "password": PASSWORD}
    )
    assert step.status_code == 302 and step.headers["Location"].endswith("/login/code")
    page = client.get("/login/code").get_data(as_text=True)
    answer = client.post("/login/code", data={"csrf_token": csrf(page), "code": code})
    return answer.status_code


def test_enrol_then_sign_in_with_a_code_and_sign_out(client: FlaskClient, runtime: Runtime) -> None:
    seed = enrol(client, new_account(runtime))
    # The code used to enrol is spent; the next step's code is within the allowed drift.
    code = rfc6238_code(seed, datetime.now(UTC) + timedelta(seconds=30))
    assert sign_in(client, "ana@centre.example", code) == 302
    home = client.get("/")
    assert home.status_code == 200
    assert "ana@centre.example" in home.get_data(as_text=True)
    assert home.headers["Cache-Control"] == "no-store"

    # The same code cannot be used again, even in a new browser.
    other = client.application.test_client()
    assert sign_in(other, "ana@centre.example", code) == 200  # the code page again, refused
    assert other.get("/").status_code == 302

    page = home.get_data(as_text=True)
    out = client.post("/logout", data={"csrf_token": csrf(page)})
    assert out.status_code == 302
    assert client.get("/").headers["Location"].startswith("/login")


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient) -> None:
    answer = client.post("/login", data={"email": "a@b.example", "password": PASSWORD})
    assert answer.status_code == 400


def test_a_wrong_password_says_nothing_about_the_account(
    client: FlaskClient, runtime: Runtime
) -> None:
    enrol(client, new_account(runtime))
    page = client.get("/login").get_data(as_text=True)
    wrong = client.post(
        "/login",
        data={"csrf_token": csrf(page), "email": "ana@centre.example", "password": "x" * 14},
    ).get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    unknown = client.post(
        "/login",
        data={"csrf_token": csrf(page), "email": "zed@centre.example", "password": "x" * 14},
    ).get_data(as_text=True)
    message = "do not match an account that can sign in"
    assert message in wrong and message in unknown


def test_an_enrolment_link_works_once_then_says_so_and_offers_to_sign_in(
    client: FlaskClient, runtime: Runtime
) -> None:
    token = new_account(runtime)
    enrol(client, token)
    for browser in (client, client.application.test_client()):  # the enrolled one, and another
        answer = browser.get(f"/enrol?token={token}")
        page = answer.get_data(as_text=True)
        assert answer.status_code == 410
        assert "<title>Enrolment link not valid · Tipline</title>" in page
        assert "<h1>This enrolment link is not valid</h1>" in page
        assert "This enrolment link has already been used or has expired." in page
        assert '<a href="/login">Sign in</a>' in page
        assert "this enrolment link is not valid" not in page  # a sentence, not a fragment


def test_pages_carry_security_headers(client: FlaskClient) -> None:
    answer = client.get("/login")
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["Cache-Control"] == "no-store"
    cookie = answer.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    answer = client.get("/")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login")


def test_every_endpoint_declares_who_may_reach_it(app: Flask) -> None:
    with app.test_request_context():
        undeclared = [
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if access.rule_for(rule.endpoint) is None
        ]
    assert undeclared == []


def test_an_endpoint_without_a_rule_is_denied_to_everyone(app: Flask, runtime: Runtime) -> None:
    @app.get("/forgotten")
    def forgotten() -> str:  # pragma: no cover - must never run
        raise AssertionError("reached")

    assert app.test_client().get("/forgotten").status_code == 403
    with pytest.raises(AssertionError):
        test_every_endpoint_declares_who_may_reach_it(app)


def test_form_fields_are_labelled_and_described_only_by_what_exists(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    for field_id in ("email", "password", "remember"):
        assert f'<label for="{field_id}"' in page
    assert 'aria-describedby=""' not in page
    assert 'aria-describedby="remember-hint"' in page
