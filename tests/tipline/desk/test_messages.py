"""The message channel both ways: an analyst asks the partner agency for more, the partner's own
gpg reads and verifies it, the partner replies signed and encrypted, a worker checks the reply
like a tip, and the thread shows on the tip page. Nothing of it is stored in clear."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from referrals.intake.models import Tip, WebFormKey
from referrals.messages import tasks
from referrals.messages.models import Message
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys
from tests.tipline.admin.people import Person, audit_records, csrf, enrolled, signed_in_client
from tests.tipline.desk.conftest import SendTip
from tipline.runtime import Runtime

Browser = Callable[[str], FlaskClient]
QUESTION = "Can you send the chat logs of 12 March, and the second phone number of the suspect?"
ANSWER = "Attached separately: the logs. Second number +63 917 555 0199 (fictional)."


def ask(browser: Browser, tip: Tip, text: str = QUESTION) -> None:
    ana = browser("ana")
    token = csrf(ana.get(f"/desk/tips/{tip.id}").get_data(as_text=True))
    answer = ana.post(f"/desk/tips/{tip.id}/ask", data={"csrf_token": token, "text": text})
    assert answer.status_code == 302


def gpg_decrypt(partners: PartnerKeys, armored: str) -> tuple[bytes, str]:
    """The partner's side: plain `gpg --decrypt`, with its status lines."""
    result = subprocess.run(
        ["gpg", "--homedir", str(partners.home), "--batch", "--status-fd", "2", "--decrypt"],
        input=armored.encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout, result.stderr.decode()


def test_an_analyst_asks_and_the_partners_gpg_reads_a_signed_question(
    browser: Browser,
    send_tip: SendTip,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    runtime: Runtime,
    people: dict[str, Person],
) -> None:
    tip = send_tip()
    ask(browser, tip)
    with runtime.session_factory() as session:
        stored = session.scalars(select(Message)).one()
        assert b"chat logs" not in stored.armored  # sealed, never in clear
        assert session.get(Tip, tip.id).triaged_at is not None  # type: ignore[union-attr]
    page = browser("ana").get(f"/desk/tips/{tip.id}").get_data(as_text=True)
    assert QUESTION in page and "not fetched yet" in page

    a = agencies["agency-a"]
    listing = client.get("/api/v1/messages", headers=a.headers).get_json()
    [item] = listing["messages"]
    assert (item["tip_id"], item["kind"], listing["next"]) == (
        tip.id,
        "information_request",
        None,
    )
    plaintext, status = gpg_decrypt(partners, item["message"])
    document = json.loads(plaintext)
    assert (document["text"], document["tracking_number"]) == (QUESTION, tip.tracking_number)
    assert "[GNUPG:] GOODSIG" in status
    assert f"[GNUPG:] VALIDSIG {intake_keyring.fingerprint}" in status  # the centre's key
    # Fetching is recorded, and the writer sees it; another agency sees nothing.
    assert [r.actor for r in audit_records(runtime, "message.fetched")] == [f"agency:{a.id}"]
    assert "fetched" in browser("ana").get(f"/desk/tips/{tip.id}").get_data(as_text=True)
    after = client.get(f"/api/v1/messages?cursor={item['id']}", headers=a.headers).get_json()
    assert after["messages"] == []
    other = client.get("/api/v1/messages", headers=agencies["agency-b"].headers).get_json()
    assert other["messages"] == []


def test_the_partners_reply_is_checked_like_a_tip_and_joins_the_thread(
    browser: Browser,
    send_tip: SendTip,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    runtime: Runtime,
) -> None:
    tip = send_tip()
    ask(browser, tip)
    a = agencies["agency-a"]
    sealed = partners.seal(ANSWER.encode(), recipient=intake_keyring.fingerprint, signer="agency-a")
    sent = client.post(
        f"/api/v1/tips/{tip.id}/messages",
        data=sealed,
        content_type="application/pgp-encrypted",
        headers=a.headers,
    )
    assert sent.status_code == 202
    reply = sent.get_json()
    assert reply["status"] == "received"
    tasks.check_reply(runtime.job_context(), reply["id"])
    checked = client.get(reply["status_url"], headers=a.headers).get_json()
    assert (checked["status"], checked["reason"]) == ("accepted", None)
    page = browser("ana").get(f"/desk/tips/{tip.id}").get_data(as_text=True)
    assert QUESTION in page and ANSWER in page
    with runtime.session_factory() as session:
        assert all(ANSWER.encode() not in m.armored for m in session.scalars(select(Message)))


def test_a_reply_signed_by_another_agency_is_refused_with_a_reason(
    send_tip: SendTip,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    runtime: Runtime,
) -> None:
    tip = send_tip()
    forged = partners.seal(b"not from A", recipient=intake_keyring.fingerprint, signer="agency-b")
    sent = client.post(
        f"/api/v1/tips/{tip.id}/messages",
        data=forged,
        content_type="application/pgp-encrypted",
        headers=agencies["agency-a"].headers,
    )
    tasks.check_reply(runtime.job_context(), sent.get_json()["id"])
    checked = client.get(sent.get_json()["status_url"], headers=agencies["agency-a"].headers)
    assert checked.get_json() == {
        "id": sent.get_json()["id"],
        "status": "rejected",
        "reason": "the reply is not signed by your agency's registered key",
    }


def test_replies_only_to_ones_own_tips_and_only_openpgp(
    send_tip: SendTip,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    tip = send_tip()
    sealed = partners.seal(b"hello", recipient=intake_keyring.fingerprint, signer="agency-b")
    b = agencies["agency-b"]
    elsewhere = client.post(
        f"/api/v1/tips/{tip.id}/messages",
        data=sealed,
        content_type="application/pgp-encrypted",
        headers=b.headers,
    )
    assert elsewhere.status_code == 404
    plain = client.post(
        f"/api/v1/tips/{tip.id}/messages",
        data=b"just text",
        content_type="application/pgp-encrypted",
        headers=agencies["agency-a"].headers,
    )
    assert plain.status_code == 400
    assert plain.get_json()["error"]["code"] == "not_an_openpgp_message"


def test_the_partner_portal_shows_the_question_and_gives_it_sealed_for_the_agencys_key(
    app: Flask,
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
) -> None:
    tip = send_tip()
    ask(browser, tip)
    officer = enrolled(
        runtime, "officer@agency-a.example", "partner", agency_id=agencies["agency-a"].id
    )
    portal = signed_in_client(app, runtime, officer)
    page = portal.get(f"/partner/tips/{tip.id}").get_data(as_text=True)
    assert "a request for more information" in page
    # Opened with the portal key, in memory, for the agency's officer; the read is audited
    # and the analyst sees the message was read.
    assert QUESTION in page
    [read] = audit_records(runtime, "message.read")
    assert (read.actor, read.subject) == (f"user:{officer.id}", f"tip:{tip.id}")
    with runtime.session_factory() as session:
        [sent] = session.scalars(select(Message).where(Message.tip_id == tip.id)).all()
        assert sent.fetched_at is not None
    # The sealed original, for the agency's own gpg (which also checks the centre's signature).
    link = re.search(r'href="(/partner/tips/[^"]+\.asc)"', page)
    assert link
    download = portal.get(link.group(1))
    assert download.headers["Content-Disposition"].startswith("attachment;")
    plaintext, _status = gpg_decrypt(partners, download.get_data(as_text=True))
    assert json.loads(plaintext)["text"] == QUESTION
    other = enrolled(
        runtime, "officer@agency-b.example", "partner", agency_id=agencies["agency-b"].id
    )
    assert signed_in_client(app, runtime, other).get(link.group(1)).status_code == 404
    assert QUESTION not in (
        signed_in_client(app, runtime, other).get(f"/partner/tips/{tip.id}").get_data(as_text=True)
    )


def test_an_officer_answers_in_the_portal_and_the_answer_is_checked_and_joins_the_thread(
    app: Flask,
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    intake_keyring: IntakeKeyring,
) -> None:
    # The web-form key on record since before this test's clock (the fixture recorded it at
    # the machine's time, later than the desk's manual clock).
    with runtime.session_factory.begin() as session:
        session.execute(update(WebFormKey).values(created_at=runtime.clock.now()))
    tip = send_tip()
    ask(browser, tip)
    a = agencies["agency-a"]
    officer = enrolled(runtime, "officer@agency-a.example", "partner", agency_id=a.id)
    portal = signed_in_client(app, runtime, officer)
    page = portal.get(f"/partner/tips/{tip.id}").get_data(as_text=True)
    empty = portal.post(f"/partner/tips/{tip.id}/messages", data={"csrf_token": csrf(page)})
    assert empty.status_code == 400
    assert "Write your answer to the centre." in empty.get_data(as_text=True)

    sent = portal.post(
        f"/partner/tips/{tip.id}/messages",
        data={"csrf_token": csrf(page), "text": ANSWER.replace(". ", ".\r\n\r\n", 1)},
    )
    assert sent.status_code == 302
    with runtime.session_factory() as session:
        [reply] = session.scalars(select(Message).where(Message.direction == "from_partner"))
        # Sealed in memory: nothing of the answer is stored in clear.
        assert b"Second number" not in reply.armored
        assert reply.submitted_by_user_id == officer.id
    [received] = audit_records(runtime, "message.received")
    assert (received.actor, received.details) == (
        f"user:{officer.id}",
        {"message": reply.id, "via": "portal"},
    )
    shown = portal.get(f"/partner/tips/{tip.id}").get_data(as_text=True)
    # The officer's own words, opened with the portal key, and where the check stands.
    assert "being checked" in shown and "Attached separately: the logs." in shown

    assert tasks.check_reply(runtime.job_context(), reply.id) is None
    with runtime.session_factory() as session:
        checked = session.get(Message, reply.id)
        assert checked is not None
        assert (checked.status, checked.reason) == ("accepted", None)
        assert checked.key_fingerprint == intake_keyring.web_form_fingerprint
    assert "received by the centre" in portal.get(f"/partner/tips/{tip.id}").get_data(as_text=True)
    staff = browser("ana").get(f"/desk/tips/{tip.id}").get_data(as_text=True)
    assert "Attached separately: the logs." in staff and "Second number" in staff

    # Another agency's officer cannot answer about this tip.
    other = signed_in_client(
        app,
        runtime,
        enrolled(runtime, "officer@agency-b.example", "partner", agency_id=agencies["agency-b"].id),
    )
    other_page = other.get("/partner/tips/new").get_data(as_text=True)
    refused = other.post(
        f"/partner/tips/{tip.id}/messages", data={"csrf_token": csrf(other_page), "text": "x"}
    )
    assert refused.status_code == 404


def test_a_reply_sent_by_the_api_signed_with_the_web_form_key_is_refused(
    send_tip: SendTip,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    intake_keyring: IntakeKeyring,
    runtime: Runtime,
) -> None:
    """The web-form key speaks for an officer only in the portal: a reply sent by the API in
    its name (from a stolen partner-facing host, say) is not the agency's."""
    tip = send_tip()
    a = agencies["agency-a"]
    assert runtime.web_form_keyring is not None
    sealed = runtime.web_form_keyring.encrypt(
        ANSWER.encode(),
        [intake_keyring.fingerprint],
        sign_with=intake_keyring.web_form_fingerprint,
    )
    sent = client.post(
        f"/api/v1/tips/{tip.id}/messages",
        data=sealed,
        content_type="application/pgp-encrypted",
        headers=a.headers,
    )
    assert sent.status_code == 202
    reply = sent.get_json()
    tasks.check_reply(runtime.job_context(), reply["id"])
    checked = client.get(reply["status_url"], headers=a.headers).get_json()
    assert (checked["status"], checked["reason"]) == (
        "rejected",
        "the reply is not signed by your agency's registered key",
    )


def test_only_the_messages_an_agency_was_given_count_as_fetched(
    browser: Browser,
    send_tip: SendTip,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    runtime: Runtime,
) -> None:
    tip = send_tip()
    ask(browser, tip, "First question.")
    ask(browser, tip, "Second question.")
    a = agencies["agency-a"]
    first = client.get("/api/v1/messages?limit=1", headers=a.headers).get_json()
    assert len(first["messages"]) == 1 and first["next"] is not None
    with runtime.session_factory() as session:
        fetched = [
            m.fetched_at is not None for m in session.scalars(select(Message).order_by(Message.id))
        ]
    assert fetched == [True, False]
