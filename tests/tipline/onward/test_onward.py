"""Onward packages: a lead exports a referral for another centre (here agency B stands for
it, its key in the partners' keyring); the recipient's own gpg opens and verifies it and finds
a valid tip document; markings refuse it until the marking agency consents to that recipient;
a worker delivers it to the recipient's endpoint, retrying what may pass and giving up in
bounded tries; the recipient's feedback is fetched, checked against its pinned key, and shown
on the referral."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.casework.models import Referral
from referrals.intake.document import parse_tip_document
from referrals.intake.models import Agency
from referrals.onward.delivery import MAX_ATTEMPTS, Delivery, DeliveryNotDone
from referrals.onward.models import OnwardPackage, ReceivedFeedback
from referrals.onward.services import OnwardPackages
from tests.clock import ManualClock
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys
from tests.tipline.admin.people import audit_records, csrf
from tests.tipline.desk.conftest import SendTip
from tests.tipline.desk.test_messages import gpg_decrypt
from tipline.runtime import Runtime

Browser = Callable[[str], FlaskClient]
TOKEN = "centre-b-token-" + "x" * 32


def accepted(browser: Browser, send_tip: SendTip, runtime: Runtime, **changes: object) -> int:
    tip = send_tip("agency-a", **changes)
    ana = browser("ana")
    page = ana.get(f"/desk/tips/{tip.id}").get_data(as_text=True)
    assert (
        ana.post(f"/desk/tips/{tip.id}/accept", data={"csrf_token": csrf(page)}).status_code == 302
    )
    with runtime.session_factory() as session:
        return session.scalars(select(Referral.id)).one()


def export(browser: Browser, referral_id: int, agency_id: int) -> tuple[int, str]:
    lea = browser("lea")
    page = lea.get(f"/referrals/{referral_id}/packages/new").get_data(as_text=True)
    answer = lea.post(
        f"/referrals/{referral_id}/packages",
        data={
            "csrf_token": csrf(page),
            "agency_id": str(agency_id),
            "summary": "A facilitator in Cebu streams abuse to paying customers.",
        },
    )
    if answer.status_code == 302:
        return 302, lea.get(answer.headers["Location"]).get_data(as_text=True)
    return answer.status_code, answer.get_data(as_text=True)


def connect(runtime: Runtime, agency_id: int) -> None:
    with runtime.session_factory() as session:
        agency = session.get(Agency, agency_id)
        assert agency is not None
        OnwardPackages(
            session,
            audit=runtime.audit(session),
            clock=runtime.clock,
            secret_box=runtime.secret_box,
        ).connect(agency, "https://centre-b.example", TOKEN, actor="cli:test")


def delivery(runtime: Runtime, handler: Callable[[httpx.Request], httpx.Response]) -> Delivery:
    return Delivery(
        runtime.session_factory,
        clock=runtime.clock,
        keyring=runtime.keyring,
        secret_box=runtime.secret_box,
        audit_key=runtime.audit_key,
        transport=httpx.MockTransport(handler),
    )


def the_package(runtime: Runtime) -> OnwardPackage:
    with runtime.session_factory() as session:
        return session.scalars(select(OnwardPackage)).one()


def test_the_recipients_gpg_opens_a_signed_valid_tip_without_the_senders_names(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    people: dict,
) -> None:
    referral_id = accepted(browser, send_tip, runtime)
    b = agencies["agency-b"]
    status, page = export(browser, referral_id, b.id)
    assert status == 302, page
    assert "download it below and send it by hand" in page  # no endpoint: by hand
    assert "Package exported to another centre" in page  # on the timeline
    package = the_package(runtime)
    assert package.status == "sealed" and package.tip_count == 1
    assert b"facilitator" not in package.armored
    [record] = audit_records(runtime, "package.exported")
    assert record.subject == f"referral:{referral_id}" and record.details["tips"] == 1

    download = browser("ana").get(f"/referrals/{referral_id}/packages/{package.id}.asc")
    assert download.headers["Content-Disposition"].startswith("attachment;")
    plaintext, status_lines = gpg_decrypt(partners, download.get_data(as_text=True))
    assert f"[GNUPG:] VALIDSIG {intake_keyring.fingerprint}" in status_lines
    document = parse_tip_document(plaintext).data  # what the recipient will validate
    with runtime.session_factory() as session:
        reference = session.get(Referral, referral_id).reference  # type: ignore[union-attr]
    assert document["external_reference"] == f"{reference}/1"
    assert document["summary"] == "A facilitator in Cebu streams abuse to paying customers."
    assert document["handling"]["tlp"] == "AMBER"
    assert agencies["agency-a"].name not in plaintext.decode()


def test_a_marking_refuses_the_export_until_the_agency_consents_to_that_recipient(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
) -> None:
    referral_id = accepted(browser, send_tip, runtime, handling={"tlp": "RED"})
    b = agencies["agency-b"]
    status, page = export(browser, referral_id, b.id)
    assert status == 400
    text = page.replace("&#39;", "'").replace("&#34;", '"')
    assert (
        f"Nothing was exported: this referral holds information that may not go to {b.name}" in text
    )
    assert f"TLP:RED from {agencies['agency-a'].name} (the named recipients only)" in text
    with runtime.session_factory() as session:
        assert session.scalars(select(OnwardPackage)).all() == []
    # The consent form offers the other centre as a recipient.
    referral_page = browser("lea").get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert f'value="agency:{b.id}"' in referral_page


def test_a_worker_delivers_it_once_retries_what_may_pass_and_stops_in_bounded_tries(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    clock: ManualClock,
) -> None:
    referral_id = accepted(browser, send_tip, runtime)
    b = agencies["agency-b"]
    connect(runtime, b.id)
    status, page = export(browser, referral_id, b.id)
    assert "queued for delivery to its endpoint" in page
    seen: list[httpx.Request] = []

    def busy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, json={"error": {"code": "unavailable", "message": "busy"}})

    package = the_package(runtime)
    with pytest.raises(DeliveryNotDone, match="HTTP 503: unavailable: busy"):
        delivery(runtime, busy).deliver(package.id)
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "https://centre-b.example/api/v1/tips")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Idempotency-Key"] == package.idempotency_key
    assert request.content == package.armored

    def takes(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            202, json={"id": "remote-1", "tracking_number": "TL-REMOTE", "status": "received"}
        )

    assert delivery(runtime, takes).deliver(package.id) == "delivered"
    assert seen[1].headers["Idempotency-Key"] == seen[0].headers["Idempotency-Key"]
    assert delivery(runtime, takes).deliver(package.id) == "delivered"  # nothing sent again
    assert len(seen) == 2
    after = the_package(runtime)
    assert (after.remote_tip_id, after.remote_tracking_number, after.attempts) == (
        "remote-1",
        "TL-REMOTE",
        2,
    )
    page = browser("lea").get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "their tracking number <code>TL-REMOTE</code>" in page


def test_a_refusal_is_final_and_endless_faults_end_in_failed(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    clock: ManualClock,
) -> None:
    b = agencies["agency-b"]
    connect(runtime, b.id)
    referral_id = accepted(browser, send_tip, runtime)
    export(browser, referral_id, b.id)
    first = the_package(runtime)

    def refuses(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": {"code": "unauthorized", "message": "token revoked"}}
        )

    assert delivery(runtime, refuses).deliver(first.id) == "refused"
    page = browser("lea").get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Refused by the recipient</strong>: HTTP 401: unauthorized: token revoked" in page

    export(browser, referral_id, b.id)  # a second package of the same referral
    with runtime.session_factory() as session:
        second = session.scalars(select(OnwardPackage).order_by(OnwardPackage.id.desc())).first()
    assert second is not None and second.external_reference.endswith("/2")

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route")

    worker = delivery(runtime, unreachable)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(DeliveryNotDone):
            worker.deliver(second.id)
        clock.advance(hours=1)
    # The sweep finds it while tries are left; the last try gives up, and it leaves the sweep.
    assert worker.stale(older_than=timedelta(minutes=30)) == [second.id]
    assert worker.deliver(second.id) == "failed"
    assert worker.stale(older_than=timedelta(minutes=30)) == []
    with runtime.session_factory() as session:
        failed = session.get(OnwardPackage, second.id)
        assert failed is not None and failed.fault is not None
        assert f"gave up after {MAX_ATTEMPTS} tries" in failed.fault
    assert [r.details["package"] for r in audit_records(runtime, "package.failed")] == [second.id]


def test_feedback_signed_by_the_correspondent_is_shown_and_a_forgery_is_not(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    b = agencies["agency-b"]
    connect(runtime, b.id)
    referral_id = accepted(browser, send_tip, runtime)
    export(browser, referral_id, b.id)
    package = the_package(runtime)
    receipt = {"id": "remote-7", "tracking_number": "TL-B7", "status": "received"}
    delivery(runtime, lambda request: httpx.Response(202, json=receipt)).deliver(package.id)

    def sealed(text: str, signer: str) -> str:
        document = {
            "schema": "tipline.feedback/1",
            "stage": "operation_conducted",
            "text": text,
            "outcome": {"children_safeguarded": 3, "suspects_arrested": 1},
            "tips": [{"id": "remote-7", "tracking_number": "TL-B7"}],
        }
        return partners.seal(document, recipient=intake_keyring.fingerprint, signer=signer).decode()

    pages = {
        "0": {
            "feedback": [
                {
                    "id": 11,
                    "tip_ids": ["remote-7"],
                    "released_at": "2026-12-01T00:00:00+00:00",
                    "message": sealed("Three children safeguarded in Cebu.", "agency-b"),
                },
                {
                    "id": 12,
                    "tip_ids": ["remote-7"],
                    "released_at": "2026-12-01T00:00:00+00:00",
                    "message": sealed("Forged: ignore the operation.", "agency-a"),
                },
            ],
            "next": None,
        },
        "12": {"feedback": [], "next": None},
    }
    asked: list[str] = []

    def centre_b(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/api/v1/feedback":
            return httpx.Response(200, json=pages[request.url.params["cursor"]])
        assert request.url.path == "/api/v1/tips/remote-7"
        return httpx.Response(200, json={"id": "remote-7", "status": "operation_conducted"})

    report = delivery(runtime, centre_b).poll(b.id)
    assert (report.feedback, report.statuses) == (2, 1)
    again = delivery(runtime, centre_b).poll(b.id)  # from the cursor on: nothing twice
    assert again.feedback == 0
    assert "https://centre-b.example/api/v1/feedback?cursor=12&limit=50" in asked
    with runtime.session_factory() as session:
        stored = {row.remote_id: row.verified for row in session.scalars(select(ReceivedFeedback))}
    assert stored == {11: True, 12: False}
    page = browser("lea").get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Three children safeguarded in Cebu." in page
    assert "3 children safeguarded, 1 suspects arrested" in page
    assert "Forged" not in page
    assert "there: <strong>operation conducted</strong>" in page
    assert re.search(r"Feedback received from the centre it was sent to", page)


def test_a_referral_taken_on_carries_its_tips_marking_at_once_in_the_same_session(
    send_tip: SendTip, runtime: Runtime, people: dict
) -> None:
    # What a lead exporting straight after accepting (a script, the demo) reads: not a
    # marking left stale in the session that accepted the tip (it was "RED" by default).
    from referrals.accounts.models import User
    from referrals.triage.desk import TriageDesk

    tip = send_tip("agency-a", handling={"tlp": "GREEN", "code": "H1"})
    with runtime.session_factory() as session:
        person = session.get(User, people["ana"].id)
        desk = TriageDesk(session, audit=runtime.audit(session), clock=runtime.clock)
        referral = desk.accept(person, tip.id, address=None)
        assert (referral.tlp, referral.handling_code) == ("GREEN", "H1")


def connected_with_a_delivered_package(
    browser: Browser, send_tip: SendTip, runtime: Runtime, agencies: dict[str, RegisteredAgency]
) -> tuple[int, int]:
    """Agency B connected, a package delivered to it as its tip "remote-7": (referral, B)."""
    b = agencies["agency-b"]
    connect(runtime, b.id)
    referral_id = accepted(browser, send_tip, runtime)
    export(browser, referral_id, b.id)
    receipt = {"id": "remote-7", "tracking_number": "TL-B7", "status": "received"}
    delivery(runtime, lambda request: httpx.Response(202, json=receipt)).deliver(
        the_package(runtime).id
    )
    return referral_id, b.id


def correspondent_fault(runtime: Runtime, agency_id: int) -> str | None:
    from referrals.onward.models import Correspondent

    with runtime.session_factory() as session:
        found = session.get(Correspondent, agency_id)
        assert found is not None
        return found.fault


@pytest.mark.parametrize(
    ("page", "fault"),
    [
        (
            {"feedback": [{"id": 10**20, "message": "x"}], "next": None},
            "polling stopped: a feedback item whose id is not one this system gives",
        ),
        (
            {"feedback": [{"id": "11", "message": "x"}], "next": None},
            "polling stopped: a feedback item whose id is not one this system gives",
        ),
        (
            {"feedback": [{"id": 11, "message": 5}], "next": None},
            "polling stopped: feedback 11 without a sealed message",
        ),
        (
            {"feedback": "all of it", "next": None},
            "polling stopped: a feedback page this system does not give",
        ),
        (
            {"feedback": [{"id": 11, "message": "x" * (5 * 1024 * 1024)}], "next": None},
            "polling stopped: an answer over 4194304 bytes",
        ),
    ],
    ids=["huge id", "id as text", "no message", "not a list", "too big"],
)
def test_what_another_centre_answers_is_checked_and_a_bad_answer_stops_only_its_poll(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    page: dict[str, object],
    fault: str,
) -> None:
    referral_id, agency_id = connected_with_a_delivered_package(
        browser, send_tip, runtime, agencies
    )
    report = delivery(runtime, lambda request: httpx.Response(200, json=page)).poll(agency_id)
    assert report.feedback == 0
    assert correspondent_fault(runtime, agency_id) == fault
    with runtime.session_factory() as session:
        assert session.scalars(select(ReceivedFeedback)).all() == []
    assert browser("lea").get(f"/referrals/{referral_id}").status_code == 200


def test_a_poll_takes_at_most_a_page_of_items_and_a_signed_oddity_is_never_shown(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    referral_id, agency_id = connected_with_a_delivered_package(
        browser, send_tip, runtime, agencies
    )
    odd = {"schema": "tipline.feedback/1", "stage": "closed", "text": 5,
           "tips": [{"id": "remote-7"}]}  # fmt: skip
    sealed = partners.seal(odd, recipient=intake_keyring.fingerprint, signer="agency-b").decode()
    items = [{"id": 100 + n, "message": sealed} for n in range(300)]

    def centre_b(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/feedback":
            after = int(request.url.params["cursor"])
            return httpx.Response(200, json={"feedback": [i for i in items if i["id"] > after],
                                             "next": None})  # fmt: skip
        return httpx.Response(200, json={"id": "remote-7", "status": "accepted"})

    delivery(runtime, centre_b).poll(agency_id)
    with runtime.session_factory() as session:
        stored = session.scalars(select(ReceivedFeedback)).all()
    assert len(stored) == 50  # a page is 50 items, whatever the other side sends
    assert not any(row.verified for row in stored)
    assert {row.fault for row in stored} == {"not a feedback document"}
    assert browser("lea").get(f"/referrals/{referral_id}").status_code == 200


def test_a_receipt_this_system_never_gives_leaves_the_package_failed(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
) -> None:
    b = agencies["agency-b"]
    connect(runtime, b.id)
    referral_id = accepted(browser, send_tip, runtime)
    export(browser, referral_id, b.id)
    receipt = {"id": "../../admin\x00", "status": "received"}
    answer = delivery(runtime, lambda request: httpx.Response(202, json=receipt)).deliver(
        the_package(runtime).id
    )
    assert answer == "failed"
    assert the_package(runtime).fault == "a receipt this system does not give"


@pytest.mark.parametrize(
    "address",
    [
        "http://centre-b.example",
        "https://user:secret@centre-b.example",
        "https://centre-b.example/api/v1",
        "https://centre-b.example?x=1",
        "https://centre-b.example#top",
        "https://centre-b.example:99999",
        "ftp://centre-b.example",
        "centre-b.example",
    ],
)
def test_an_endpoint_is_an_https_origin_and_nothing_more(address: str) -> None:
    from referrals.onward.services import PackageRefused, check_base_url

    with pytest.raises(PackageRefused, match="nothing more"):
        check_base_url(address)


def test_endpoints_that_are_origins_are_taken() -> None:
    from referrals.onward.services import check_base_url

    assert check_base_url(" https://centre-b.example:8443/ ") == "https://centre-b.example:8443"
    assert check_base_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_an_export_naming_no_real_agency_is_refused_not_a_server_error(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    referral_id = accepted(browser, send_tip, runtime)
    lea = browser("lea")
    page = lea.get(f"/referrals/{referral_id}/packages/new").get_data(as_text=True)
    for value in ("99999999999999999999999", "-5", "١", "x"):
        answer = lea.post(
            f"/referrals/{referral_id}/packages",
            data={"csrf_token": csrf(page), "agency_id": value, "summary": "A summary."},
        )
        assert answer.status_code == 400, value
        assert "Choose a registered recipient" in answer.get_data(as_text=True)
