"""The analysts' desk: the queue (nothing decrypted), the tip page (content for the team only,
audited, step-up after a quiet period), claims and decisions (one wins), what partners see."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.accounts.models import User
from referrals.accounts.services import CONTENT_QUIET
from referrals.casework.models import Referral, ReferralAgency
from referrals.intake.models import Attachment, Tip, TipStatus
from referrals.triage.desk import AlreadyDecided, TriageDesk
from tests.clock import ManualClock
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import NARRATIVE_MARK, SELECTOR_MARKS, PartnerKeys, split_first_packet
from tests.tipline.admin.people import Person, audit_records, csrf
from tests.tipline.desk.conftest import SendTip
from tipline.runtime import Runtime

QUIET = {"urgency": {"imminent_danger": False, "ongoing_abuse": False, "live_streaming": False}}
Browser = Callable[[str], FlaskClient]


def rows_of(page: str) -> list[str]:
    """Tracking numbers in the queue's order."""
    return re.findall(r'<a href="/desk/tips/[^"]+"><code>(TL-[^<]+)</code></a>', page)


def test_the_queue_lists_the_teams_tips_most_urgent_first_and_decrypts_nothing(
    browser: Browser, send_tip: SendTip
) -> None:
    routine = send_tip(**QUIET)
    urgent = send_tip()
    bangkok = send_tip(location={"country": "TH"})
    page = browser("ana").get("/desk").get_data(as_text=True)
    assert rows_of(page) == [urgent.tracking_number, routine.tracking_number]
    assert "imminent danger reported (+60)" in page  # the reasons beside the priority
    assert bangkok.tracking_number not in page
    assert NARRATIVE_MARK not in page
    assert not any(mark in page for mark in SELECTOR_MARKS)
    assert rows_of(browser("tom").get("/desk").get_data(as_text=True)) == [bangkok.tracking_number]


