"""The triage rules in the web: an administrator changes them, a version is added, open tips are
re-scored; a rule that cannot work is refused in the page's words."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.jobs import DEFAULT_QUEUE
from referrals.triage.models import TriageRuleSet
from referrals.triage.rules import TriageRules
from tests.tipline.admin.people import Person, audit_records, csrf, enrolled, signed_in_client
from tipline.runtime import Runtime


@pytest.fixture
def admin(runtime: Runtime) -> Person:
    return enrolled(runtime, "root@centre.example", "admin")


@pytest.fixture
def admin_client(app: Flask, runtime: Runtime, admin: Person) -> FlaskClient:
    return signed_in_client(app, runtime, admin)


def form_values(page: str) -> dict[str, str]:
    values = dict(re.findall(r'<input[^>]*name="([a-z0-9_]+)"[^>]*value="([^"]*)"', page))
    values["csrf_token"] = csrf(page)
    return values


def test_an_admin_changes_a_weight_and_open_tips_are_rescored_under_the_new_version(
    admin_client: FlaskClient, runtime: Runtime, admin: Person
) -> None:
    page = admin_client.get("/admin/triage-rules").get_data(as_text=True)
    assert "version 1 is in force" in page
    assert "Imminent danger reported" in page
    values = form_values(page)
    assert values["imminent_danger"] == str(TriageRules().imminent_danger)
    assert values["based_on"] == "1"
    values["ongoing_abuse"] = "70"
    answer = admin_client.post("/admin/triage-rules", data=values)
    assert answer.status_code == 302
    shown = admin_client.get("/admin/triage-rules").get_data(as_text=True)
    assert "Version 2 is in force; open tips are being scored again under it." in shown
    assert form_values(shown)["ongoing_abuse"] == "70"
    with runtime.session_factory() as session:
        versions = session.scalars(select(TriageRuleSet).order_by(TriageRuleSet.version)).all()
        assert [(v.version, v.created_by) for v in versions] == [
            (1, "system"),
            (2, f"user:{admin.id}"),
        ]
    jobs = runtime.queue.queue(DEFAULT_QUEUE).get_jobs()
    assert [(job.func_name, job.args) for job in jobs] == [
        ("referrals.triage.tasks.rescore_open_tips", [2])  # JSON-serialised: a list
    ]
    assert [r.subject for r in audit_records(runtime, "triage_rules.changed")] == ["triage_rules:2"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"p2_threshold": "80"},
            "p2_threshold",
            "“P2 from” must be lower than “P1 from”.",
        ),
        ({"imminent_danger": "many"}, "imminent_danger", "Give a whole number."),
        ({"correlation_cap": "1"}, "correlation_cap", "must be between 2 and 100000."),
    ],
)
def test_a_rule_that_cannot_work_is_refused_beside_its_box(
    admin_client: FlaskClient, runtime: Runtime, changes: dict[str, str], field: str, message: str
) -> None:
    values = form_values(admin_client.get("/admin/triage-rules").get_data(as_text=True))
    values.update(changes)
    answer = admin_client.post("/admin/triage-rules", data=values)
    assert answer.status_code == 400
    found = re.search(
        rf'<p class="error" id="{field}-error">([^<]*)</p>', answer.get_data(as_text=True)
    )
    assert found and message in found.group(1)
    with runtime.session_factory() as session:
        assert session.scalars(select(TriageRuleSet.version)).all() == [1]


def test_a_change_made_on_an_old_version_is_not_applied(
    admin_client: FlaskClient, runtime: Runtime
) -> None:
    stale = form_values(admin_client.get("/admin/triage-rules").get_data(as_text=True))
    fresh = dict(stale, ongoing_abuse="40")
    assert admin_client.post("/admin/triage-rules", data=fresh).status_code == 302
    stale["live_streaming"] = "0"
    assert admin_client.post("/admin/triage-rules", data=stale).status_code == 302
    page = admin_client.get("/admin/triage-rules").get_data(as_text=True)
    assert "Nothing was changed: version 2 was added since you opened version 1" in page
    values = form_values(page)
    assert (values["ongoing_abuse"], values["live_streaming"]) == ("40", "30")


@pytest.mark.parametrize("based_on", ["abc", "9" * 5000, ""])
def test_a_page_with_a_mangled_version_changes_nothing_and_says_so(
    admin_client: FlaskClient, runtime: Runtime, based_on: str
) -> None:
    values = form_values(admin_client.get("/admin/triage-rules").get_data(as_text=True))
    values["based_on"] = based_on
    answer = admin_client.post("/admin/triage-rules", data=values)
    assert answer.status_code in (302, 400)
    with runtime.session_factory() as session:
        assert session.scalars(select(TriageRuleSet.version)).all() == [1]
