"""Client addresses behind proxies and sockets: what the audit log records, what rate limits
count. (gunicorn on a real Unix socket: tests/functional/test_deployment.py.)"""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tipline.admin.people import audit_records, csrf
from tipline import create_app
from tipline.addresses import known_address, rate_limit_bucket
from tipline.runtime import Runtime

PROXY = "10.0.0.5"  # the TLS proxy's address, as the app sees the connection


def app_behind(runtime: Runtime, trusted_proxies: int) -> Flask:
    settings = dataclasses.replace(runtime.settings, trusted_proxies=trusted_proxies)
    app = create_app(runtime=dataclasses.replace(runtime, settings=settings))
    app.config["TESTING"] = True
    return app


def failed_sign_in(client: FlaskClient, **environ: str) -> int:
    """One wrong password from this client; the answer's status."""
    token = csrf(client.get("/login", environ_base=environ).get_data(as_text=True))
    data = {"csrf_token": token, "email": "nobody@centre.example", "password": "x" * 14}
    return client.post("/login", data=data, environ_base=environ).status_code


def forwarded(address: str) -> dict[str, str]:
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": address}


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client seen through a dual-stack socket
        (None, "unknown"),
    ],
)
def test_rate_limits_count_an_ipv6_client_by_its_64(address: str | None, bucket: str) -> None:
    assert rate_limit_bucket(address) == bucket


@pytest.mark.parametrize("remote", ["", None, "unix:/run/tipline.sock", "not an address"])
def test_an_address_that_is_not_an_ip_is_unknown(remote: str | None) -> None:
    assert known_address(remote) is None


def test_a_client_without_an_address_can_sign_in_and_is_recorded_as_unknown(
    client: FlaskClient, runtime: Runtime
) -> None:
    # What gunicorn bound to a Unix socket passes on.
    assert failed_sign_in(client, REMOTE_ADDR="") == 200
    (record,) = audit_records(runtime, "login.failed")
    assert record.address is None


def test_behind_a_trusted_proxy_each_client_has_its_own_address_and_limit(
    runtime: Runtime,
) -> None:
    app = app_behind(runtime, trusted_proxies=1)
    app.config["TIPLINE_SIGN_IN_RATE_LIMIT"] = "2 per minute"
    first, second = app.test_client(), app.test_client()
    assert [failed_sign_in(first, **forwarded("198.51.100.1")) for _ in range(2)] == [200, 200]
    assert failed_sign_in(first, **forwarded("198.51.100.1")) == 429
    # Someone else behind the same proxy is not locked out by the first one.
    assert failed_sign_in(second, **forwarded("198.51.100.2")) == 200
    addresses = [record.address for record in audit_records(runtime, "login.failed")]
    assert sorted(addresses) == ["198.51.100.1", "198.51.100.1", "198.51.100.2"]


def test_behind_a_trusted_proxy_one_ipv6_64_is_one_client(runtime: Runtime) -> None:
    app = app_behind(runtime, trusted_proxies=1)
    app.config["TIPLINE_SIGN_IN_RATE_LIMIT"] = "2 per minute"
    client = app.test_client()
    assert failed_sign_in(client, **forwarded("2001:db8:7:7::1")) == 200
    assert failed_sign_in(client, **forwarded("2001:db8:7:7::2")) == 200
    # A new address in the same /64 is the same client; another /64 is not.
    assert failed_sign_in(client, **forwarded("2001:db8:7:7:1:2:3:4")) == 429
    assert failed_sign_in(client, **forwarded("2001:db8:7:8::1")) == 200
    addresses = {record.address for record in audit_records(runtime, "login.failed")}
    assert addresses == {"2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:8::1"}


def test_only_the_trusted_number_of_hops_is_believed(runtime: Runtime) -> None:
    app = app_behind(runtime, trusted_proxies=1)
    # A client claims an address by sending the header itself; the proxy appends the real one.
    environ = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "192.0.2.66, 198.51.100.9"}
    assert failed_sign_in(app.test_client(), **environ) == 200
    (record,) = audit_records(runtime, "login.failed")
    assert record.address == "198.51.100.9"


def test_without_trusted_proxies_a_client_cannot_choose_its_address(
    app: Flask, runtime: Runtime
) -> None:
    app.config["TIPLINE_SIGN_IN_RATE_LIMIT"] = "2 per minute"
    client = app.test_client()
    assert failed_sign_in(client, **forwarded("198.51.100.1")) == 200
    assert failed_sign_in(client, **forwarded("198.51.100.2")) == 200
    # A new X-Forwarded-For does not buy a new bucket.
    assert failed_sign_in(client, **forwarded("198.51.100.3")) == 429
    addresses = {record.address for record in audit_records(runtime, "login.failed")}
    assert addresses == {PROXY}


def test_api_requests_without_a_token_are_limited_per_client(runtime: Runtime) -> None:
    app = app_behind(runtime, trusted_proxies=1)
    app.config["TIPLINE_API_RATE_LIMIT"] = "2 per minute"
    client = app.test_client()
    statuses = [
        client.get("/api/v1/tips", environ_base=forwarded(f"2001:db8:9:9::{n}")).status_code
        for n in range(1, 4)
    ]
    assert statuses == [401, 401, 429]
    assert client.get("/api/v1/tips", environ_base=forwarded("192.0.2.10")).status_code == 401
