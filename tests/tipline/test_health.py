from __future__ import annotations

from flask.testing import FlaskClient


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
