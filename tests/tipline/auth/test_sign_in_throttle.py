"""Sign-in is throttled per client address; pages get an HTML error, the API keeps JSON."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.tipline.admin.people import csrf

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_too_many_sign_in_attempts_from_one_address_get_a_429_page(
    app: Flask, client: FlaskClient
) -> None:
    app.config["TIPLINE_SIGN_IN_RATE_LIMIT"] = "3 per minute"
    token = csrf(client.get("/login").get_data(as_text=True))
    data = {"csrf_token": token, "email": "zed@centre.example", "password": "x" * 14}
    for _ in range(3):
        assert client.post("/login", data=data, headers=HTML).status_code == 200
    # Showing the page is not counted; posting again is refused.
    assert client.get("/login").status_code == 200
    refused = client.post("/login", data=data, headers=HTML)
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    assert "Too many attempts from your address" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    # Another address is not held back.
    other = app.test_client()
    token = csrf(other.get("/login").get_data(as_text=True))
    answer = other.post(
        "/login",
        data=data | {"csrf_token": token},
        environ_base={"REMOTE_ADDR": "192.0.2.9"},
    )
    assert answer.status_code == 200


def test_the_code_step_is_throttled_too(app: Flask, client: FlaskClient) -> None:
    app.config["TIPLINE_SIGN_IN_RATE_LIMIT"] = "2 per minute"
    token = csrf(client.get("/login").get_data(as_text=True))
    for _ in range(2):
        assert client.post("/login/code", data={"csrf_token": token}).status_code == 302
    assert client.post("/login/code", data={"csrf_token": token}).status_code == 429


def test_pages_get_html_errors_and_the_api_keeps_json(client: FlaskClient) -> None:
    page = client.get("/no-such-page", headers=HTML)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "<h1>Page not found</h1>" in page.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing", headers=HTML)
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"
    health = client.post("/healthz", headers=HTML)
    assert health.status_code == 405 and health.get_json()["error"]["code"] == "method_not_allowed"
    # A client that does not ask for HTML gets the JSON body, as before.
    assert client.get("/no-such-page").get_json()["error"]["code"] == "not_found"
