"""The account and agency pages: admins manage people, every change audited."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from referrals.accounts.models import User
from tests.conftest import RegisteredAgency
from tests.tipline.admin.people import (
    ADDRESS,
    Person,
    add_team,
    audit_records,
    csrf,
    enrolled,
    signed_in_client,
)
from tipline.runtime import Runtime


@pytest.fixture
def admin(runtime: Runtime) -> Person:
    return enrolled(runtime, "root@centre.example", "admin")


@pytest.fixture
def admin_client(app: Flask, runtime: Runtime, admin: Person) -> FlaskClient:
    return signed_in_client(app, runtime, admin)


def _link(page: str) -> str:
    found = re.search(r'<textarea id="enrolment-link"[^>]*>([^<]*)</textarea>', page)
    assert found, "no enrolment link box on the page"
    return html.unescape(found.group(1))


def _opening_choices(page: str) -> dict[str, str]:
    """What each select of the form submits as the page opens: the selected option, or the
    first one (as a browser does)."""
    choices = {}
    for name, options in re.findall(r'<select[^>]* name="(\w+)"[^>]*>(.*?)</select>', page, re.S):
        selected = re.search(r'<option selected value="([^"]*)"', options)
        first = re.search(r'<option[^>]* value="([^"]*)"', options)
        assert first is not None
        choices[name] = (selected or first).group(1)
    return choices


def _cookie_payload(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return str(serializer.loads(cookie.value))


def test_the_accounts_list_shows_each_persons_state(
    admin_client: FlaskClient, runtime: Runtime, agencies: dict[str, RegisteredAgency]
) -> None:
    team = add_team(runtime)
    enrolled(runtime, "ana@centre.example", "analyst", team=team)
    enrolled(runtime, "officer@agency-a.example", "partner", agency_id=agencies["agency-a"].id)
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert "ana@centre.example" in page and "Manila" in page
    assert "officer@agency-a.example" in page and "Agency A" in page
    assert "Accounts" in page and 'href="/admin/agencies"' in page  # the admin's navigation


def test_creating_an_account_shows_its_link_once_and_never_in_a_cookie(
    app: Flask,
    admin_client: FlaskClient,
    runtime: Runtime,
    admin: Person,
    agencies: dict[str, RegisteredAgency],
) -> None:
    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    assert "Agency A" in form and "Agency B" in form
    answer = admin_client.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf(form),
            "email": "Officer@Agency-B.example",
            "role": "partner",
            "agency": str(agencies["agency-b"].id),
            "team": "",
        },
    )
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"
    link = _link(answer.get_data(as_text=True))
    assert link.startswith(f"{runtime.settings.base_url}/enrol?token=")
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert token not in _cookie_payload(app, admin_client)
    assert token not in admin_client.get("/admin/users").get_data(as_text=True)

    with runtime.session_factory() as session:
        user = session.query(User).filter_by(email="officer@agency-b.example").one()
        assert user.agency_id == agencies["agency-b"].id and user.role == "partner"
    created = audit_records(runtime, "account.created")[0]
    assert created.actor == f"user:{admin.id}" and created.address == ADDRESS
    assert created.subject == f"user:{user.id}"

    # The link is a working enrolment link.
    newcomer = app.test_client()
    assert newcomer.get(urlsplit(link).path + "?" + urlsplit(link).query).status_code == 302
    assert "Set up your account" in newcomer.get("/enrol/form").get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"role": "partner"}, "agency", "A partner account needs its agency."),
        ({"role": "admin", "team": "Manila"}, "team", "Only analysts and leads belong to a team."),
        ({"email": "not an address"}, "email", "Not a valid e-mail address."),
        ({"email": "root@centre.example"}, "email", "An account with that e-mail exists."),
        ({"role": "superuser"}, "role", "Not a valid choice."),
    ],
)
def test_a_refused_account_is_a_form_error_tied_to_its_field(
    admin_client: FlaskClient,
    runtime: Runtime,
    admin: Person,
    data: dict[str, str],
    field: str,
    message: str,
) -> None:
    add_team(runtime)
    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    answer = admin_client.post(
        "/admin/users/new",
        data={"csrf_token": csrf(form), "email": "new@centre.example", "role": "analyst"}
        | {"agency": "", "team": ""}
        | data,
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert f'<p class="error" id="{field}-error">{message}</p>' in page
    assert f'aria-describedby="{field}-hint {field}-error"' in page or (
        f'aria-describedby="{field}-error"' in page
    )
    assert "enrolment-link" not in page
    assert len(audit_records(runtime, "account.created")) == 1  # only the admin's own


def _act(client: FlaskClient, person: Person, action: str) -> str:
    page = client.get("/admin/users").get_data(as_text=True)
    answer = client.post(f"/admin/users/{person.id}/{action}", data={"csrf_token": csrf(page)})
    if action == "reset-2fa":
        assert answer.status_code == 200
    else:
        assert answer.status_code == 302 and answer.headers["Location"] == "/admin/users"
    return answer.get_data(as_text=True)


def test_disable_enable_and_unlock_are_audited_and_take_effect(
    app: Flask, admin_client: FlaskClient, runtime: Runtime, admin: Person
) -> None:
    ana = enrolled(runtime, "ana@centre.example", "analyst")
    theirs = signed_in_client(app, runtime, ana)
    assert theirs.get("/").status_code == 200

    _act(admin_client, ana, "disable")
    assert theirs.get("/").headers["Location"].startswith("/login")  # signed out at once
    assert "is disabled" in admin_client.get("/admin/users").get_data(as_text=True)
    _act(admin_client, ana, "enable")
    with runtime.session_factory() as session:
        user = session.get(User, ana.id)
        assert user is not None
        user.failed_logins, user.locked_until = 5, runtime.clock.now().replace(year=2999)
        session.commit()
    assert "Unlock" in admin_client.get("/admin/users").get_data(as_text=True)
    _act(admin_client, ana, "unlock")
    with runtime.session_factory() as session:
        user = session.get(User, ana.id)
        assert user is not None
        assert user.disabled_at is None and user.locked_until is None and user.failed_logins == 0

    for action in ("account.disabled", "account.enabled", "account.unlocked"):
        (record,) = audit_records(runtime, action)
        assert record.actor == f"user:{admin.id}" and record.subject == f"user:{ana.id}"
        assert record.address == ADDRESS


def test_resetting_the_second_factor_shows_a_new_link(
    admin_client: FlaskClient, runtime: Runtime, admin: Person
) -> None:
    ana = enrolled(runtime, "ana@centre.example", "analyst")
    page = _act(admin_client, ana, "reset-2fa")
    assert _link(page).startswith(f"{runtime.settings.base_url}/enrol?token=")
    with runtime.session_factory() as session:
        user = session.get(User, ana.id)
        assert user is not None and user.enrolled_at is None and user.totp_secret is None
    (record,) = audit_records(runtime, "account.second_factor_reset")
    assert record.actor == f"user:{admin.id}"


def test_an_admin_cannot_disable_or_reset_their_own_account(
    admin_client: FlaskClient, runtime: Runtime, admin: Person
) -> None:
    page = admin_client.get("/admin/users").get_data(as_text=True)
    for action in ("disable", "reset-2fa"):
        answer = admin_client.post(
            f"/admin/users/{admin.id}/{action}", data={"csrf_token": csrf(page)}
        )
        assert answer.status_code == 302
        assert "your own" in admin_client.get("/admin/users").get_data(as_text=True)
    assert admin_client.get("/admin/users").status_code == 200  # still signed in
    assert audit_records(runtime, "account.disabled") == []


def test_an_unknown_account_is_a_404(admin_client: FlaskClient) -> None:
    page = admin_client.get("/admin/users").get_data(as_text=True)
    answer = admin_client.post(
        "/admin/users/999999/unlock",
        data={"csrf_token": csrf(page)},
        headers={"Accept": "text/html"},
    )
    assert answer.status_code == 404
    assert "no such account" in answer.get_data(as_text=True)


def test_an_action_without_its_csrf_token_is_refused(
    admin_client: FlaskClient, runtime: Runtime
) -> None:
    ana = enrolled(runtime, "ana@centre.example", "analyst")
    assert admin_client.post(f"/admin/users/{ana.id}/disable").status_code == 400
    assert audit_records(runtime, "account.disabled") == []


def test_the_agencies_list_shows_keys_and_expiry(
    admin_client: FlaskClient, agencies: dict[str, RegisteredAgency]
) -> None:
    page = admin_client.get("/admin/agencies").get_data(as_text=True)
    assert "Agency A" in page and "GB" in page and "Agency B" in page and "US" in page
    assert 'class="fingerprint"' in page
    for agency in agencies.values():
        assert agency.token not in page


def test_the_new_account_form_opens_on_a_combination_it_accepts(
    admin_client: FlaskClient, runtime: Runtime, agencies: dict[str, RegisteredAgency]
) -> None:
    add_team(runtime)
    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    choices = _opening_choices(form)
    assert choices == {"role": "analyst", "agency": "", "team": "", "unit": ""}
    # Only the e-mail address typed: the account is made.
    answer = admin_client.post(
        "/admin/users/new",
        data={"csrf_token": csrf(form), "email": "new@centre.example"} | choices,
    )
    assert "enrolment-link" in answer.get_data(as_text=True)
    # The form says which fields go with which role, and where teams come from.
    assert "A partner has an agency; an analyst or team lead may have a team" in form
    assert "Partner accounts only, and required for them" in form
    assert "Teams are made on the Teams page." in form and 'href="/admin/teams"' in form
    assert "Units are registered on the Units page." in form and 'href="/admin/units"' in form


def test_the_one_time_link_is_in_a_box_of_its_own_whole(
    admin_client: FlaskClient, runtime: Runtime
) -> None:
    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    page = admin_client.post(
        "/admin/users/new",
        data={"csrf_token": csrf(form), "email": "new@centre.example", "role": "analyst"},
    ).get_data(as_text=True)
    link = _link(page)
    assert re.fullmatch(rf"{re.escape(runtime.settings.base_url)}/enrol\?token=[\w-]{{40,}}", link)
    assert '<textarea id="enrolment-link" class="link" rows="3" readonly' in page
    assert '<label for="enrolment-link">One-time enrolment link</label>' in page
