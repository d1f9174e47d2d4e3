"""The partner API through the HTTP test client: receipts, errors, isolation, idempotency."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder, TestResponse

from referrals.intake.models import Attachment, Tip
from referrals.jobs import INTAKE_QUEUE
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.support import PATIENCE
from tipline import create_app
from tipline.runtime import Runtime

PGP = "application/pgp-encrypted"


def submit(
    client: FlaskClient,
    agency: RegisteredAgency | None,
    body: bytes,
    *,
    content_type: str = PGP,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    all_headers = dict(agency.headers if agency else {})
    all_headers.update(headers or {})
    return client.post("/api/v1/tips", data=body, content_type=content_type, headers=all_headers)


@pytest.fixture
def sealed(partners: PartnerKeys, intake_keyring: IntakeKeyring) -> bytes:
    return partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")


def tip_count(runtime: Runtime) -> int:
    with runtime.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(Tip)) or 0)


def assert_error(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    return dict(error)


def test_a_sealed_tip_gets_a_receipt_and_is_queued_by_id_only(
    client: FlaskClient, agencies: dict[str, RegisteredAgency], sealed: bytes, runtime: Runtime
) -> None:
    response = submit(client, agencies["agency-a"], sealed)

    assert response.status_code == 202
    receipt = response.get_json()
    assert set(receipt) == {"id", "tracking_number", "status", "status_url"}
    assert receipt["status"] == "received"
    assert receipt["tracking_number"].startswith("TL-")
    assert response.headers["Location"] == receipt["status_url"]
    [job_id] = runtime.queue.queue(INTAKE_QUEUE).job_ids
    job = runtime.queue.queue(INTAKE_QUEUE).fetch_job(job_id)
    assert job is not None and job.args == [receipt["id"]]

    status = client.get(receipt["status_url"], headers=agencies["agency-a"].headers)
    assert status.status_code == 200
    with runtime.session_factory() as session:
        tip = session.get(Tip, receipt["id"])
        assert tip is not None
    assert status.get_json() == {
        "id": receipt["id"],
        "tracking_number": receipt["tracking_number"],
        "status": "received",
        "reason": None,
        "warnings": [],
        "updated_at": tip.updated_at.isoformat(),
    }
    # When it was stored, as an RFC 3339 time with its offset.
    assert tip.received_at <= datetime.fromisoformat(status.get_json()["updated_at"])
    with runtime.session_factory() as session:
        tip = session.get(Tip, receipt["id"])
        assert tip is not None
        assert tip.ciphertext.armored == sealed
        assert tip.ciphertext_sha256 == hashlib.sha256(sealed).hexdigest()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer tl_not-a-real-token", "Basic dXNlcjpwYXNz", "tl_no-scheme"],
)
def test_no_or_bad_token_is_401(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    runtime: Runtime,
    authorization: str | None,
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = submit(client, None, sealed, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert tip_count(runtime) == 0


def test_a_replaced_token_stops_working(
    client: FlaskClient, agencies: dict[str, RegisteredAgency], sealed: bytes, runtime: Runtime
) -> None:
    from referrals.intake.agencies import AgencyService

    agency = agencies["agency-a"]
    with runtime.session_factory() as session:
        service = AgencyService(
            session, keyring=runtime.keyring, clock=runtime.clock, audit=runtime.audit(session)
        )
        new_token = service.mint_token(service.find(str(agency.id)), actor="test")
    assert_error(submit(client, agency, sealed), 401, "unauthorized")
    fresh = dataclasses.replace(agency, token=new_token)
    assert submit(client, fresh, sealed).status_code == 202


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data"])
def test_wrong_content_type_is_415(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    runtime: Runtime,
    content_type: str,
) -> None:
    response = submit(client, agencies["agency-a"], sealed, content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert tip_count(runtime) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"not an openpgp message at all", "armored OpenPGP"),
        (b'{"narrative": "plaintext by mistake"}', "armored OpenPGP"),
        (b"\x85\x01\x0c\x03\xff\xfe" * 20, "armored OpenPGP"),
        (
            b"-----BEGIN PGP MESSAGE-----\n\nx\n-----END PGP MESSAGE-----\n"
            b"-----BEGIN PGP MESSAGE-----\n\ny\n-----END PGP MESSAGE-----",
            "more than one",
        ),
    ],
)
def test_a_body_that_is_not_an_armored_message_is_400(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    runtime: Runtime,
    body: bytes,
    reason: str,
) -> None:
    error = assert_error(submit(client, agencies["agency-a"], body), 400, "not_an_openpgp_message")
    assert reason in error["message"]
    assert tip_count(runtime) == 0


def app_with(runtime: Runtime, **changes: Any) -> Flask:
    settings = dataclasses.replace(runtime.settings, **changes)
    app = create_app(runtime=dataclasses.replace(runtime, settings=settings))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def small_app(runtime: Runtime) -> Flask:
    """The app with a 2 KiB tip limit and a 4 KiB attachment limit."""
    return app_with(runtime, max_tip_bytes=2048, max_attachment_bytes=4096)


def test_an_oversize_tip_is_413_before_it_is_read(
    small_app: Flask, agencies: dict[str, RegisteredAgency], runtime: Runtime
) -> None:
    body = b"-----BEGIN PGP MESSAGE-----\n" + b"A" * 4096 + b"\n-----END PGP MESSAGE-----"
    client = small_app.test_client()
    assert_error(submit(client, agencies["agency-a"], body), 413, "request_entity_too_large")
    assert tip_count(runtime) == 0


def test_an_oversize_tip_without_content_length_is_413(
    small_app: Flask, agencies: dict[str, RegisteredAgency], runtime: Runtime
) -> None:
    body = b"-----BEGIN PGP MESSAGE-----\n" + b"A" * 4096 + b"\n-----END PGP MESSAGE-----"
    response = post_chunked(
        small_app.test_client(), "/api/v1/tips", body, agencies["agency-a"].headers
    )
    assert_error(response, 413, "request_entity_too_large")
    assert tip_count(runtime) == 0


def post_chunked(
    client: FlaskClient, url: str, body: bytes, headers: dict[str, str]
) -> TestResponse:
    """A POST whose length is not announced (Transfer-Encoding: chunked)."""
    environ = EnvironBuilder(
        path=url, method="POST", input_stream=io.BytesIO(body), content_type=PGP, headers=headers
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    return client.open(environ)


def test_over_the_rate_limit_is_429_per_agency(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], sealed: bytes
) -> None:
    client = app_with(runtime, api_rate_limit="3/minute").test_client()
    a, b = agencies["agency-a"], agencies["agency-b"]
    answers = [submit(client, a, sealed).status_code for _ in range(3)]
    assert answers == [202, 202, 202]
    limited = submit(client, a, sealed)
    assert_error(limited, 429, "too_many_requests")
    assert int(limited.headers["Retry-After"]) > 0
    # Another agency is not held back by A's burst.
    assert client.get("/api/v1/tips", headers=b.headers).status_code == 200


def test_the_same_idempotency_key_gives_the_same_receipt_and_one_tip(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    runtime: Runtime,
) -> None:
    a, b = agencies["agency-a"], agencies["agency-b"]
    key = {"Idempotency-Key": "ECA-2024-CSE-004417"}
    first = submit(
        client,
        a,
        partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a"),
        headers=key,
    )
    # A retry re-encrypts: the ciphertext differs, the key is what identifies the submission.
    again = submit(
        client,
        a,
        partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a"),
        headers=key,
    )
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    # The same key from another agency is another submission.
    other = submit(
        client,
        b,
        partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-b"),
        headers=key,
    )
    assert other.get_json()["id"] != first.get_json()["id"]
    assert tip_count(runtime) == 2
    assert runtime.queue.queue(INTAKE_QUEUE).count == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve-key", "tab\tin-it"])
def test_a_malformed_idempotency_key_is_400(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    runtime: Runtime,
    key: str,
) -> None:
    response = client.post(
        "/api/v1/tips",
        data=sealed,
        content_type=PGP,
        headers=[*agencies["agency-a"].headers.items(), ("Idempotency-Key", key)],
    )
    assert_error(response, 400, "bad_idempotency_key")
    assert tip_count(runtime) == 0


def test_a_retry_storm_stores_exactly_one_tip(
    app: Flask, agencies: dict[str, RegisteredAgency], sealed: bytes, runtime: Runtime
) -> None:
    """The same submission sent 20 times at once with one Idempotency-Key."""
    headers = {**agencies["agency-a"].headers, "Idempotency-Key": "storm-1"}
    # A timeout on the barrier: if one sender dies before reaching it, the others fail with
    # BrokenBarrierError instead of waiting for ever.
    barrier = threading.Barrier(20, timeout=60)

    def send() -> tuple[int, str]:
        client = app.test_client()
        barrier.wait()
        response = client.post("/api/v1/tips", data=sealed, content_type=PGP, headers=headers)
        return response.status_code, response.get_json()["id"]

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(send) for _ in range(20)]
        # result() re-raises whatever a sender raised, so a failure is reported, not lost.
        answers = [future.result(timeout=PATIENCE) for future in futures]

    assert len(answers) == 20
    assert {status for status, _ in answers} == {202}
    assert len({tip_id for _, tip_id in answers}) == 1
    assert tip_count(runtime) == 1
    assert runtime.queue.queue(INTAKE_QUEUE).count == 1


def test_an_agency_sees_only_its_own_tips(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    runtime: Runtime,
) -> None:
    a, b = agencies["agency-a"], agencies["agency-b"]
    tip_id = submit(client, a, sealed).get_json()["id"]

    not_found = client.get(f"/api/v1/tips/{tip_id}", headers=b.headers)
    missing = client.get("/api/v1/tips/00000000-0000-0000-0000-000000000000", headers=b.headers)
    assert_error(not_found, 404, "not_found")
    # Another agency's tip and a tip that does not exist are indistinguishable.
    assert not_found.get_json() == missing.get_json()
    assert client.get("/api/v1/tips", headers=b.headers).get_json() == {"tips": [], "next": None}
    attach = client.post(
        f"/api/v1/tips/{tip_id}/attachments",
        data=b"-----BEGIN PGP MESSAGE-----\n\nabc\n-----END PGP MESSAGE-----\n",
        content_type=PGP,
        headers=b.headers,
    )
    assert_error(attach, 404, "not_found")
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert client.get(f"/api/v1/tips/{tip_id}", headers=a.headers).status_code == 200


def test_listing_pages_through_the_agency_tips_since_a_time(
    client: FlaskClient, agencies: dict[str, RegisteredAgency], sealed: bytes
) -> None:
    a = agencies["agency-a"]
    sent = {submit(client, a, sealed).get_json()["id"] for _ in range(5)}
    seen: list[str] = []
    url: str | None = "/api/v1/tips?limit=2&since=2000-01-01T00:00:00Z"
    pages = 0
    while url:
        page = client.get(url, headers=a.headers)
        assert page.status_code == 200
        body = page.get_json()
        seen.extend(tip["id"] for tip in body["tips"])
        url = body["next"]
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(sent)
    assert len(seen) == len(set(seen))
    future = client.get("/api/v1/tips?since=2999-01-01T00:00:00Z", headers=a.headers)
    assert future.get_json()["tips"] == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("since=yesterday", "bad_since"),
        ("since=2024-01-01T00:00:00", "bad_since"),
        ("cursor=%%%", "bad_cursor"),
        ("cursor=bm90IGEgY3Vyc29y", "bad_cursor"),
        ("limit=0", "bad_limit"),
        ("limit=1000", "bad_limit"),
        ("limit=ten", "bad_limit"),
    ],
)
def test_a_bad_listing_query_is_400(
    client: FlaskClient, agencies: dict[str, RegisteredAgency], query: str, code: str
) -> None:
    response = client.get(f"/api/v1/tips?{query}", headers=agencies["agency-a"].headers)
    assert_error(response, 400, code)


def test_an_attachment_is_streamed_to_disk_as_received(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    a = agencies["agency-a"]
    tip_id = submit(client, a, sealed).get_json()["id"]
    encrypted_file = partners.gpg(
        "--encrypt", "--recipient", intake_keyring.fingerprint, stdin=b"\x89PNG fake image" * 500
    )
    response = client.post(
        f"/api/v1/tips/{tip_id}/attachments",
        data=encrypted_file,
        content_type="application/octet-stream",
        headers=a.headers,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["sha256"] == hashlib.sha256(encrypted_file).hexdigest()
    assert answer["size"] == len(encrypted_file)
    with runtime.session_factory() as session:
        attachment = session.get(Attachment, answer["id"])
        assert attachment is not None and attachment.tip_id == tip_id
        stored = (
            runtime.settings.attachments_dir
            / attachment.storage_name[:2]
            / (attachment.storage_name)
        )
    assert stored.read_bytes() == encrypted_file
    assert list((runtime.settings.attachments_dir / "incoming").iterdir()) == []


def test_an_attachment_that_is_not_openpgp_or_too_big_is_refused_and_not_kept(
    small_app: Flask, agencies: dict[str, RegisteredAgency], sealed: bytes, runtime: Runtime
) -> None:
    client = small_app.test_client()
    a = agencies["agency-a"]
    tip_id = submit(client, a, sealed[:0] + _small_sealed()).get_json()["id"]
    url = f"/api/v1/tips/{tip_id}/attachments"
    plain = client.post(url, data=b"%PDF-1.7 plain file", content_type=PGP, headers=a.headers)
    assert_error(plain, 400, "not_an_openpgp_message")
    big = b"-----BEGIN PGP MESSAGE-----\n" + b"A" * 8192
    assert_error(
        client.post(url, data=big, content_type=PGP, headers=a.headers),
        413,
        "request_entity_too_large",
    )
    streamed = post_chunked(client, url, big, a.headers)
    assert_error(streamed, 413, "request_entity_too_large")
    assert_error(
        client.post(url, data=b"x", content_type="text/plain", headers=a.headers),
        415,
        "unsupported_media_type",
    )
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Attachment)) == 0
    leftovers = [p for p in runtime.settings.attachments_dir.rglob("*") if p.is_file()]
    assert leftovers == []


def _small_sealed() -> bytes:
    return b"-----BEGIN PGP MESSAGE-----\n\nhQEMA0\n-----END PGP MESSAGE-----\n"


def test_the_openapi_description_is_served(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    assert {"/tips", "/tips/{id}", "/tips/{id}/attachments"} <= set(spec["paths"])


def test_a_database_outage_is_503_with_retry_after_not_500(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    sealed: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.exc import OperationalError

    from referrals.intake.receiving import TipReceiver

    def down(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(TipReceiver, "receive", down)
    response = submit(client, agencies["agency-a"], sealed)
    error = assert_error(response, 503, "service_unavailable")
    assert "retry" in error["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert "server closed" not in response.get_data(as_text=True)


def test_a_limit_in_unicode_digits_is_400_not_500(
    client: FlaskClient, agencies: dict[str, RegisteredAgency]
) -> None:
    for value in ("%C2%B2", "%D9%A3"):  # superscript two, Arabic-Indic three
        response = client.get(f"/api/v1/tips?limit={value}", headers=agencies["agency-a"].headers)
        assert_error(response, 400, "bad_limit")
