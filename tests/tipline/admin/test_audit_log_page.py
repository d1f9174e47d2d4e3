"""The audit log viewer: filters, newest first, paging, verification on request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from tests.conftest import RegisteredAgency
from tests.tipline.admin.people import Person, csrf, enrolled, signed_in_client
from tipline.runtime import Runtime

HTML = {"Accept": "text/html"}


@pytest.fixture
def lead(runtime: Runtime) -> Person:
    return enrolled(runtime, "lead@centre.example", "lead")


@pytest.fixture
def lead_client(app: Flask, runtime: Runtime, lead: Person) -> FlaskClient:
    return signed_in_client(app, runtime, lead)


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
    other = signed_in_client(app, runtime, enrolled(runtime, "admin@centre.example", "admin"))
    token = csrf(other.get("/audit").get_data(as_text=True))
    assert other.post("/audit/verify", data={"csrf_token": token}).status_code == 200


def test_people_teams_and_agencies_are_named_and_details_are_words(
    lead_client: FlaskClient, runtime: Runtime, lead: Person, agencies: dict[str, RegisteredAgency]
) -> None:
    ana = enrolled(runtime, "ana@centre.example", "analyst")
    with runtime.session_factory() as session:
        runtime.audit(session).record(
            "test.event",
            actor=f"user:{lead.id}",
            subject=f"user:{ana.id}",
            details={"remember": False, "forced": True, "reason": None, "step_up": 2},
        )
        runtime.audit(session).record(
            "test.other", actor="cli:root", subject=f"agency:{agencies['agency-a'].id}"
        )
        session.commit()
    page = lead_client.get("/audit?action=test.").get_data(as_text=True)
    assert (
        '<td>lead@centre.example (team lead)<br><span class="reference">'
        f"user:{lead.id}</span></td>" in page
    )
    assert "ana@centre.example (analyst)" in page and "Agency A" in page
    assert "<td>cli:root</td>" in page  # not a reference to anyone: as it is
    details = re.search(r'<dl class="details">(.*?)</dl>', page)
    assert details is not None
    assert details.group(1) == (
        "<dt>remember</dt><dd>no</dd><dt>forced</dt><dd>yes</dd>"
        "<dt>reason</dt><dd>—</dd><dt>step up</dt><dd>2</dd>"
    )
    assert "True" not in page and "False" not in page


def test_naming_people_takes_the_same_queries_for_many_as_for_few(
    lead_client: FlaskClient, runtime: Runtime
) -> None:
    def statements_for_page() -> int:
        count = 0

        def counting(*_args: object) -> None:
            nonlocal count
            count += 1

        event.listen(runtime.engine, "before_cursor_execute", counting)
        try:
            answer = lead_client.get("/audit?action=test.event")
        finally:
            event.remove(runtime.engine, "before_cursor_execute", counting)
        names = set(
            re.findall(r"p\d+-\d+@centre\.example \(analyst\)", answer.get_data(as_text=True))
        )
        assert len(names) == len(re.findall(r"<tr>\s*<td>\d+</td>", answer.get_data(as_text=True)))
        return count

    def people_act(number: int) -> None:
        people = [
            enrolled(runtime, f"p{number}-{n}@centre.example", "analyst") for n in range(number)
        ]
        with runtime.session_factory() as session:
            log = runtime.audit(session)
            for person in people:
                log.record("test.event", actor=f"user:{person.id}", subject=f"user:{person.id}")
            session.commit()

    people_act(2)
    few = statements_for_page()
    people_act(20)
    assert statements_for_page() == few


def test_the_date_filters_are_plain_iso_dates_in_utc(lead_client: FlaskClient) -> None:
    page = lead_client.get("/audit").get_data(as_text=True)
    for name in ("since", "until"):
        box = re.search(rf'<input [^>]*id="{name}"[^>]*>', page)
        assert box is not None
        assert 'type="text"' in box.group(0) and 'placeholder="YYYY-MM-DD"' in box.group(0)
    assert "From (UTC)" in page and "YYYY-MM-DD, to the end of that day." in page
    wrong = lead_client.get("/audit?since=05/02/2024").get_data(as_text=True)
    assert "Write the date as YYYY-MM-DD, for example 2024-05-02." in wrong
