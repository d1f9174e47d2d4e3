"""Handling markings enforced when a referral leaves the centre: a hand-over to a unit is
refused for what an agency marked TLP:RED or TLP:AMBER+STRICT, saying which marking, whose, and
what would allow it; the lead asks the agency's consent through the message channel, the
agency answers with a signed reply, the lead records it, and only then does the hand-over go."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.accounts.models import Unit
from referrals.casework.models import Referral
from referrals.handling.models import HandlingConsent
from referrals.intake.models import Tip
from referrals.messages import tasks
from referrals.messages.models import Message
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys
from tests.tipline.admin.people import audit_records, csrf
from tests.tipline.casework.test_referral_pages import move, stage
from tests.tipline.desk.conftest import SendTip
from tests.tipline.desk.test_messages import gpg_decrypt
from tipline.runtime import Runtime

Browser = Callable[[str], FlaskClient]
LUZON = "Luzon child protection unit"
CEBU = "Cebu cybercrime unit"


def referral_of(
    browser: Browser, send_tip: SendTip, runtime: Runtime, *marks: tuple[str, str]
) -> int:
    """One tip per (agency, TLP) taken into one referral, which is then investigated."""
    ana = browser("ana")
    reference = None
    for agency, tlp in marks:
        tip = send_tip(agency, handling={"tlp": tlp})
        page = ana.get(f"/desk/tips/{tip.id}").get_data(as_text=True)
        if reference is None:
            answer = ana.post(f"/desk/tips/{tip.id}/accept", data={"csrf_token": csrf(page)})
            with runtime.session_factory() as session:
                reference = session.scalars(select(Referral.reference)).one()
        else:
            answer = ana.post(
                f"/desk/tips/{tip.id}/merge",
                data={"csrf_token": csrf(page), "referral": reference},
            )
        assert answer.status_code == 302
    with runtime.session_factory() as session:
        referral_id = session.scalars(select(Referral.id)).one()
    move(browser("lea"), referral_id, "investigate")
    return referral_id


def unit(runtime: Runtime, name: str) -> int:
    with runtime.session_factory() as session:
        return session.scalars(select(Unit.id).where(Unit.name == name)).one()


def hand_over(browser: Browser, runtime: Runtime, referral_id: int, to: str = LUZON) -> str:
    _status, text = move(browser("lea"), referral_id, "hand_over", unit_id=str(unit(runtime, to)))
    return text


@pytest.mark.parametrize(
    ("tlp", "allowed", "meaning"),
    [
        ("CLEAR", True, None),
        ("GREEN", True, None),
        ("AMBER", True, None),
        ("AMBER+STRICT", False, "the recipient organisation only"),
        ("RED", False, "the named recipients only"),
    ],
)
def test_a_hand_over_is_refused_for_each_marking_that_needs_consent(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    tlp: str,
    allowed: bool,
    meaning: str | None,
) -> None:
    referral_id = referral_of(browser, send_tip, runtime, ("agency-a", tlp))
    text = hand_over(browser, runtime, referral_id)
    if allowed:
        assert stage(runtime, referral_id) == "handover_pending"
        return
    assert stage(runtime, referral_id) == "investigation"
    name = agencies["agency-a"].name
    assert (
        f"may not go to {LUZON} without the consent of the agency that marked it: "
        f"TLP:{tlp} from {name} ({meaning}). Ask {name} for consent to share with {LUZON}"
    ) in text.replace("&#34;", '"').replace("&#39;", "'")


def test_a_referral_takes_its_strictest_marking_and_names_only_the_agencies_that_restrict_it(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
) -> None:
    referral_id = referral_of(
        browser, send_tip, runtime, ("agency-a", "GREEN"), ("agency-b", "RED")
    )
    page = browser("lea").get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "<strong>TLP:RED</strong> (the named recipients only)" in page
    restricted = page[page.index('id="restrictions"') :].split("</ul>")[0]
    assert agencies["agency-b"].name in restricted and agencies["agency-a"].name not in restricted
    text = hand_over(browser, runtime, referral_id)
    assert f"TLP:RED from {agencies['agency-b'].name}" in text
    assert f"TLP:GREEN from {agencies['agency-a'].name}" not in text


def ask_consent(
    browser: Browser, runtime: Runtime, referral_id: int, agency_id: int, to: str
) -> None:
    lea = browser("lea")
    page = lea.get(f"/referrals/{referral_id}").get_data(as_text=True)
    answer = lea.post(
        f"/referrals/{referral_id}/consents",
        data={
            "csrf_token": csrf(page),
            "agency_id": str(agency_id),
            "recipient": f"unit:{unit(runtime, to)}",
            "text": "The unit plans a safeguarding visit.",
        },
    )
    assert answer.status_code == 302


def reply(
    client: FlaskClient,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    runtime: Runtime,
    agency: RegisteredAgency,
    tip_id: str,
    text: bytes,
) -> int:
    """The agency's answer, signed with its key and sent by the API, then checked."""
    sealed = partners.seal(text, recipient=intake_keyring.fingerprint, signer=agency.key_name)
    sent = client.post(
        f"/api/v1/tips/{tip_id}/messages",
        data=sealed,
        headers=agency.headers | {"Content-Type": "application/pgp-encrypted"},
    )
    assert sent.status_code == 202
    message_id = sent.get_json()["id"]
    tasks.check_reply(runtime.job_context(), message_id)
    return int(message_id)


