"""Feedback across the border: a lead sees exactly what would leave for one agency and
releases it; the agency's own gpg opens and verifies it from the API, its officers read it in
the portal, the lead sees it was fetched; nobody else learns anything of it. And the coarse
status the agencies see of their tips as the referral moves."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.casework.models import Referral
from referrals.casework.services import Casework
from referrals.feedback.models import Feedback
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys
from tests.tipline.admin.people import audit_records, csrf, enrolled, signed_in_client
from tests.tipline.desk.conftest import SendTip
from tests.tipline.desk.test_messages import gpg_decrypt
from tipline.runtime import Runtime

Browser = Callable[[str], FlaskClient]
TEXT = "An operation was conducted on the case.\n\nProsecution is under way."


def referral_of_two_agencies(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> tuple[int, str, str]:
    """Agency A's tip accepted into a referral, agency B's merged into it."""
    first, second = send_tip("agency-a"), send_tip("agency-b")
    ana = browser("ana")
    page = ana.get(f"/desk/tips/{first.id}").get_data(as_text=True)
    assert (
        ana.post(f"/desk/tips/{first.id}/accept", data={"csrf_token": csrf(page)}).status_code
        == 302
    )
    with runtime.session_factory() as session:
        referral = session.scalars(select(Referral)).one()
    page = ana.get(f"/desk/tips/{second.id}").get_data(as_text=True)
    merged = ana.post(
        f"/desk/tips/{second.id}/merge",
        data={"csrf_token": csrf(page), "referral": referral.reference},
    )
    assert merged.status_code == 302
    return referral.id, first.tracking_number, second.tracking_number


def advance(runtime: Runtime, referral_id: int, who: int, name: str, **values: str) -> None:
    with runtime.session_factory() as session:
        from referrals.accounts.models import User

        person = session.get(User, who)
        assert person is not None
        Casework(
            session, audit=runtime.audit(session), clock=runtime.clock, keyring=runtime.keyring
        ).advance(person, referral_id, name, values)


def preview(lead: FlaskClient, referral_id: int, agency_id: int, **fields: str) -> str:
    form = lead.get(f"/referrals/{referral_id}/feedback/new").get_data(as_text=True)
    answer = lead.post(
        f"/referrals/{referral_id}/feedback/preview",
        data={"csrf_token": csrf(form), "agency_id": str(agency_id), "text": TEXT, **fields},
    )
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def hidden(page: str) -> dict[str, str]:
    """The release form's fields as the browser would send them back."""
    start = page.index('action="/referrals/')
    form = page[start : page.index("</form>", start)]
    return {
        name: value.replace("&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")
        for name, value in re.findall(r'name="([a-z_]+)" type="hidden" value="([^"]*)"', form)
    } | {"csrf_token": csrf(page)}


def test_a_lead_releases_exactly_what_was_shown_and_the_agencys_gpg_reads_it(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    people: dict,
) -> None:
    referral_id, number_a, number_b = referral_of_two_agencies(browser, send_tip, runtime)
    lea = browser("lea")
    a, b = agencies["agency-a"], agencies["agency-b"]

    page = preview(lea, referral_id, a.id)
    # Exactly what would leave: to A, about A's tip only, the stage A already sees, the text.
    assert "What would leave" in page
    assert number_a in page and number_b not in page
    assert 'id="release-stage">accepted<' in page
    assert 'id="release-outcome">not given<' in page
    assert "Prosecution is under way." in page
    assert runtime.session_factory().scalars(select(Feedback)).all() == []  # nothing yet

    released = lea.post(f"/referrals/{referral_id}/feedback", data=hidden(page))
    assert released.status_code == 302
    with runtime.session_factory() as session:
        stored = session.scalars(select(Feedback)).one()
        assert b"Prosecution" not in stored.armored  # sealed, never in clear
    [record] = audit_records(runtime, "feedback.released")
    assert (record.actor, record.subject) == (f"user:{people['lea'].id}", f"referral:{referral_id}")
    assert "Prosecution" not in json.dumps(record.details)
    referral_page = lea.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Prosecution is under way." in referral_page
    assert "not yet fetched by the agency" in referral_page

    # Agency B is told nothing; agency A's own gpg opens it and finds the centre's signature.
    assert client.get("/api/v1/feedback", headers=b.headers).get_json()["feedback"] == []
    listing = client.get("/api/v1/feedback", headers=a.headers).get_json()
    [item] = listing["feedback"]
    assert listing["next"] is None
    plaintext, status = gpg_decrypt(partners, item["message"])
    assert f"[GNUPG:] VALIDSIG {intake_keyring.fingerprint}" in status
    document = json.loads(plaintext)
    assert document["schema"] == "tipline.feedback/1"
    assert document["text"] == TEXT
    assert [tip["tracking_number"] for tip in document["tips"]] == [number_a]
    assert (document["stage"], document["outcome"]) == ("accepted", None)
    assert item["tip_ids"] == [tip["id"] for tip in document["tips"]]
    # The lead sees it arrived; a second fetch changes nothing; the cursor pages on.
    assert [r.actor for r in audit_records(runtime, "feedback.fetched")] == [f"agency:{a.id}"]
    assert "fetched by the agency" in lea.get(f"/referrals/{referral_id}").get_data(as_text=True)
    client.get("/api/v1/feedback", headers=a.headers)
    assert len(audit_records(runtime, "feedback.fetched")) == 1
    later = client.get(f"/api/v1/feedback?cursor={item['id']}", headers=a.headers).get_json()
    assert later["feedback"] == []


