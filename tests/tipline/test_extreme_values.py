"""Extreme dates and integers in query strings, cursors and URLs: 400 with a reason, never a
500 (the time's conversion to UTC overflowing, or SQLite's 64-bit integers)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient

from referrals.intake.receiving import Cursor
from tests.conftest import RegisteredAgency
from tests.tipline.admin.people import Person, csrf, enrolled, signed_in_client
from tests.tipline.partner.conftest import sign_in_directly
from tipline.runtime import Runtime

HTML = {"Accept": "text/html"}
THIRTY_DIGITS = "9" * 30
EXTREME_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
EXTREME_MOMENTS = [
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
]


def _cursor(moment: datetime, tip_id: str | None = None) -> str:
    return Cursor(updated_at=moment, tip_id=tip_id or str(uuid.uuid4())).encode()


@pytest.fixture
def admin_client(app: Flask, runtime: Runtime) -> FlaskClient:
    admin: Person = enrolled(runtime, "root@centre.example", "admin")
    return signed_in_client(app, runtime, admin)


def _error(answer_json: dict[str, dict[str, str]]) -> str:
    return answer_json["error"]["code"]


@pytest.mark.parametrize("since", EXTREME_TIMES)
def test_the_api_refuses_a_since_out_of_range(
    client: FlaskClient, agencies: dict[str, RegisteredAgency], since: str
) -> None:
    answer = client.get(
        "/api/v1/tips", query_string={"since": since}, headers=agencies["agency-a"].headers
    )
    assert answer.status_code == 400 and _error(answer.get_json()) == "bad_since"
    assert "between 0001-01-02 and 9999-12-30" in answer.get_json()["error"]["message"]


def test_the_api_takes_a_since_just_inside_the_range(
    client: FlaskClient, agencies: dict[str, RegisteredAgency]
) -> None:
    for since in ("0001-01-02T00:00:00Z", "9999-12-30T00:00:00Z"):
        answer = client.get(
            "/api/v1/tips", query_string={"since": since}, headers=agencies["agency-a"].headers
        )
        assert answer.status_code == 200 and answer.get_json()["tips"] == []


@pytest.mark.parametrize(
    "cursor",
    [_cursor(moment) for moment in EXTREME_MOMENTS]
    + [_cursor(datetime.now(UTC), tip_id="\x00" * 36)],
    ids=["year 1", "year 9999", "a NUL tip id"],
)
def test_the_api_refuses_a_cursor_it_could_not_have_given(
    client: FlaskClient, agencies: dict[str, RegisteredAgency], cursor: str
) -> None:
    answer = client.get(
        "/api/v1/tips", query_string={"cursor": cursor}, headers=agencies["agency-a"].headers
    )
    assert answer.status_code == 400 and _error(answer.get_json()) == "bad_cursor"


@pytest.mark.parametrize("moment", EXTREME_MOMENTS, ids=["year 1", "year 9999"])
def test_the_partner_page_refuses_a_page_link_out_of_range(
    app: Flask, runtime: Runtime, agencies: dict[str, RegisteredAgency], moment: datetime
) -> None:
    officer = sign_in_directly(
        app, runtime, email="o@agency-a.example", role="partner", agency_id=agencies["agency-a"].id
    )
    answer = officer.client.get(
        "/partner/tips", query_string={"after": _cursor(moment)}, headers=HTML
    )
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert "That page link is not valid" in answer.get_data(as_text=True)


@pytest.mark.parametrize("before", [THIRTY_DIGITS, str(2**63), str(2**31), "-1", "١٢"])
def test_the_audit_log_refuses_a_page_link_out_of_range(
    admin_client: FlaskClient, before: str
) -> None:
    answer = admin_client.get("/audit", query_string={"before": before}, headers=HTML)
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert "That page link is not valid" in answer.get_data(as_text=True)


def test_the_audit_log_takes_the_largest_page_link(admin_client: FlaskClient) -> None:
    # The largest an id column holds on PostgreSQL (32 bits; 2^63 - 1 was a 500 there).
    answer = admin_client.get("/audit", query_string={"before": str(2**31 - 1)})
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("field", "value"), [("since", "0001-01-01"), ("until", "9999-12-31"), ("since", "9999-12-31")]
)
def test_the_audit_logs_date_filters_say_which_dates_they_take(
    admin_client: FlaskClient, field: str, value: str
) -> None:
    answer = admin_client.get("/audit", query_string={field: value})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert f'id="{field}-error"' in page
    assert "Give a date between 0001-01-02 and 9999-12-30." in page


def test_a_thirty_digit_id_in_an_address_is_400(admin_client: FlaskClient) -> None:
    token = csrf(admin_client.get("/admin/users").get_data(as_text=True))
    for action in ("disable", "enable", "unlock", "reset-2fa"):
        for too_large in (THIRTY_DIGITS, str(2**63 - 1), str(2**31)):
            answer = admin_client.post(
                f"/admin/users/{too_large}/{action}", data={"csrf_token": token}, headers=HTML
            )
            assert answer.status_code == 400, (action, too_large)
            assert "too large" in answer.get_data(as_text=True)
    # The largest id a column holds is simply not there.
    answer = admin_client.post(
        f"/admin/users/{2**31 - 1}/disable", data={"csrf_token": token}, headers=HTML
    )
    assert answer.status_code == 404


def test_a_nul_character_anywhere_in_a_request_is_400(
    app: Flask, runtime: Runtime, agencies: dict[str, RegisteredAgency], admin_client: FlaskClient
) -> None:
    # PostgreSQL cannot take a NUL in a text value: refused before any query is made.
    officer = sign_in_directly(
        app, runtime, email="o@agency-a.example", role="partner", agency_id=agencies["agency-a"].id
    )
    assert officer.client.get("/partner/tips/%00", headers=HTML).status_code == 400
    answer = admin_client.get("/audit?actor=user:1%00", headers=HTML)
    assert answer.status_code == 400 and "NUL character" in answer.get_data(as_text=True)
    api = app.test_client().get("/api/v1/tips/%00", headers=agencies["agency-a"].headers)
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "bad_request"
    visitor = app.test_client()
    token = csrf(visitor.get("/login").get_data(as_text=True))
    data = {"csrf_token": token, "email": "root@centre.example\x00", "password": "x" * 14}
    assert visitor.post("/login", data=data, headers=HTML).status_code == 400
