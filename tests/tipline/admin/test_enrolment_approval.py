"""Four eyes in the web: with two administrators, an account made by one enrols only once the
other approves it on the pending-enrolments page."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.accounts.models import Approval, EnrolmentToken
from tests.conftest import RegisteredAgency
from tests.tipline.admin.people import Person, audit_records, csrf, enrolled, signed_in_client
from tipline.runtime import Runtime


@pytest.fixture
def admins(runtime: Runtime) -> tuple[Person, Person]:
    return (
        enrolled(runtime, "root@centre.example", "admin"),
        enrolled(runtime, "second@centre.example", "admin"),
    )


def _link(page: str) -> str:
    found = re.search(r'<textarea id="enrolment-link"[^>]*>([^<]*)</textarea>', page)
    assert found is not None, "no one-time link on the page"
    link = urlsplit(html.unescape(found.group(1).strip()))
    return f"{link.path}?{link.query}"


def _create_partner(browser: FlaskClient, agency_id: int) -> str:
    form = browser.get("/admin/users/new").get_data(as_text=True)
    answer = browser.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf(form),
            "email": "officer@agency-a.example",
            "role": "partner",
            "agency": str(agency_id),
            "team": "",
        },
    )
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def _waiting_id(runtime: Runtime) -> int:
    with runtime.session_factory() as session:
        return session.scalars(
            select(EnrolmentToken.id).where(EnrolmentToken.approval == Approval.PENDING.value)
        ).one()


def _decide(browser: FlaskClient, enrolment_id: int, decision: str) -> str:
    page = browser.get("/admin/enrolments").get_data(as_text=True)
    answer = browser.post(
        f"/admin/enrolments/{enrolment_id}/{decision}", data={"csrf_token": csrf(page)}
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/enrolments"
    return html.unescape(browser.get("/admin/enrolments").get_data(as_text=True))


def test_a_partner_account_made_by_one_admin_enrols_once_another_approves(
    app: Flask,
    runtime: Runtime,
    admins: tuple[Person, Person],
    agencies: dict[str, RegisteredAgency],
) -> None:
    first = signed_in_client(app, runtime, admins[0])
    second = signed_in_client(app, runtime, admins[1])
    created = _create_partner(first, agencies["agency-a"].id)
    assert 'id="approval-needed"' in created and "This link does not work" in created
    link = _link(created)

    holder = app.test_client()
    waiting = holder.get(link)
    assert waiting.status_code == 403
    assert "waiting for a second administrator" in html.unescape(waiting.get_data(as_text=True))

    # The admin who made it cannot approve it, on the page or by posting anyway.
    own_view = first.get("/admin/enrolments").get_data(as_text=True)
    assert "officer@agency-a.example" in own_view
    assert "Another administrator must decide." in own_view and "/approve" not in own_view
    created_record = audit_records(runtime, "account.created")[0]  # newest first
    enrolment_id = _waiting_id(runtime)
    assert "another administrator must decide" in _decide(first, enrolment_id, "approve").lower()
    assert audit_records(runtime, "account.enrolment_approved") == []

    approved = _decide(second, enrolment_id, "approve")
    assert "Approved: the enrolment link for officer@agency-a.example works now" in approved
    assert "No enrolment is waiting for approval." in approved
    (decision,) = audit_records(runtime, "account.enrolment_approved")
    assert decision.actor == f"user:{admins[1].id}" and decision.subject == created_record.subject

    opened = holder.get(link)
    assert opened.status_code == 302 and opened.headers["Location"] == "/enrol/form"
    assert "Set up your account" in holder.get("/enrol/form").get_data(as_text=True)


def test_a_refused_enrolment_link_never_works(
    app: Flask,
    runtime: Runtime,
    admins: tuple[Person, Person],
    agencies: dict[str, RegisteredAgency],
) -> None:
    first = signed_in_client(app, runtime, admins[0])
    second = signed_in_client(app, runtime, admins[1])
    link = _link(_create_partner(first, agencies["agency-a"].id))
    refused = _decide(second, _waiting_id(runtime), "refuse")
    assert "Refused: the enrolment link for officer@agency-a.example will never work." in refused
    assert len(audit_records(runtime, "account.enrolment_refused")) == 1
    assert app.test_client().get(link).status_code == 410


def test_a_second_factor_reset_by_one_admin_waits_for_the_other(
    app: Flask, runtime: Runtime, admins: tuple[Person, Person]
) -> None:
    ana = enrolled(runtime, "ana@centre.example", "analyst")
    first = signed_in_client(app, runtime, admins[0])
    page = first.get("/admin/users").get_data(as_text=True)
    reset = first.post(f"/admin/users/{ana.id}/reset-2fa", data={"csrf_token": csrf(page)})
    assert reset.status_code == 200
    assert 'id="approval-needed"' in reset.get_data(as_text=True)
    assert "no: waiting for approval" in first.get("/admin/users").get_data(as_text=True)
    listed = signed_in_client(app, runtime, admins[1]).get("/admin/enrolments")
    text = listed.get_data(as_text=True)
    assert "ana@centre.example" in text and "second factor reset" in text
    assert "root@centre.example" in text  # who asked for it