def record(browser: Browser, referral_id: int, consent_id: int, reply_id: int, answer: str) -> str:
    """The lead records the agency's answer: the page it leads back to."""
    lea = browser("lea")
    page = lea.get(f"/referrals/{referral_id}").get_data(as_text=True)
    done = lea.post(
        f"/referrals/{referral_id}/consents/{consent_id}",
        data={"csrf_token": csrf(page), "reply_id": str(reply_id), "answer": answer},
    )
    assert done.status_code == 302
    return lea.get(done.headers["Location"]).get_data(as_text=True)


def test_consent_asked_through_the_channel_answered_and_recorded_lets_the_hand_over_go(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    people: dict,
) -> None:
    a = agencies["agency-a"]
    referral_id = referral_of(browser, send_tip, runtime, ("agency-a", "RED"))
    ask_consent(browser, runtime, referral_id, a.id, LUZON)

    # The agency's own gpg reads the request, signed by the centre.
    [item] = client.get("/api/v1/messages", headers=a.headers).get_json()["messages"]
    assert item["kind"] == "consent_request"
    plaintext, status = gpg_decrypt(partners, item["message"])
    assert f"[GNUPG:] VALIDSIG {intake_keyring.fingerprint}" in status
    document = json.loads(plaintext)
    assert (document["marking"], document["recipient"]) == (
        "RED",
        {"kind": "unit", "name": LUZON},
    )
    assert f"marked TLP:RED, with {LUZON}" in document["text"]
    assert document["text"].endswith("The unit plans a safeguarding visit.")
    with runtime.session_factory() as session:
        consent = session.scalars(select(HandlingConsent)).one()
        assert consent.status == "requested"
    [asked] = audit_records(runtime, "consent.requested")
    assert asked.subject == f"referral:{referral_id}"

    # Still refused while the answer is not recorded; the page offers the reply to record.
    hand_over(browser, runtime, referral_id)
    assert stage(runtime, referral_id) == "investigation"
    answer_id = reply(
        client, partners, intake_keyring, runtime, a, item["tip_id"], b"We consent to Luzon."
    )
    page = browser("lea").get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "We consent to Luzon." in page and "Record its answer" in page
    assert "Recorded: consent granted." in record(
        browser, referral_id, consent.id, answer_id, "granted"
    )
    assert [r.details["reply"] for r in audit_records(runtime, "consent.granted")] == [answer_id]

    # Consent to Luzon is not consent to Cebu; to Luzon it goes.
    assert "without the consent" in hand_over(browser, runtime, referral_id, to=CEBU)
    hand_over(browser, runtime, referral_id, to=LUZON)
    assert stage(runtime, referral_id) == "handover_pending"


