"""Attachments: refused for a rejected tip and past a tip's quota, before the body is read."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.test import EnvironBuilder, TestResponse

from referrals.intake.models import Attachment, Tip, TipStatus
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tipline import create_app
from tipline.runtime import Runtime

OCTETS = "application/octet-stream"


class UnreadableBody(io.BytesIO):
    """A request body that fails the request if anything reads it."""

    def read(self, *_args: Any) -> bytes:
        raise AssertionError("the body was read")

    read1 = readline = read

    def readinto(self, *_args: Any) -> int:
        raise AssertionError("the body was read")


def app_with(runtime: Runtime, **changes: Any) -> Flask:
    settings = dataclasses.replace(runtime.settings, **changes)
    app = create_app(runtime=dataclasses.replace(runtime, settings=settings))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def encrypted_file(partners: PartnerKeys, intake_keyring: IntakeKeyring) -> bytes:
    return partners.gpg(
        "--encrypt", "--recipient", intake_keyring.fingerprint, stdin=b"\x89PNG fake" * 50
    )


@pytest.fixture
def tip_id(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> str:
    sealed = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    response = client.post(
        "/api/v1/tips",
        data=sealed,
        content_type="application/pgp-encrypted",
        headers=agencies["agency-a"].headers,
    )
    assert response.status_code == 202
    return str(response.get_json()["id"])


def attach(client: FlaskClient, agency: RegisteredAgency, tip_id: str, body: bytes) -> TestResponse:
    return client.post(
        f"/api/v1/tips/{tip_id}/attachments", data=body, content_type=OCTETS, headers=agency.headers
    )


def attach_unread(
    client: FlaskClient, agency: RegisteredAgency, tip_id: str, length: int
) -> TestResponse:
    """An upload announcing ``length`` bytes whose body must never be read."""
    environ = EnvironBuilder(
        path=f"/api/v1/tips/{tip_id}/attachments",
        method="POST",
        input_stream=UnreadableBody(bytes(length)),
        content_length=length,
        content_type=OCTETS,
        headers=agency.headers,
    ).get_environ()
    return client.open(environ)


def attach_chunked(
    client: FlaskClient, agency: RegisteredAgency, tip_id: str, body: bytes
) -> TestResponse:
    """An upload whose length is not announced (Transfer-Encoding: chunked)."""
    environ = EnvironBuilder(
        path=f"/api/v1/tips/{tip_id}/attachments",
        method="POST",
        input_stream=io.BytesIO(body),
        content_type=OCTETS,
        headers=agency.headers,
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    return client.open(environ)


def error_of(response: TestResponse, status: int) -> dict[str, str]:
    assert response.status_code == status, response.get_data(as_text=True)
    return dict(response.get_json()["error"])


def stored(runtime: Runtime) -> tuple[int, list[str]]:
    with runtime.session_factory() as session:
        rows = int(session.scalar(select(func.count()).select_from(Attachment)) or 0)
    files = [
        str(p.relative_to(runtime.settings.attachments_dir))
        for p in runtime.settings.attachments_dir.rglob("*")
        if p.is_file()
    ]
    return rows, files


def test_attaching_to_a_rejected_tip_is_409_before_the_body_is_read(
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    tip_id: str,
    runtime: Runtime,
) -> None:
    with runtime.session_factory.begin() as session:
        session.execute(update(Tip).where(Tip.id == tip_id).values(status=TipStatus.REJECTED))

    refused = attach_unread(client, agencies["agency-a"], tip_id, 1000)

    error = error_of(refused, 409)
    assert error["code"] == "tip_rejected"
    assert "send the corrected tip" in error["message"]
    assert stored(runtime) == (0, [])


def test_a_tip_takes_at_most_its_quota_of_files(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], tip_id: str, encrypted_file: bytes
) -> None:
    client = app_with(runtime, max_attachments_per_tip=2).test_client()
    a = agencies["agency-a"]
    for _ in range(2):
        assert attach(client, a, tip_id, encrypted_file).status_code == 201

    refused = attach_unread(client, a, tip_id, len(encrypted_file))

    error = error_of(refused, 409)
    assert error["code"] == "too_many_attachments"
    assert "2 attachments, the most one tip may have" in error["message"]
    assert stored(runtime)[0] == 2


def test_a_tip_takes_at_most_its_quota_of_bytes_announced_or_not(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], tip_id: str, encrypted_file: bytes
) -> None:
    quota = len(encrypted_file) * 3 // 2
    client = app_with(runtime, max_attachment_bytes_per_tip=quota).test_client()
    a = agencies["agency-a"]
    assert attach(client, a, tip_id, encrypted_file).status_code == 201

    announced = attach_unread(client, a, tip_id, len(encrypted_file))
    streamed = attach_chunked(client, a, tip_id, encrypted_file)

    for refused in (announced, streamed):
        error = error_of(refused, 413)
        assert error["code"] == "attachment_quota_exceeded"
        assert f"past {quota} bytes in all" in error["message"]
    rows, files = stored(runtime)
    assert rows == 1 and len(files) == 1  # the refused stream left nothing behind
