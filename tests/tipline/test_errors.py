"""Error pages in the product's words: who may see a refused page, never Werkzeug's stock text,
never an exception's own text."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from werkzeug.exceptions import default_exceptions

from tests.conftest import RegisteredAgency
from tests.tipline.admin.people import csrf, enrolled, signed_in_client
from tests.tipline.partner.conftest import sign_in_directly
from tipline import access
from tipline.errors import PAGES
from tipline.runtime import Runtime

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SECRET = "narrative: the boy in Angeles, selector sunnyday88"


@pytest.fixture
def failing_app(app: Flask) -> Flask:
    """The app with a public page for each error status, and one that fails with a secret."""

    @access.public
    def fail(status: int) -> None:
        abort(status)

    @access.public
    def explode() -> None:
        raise RuntimeError(SECRET)

    app.add_url_rule("/test/fail/<int:status>", "test_fail", fail)
    app.add_url_rule("/test/explode", "test_explode", explode)
    return app


@pytest.mark.parametrize("status", sorted(PAGES))
def test_each_error_page_speaks_the_products_words(failing_app: Flask, status: int) -> None:
    answer = failing_app.test_client().get(f"/test/fail/{status}", headers=HTML)
    page = answer.get_data(as_text=True)
    assert answer.status_code == status and answer.mimetype == "text/html"
    assert f"<h1>{PAGES[status].title}</h1>" in page
    stock = default_exceptions[status]
    assert str(stock.description) not in page and f"<h1>{stock.name}</h1>" not in page
    assert 'href="/"' in page  # a way on


def test_an_unknown_address_and_a_wrong_method_are_explained(client: FlaskClient) -> None:
    page = client.get("/no-such-page", headers=HTML).get_data(as_text=True)
    assert "<h1>Page not found</h1>" in page and "requested URL" not in page
    answer = client.post("/", headers=HTML)
    assert answer.status_code == 405 and "<h1>Not possible here</h1>" in answer.get_data(
        as_text=True
    )


def test_a_refused_page_says_who_may_see_it(
    app: Flask, runtime: Runtime, agencies: dict[str, RegisteredAgency]
) -> None:
    analyst = signed_in_client(app, runtime, enrolled(runtime, "ana@centre.example", "analyst"))
    answer = analyst.get("/admin/users", headers=HTML)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 403
    assert "This page is for administrators." in page
    assert "You are signed in as ana@centre.example (analyst)" in page
    assert 'href="/">Go to the start page' in page
    assert "You don't have the permission" not in page  # Werkzeug's words

    partner = sign_in_directly(
        app, runtime, email="o@agency-a.example", role="partner", agency_id=agencies["agency-a"].id
    )
    page = partner.client.get("/audit", headers=HTML).get_data(as_text=True)
    assert "This page is for team leads and administrators." in page


def test_a_form_without_its_token_is_explained_in_words(client: FlaskClient) -> None:
    answer = client.post("/login", data={"email": "a@b.example"}, headers=HTML)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "This form has expired, or was not sent from this site" in page
    assert "CSRF" not in page


def test_a_views_own_words_are_kept(app: Flask, runtime: Runtime) -> None:
    admin = enrolled(runtime, "root@centre.example", "admin")
    client = signed_in_client(app, runtime, admin)
    token = csrf(client.get("/admin/users").get_data(as_text=True))
    answer = client.post("/admin/users/999999/disable", data={"csrf_token": token}, headers=HTML)
    assert answer.status_code == 404 and "There is no such account." in answer.get_data(
        as_text=True
    )


def test_an_unexpected_failure_shows_and_logs_nothing_of_the_exceptions_text(
    failing_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = failing_app.test_client()
    with caplog.at_level(logging.DEBUG):
        page = client.get("/test/explode", headers=HTML)
        api = client.get("/test/explode")
    assert page.status_code == api.status_code == 500
    assert "<h1>Something went wrong</h1>" in page.get_data(as_text=True)
    assert api.get_json()["error"]["code"] == "internal_server_error"
    for text in (page.get_data(as_text=True), api.get_data(as_text=True), caplog.text):
        assert "sunnyday88" not in text and "Angeles" not in text
    assert "unhandled RuntimeError in GET test_explode" in caplog.text  # the operator's clue
