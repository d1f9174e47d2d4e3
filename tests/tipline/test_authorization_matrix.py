"""Who reaches what: every endpoint of the app, tried by every kind of person.

``TABLE`` says, for each endpoint and method, what each role gets: a status, or the path a
302 leads to. The app's URL map and the table must list the same endpoints, so a new page
fails here until someone decides who may reach it. Add a row when you add an endpoint;
mark it ``tip_content=True`` if it shows (or takes) tip content: admins must reach none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.accounts.models import EnrolmentToken, User
from referrals.accounts.services import ApprovalRule
from referrals.casework.models import Referral
from referrals.casework.services import opening
from referrals.intake.tasks import process_tip
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.tipline.admin.people import (
    Person,
    account_service,
    add_team,
    add_unit,
    csrf,
    enrolled,
    signed_in_client,
)
from tipline import access
from tipline.runtime import Runtime

ANONYMOUS = "anonymous"
PARTNER_A = "partner of agency A"
PARTNER_B = "partner of agency B"
ANALYST = "analyst"
LEAD = "lead"
OFFICER = "officer of a unit"  # no referral is handed to the unit
CASEWORKER = "caseworker"  # no child is assigned to them
ADMIN = "admin"
ROLES = (ANONYMOUS, PARTNER_A, PARTNER_B, ANALYST, LEAD, OFFICER, CASEWORKER, ADMIN)
SIGNED_IN = ROLES[1:]
PARTNERS = (PARTNER_A, PARTNER_B)

Expect = int | str  # a status code, or the path a 302 redirects to
LOGIN = "/login"  # where a role-gated page sends someone not signed in
TIP_ENDPOINTS = (
    "partner.",
    "api.tips.",
    "api.messages.",
    "desk.",
)  # prefixes of endpoints that show or take tips


@dataclass(frozen=True)
class World:
    """What the sample URLs point at."""

    tip_id: str  # a tip sent by agency A
    target_id: int  # an account for the admin actions
    enrolment_id: int  # an enrolment link waiting for a second administrator
    referral_id: int  # a referral of the analyst's and lead's team, handed to no unit


@dataclass(frozen=True)
class Case:
    expect: Mapping[str, Expect]
    values: Callable[[World], dict[str, Any]] = lambda world: {}
    data: Callable[[World], dict[str, str]] | None = None  # form fields besides the CSRF token
    csrf: bool = True  # a POST carries a valid CSRF token
    tip_content: bool = False


def everyone(expect: Expect) -> dict[str, Expect]:
    return dict.fromkeys(ROLES, expect)


def only(*allowed: str, ok: Expect = 200, **others: Expect) -> dict[str, Expect]:
    """Signed-out people go to sign in; the roles allowed get ``ok``; other roles 403."""
    expect: dict[str, Expect] = {
        role: LOGIN if role == ANONYMOUS else ok if role in allowed else 403 for role in ROLES
    }
    for name, value in others.items():
        expect[{"partner_b": PARTNER_B, "partner_a": PARTNER_A}[name]] = value
    return expect


def _tip(world: World) -> dict[str, Any]:
    return {"tip_id": world.tip_id}


def _target(world: World) -> dict[str, Any]:
    return {"user_id": world.target_id}


def _enrolment(world: World) -> dict[str, Any]:
    return {"enrolment_id": world.enrolment_id}


NO_TIP = "00000000-0000-0000-0000-000000000000"  # a decision is tried on no tip: nothing changes


def _no_tip(world: World) -> dict[str, Any]:
    return {"tip_id": NO_TIP}


def _referral(world: World) -> dict[str, Any]:
    return {"referral_id": world.referral_id}


TABLE: dict[tuple[str, str], Case] = {
    # Public: the sign-in and enrolment pages, health, the API description, static files.
    ("static", "GET"): Case(everyone(200), values=lambda w: {"filename": "tipline.css"}),
    ("home.favicon", "GET"): Case(everyone(301)),  # to the icon among the static files
    ("health.healthz", "GET"): Case(everyone(200)),
    ("openapi", "GET"): Case(everyone(200)),
    ("auth.login", "GET"): Case(everyone(200)),
    ("auth.login", "POST"): Case(everyone(200)),  # an empty form, shown again
    ("auth.code", "GET"): Case(everyone(LOGIN)),  # no password step passed
    ("auth.code", "POST"): Case(everyone(LOGIN)),
    ("auth.logout", "POST"): Case(everyone(LOGIN)),
    # Step-up: anyone signed in (an empty form is shown again).
    ("auth.step_up", "GET"): Case(only(*SIGNED_IN)),
    ("auth.step_up", "POST"): Case(only(*SIGNED_IN)),
    ("auth.enrol_link", "GET"): Case(everyone(410)),  # no enrolment link opened
    ("auth.enrol", "GET"): Case(everyone(410)),
    ("auth.enrol", "POST"): Case(everyone(410)),
    # Everyone signed in.
    ("home.index", "GET"): Case(only(*SIGNED_IN)),
    # The partner API: a bearer token only; a signed-in browser session is not one.
    ("api.tips.submit", "POST"): Case(everyone(401), csrf=False, tip_content=True),
    ("api.tips.listing", "GET"): Case(everyone(401), tip_content=True),
    ("api.tips.status", "GET"): Case(everyone(401), values=_tip, tip_content=True),
    ("api.tips.attach", "POST"): Case(everyone(401), values=_tip, csrf=False, tip_content=True),
    ("api.tips.reply", "POST"): Case(everyone(401), values=_tip, csrf=False, tip_content=True),
    ("api.tips.reply_status", "GET"): Case(
        everyone(401), values=lambda w: {"tip_id": w.tip_id, "message_id": 1}, tip_content=True
    ),
    ("api.messages.listing", "GET"): Case(everyone(401), tip_content=True),
    ("api.feedback.listing", "GET"): Case(everyone(401)),
    # Partner pages: partners only, and only their own agency's tips.
    ("partner.tips", "GET"): Case(only(*PARTNERS), tip_content=True),
    ("partner.tip", "GET"): Case(
        only(*PARTNERS, partner_b=404), values=_tip, tip_content=True
    ),  # another agency's tip is "not found"
    ("partner.message", "GET"): Case(
        only(*PARTNERS, ok=404),
        values=lambda w: {"tip_id": w.tip_id, "message_id": 1},
        tip_content=True,
    ),  # no message yet: "not found"
    ("partner.reply", "POST"): Case(
        only(*PARTNERS, ok=400, partner_b=404), values=_tip, tip_content=True
    ),  # an empty answer is refused; another agency's tip is "not found"
    ("partner.new_tip", "GET"): Case(only(*PARTNERS), tip_content=True),
    ("partner.feedback", "GET"): Case(only(*PARTNERS), tip_content=True),
    ("partner.new_tip", "POST"): Case(only(*PARTNERS, ok=400), tip_content=True),  # empty form
    # Administration: admins only.
    ("admin.users", "GET"): Case(only(ADMIN)),
    ("admin.create_user", "GET"): Case(only(ADMIN)),
    ("admin.create_user", "POST"): Case(
        only(ADMIN),
        data=lambda w: {"email": "new@centre.example", "role": "analyst", "agency": "", "team": ""},
    ),
    ("admin.disable_user", "POST"): Case(only(ADMIN, ok="/admin/users"), values=_target),
    ("admin.enable_user", "POST"): Case(only(ADMIN, ok="/admin/users"), values=_target),
    ("admin.unlock_user", "POST"): Case(only(ADMIN, ok="/admin/users"), values=_target),
    ("admin.reset_second_factor", "POST"): Case(only(ADMIN), values=_target),
    ("admin.agencies", "GET"): Case(only(ADMIN)),
    ("admin.enrolments", "GET"): Case(only(ADMIN)),
    ("admin.approve_enrolment", "POST"): Case(
        only(ADMIN, ok="/admin/enrolments"), values=_enrolment
    ),
    ("admin.refuse_enrolment", "POST"): Case(
        only(ADMIN, ok="/admin/enrolments"), values=_enrolment
    ),
    ("admin.teams", "GET"): Case(only(ADMIN)),
    ("admin.add_team", "POST"): Case(
        only(ADMIN, ok="/admin/teams"), data=lambda w: {"name": "Cebu", "country": "PH"}
    ),
    ("admin.units", "GET"): Case(only(ADMIN)),
    ("admin.add_unit", "POST"): Case(
        only(ADMIN, ok="/admin/units"), data=lambda w: {"name": "Cebu unit", "country": "PH"}
    ),
    ("admin.held_tips", "GET"): Case(only(ADMIN)),
    # The tip is not held: the answer says so, and goes back to the list.
    ("admin.retry_held_tip", "POST"): Case(only(ADMIN, ok="/admin/held-tips"), values=_tip),
    ("admin.retry_all_held_tips", "POST"): Case(only(ADMIN, ok="/admin/held-tips")),
    ("admin.failed_jobs", "GET"): Case(only(ADMIN)),
    # No such failed job: the page says so.
    ("admin.requeue_job", "POST"): Case(
        only(ADMIN, ok="/admin/failed-jobs"), values=lambda w: {"job_id": "no-such-job"}
    ),
    ("admin.selectors", "GET"): Case(only(ADMIN)),
    ("admin.exclude_selector", "POST"): Case(only(ADMIN, ok=400)),  # no value typed
    # No value has this reference: the page says so.
    ("admin.exclude_held_selector", "POST"): Case(
        only(ADMIN, ok="/admin/selectors"), values=lambda w: {"reference": "0" * 16}
    ),
    ("admin.allow_selector", "POST"): Case(
        only(ADMIN, ok="/admin/selectors"), values=lambda w: {"reference": "0" * 16}
    ),
    ("admin.clear_selector", "POST"): Case(
        only(ADMIN, ok="/admin/selectors"), values=lambda w: {"reference": "0" * 16}
    ),
    ("admin.triage_rules", "GET"): Case(only(ADMIN)),
    ("admin.change_triage_rules", "POST"): Case(only(ADMIN, ok=400)),  # no rules given
    # The analysts' desk: the team's analysts and leads; never admins or partners.
    ("desk.queue", "GET"): Case(only(ANALYST, LEAD), tip_content=True),
    ("desk.tip", "GET"): Case(only(ANALYST, LEAD), values=_tip, tip_content=True),
    ("desk.claim", "POST"): Case(only(ANALYST, LEAD, ok=404), values=_no_tip, tip_content=True),
    ("desk.release", "POST"): Case(only(ANALYST, LEAD, ok=404), values=_no_tip, tip_content=True),
    ("desk.attachment", "GET"): Case(
        only(ANALYST, LEAD, ok=404),
        values=lambda w: {"tip_id": NO_TIP, "attachment_id": NO_TIP},
        tip_content=True,
    ),
    ("desk.download_attachment", "POST"): Case(
        only(ANALYST, LEAD, ok=404),
        values=lambda w: {"tip_id": NO_TIP, "attachment_id": NO_TIP},
        tip_content=True,
    ),
    ("desk.ask", "POST"): Case(only(ANALYST, LEAD, ok=404), values=_no_tip, tip_content=True),
    ("desk.accept", "POST"): Case(only(ANALYST, LEAD, ok=404), values=_no_tip, tip_content=True),
    # Without a reason or a reference the form is refused first: back to the (missing) tip.
    ("desk.merge", "POST"): Case(
        only(ANALYST, LEAD, ok=f"/desk/tips/{NO_TIP}"), values=_no_tip, tip_content=True
    ),
    ("desk.decline", "POST"): Case(
        only(ANALYST, LEAD, ok=f"/desk/tips/{NO_TIP}"), values=_no_tip, tip_content=True
    ),
    # Referrals: the team's analysts and leads; officers see only those handed to their unit
    # (this one is not: "not found"); never admins or partners.
    ("casework.referrals", "GET"): Case(only(ANALYST, LEAD, OFFICER)),
    ("casework.referral", "GET"): Case(
        only(ANALYST, LEAD, OFFICER, ok=200) | {OFFICER: 404}, values=_referral
    ),
    # The analyst starts the investigation (the lead's same move is then refused): both go
    # back to the referral's page, with what was done or why not.
    ("casework.move", "POST"): Case(
        only(ANALYST, LEAD, ok="/referrals/{referral_id}") | {OFFICER: 404},
        values=lambda w: {"referral_id": w.referral_id, "name": "investigate"},
    ),
    # Feedback to partners: the referral's team lead only (an empty form is shown again; an
    # empty release goes back to the referral's page, refused).
    ("feedback.new", "GET"): Case(only(LEAD), values=_referral),
    ("feedback.preview", "POST"): Case(only(LEAD), values=_referral),
    ("feedback.release", "POST"): Case(only(LEAD, ok="/referrals/{referral_id}"), values=_referral),
    # Consents to pass on what an agency marked: the referral's team lead only (an empty
    # request or answer goes back to the referral's page, refused).
    ("handling.ask", "POST"): Case(only(LEAD, ok="/referrals/{referral_id}"), values=_referral),
    ("handling.answer", "POST"): Case(
        only(LEAD, ok="/referrals/{referral_id}"),
        values=lambda w: {"referral_id": w.referral_id, "consent_id": 1},
    ),
    # Onward packages: the referral's team lead exports (an empty export is shown again,
    # refused); the team downloads what was sealed (no package 999999: "not found").
    ("onward.new", "GET"): Case(only(LEAD), values=_referral),
    ("onward.export", "POST"): Case(only(LEAD, ok=400), values=_referral),
    ("onward.sealed", "GET"): Case(
        only(ANALYST, LEAD, ok=404),
        values=lambda w: {"referral_id": w.referral_id, "package_id": 999_999},
    ),
    # Operations: the team's analysts and leads, the units' officers; leads plan (an empty
    # plan is shown again, refused); no operation 999999: "not found".
    ("operations.board", "GET"): Case(only(ANALYST, LEAD, OFFICER)),
    ("operations.new_operation", "GET"): Case(only(LEAD)),
    ("operations.plan", "POST"): Case(only(LEAD)),
    ("operations.operation", "GET"): Case(
        only(ANALYST, LEAD, OFFICER, ok=404), values=lambda w: {"operation_id": 999_999}
    ),
    ("operations.step", "POST"): Case(
        only(ANALYST, LEAD, OFFICER, ok=404),
        values=lambda w: {"operation_id": 999_999, "name": "approve"},
    ),
    # The dashboard: team leads.
    ("dashboard.dashboard", "GET"): Case(only(LEAD)),
    ("dashboard.chart_csv", "GET"): Case(only(LEAD), values=lambda w: {"chart": "stages"}),
    # Aftercare: leads (counts, recording children: this referral has no outcome, refused)
    # and caseworkers (their own children: no child 999999).
    ("aftercare.index", "GET"): Case(only(LEAD, CASEWORKER)),
    ("aftercare.record_child", "POST"): Case(only(LEAD, ok="/aftercare"), values=_referral),
    ("aftercare.child", "GET"): Case(
        only(CASEWORKER, ok=404), values=lambda w: {"child_id": 999_999}
    ),
    ("aftercare.change", "POST"): Case(
        only(CASEWORKER, ok=404), values=lambda w: {"child_id": 999_999, "change": "placement"}
    ),
    # The audit log: admins and team leads.
    ("audit_log.index", "GET"): Case(only(ADMIN, LEAD)),
    ("audit_log.verify", "POST"): Case(only(ADMIN, LEAD)),
}


def _routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


@pytest.fixture
def people(runtime: Runtime, agencies: dict[str, RegisteredAgency]) -> dict[str, Person]:
    team = add_team(runtime)
    return {
        PARTNER_A: enrolled(
            runtime, "officer@agency-a.example", "partner", agency_id=agencies["agency-a"].id
        ),
        PARTNER_B: enrolled(
            runtime, "officer@agency-b.example", "partner", agency_id=agencies["agency-b"].id
        ),
        ANALYST: enrolled(runtime, "analyst@centre.example", "analyst", team=team),
        LEAD: enrolled(runtime, "lead@centre.example", "lead", team=team),
        OFFICER: enrolled(
            runtime, "officer@unit.example", "officer", unit=_unit(runtime, "Luzon unit")
        ),
        CASEWORKER: enrolled(runtime, "caseworker@care.example", "caseworker"),
        ADMIN: enrolled(runtime, "admin@centre.example", "admin"),
    }


@pytest.fixture
def world(
    people: dict[str, Person],  # first: the referral is the lead's
    client: FlaskClient,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> World:
    sealed = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    sent = client.post(
        "/api/v1/tips",
        data=sealed,
        content_type="application/pgp-encrypted",
        headers=agencies["agency-a"].headers,
    )
    assert sent.status_code == 202
    # Processed, so it is in the team's triage queue (PH: the people's team covers it).
    process_tip(runtime.job_context(), sent.get_json()["id"])
    target = enrolled(runtime, "target@centre.example", "analyst")
    with runtime.session_factory() as session:
        waiting = account_service(runtime, session, approval=ApprovalRule.ON).create(
            email="waiting@centre.example", role="analyst", actor="cli:test"
        )
        enrolment_id = session.scalars(
            select(EnrolmentToken.id).where(EnrolmentToken.user_id == waiting.user.id)
        ).one()
        lead = session.scalars(select(User).where(User.email == "lead@centre.example")).one()
        now = runtime.clock.now()
        referral = Referral(
            reference="RF-2026-000001",
            team_id=lead.team_id,
            stage_entered_at=now,
            created_at=now,
            created_by_id=lead.id,
            updated_at=now,
        )
        session.add(referral)
        session.flush()
        session.add(opening(referral, lead, now))
        session.commit()
        referral_id = referral.id
    return World(
        tip_id=sent.get_json()["id"],
        target_id=target.id,
        enrolment_id=enrolment_id,
        referral_id=referral_id,
    )


def _unit(runtime: Runtime, name: str) -> str:
    add_unit(runtime, name)
    return name


def _outcome(
    app: Flask,
    runtime: Runtime,
    person: Person | None,
    endpoint: str,
    method: str,
    case: Case,
    world: World,
) -> Expect:
    # A fresh browser, with a fresh session (logout ends one).
    client = app.test_client() if person is None else signed_in_client(app, runtime, person)
    with app.test_request_context():
        url = url_for(endpoint, **case.values(world))
    if method == "GET":
        answer = client.get(url)
    else:
        data = case.data(world) if case.data else {}
        if case.csrf:
            data["csrf_token"] = csrf(client.get("/login").get_data(as_text=True))
        answer = client.open(url, method=method, data=data)
    answer.close()  # a static file is streamed: let go of it
    if answer.status_code == 302:
        return urlsplit(answer.headers["Location"]).path
    return answer.status_code


def _expected(expect: Expect, world: World) -> Expect:
    return expect.format(referral_id=world.referral_id) if isinstance(expect, str) else expect


def test_the_table_lists_every_endpoint_of_the_app(app: Flask) -> None:
    routes = _routes(app)
    missing = sorted(routes - TABLE.keys())
    stale = sorted(TABLE.keys() - routes)
    assert missing == [], f"add rows to TABLE (who may reach them?) for {missing}"
    assert stale == [], f"remove rows of endpoints that no longer exist: {stale}"
    for key, case in TABLE.items():
        assert set(case.expect) == set(ROLES), f"{key} must say what every role gets"


def test_every_role_gets_what_the_table_says(
    app: Flask, runtime: Runtime, people: dict[str, Person], world: World
) -> None:
    wrong = []
    for (endpoint, method), case in sorted(TABLE.items()):
        for role in ROLES:
            got = _outcome(app, runtime, people.get(role), endpoint, method, case, world)
            expected = _expected(case.expect[role], world)
            if got != expected:
                wrong.append(f"{method} {endpoint} as {role}: got {got!r}, expected {expected!r}")
    assert wrong == []


def test_admins_reach_no_tip_content() -> None:
    for (endpoint, method), case in TABLE.items():
        if endpoint.startswith(TIP_ENDPOINTS):
            assert case.tip_content, f"{method} {endpoint} shows or takes tips: mark it"
        if case.tip_content:
            assert case.expect[ADMIN] in (LOGIN, 401, 403, 404), f"admin reaches {endpoint}"


def test_a_browser_session_never_authenticates_the_api(app: Flask) -> None:
    with app.test_request_context():
        token_endpoints = {
            endpoint for endpoint, _ in TABLE if access.rule_for(endpoint) == access.AGENCY_TOKEN
        }
    assert token_endpoints  # the API is there
    for (endpoint, method), case in TABLE.items():
        if endpoint in token_endpoints:
            assert all(case.expect[role] == 401 for role in SIGNED_IN), f"{method} {endpoint}"
