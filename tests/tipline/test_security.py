"""HTTPS mode (TIPLINE_BASE_URL=https://…): HSTS, a __Host- cookie, and form posts that pass
the CSRF check's referrer comparison. (In a real browser over TLS: tests/functional.)"""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tipline.admin.people import csrf
from tipline import create_app
from tipline.runtime import Runtime

ORIGIN = "https://tipline.centre.example"


@pytest.fixture
def https_app(runtime: Runtime) -> Flask:
    settings = dataclasses.replace(runtime.settings, base_url=ORIGIN)
    app = create_app(runtime=dataclasses.replace(runtime, settings=settings))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def browser(https_app: Flask) -> FlaskClient:
    return https_app.test_client()


def _sign_in_attempt(browser: FlaskClient, headers: dict[str, str]) -> int:
    token = csrf(browser.get("/login", base_url=ORIGIN).get_data(as_text=True))
    data = {"csrf_token": token, "email": "nobody@centre.example", "password": "x" * 14}
    return browser.post("/login", data=data, base_url=ORIGIN, headers=headers).status_code


def test_over_https_answers_carry_hsts_and_the_cookie_is_host_only_and_secure(
    browser: FlaskClient,
) -> None:
    answer = browser.get("/login", base_url=ORIGIN)
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    (cookie,) = answer.headers.getlist("Set-Cookie")
    name, attributes = cookie.split("=", 1)[0], [a.strip() for a in cookie.split(";")[1:]]
    assert name == "__Host-tipline"
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes)
    assert not any(attribute.startswith("Domain=") for attribute in attributes)


def test_over_plain_http_there_is_no_hsts(client: FlaskClient) -> None:
    answer = client.get("/login")
    assert "Strict-Transport-Security" not in answer.headers
    assert answer.headers["Set-Cookie"].startswith("tipline=")


def test_browsers_send_the_referer_to_our_own_pages_only(browser: FlaskClient) -> None:
    assert browser.get("/login", base_url=ORIGIN).headers["Referrer-Policy"] == "same-origin"


def test_a_form_posted_from_our_own_page_over_https_is_accepted(browser: FlaskClient) -> None:
    assert _sign_in_attempt(browser, {"Referer": f"{ORIGIN}/login"}) == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Referer": "https://elsewhere.example/login"}, {"Referer": f"http://{ORIGIN[8:]}/"}],
    ids=["no referer", "another site", "plain http"],
)
def test_over_https_a_form_from_anywhere_else_is_refused(
    browser: FlaskClient, headers: dict[str, str]
) -> None:
    # Flask-WTF's strict referrer check stays on: it is what stops a forged post on HTTPS.
    assert _sign_in_attempt(browser, headers) == 400


def test_behind_a_trusted_tls_proxy_forms_from_our_pages_pass_the_referrer_check(
    runtime: Runtime,
) -> None:
    # The proxy speaks HTTPS to the browser and plain HTTP to us, saying so in its headers.
    settings = dataclasses.replace(runtime.settings, base_url=ORIGIN, trusted_proxies=1)
    app = create_app(runtime=dataclasses.replace(runtime, settings=settings))
    browser = app.test_client()
    proxied = {
        "REMOTE_ADDR": "10.0.0.5",
        "HTTP_X_FORWARDED_FOR": "198.51.100.7",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_HOST": "tipline.centre.example",
    }
    page = browser.get("/login", base_url="http://127.0.0.1:8000", environ_base=proxied)
    assert page.headers["Strict-Transport-Security"]
    data = {
        "csrf_token": csrf(page.get_data(as_text=True)),
        "email": "nobody@centre.example",
        "password": "x" * 14,
    }

    def post(referer: str | None) -> int:
        headers = {"Referer": referer} if referer else {}
        return browser.post(
            "/login",
            data=data,
            base_url="http://127.0.0.1:8000",
            environ_base=proxied,
            headers=headers,
        ).status_code

    assert post(f"{ORIGIN}/login") == 200
    assert post(None) == 400  # the check is on: the app knows the browser spoke HTTPS
    assert post("https://127.0.0.1:8000/login") == 400  # the proxy's view of the host is not it