def test_the_outcome_leaves_only_when_the_lead_adds_it(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    people: dict,
) -> None:
    referral_id, _a, _b = referral_of_two_agencies(browser, send_tip, runtime)
    lea = browser("lea")
    a = agencies["agency-a"]
    # No outcome recorded yet: asking for the counts is refused, nothing leaves.
    page = preview(lea, referral_id, a.id, include_outcome="y")
    assert "No outcome is recorded on this referral yet" in page
    with runtime.session_factory() as session:
        session.execute(
            Referral.__table__.update().values(children_safeguarded=5, suspects_arrested=1)
        )
        session.commit()
    page = preview(lea, referral_id, a.id, include_outcome="y")
    assert 'id="release-outcome">5 children safeguarded, 1 suspects arrested<' in page
    assert lea.post(f"/referrals/{referral_id}/feedback", data=hidden(page)).status_code == 302


def test_nothing_leaves_if_the_referral_moved_since_the_lead_looked(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    people: dict,
) -> None:
    referral_id, _a, _b = referral_of_two_agencies(browser, send_tip, runtime)
    lea = browser("lea")
    page = preview(lea, referral_id, agencies["agency-a"].id)
    advance(runtime, referral_id, people["ana"].id, "investigate")  # meanwhile
    again = lea.post(f"/referrals/{referral_id}/feedback", data=hidden(page))
    assert again.status_code == 200
    text = again.get_data(as_text=True)
    assert "Nothing was released: the referral changed" in text
    assert 'id="release-stage">under investigation<' in text  # the new version, to look at
    assert runtime.session_factory().scalars(select(Feedback)).all() == []
    assert lea.post(f"/referrals/{referral_id}/feedback", data=hidden(text)).status_code == 302


def test_only_the_referrals_lead_writes_feedback_and_only_to_its_agencies(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    people: dict,
) -> None:
    referral_id, _a, _b = referral_of_two_agencies(browser, send_tip, runtime)
    assert browser("ana").get(f"/referrals/{referral_id}/feedback/new").status_code == 403
    assert browser("oli").get(f"/referrals/{referral_id}/feedback/new").status_code == 403
    assert browser("lou").get(f"/referrals/{referral_id}/feedback/new").status_code == 404
    # An agency with no tip in the referral is refused, even if its id is sent by hand.
    with runtime.session_factory() as session:
        from referrals.intake.models import Agency

        stranger = Agency(name="Agency C", country="FR", created_at=runtime.clock.now())
        session.add(stranger)
        session.commit()
        stranger_id = stranger.id
    page = preview(browser("lea"), referral_id, stranger_id)
    assert "Choose an agency whose tips are in this referral." in page
    assert runtime.session_factory().scalars(select(Feedback)).all() == []


def test_agencies_see_the_coarse_stage_of_their_tips_and_officers_read_feedback_in_the_portal(
    app,
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    people: dict,
) -> None:
    referral_id, number_a, _b = referral_of_two_agencies(browser, send_tip, runtime)
    a, b = agencies["agency-a"], agencies["agency-b"]
    [first] = client.get("/api/v1/tips", headers=a.headers).get_json()["tips"]
    assert first["status"] == "accepted"
    advance(runtime, referral_id, people["ana"].id, "investigate")
    status = client.get(f"/api/v1/tips/{first['id']}", headers=a.headers).get_json()
    assert (status["status"], status["reason"]) == ("under_investigation", None)
    # The other agency cannot reach A's tip, whatever stage it is at.
    assert client.get(f"/api/v1/tips/{first['id']}", headers=b.headers).status_code == 404

    lea = browser("lea")
    page = preview(lea, referral_id, a.id)
    assert lea.post(f"/referrals/{referral_id}/feedback", data=hidden(page)).status_code == 302
    officer = enrolled(runtime, "officer@agency-a.example", "partner", agency_id=a.id)
    portal = signed_in_client(app, runtime, officer)
    listing = portal.get("/partner/tips").get_data(as_text=True)
    assert 'data-status="under_investigation">Under investigation<' in listing
    feedback = portal.get("/partner/feedback")
    assert feedback.headers["Cache-Control"] == "no-store"
    assert "Prosecution is under way." in feedback.get_data(as_text=True)
    assert number_a in feedback.get_data(as_text=True)
    tip_page = portal.get(f"/partner/tips/{first['id']}").get_data(as_text=True)
    assert "Prosecution is under way." in tip_page
    assert [r.actor for r in audit_records(runtime, "feedback.read")] == [f"user:{officer.id}"]
    other = enrolled(runtime, "officer@agency-b.example", "partner", agency_id=b.id)
    assert "Prosecution" not in signed_in_client(app, runtime, other).get(
        "/partner/feedback"
    ).get_data(as_text=True)


