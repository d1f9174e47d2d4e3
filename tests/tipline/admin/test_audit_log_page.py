"""The audit log viewer: filters, newest first, paging, verification on request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tipline.admin.people import Person, csrf, enrolled, sign_in
from tipline.runtime import Runtime

HTML = {"Accept": "text/html"}


@pytest.fixture
def lead(runtime: Runtime) -> Person:
    return enrolled(runtime, "lead@centre.example", "lead")


@pytest.fixture
def lead_client(client: FlaskClient, runtime: Runtime, lead: Person) -> FlaskClient:
    sign_in(client, runtime, lead)
    return client


def _record(runtime: Runtime, count: int, action: str = "test.event", **fields: str) -> None:
    with runtime.session_factory() as session:
        log = runtime.audit(session)
        for number in range(count):
            log.record(action, actor="system", details={"n": number}, **fields)
        session.commit()


def _ids(page: str) -> list[int]:
    body = page[page.index("<tbody>") :] if "<tbody>" in page else ""
    return [int(found) for found in re.findall(r"<tr>\s*<td>(\d+)</td>", body)]


def test_records_are_listed_newest_first_with_their_fields(
    lead_client: FlaskClient, runtime: Runtime
) -> None:
    _record(runtime, 3, subject="user:9", address="192.0.2.7")
    answer = lead_client.get("/audit")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    ids = _ids(page)
    assert ids == sorted(ids, reverse=True) and len(ids) == 5  # and the lead's two
    assert "test.event" in page and "user:9" in page and "192.0.2.7" in page
    assert "<dt>n</dt><dd>2</dd>" in page
    assert "chain is" not in page  # verified only on request


def test_filters_narrow_the_records(lead_client: FlaskClient, runtime: Runtime) -> None:
    _record(runtime, 2, action="login.failed", address="192.0.2.1")
    _record(runtime, 1, action="account.created", subject="user:5")
    page = lead_client.get("/audit?action=login.").get_data(as_text=True)
    assert len(_ids(page)) == 2 and "account.created" not in page
    page = lead_client.get("/audit?subject=user:5&actor=system").get_data(as_text=True)
    assert len(_ids(page)) == 1 and "account.created" in page
    today = datetime.now(UTC).date()
    page = lead_client.get(f"/audit?since={today}&until={today}").get_data(as_text=True)
    assert len(_ids(page)) == 5  # "until" includes the day named
    tomorrow = today + timedelta(days=1)
    page = lead_client.get(f"/audit?since={tomorrow}").get_data(as_text=True)
    assert _ids(page) == [] and "No record matches these filters." in page


def test_a_bad_date_is_a_form_error_not_a_failure(lead_client: FlaskClient) -> None:
    answer = lead_client.get("/audit?since=yesterday&until=2024-01-01")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'id="since-error"' in page and 'aria-invalid="true"' in page
    answer = lead_client.get("/audit?since=2024-02-01&until=2024-01-01")
    assert "This date is before the first one." in answer.get_data(as_text=True)


def test_older_records_are_paged_by_id(lead_client: FlaskClient, runtime: Runtime) -> None:
    _record(runtime, 60)
    first = lead_client.get("/audit?action=test.event").get_data(as_text=True)
    first_ids = _ids(first)
    assert len(first_ids) == 50
    older = re.search(r'<a href="([^"]+)">Older records</a>', first)
    assert older is not None
    link = older.group(1).replace("&amp;", "&")
    assert f"before={first_ids[-1]}" in link and "action=test.event" in link
    second = lead_client.get(link).get_data(as_text=True)
    second_ids = _ids(second)
    assert len(second_ids) == 10 and max(second_ids) < min(first_ids)
    assert "Older records</a>" not in second and "Newest records</a>" in second


def test_the_chain_is_verified_on_request(lead_client: FlaskClient, runtime: Runtime) -> None:
    _record(runtime, 3)
    page = lead_client.get("/audit?action=test.event").get_data(as_text=True)
    form = re.search(r'<form method="post" action="([^"]+)" class="verify-form">', page)
    assert form is not None
    answer = lead_client.post(form.group(1).replace("&amp;", "&"), data={"csrf_token": csrf(page)})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "The chain is intact" in page and "5 records checked" in page
    assert len(_ids(page)) == 3  # the filtered list, as it was


def test_no_link_can_make_a_browser_verify_the_chain(
    lead_client: FlaskClient, runtime: Runtime
) -> None:
    _record(runtime, 3)
    assert "chain is" not in lead_client.get("/audit?verify=1").get_data(as_text=True)
    assert lead_client.get("/audit/verify").status_code == 405
    # Nor a form on another site: the CSRF token is required.
    assert lead_client.post("/audit/verify").status_code == 400


def test_verifying_is_limited_to_once_a_minute_per_person(
    app: Flask, lead_client: FlaskClient, runtime: Runtime
) -> None:
    token = csrf(lead_client.get("/audit").get_data(as_text=True))
    assert lead_client.post("/audit/verify", data={"csrf_token": token}).status_code == 200
    again = lead_client.post("/audit/verify", data={"csrf_token": token}, headers=HTML)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    assert "You verified the chain less than a minute ago" in again.get_data(as_text=True)
    # Someone else may still verify it.
    other = app.test_client()
    sign_in(other, runtime, enrolled(runtime, "admin@centre.example", "admin"))
    token = csrf(other.get("/audit").get_data(as_text=True))
    assert other.post("/audit/verify", data={"csrf_token": token}).status_code == 200
