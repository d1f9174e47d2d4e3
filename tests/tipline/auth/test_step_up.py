"""Step-up: sensitive actions need a code given within the last few minutes (signing in
counts); the person is asked for one, then sent back where they were."""

from __future__ import annotations

import html
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from referrals.accounts.models import User
from referrals.accounts.services import STEP_UP_WINDOW
from tests.clock import ManualClock
from tests.tipline.admin.people import (
    Person,
    audit_records,
    csrf,
    enrolled,
    signed_in_client,
)
from tipline.runtime import Runtime


@pytest.fixture
def clock(runtime: Runtime) -> ManualClock:
    runtime.clock = ManualClock()
    return runtime.clock


@pytest.fixture
def admin(runtime: Runtime, clock: ManualClock) -> Person:
    return enrolled(runtime, "root@centre.example", "admin")


@pytest.fixture
def ana(runtime: Runtime, clock: ManualClock) -> Person:
    return enrolled(runtime, "ana@centre.example", "analyst")


@pytest.fixture
def quiet_admin(app: Flask, runtime: Runtime, clock: ManualClock, admin: Person) -> FlaskClient:
    """An admin signed in, who has given no code for longer than the step-up window."""
    browser = signed_in_client(app, runtime, admin)
    clock.advance(seconds=STEP_UP_WINDOW.total_seconds() + 1)
    return browser


def _step_up(browser: FlaskClient, location: str, code: str) -> str:
    page = browser.get(location).get_data(as_text=True)
    assert "Confirm it is you" in page
    answer = browser.post(location, data={"csrf_token": csrf(page), "code": code})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return answer.headers["Location"]


def test_a_page_that_needs_step_up_asks_for_a_code_then_comes_back(
    quiet_admin: FlaskClient, runtime: Runtime, admin: Person
) -> None:
    assert quiet_admin.get("/admin/users").status_code == 200  # listing needs no step-up
    asked = quiet_admin.get("/admin/users/new")
    assert asked.status_code == 302
    location = asked.headers["Location"]
    assert location == "/login/step-up?next=/admin/users/new"
    page = html.unescape(quiet_admin.get(location).get_data(as_text=True))
    assert "This page needs a current code from your authenticator." in page

    # The code given when enrolling is spent; a wrong one is refused.
    refused = quiet_admin.post(location, data={"csrf_token": csrf(page), "code": "000000"})
    assert refused.status_code == 200
    assert "That code is not right" in refused.get_data(as_text=True)
    assert _step_up(quiet_admin, location, admin.code(runtime)) == "/admin/users/new"
    assert quiet_admin.get("/admin/users/new").status_code == 200
    (record,) = audit_records(runtime, "session.stepped_up")
    assert record.actor == f"user:{admin.id}"


def test_a_sensitive_post_changes_nothing_and_returns_to_its_page_after_step_up(
    quiet_admin: FlaskClient, runtime: Runtime, admin: Person, ana: Person
) -> None:
    page = quiet_admin.get("/admin/users").get_data(as_text=True)
    answer = quiet_admin.post(f"/admin/users/{ana.id}/disable", data={"csrf_token": csrf(page)})
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location == "/login/step-up?next=/admin/users"
    with runtime.session_factory() as session:
        user = session.get(User, ana.id)
        assert user is not None and user.disabled_at is None
    assert audit_records(runtime, "account.disabled") == []
    shown = html.unescape(quiet_admin.get(location).get_data(as_text=True))
    assert "Nothing was changed: give a code, then do it again." in shown

    assert _step_up(quiet_admin, location, admin.code(runtime)) == "/admin/users"
    page = quiet_admin.get("/admin/users").get_data(as_text=True)
    done = quiet_admin.post(f"/admin/users/{ana.id}/disable", data={"csrf_token": csrf(page)})
    assert done.status_code == 302 and done.headers["Location"] == "/admin/users"
    assert len(audit_records(runtime, "account.disabled")) == 1


def test_every_admin_change_needs_step_up(
    app: Flask, quiet_admin: FlaskClient, ana: Person
) -> None:
    token = csrf(quiet_admin.get("/admin/users").get_data(as_text=True))
    changes = [
        ("/admin/users/new", "/admin/users/new"),
        (f"/admin/users/{ana.id}/disable", "/admin/users"),
        (f"/admin/users/{ana.id}/enable", "/admin/users"),
        (f"/admin/users/{ana.id}/unlock", "/admin/users"),
        (f"/admin/users/{ana.id}/reset-2fa", "/admin/users"),
        ("/admin/enrolments/1/approve", "/admin/enrolments"),
        ("/admin/enrolments/1/refuse", "/admin/enrolments"),
        ("/admin/teams", "/admin/teams"),
        ("/admin/units", "/admin/units"),
        ("/admin/held-tips/00000000-0000-0000-0000-000000000000/retry", "/admin/held-tips"),
        ("/admin/held-tips/retry-all", "/admin/held-tips"),
        ("/admin/triage-rules", "/admin/triage-rules"),
        ("/admin/failed-jobs/no-such-job/requeue", "/admin/failed-jobs"),
        ("/admin/selectors/exclude", "/admin/selectors"),
        (f"/admin/selectors/{'0' * 16}/exclude", "/admin/selectors"),
        (f"/admin/selectors/{'0' * 16}/allow", "/admin/selectors"),
        (f"/admin/selectors/{'0' * 16}/clear", "/admin/selectors"),
    ]
    for path, back in changes:
        answer = quiet_admin.post(path, data={"csrf_token": token})
        assert answer.status_code == 302, path
        assert answer.headers["Location"] == f"/login/step-up?next={back}", path
    with app.test_request_context():
        admin_posts = {
            rule.rule
            for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("admin.") and "POST" in (rule.methods or ())
        }
    assert len(admin_posts) == len(changes)  # a new account action is added to the list


def test_the_step_up_page_goes_back_only_to_this_site(
    quiet_admin: FlaskClient, runtime: Runtime, admin: Person
) -> None:
    location = "/login/step-up?next=" + quote("//evil.example/", safe="")
    assert _step_up(quiet_admin, location, admin.code(runtime)) == "/"
