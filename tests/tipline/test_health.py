"""/healthz: what it reports, and that it names the part that is down (really down: no
patched call)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import redis
from flask import Flask
from flask.testing import FlaskClient

from referrals.database import make_engine
from tests.support import free_port
from tipline import create_app
from tipline.runtime import Runtime


def test_healthz_reports_database_redis_and_schema(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"] == "ok"
    assert body["schema"] == "current"
    assert body["workers"] == 0


def test_unknown_page_is_a_json_404_without_internals(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert "Traceback" not in response.get_data(as_text=True)


def test_wrong_method_is_405(client: FlaskClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def _app_with(runtime: Runtime, **parts: object) -> Flask:
    app = create_app(runtime=dataclasses.replace(runtime, **parts))
    app.config["TESTING"] = True
    return app


def test_healthz_names_the_database_when_it_is_down(runtime: Runtime, tmp_path: Path) -> None:
    # A database file that cannot be opened: its folder is a plain file.
    (tmp_path / "not-a-folder").write_text("")
    engine = make_engine(f"sqlite:///{tmp_path / 'not-a-folder' / 'tipline.sqlite3'}")
    try:
        answer = _app_with(runtime, engine=engine).test_client().get("/healthz")
    finally:
        engine.dispose()
    assert answer.status_code == 503
    assert answer.get_json() == {
        "database": "unreachable",
        "redis": "ok",
        "workers": 0,
        "status": "failing",
    }


def test_healthz_names_redis_when_nothing_listens(runtime: Runtime) -> None:
    nothing = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    answer = _app_with(runtime, redis=nothing).test_client().get("/healthz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["redis"] == "unreachable" and "workers" not in body
    assert body["database"] == "ok" and body["status"] == "failing"
