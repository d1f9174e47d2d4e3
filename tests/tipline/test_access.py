"""The access rules as a view declares them: who gets in, who must give a code first, where a
refused POST leads back to, and whose timed-out form is kept.

The product's views declare their rules when their modules are imported, before any test runs;
these views declare theirs here, so each decorator's result is judged by what a person gets.
"""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask
from sqlalchemy import select

from referrals.accounts.kept_forms import KEPT_FORM_LIFETIME
from referrals.accounts.models import KeptForm, Role
from referrals.accounts.services import SESSION_IDLE, STEP_UP_WINDOW
from tests.clock import ManualClock
from tests.tipline.admin.people import Person, csrf, enrolled, signed_in_client
from tipline import access
from tipline.runtime import Runtime

FORM_PAGE = "/test/form"
FLASH = re.compile(r'<p class="flash flash-(\w+)" role="(\w+)">([^<]*)</p>')


def flashed(page: str) -> list[tuple[str, str]]:
    """The messages a page shows above its content: (how it is shown, what it says)."""
    return [(f"{kind} {role}", html.unescape(text)) for kind, role, text in FLASH.findall(page)]


INFO = "info status"  # the look (and role, for screen readers) of a notice


@pytest.fixture
def clock(runtime: Runtime) -> ManualClock:
    runtime.clock = ManualClock()
    return runtime.clock


@pytest.fixture
def declared(app: Flask) -> Flask:
    """The app with a view for each kind of rule."""

    @access.agency_token
    def machines() -> str:
        return "for partner systems"

    @access.roles(Role.ANALYST)
    def analysts() -> str:
        return "for analysts"

    @access.roles(Role.ANALYST, Role.LEAD)
    def form_page() -> str:
        return "the form"

    @access.roles(Role.ANALYST, Role.LEAD, step_up=True, back="test_form_page")
    def sensitive() -> str:
        return "done"

    @access.roles(Role.ANALYST, keep_form=True)
    def kept() -> str:
        return "sent"

    @access.roles(Role.ANALYST)
    def not_kept() -> str:
        return "sent"

    app.add_url_rule("/test/machines", "test_machines", machines)
    app.add_url_rule("/test/analysts", "test_analysts", analysts, methods=["GET", "POST"])
    app.add_url_rule(FORM_PAGE, "test_form_page", form_page)
    app.add_url_rule("/test/sensitive", "test_sensitive", sensitive, methods=["GET", "POST"])
    app.add_url_rule("/test/kept", "test_kept", kept, methods=["GET", "POST"])
    app.add_url_rule("/test/not-kept", "test_not_kept", not_kept, methods=["POST"])
    return app


@pytest.fixture
def ana(runtime: Runtime, clock: ManualClock) -> Person:
    return enrolled(runtime, "ana@centre.example", "analyst")


@pytest.fixture
def lead(runtime: Runtime, clock: ManualClock) -> Person:
    return enrolled(runtime, "lee@centre.example", "lead")


def test_a_token_rule_lets_the_request_through_to_the_api_check(declared: Flask) -> None:
    # No session: the API's own bearer-token check is all that applies.
    answer = declared.test_client().get("/test/machines")
    assert answer.get_data(as_text=True) == "for partner systems"


def test_a_role_rule_admits_only_its_roles(
    declared: Flask, runtime: Runtime, ana: Person, lead: Person
) -> None:
    analyst = signed_in_client(declared, runtime, ana)
    assert analyst.get("/test/analysts").get_data(as_text=True) == "for analysts"
    assert signed_in_client(declared, runtime, lead).get("/test/analysts").status_code == 403
    refused = declared.test_client().get("/test/analysts")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    for person in (ana, lead):  # a rule may admit several roles
        browser = signed_in_client(declared, runtime, person)
        assert browser.get(FORM_PAGE).get_data(as_text=True) == "the form"