def test_a_refusal_is_recorded_and_an_answer_must_rest_on_the_agencys_own_reply(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    a, b = agencies["agency-a"], agencies["agency-b"]
    referral_id = referral_of(
        browser, send_tip, runtime, ("agency-a", "AMBER+STRICT"), ("agency-b", "GREEN")
    )
    ask_consent(browser, runtime, referral_id, a.id, LUZON)
    with runtime.session_factory() as session:
        consent = session.scalars(select(HandlingConsent)).one()
        a_tip = session.scalars(select(Message.tip_id).where(Message.agency_id == a.id)).one()
        b_tip = session.scalars(select(Tip.id).where(Tip.agency_id == b.id)).one()
    # Agency B's reply (to its own tip) cannot stand for agency A's answer.
    stranger = reply(client, partners, intake_keyring, runtime, b, b_tip, b"Fine by us.")
    page = record(browser, referral_id, consent.id, stranger, "granted")
    assert "choose the agency&#39;s reply that gives its answer" in page
    # Agency A refuses; the refusal is recorded and the hand-over stays refused.
    no = reply(client, partners, intake_keyring, runtime, a, a_tip, b"We do not consent.")
    assert "Recorded: consent refused." in record(browser, referral_id, consent.id, no, "refused")
    with runtime.session_factory() as session:
        assert session.get(HandlingConsent, consent.id).status == "refused"  # type: ignore[union-attr]
    assert "without the consent" in hand_over(browser, runtime, referral_id)
    assert re.search(
        r"Consent refused</strong>, recorded",
        browser("lea").get(f"/referrals/{referral_id}").get_data(as_text=True),
    )
    # Only a lead asks or records.
    ana = browser("ana")
    page = ana.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Ask an agency for its consent" not in page
    assert (
        ana.post(f"/referrals/{referral_id}/consents", data={"csrf_token": csrf(page)}).status_code
        == 403
    )


def merge(browser: Browser, runtime: Runtime, tip_id: str, referral_id: int) -> str:
    """Agency's tip merged by the analyst into the referral: the page it leads back to."""
    ana = browser("ana")
    with runtime.session_factory() as session:
        reference = session.get(Referral, referral_id).reference  # type: ignore[union-attr]
    page = ana.get(f"/desk/tips/{tip_id}").get_data(as_text=True)
    answer = ana.post(
        f"/desk/tips/{tip_id}/merge", data={"csrf_token": csrf(page), "referral": reference}
    )
    assert answer.status_code == 302
    return ana.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_restricted_tip_is_not_merged_into_a_referral_handed_to_a_unit(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
) -> None:
    referral_id = referral_of(browser, send_tip, runtime, ("agency-a", "GREEN"))
    hand_over(browser, runtime, referral_id)
    assert stage(runtime, referral_id) == "handover_pending"
    red = send_tip("agency-b", handling={"tlp": "RED"})
    page = merge(browser, runtime, red.id, referral_id).replace("&#39;", "'")
    assert "is handed to a unit, and this referral holds information that may not go to" in page
    assert f"TLP:RED from {agencies['agency-b'].name}" in page
    assert "or accept this tip into a referral of its own" in page
    with runtime.session_factory() as session:
        assert session.get(Tip, red.id).status == "in_triage"  # type: ignore[union-attr]
        assert session.get(Referral, referral_id).tlp == "GREEN"  # type: ignore[union-attr]


def test_a_consent_covers_the_tips_it_named_not_one_merged_later(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    a = agencies["agency-a"]
    referral_id = referral_of(browser, send_tip, runtime, ("agency-a", "RED"))
    ask_consent(browser, runtime, referral_id, a.id, LUZON)
    [item] = client.get("/api/v1/messages", headers=a.headers).get_json()["messages"]
    yes = reply(client, partners, intake_keyring, runtime, a, item["tip_id"], b"We consent.")
    with runtime.session_factory() as session:
        consent = session.scalars(select(HandlingConsent)).one()
        assert consent.tip_ids == [item["tip_id"]]
    record(browser, referral_id, consent.id, yes, "granted")
    later = send_tip("agency-a", handling={"tlp": "RED"})
    merge(browser, runtime, later.id, referral_id)
    text = hand_over(browser, runtime, referral_id)
    assert f"TLP:RED from {a.name}" in text  # the later tip was never asked about
    assert stage(runtime, referral_id) == "investigation"
