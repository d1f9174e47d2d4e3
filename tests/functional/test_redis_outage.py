"""Redis really stopped (not a patched call) while tips arrive over HTTP: each still gets its
receipt and is stored; when Redis is back the sweep queues it and a worker processes it."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from flask import Flask

from referrals.intake.models import Tip, TipStatus
from referrals.intake.sweep import TipSweeper
from referrals.jobs import INTAKE_QUEUE, JobQueue
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.tipline.partner.conftest import form_data, sign_in_directly
from tipline import create_app
from tipline.embedded_redis import EmbeddedRedis
from tipline.runtime import Runtime


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis server of this test's own, to stop and start again."""
    folder = Path(tempfile.mkdtemp(prefix="tl-redis-", dir="/tmp"))
    server = EmbeddedRedis(folder)
    server.start(attach=False)
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def on_own_redis(runtime: Runtime, own_redis: EmbeddedRedis) -> Iterator[Runtime]:
    connection = redis.Redis.from_url(own_redis.url)
    yield dataclasses.replace(runtime, redis=connection, queue=JobQueue(connection))
    connection.close()


@pytest.fixture
def app_on_own_redis(on_own_redis: Runtime) -> Flask:
    app = create_app(runtime=on_own_redis)
    app.config["TESTING"] = True
    return app


def test_tips_sent_while_redis_is_down_get_receipts_and_are_processed_when_it_is_back(
    app_on_own_redis: Flask,
    on_own_redis: Runtime,
    own_redis: EmbeddedRedis,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    agency = agencies["agency-a"]
    api = app_on_own_redis.test_client()
    officer = sign_in_directly(
        app_on_own_redis, on_own_redis, email="o@agency-a.example", role="partner",
        agency_id=agency.id,
    )  # fmt: skip
    form = officer.client.get("/partner/tips/new").get_data(as_text=True)
    own_redis.stop()
    assert not own_redis.is_running()

    # Through the API: the receipt, at once.
    sealed = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    sent = api.post(
        "/api/v1/tips", data=sealed, content_type="application/pgp-encrypted",
        headers=agency.headers,
    )  # fmt: skip
    assert sent.status_code == 202, sent.get_data(as_text=True)
    api_tip = sent.get_json()
    assert api_tip["tracking_number"].startswith("TL-")
    # Through the web form: the tip's page.
    posted = officer.client.post("/partner/tips/new", data=form_data(form))
    assert posted.status_code == 302
    form_tip = posted.headers["Location"].rsplit("/", 1)[1]

    status = api.get(api_tip["status_url"], headers=agency.headers).get_json()
    assert status["status"] == TipStatus.RECEIVED
    assert "stored" in officer.client.get(f"/partner/tips/{form_tip}").get_data(as_text=True)

    own_redis.start(attach=False)
    assert on_own_redis.queue.queue(INTAKE_QUEUE).count == 0  # nothing reached the queue
    sweeper = TipSweeper(
        on_own_redis.session_factory,
        queue=on_own_redis.queue,
        clock=on_own_redis.clock,
        audit_key=on_own_redis.audit_key,
    )
    swept = sweeper.sweep(grace=timedelta(0))
    assert sorted(swept.requeued) == sorted([api_tip["id"], form_tip])
    assert swept.quarantined == []
    on_own_redis.queue.worker(on_own_redis.job_context()).work(burst=True)
    for tip_id in (api_tip["id"], form_tip):
        with on_own_redis.session_factory() as session:
            tip = session.get(Tip, tip_id)
            assert tip is not None and tip.status == TipStatus.IN_TRIAGE, tip_id