def test_only_a_step_up_rule_asks_for_a_recent_code(
    declared: Flask, runtime: Runtime, clock: ManualClock, ana: Person, lead: Person
) -> None:
    analyst = signed_in_client(declared, runtime, ana)
    clock.advance(seconds=STEP_UP_WINDOW.total_seconds() + 1)
    # A plain rule never asks, however long ago the last code was given.
    assert analyst.get("/test/analysts").status_code == 200
    token = csrf(analyst.get("/login/step-up").get_data(as_text=True))
    assert analyst.post("/test/analysts", data={"csrf_token": token}).status_code == 200
    asked = analyst.get("/test/sensitive?country=MX")  # back to this very page
    assert asked.status_code == 302
    assert asked.headers["Location"] == "/login/step-up?next=/test/sensitive?country%3DMX"
    page = analyst.get(asked.headers["Location"]).get_data(as_text=True)
    assert flashed(page) == [(INFO, "This page needs a current code from your authenticator.")]
    # A POST is sent back to the page its form was on, the rule's ``back``.
    posted = signed_in_client(declared, runtime, lead)
    clock.advance(seconds=STEP_UP_WINDOW.total_seconds() + 1)
    token = csrf(posted.get("/login/step-up").get_data(as_text=True))
    answer = posted.post("/test/sensitive", data={"csrf_token": token})
    assert answer.headers["Location"] == f"/login/step-up?next={FORM_PAGE}"
    page = posted.get(answer.headers["Location"]).get_data(as_text=True)
    assert flashed(page) == [
        (
            INFO,
            "That needs a current code from your authenticator. Nothing was changed: "
            "give a code, then do it again.",
        )
    ]


def test_a_head_request_is_asked_for_a_code_like_a_get(
    declared: Flask, runtime: Runtime, clock: ManualClock, ana: Person
) -> None:
    browser = signed_in_client(declared, runtime, ana)
    clock.advance(seconds=STEP_UP_WINDOW.total_seconds() + 1)
    asked = browser.head("/test/sensitive")
    assert asked.headers["Location"] == "/login/step-up?next=/test/sensitive"
    page = browser.get(asked.headers["Location"]).get_data(as_text=True)
    # Nothing was being changed: the message for a page, not for a form.
    assert flashed(page) == [(INFO, "This page needs a current code from your authenticator.")]


def _timed_out_post(
    declared: Flask, runtime: Runtime, clock: ManualClock, person: Person, path: str
) -> tuple[str, str]:
    """A form posted to ``path`` after the session went idle: where it leads, and that page."""
    browser = signed_in_client(declared, runtime, person)
    token = csrf(browser.get("/login/step-up").get_data(as_text=True))
    clock.advance(seconds=SESSION_IDLE.total_seconds() + 60)
    answer = browser.post(path, data={"csrf_token": token, "note": "written at length"})
    assert answer.status_code == 302
    location = answer.headers["Location"]
    return location, browser.get(location).get_data(as_text=True)


def test_only_a_keep_form_rule_keeps_a_form_sent_after_a_timeout(
    declared: Flask, runtime: Runtime, clock: ManualClock, ana: Person
) -> None:
    location, page = _timed_out_post(declared, runtime, clock, ana, "/test/not-kept")
    assert location == "/login?next=/"  # a POST-only view: then to the start page
    assert flashed(page) == [
        (INFO, "Your session has ended: sign in again. Nothing was changed or sent.")
    ]
    with runtime.session_factory() as session:
        assert session.scalars(select(KeptForm)).all() == []

    # A page (a GET) has nothing to keep, even on a view that keeps its form.
    browser = signed_in_client(declared, runtime, ana)
    clock.advance(seconds=SESSION_IDLE.total_seconds() + 60)
    reopened = browser.get("/test/kept")
    assert reopened.headers["Location"] == "/login?next=/test/kept"
    assert flashed(browser.get(reopened.headers["Location"]).get_data(as_text=True)) == []
    with runtime.session_factory() as session:
        assert session.scalars(select(KeptForm)).all() == []

    location, page = _timed_out_post(declared, runtime, clock, ana, "/test/kept")
    assert location == "/login?next=/test/kept"
    minutes = int(KEPT_FORM_LIFETIME.total_seconds() // 60)
    assert flashed(page) == [
        (
            INFO,
            f"Your session ended while you were writing. Sign in again within {minutes} "
            "minutes: what you wrote is kept, encrypted, and will be back in the form.",
        )
    ]
    with runtime.session_factory() as session:
        kept = session.scalars(select(KeptForm)).one()
    assert kept.user_id == ana.id and kept.path == "/test/kept"