def test_at_every_stage_the_agency_sees_its_coarse_status_and_nothing_else(
    app,
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    people: dict,
) -> None:
    from referrals.accounts.models import Unit
    from referrals.casework.models import ReferralStage
    from referrals.operations.models import Operation
    from tests.referrals.casework.conftest import Cast
    from tests.referrals.casework.test_lifecycle import walk_to

    told = {
        ReferralStage.ASSESSMENT: "accepted",
        ReferralStage.INVESTIGATION: "under_investigation",
        ReferralStage.HANDOVER_PENDING: "under_investigation",
        ReferralStage.WITH_UNIT: "under_investigation",
        ReferralStage.OPERATION_PLANNED: "under_investigation",
        ReferralStage.OPERATION_CONDUCTED: "operation_conducted",
        ReferralStage.OUTCOME_RECORDED: "operation_conducted",
        ReferralStage.AFTERCARE: "operation_conducted",
        ReferralStage.CLOSED: "closed",
    }
    referral_id, number_a, _b = referral_of_two_agencies(browser, send_tip, runtime)
    a, b = agencies["agency-a"], agencies["agency-b"]
    with runtime.session_factory() as session:
        units = {
            name.split()[0]: unit_id
            for unit_id, name in session.execute(select(Unit.id, Unit.name))
        }
        reference = session.get(Referral, referral_id).reference  # type: ignore[union-attr]
    cast = Cast(runtime, people, units)
    officer = enrolled(runtime, "officer@agency-a.example", "partner", agency_id=a.id)
    portal = signed_in_client(app, runtime, officer)
    [mine] = client.get("/api/v1/tips", headers=a.headers).get_json()["tips"]
    for stage, status in told.items():
        walk_to(cast, referral_id, stage)
        with runtime.session_factory() as session:
            operation = session.scalars(select(Operation.reference)).first()
        secrets = [reference, "Luzon", "Cebu", "LCPU-2026/0042", "Manila", "ana@", "lea@"]
        secrets += [operation] if operation else []
        answer = client.get(f"/api/v1/tips/{mine['id']}", headers=a.headers)
        assert answer.get_json()["status"] == status, stage
        assert set(answer.get_json()) == {
            "id",
            "tracking_number",
            "status",
            "reason",
            "warnings",
            "updated_at",
        }
        listing = client.get("/api/v1/tips", headers=a.headers).get_data(as_text=True)
        page = portal.get(f"/partner/tips/{mine['id']}").get_data(as_text=True)
        tips_page = portal.get("/partner/tips").get_data(as_text=True)
        for shown in (answer.get_data(as_text=True), listing, page, tips_page):
            assert not [secret for secret in secrets if secret in shown], stage
        assert f'data-status="{status}"' in page
        # Agency B, whose tip is in the same referral, never reaches agency A's tip.
        assert client.get(f"/api/v1/tips/{mine['id']}", headers=b.headers).status_code == 404
        assert number_a not in client.get("/api/v1/tips", headers=b.headers).get_data(as_text=True)


def test_only_the_feedback_an_agency_was_given_counts_as_fetched(
    browser: Browser,
    send_tip: SendTip,
    runtime: Runtime,
    client: FlaskClient,
    agencies: dict[str, RegisteredAgency],
    people: dict,
) -> None:
    referral_id, _a, _b = referral_of_two_agencies(browser, send_tip, runtime)
    a = agencies["agency-a"]
    lea = browser("lea")
    for _ in range(2):
        page = preview(lea, referral_id, a.id)
        assert lea.post(f"/referrals/{referral_id}/feedback", data=hidden(page)).status_code == 302
    first = client.get("/api/v1/feedback?limit=1", headers=a.headers).get_json()
    assert len(first["feedback"]) == 1 and first["next"] is not None
    with runtime.session_factory() as session:
        fetched = [
            row.fetched_at is not None
            for row in session.scalars(select(Feedback).order_by(Feedback.id))
        ]
    assert fetched == [True, False]  # the second was not given yet
    second = client.get(first["next"], headers=a.headers).get_json()
    assert len(second["feedback"]) == 1 and second["next"] is None
    with runtime.session_factory() as session:
        assert all(row.fetched_at for row in session.scalars(select(Feedback)))