def test_the_queue_filters_and_pages_by_keyset(
    browser: Browser, send_tip: SendTip, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tipline.desk.views.PAGE_SIZE", 2)
    for changes in (QUIET, QUIET, {"location": {"country": "PH"}, "selectors": []}, {}, {}):
        send_tip(**changes)
    with runtime.session_factory() as session:
        tips = session.scalars(select(Tip).order_by(Tip.priority, Tip.sla_due_at, Tip.id)).all()
        expected = [tip.tracking_number for tip in tips]
        p1 = [tip.tracking_number for tip in tips if tip.priority == "P1"]
    assert len({tip.priority for tip in tips}) >= 2
    ana = browser("ana")
    seen: list[str] = []
    page = ana.get("/desk").get_data(as_text=True)
    while True:
        found = rows_of(page)
        assert len(found) <= 2
        seen += found
        link = re.search(r'href="(/desk\?[^"]*after=[^"]+)"', page)
        if link is None:
            break
        page = ana.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert seen == expected  # every tip once, in the queue's order, across pages
    filtered = rows_of(ana.get("/desk?priority=P1").get_data(as_text=True))
    assert filtered == p1[:2]
    assert ana.get("/desk?after=P1~not-a-time~x").status_code == 400


def test_two_analysts_claiming_at_once_one_wins(
    runtime: Runtime, send_tip: SendTip, people: dict[str, Person]
) -> None:
    tip = send_tip()
    barrier = threading.Barrier(2, timeout=60)
    outcomes: dict[str, str] = {}

    def claim(name: str) -> None:
        with runtime.session_factory() as session:
            person = session.get(User, people[name].id)
            assert person is not None
            desk = TriageDesk(session, audit=runtime.audit(session), clock=runtime.clock)
            barrier.wait()
            try:
                desk.claim(person, tip.id, address=None)
                outcomes[name] = "won"
            except AlreadyDecided:
                outcomes[name] = "lost"

    threads = [threading.Thread(target=claim, args=(name,)) for name in ("ana", "ben")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(outcomes.values()) == ["lost", "won"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "won")
    with runtime.session_factory() as session:
        assert session.get(Tip, tip.id).assignee_id == people[winner].id  # type: ignore[union-attr]
    assert len(audit_records(runtime, "tip.claimed")) == 1


def test_the_tip_page_shows_content_to_the_team_and_records_each_view(
    browser: Browser, send_tip: SendTip, runtime: Runtime, people: dict[str, Person]
) -> None:
    earlier = send_tip("agency-b")
    tip = send_tip()
    page = browser("ana").get(f"/desk/tips/{tip.id}").get_data(as_text=True)
    assert NARRATIVE_MARK in page
    assert "sunnyday88" in page
    assert earlier.tracking_number in page  # what else the centre holds
    assert "Agency B" in page
    views = audit_records(runtime, "tip.viewed")
    assert [(r.actor, r.subject) for r in views] == [(f"user:{people['ana'].id}", f"tip:{tip.id}")]
    # Another team's analyst is told there is no such tip; an admin and a partner get nothing.
    assert browser("tom").get(f"/desk/tips/{tip.id}").status_code == 404
    admin = browser("root").get(f"/desk/tips/{tip.id}")
    assert admin.status_code == 403
    assert NARRATIVE_MARK not in admin.get_data(as_text=True)
    assert len(audit_records(runtime, "tip.viewed")) == 1


def test_content_asks_for_a_code_after_a_quiet_period_not_while_reading_on(
    browser: Browser, send_tip: SendTip, clock: ManualClock
) -> None:
    tip = send_tip()
    ana = browser("ana")
    for _ in range(3):  # reading on, each time within the quiet period
        clock.advance(seconds=CONTENT_QUIET.total_seconds() - 60)
        assert ana.get(f"/desk/tips/{tip.id}").status_code == 200
    clock.advance(seconds=CONTENT_QUIET.total_seconds() + 1)
    answer = ana.get(f"/desk/tips/{tip.id}")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login/step-up?next=/desk/tips/")
    # Pages that show no content never ask for it: the queue is still there.
    assert ana.get("/desk").status_code == 200


def test_accepting_opens_a_referral_and_the_partner_sees_it_accepted(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
) -> None:
    tip = send_tip()
    ana = browser("ana")
    token = csrf(ana.get(f"/desk/tips/{tip.id}").get_data(as_text=True))
    answer = ana.post(f"/desk/tips/{tip.id}/accept", data={"csrf_token": token})
    assert answer.status_code == 302
    with runtime.session_factory() as session:
        referral = session.scalars(select(Referral)).one()
        decided = session.get(Tip, tip.id)
        assert decided is not None
        assert (decided.status, decided.referral_id) == (TipStatus.ACCEPTED, referral.id)
        assert decided.triaged_at is not None
        assert re.fullmatch(r"RF-2026-\d{6}", referral.reference)  # ids run on across tests
        assert referral.priority == "P1"
    seen = client.get(f"/api/v1/tips/{tip.id}", headers=agencies["agency-a"].headers).get_json()
    assert (seen["status"], seen["reason"]) == ("accepted", None)
    # A second decision on the same tip changes nothing.
    again = ana.post(
        f"/desk/tips/{tip.id}/decline", data={"csrf_token": token, "reason": "duplicate"}
    )
    assert again.status_code == 302
    with runtime.session_factory() as session:
        assert session.get(Tip, tip.id).status == TipStatus.ACCEPTED  # type: ignore[union-attr]


def test_declining_tells_the_partner_why(
    browser: Browser,
    send_tip: SendTip,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    runtime: Runtime,
) -> None:
    tip = send_tip()
    ben = browser("ben")
    token = csrf(ben.get(f"/desk/tips/{tip.id}").get_data(as_text=True))
    assert ben.post(f"/desk/tips/{tip.id}/decline", data={"csrf_token": token}).status_code == 302
    with runtime.session_factory() as session:
        assert session.get(Tip, tip.id).status == TipStatus.IN_TRIAGE  # type: ignore[union-attr]
    ben.post(
        f"/desk/tips/{tip.id}/decline",
        data={"csrf_token": token, "reason": "insufficient_information"},
    )
    seen = client.get(f"/api/v1/tips/{tip.id}", headers=agencies["agency-a"].headers).get_json()
    assert seen["status"] == "declined"
    assert seen["reason"].startswith("declined: not enough information to act on")
    assert [r.details for r in audit_records(runtime, "tip.declined")] == [
        {"reason": "insufficient_information"}
    ]


def test_merging_takes_the_tip_into_the_teams_referral_only(
    browser: Browser, send_tip: SendTip, runtime: Runtime, clock: ManualClock
) -> None:
    first = send_tip(**QUIET)
    clock.advance(hours=1)
    second = send_tip("agency-b")
    ana = browser("ana")
    token = csrf(ana.get(f"/desk/tips/{first.id}").get_data(as_text=True))
    ana.post(f"/desk/tips/{first.id}/accept", data={"csrf_token": token})
    with runtime.session_factory() as session:
        referral = session.scalars(select(Referral)).one()
        assert referral.priority == "P2"
    ana.post(
        f"/desk/tips/{second.id}/merge", data={"csrf_token": token, "referral": "RF-9999-000001"}
    )
    with runtime.session_factory() as session:
        assert session.get(Tip, second.id).status == TipStatus.IN_TRIAGE  # type: ignore[union-attr]
    ana.post(
        f"/desk/tips/{second.id}/merge",
        data={"csrf_token": token, "referral": referral.reference.lower()},
    )
    with runtime.session_factory() as session:
        merged = session.get(Tip, second.id)
        assert merged is not None
        assert (merged.status, merged.referral_id) == (TipStatus.ACCEPTED, referral.id)
        held = session.get(Referral, referral.id)
        assert held is not None
        assert held.priority == "P1"
        # Both agencies are owed its outcome; its clock starts at the first tip.
        owed = set(session.scalars(
            select(ReferralAgency.agency_id).where(ReferralAgency.referral_id == referral.id)
        ))  # fmt: skip
        assert owed == {first.agency_id, second.agency_id}
        assert held.first_tip_at == first.received_at


def test_leads_and_analysts_see_what_is_past_its_sla(
    browser: Browser, send_tip: SendTip, clock: ManualClock
) -> None:
    urgent = send_tip()  # P1: an hour
    # P2 (a day), and sharing nothing with the first (a match would add to its points).
    routine = send_tip(**QUIET, selectors=[{"type": "ip", "value": "198.51.100.9"}])
    lea = browser("lea")
    assert 'id="overdue-banner"' not in lea.get("/desk").get_data(as_text=True)
    clock.advance(hours=2)
    lea = browser("lea")  # signed in again: the first session has long been idle
    page = lea.get("/desk").get_data(as_text=True)
    banner = re.search(r'id="overdue-banner"><strong>([^<]+)</strong>', page)
    assert banner and " ".join(banner.group(1).split()) == (
        "1 tip past the time allowed for a first triage decision."
    )
    assert "overdue since" in page
    only = lea.get("/desk?overdue=y").get_data(as_text=True)
    assert rows_of(only) == [urgent.tracking_number]
    assert routine.tracking_number not in only


def test_a_tip_about_a_case_already_taken_on_says_so_in_its_priority(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    first = send_tip(**QUIET)
    ana = browser("ana")
    token = csrf(ana.get(f"/desk/tips/{first.id}").get_data(as_text=True))
    ana.post(f"/desk/tips/{first.id}/accept", data={"csrf_token": token})
    later = send_tip("agency-b", **QUIET)
    assert later.priority_reasons is not None
    assert "shares identifiers with 1 open referral (+20)" in later.priority_reasons
    assert "shares identifiers with 1 other tip (+10)" in later.priority_reasons
    assert later.priority == "P1"  # 50 for the facts, 30 for what the centre holds


def test_an_attachment_is_downloaded_decrypted_after_a_warning_and_recorded(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    people: dict[str, Person],
) -> None:
    tip = send_tip()
    payload = b"\x89PNG fictional evidence " + bytes(range(256)) * 4000
    sealed = partners.seal(
        payload, recipient=intake_keyring.fingerprint, signer=None, armored=False
    )
    sent = client.post(
        f"/api/v1/tips/{tip.id}/attachments",
        data=sealed,
        content_type="application/octet-stream",
        headers=agencies["agency-a"].headers,
    )
    assert sent.status_code == 201, sent.get_data(as_text=True)
    attachment_id = sent.get_json()["id"]
    ana = browser("ana")
    page = ana.get(f"/desk/tips/{tip.id}").get_data(as_text=True)
    warning_url = f"/desk/tips/{tip.id}/attachments/{attachment_id}"
    assert f'href="{warning_url}"' in page
    warning = ana.get(warning_url).get_data(as_text=True)
    assert "it may contain images or video of children being abused" in warning
    assert audit_records(runtime, "attachment.downloaded") == []  # nothing yet
    download = ana.post(f"{warning_url}/download", data={"csrf_token": csrf(warning)})
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.get_data() == payload
    [record] = audit_records(runtime, "attachment.downloaded")
    assert (record.actor, record.subject) == (f"user:{people['ana'].id}", f"tip:{tip.id}")
    assert browser("tom").get(warning_url).status_code == 404
    assert browser("root").get(warning_url).status_code == 403


def test_an_unrouted_tip_a_lead_takes_on_becomes_that_teams_and_no_one_elses(
    browser: Browser, send_tip: SendTip, runtime: Runtime, people: dict[str, Person]
) -> None:
    tip = send_tip(location={"country": "VN"})  # no team covers Viet Nam
    assert tip.team_id is None
    lea = browser("lea")
    assert tip.tracking_number in lea.get("/desk?queue=unrouted").get_data(as_text=True)
    assert browser("lou").get(f"/desk/tips/{tip.id}").status_code == 200  # any lead, unrouted
    token = csrf(lea.get(f"/desk/tips/{tip.id}").get_data(as_text=True))
    lea.post(f"/desk/tips/{tip.id}/accept", data={"csrf_token": token})
    with runtime.session_factory() as session:
        taken = session.get(Tip, tip.id)
        lea_team = session.get(User, people["lea"].id).team_id  # type: ignore[union-attr]
        assert taken is not None and taken.team_id == lea_team
    assert browser("ana").get(f"/desk/tips/{tip.id}").status_code == 200  # Manila's now
    assert browser("lou").get(f"/desk/tips/{tip.id}").status_code == 404  # not Bangkok's


def test_a_claimed_tip_is_decided_by_its_claimant_or_a_lead(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    tip = send_tip()
    ana, ben = browser("ana"), browser("ben")
    token = csrf(ana.get(f"/desk/tips/{tip.id}").get_data(as_text=True))
    ana.post(f"/desk/tips/{tip.id}/claim", data={"csrf_token": token})
    ben_token = csrf(ben.get(f"/desk/tips/{tip.id}").get_data(as_text=True))
    ben.post(f"/desk/tips/{tip.id}/decline", data={"csrf_token": ben_token, "reason": "duplicate"})
    with runtime.session_factory() as session:
        assert session.get(Tip, tip.id).status == TipStatus.IN_TRIAGE  # type: ignore[union-attr]
    lea = browser("lea")
    lea_token = csrf(lea.get(f"/desk/tips/{tip.id}").get_data(as_text=True))
    lea.post(f"/desk/tips/{tip.id}/decline", data={"csrf_token": lea_token, "reason": "duplicate"})
    with runtime.session_factory() as session:
        declined = session.get(Tip, tip.id)
        assert declined is not None and declined.status == TipStatus.DECLINED
        # A duplicate may be another agency's report: the partner is not told it exists.
        assert declined.reason == "declined: no further action will be taken on this tip"


def literal_packet(content: bytes) -> bytes:
    """An OpenPGP literal data packet (tag 11, new format): content in clear."""
    body = b"b\x00\x00\x00\x00\x00" + content
    assert len(body) < 192
    return bytes([0xC0 | 11, len(body)]) + body


@pytest.mark.parametrize("shape", ["in clear after a session key", "nine session keys"])
def test_a_file_not_shaped_like_an_encrypted_message_is_refused_at_upload(
    send_tip: SendTip,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    runtime: Runtime,
    shape: str,
) -> None:
    tip = send_tip()
    sealed = partners.seal(
        b"x" * 100, recipient=intake_keyring.fingerprint, signer=None, armored=False
    )
    session_key, encrypted = split_first_packet(sealed)
    body = (
        session_key + literal_packet(b"NOT-ENCRYPTED-CONTENT")
        if shape == "in clear after a session key"
        else session_key * 9 + encrypted
    )
    sent = client.post(
        f"/api/v1/tips/{tip.id}/attachments",
        data=body,
        content_type="application/octet-stream",
        headers=agencies["agency-a"].headers,
    )
    assert sent.status_code == 400
    assert sent.get_json()["error"]["code"] == "not_an_openpgp_message"
    with runtime.session_factory() as session:
        assert session.scalars(select(Attachment)).all() == []
