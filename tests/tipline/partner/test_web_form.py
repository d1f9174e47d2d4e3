"""Sending a tip through the web form: encrypted on the server, processed like an API tip."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from crypto import EncryptError
from referrals.audit.models import AuditRecord
from referrals.intake import tasks
from referrals.intake.models import Tip, TipCiphertext, TipSelector, TipStatus
from tests.conftest import IntakeKeyring
from tests.tipline.partner.conftest import Officer, form_data
from tipline.runtime import Runtime

FORM = "/partner/tips/new"


def send(officer: Officer, **changes: object) -> tuple[int, str, str]:
    """Opens the form and sends it; returns the status, the Location and the page."""
    page = officer.client.get(FORM).get_data(as_text=True)
    answer = officer.client.post(FORM, data=form_data(page, **changes))
    return answer.status_code, answer.headers.get("Location", ""), answer.get_data(as_text=True)


def stored_tips(runtime: Runtime) -> list[Tip]:
    with runtime.session_factory() as session:
        return list(session.scalars(select(Tip)))


def test_the_form_is_labelled_and_has_no_script(officer: Officer) -> None:
    answer = officer.client.get(FORM)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "<script" not in page
    for name in ("summary", "narrative", "country", "victim_ages", "selectors"):
        assert re.search(rf'<label for="{name}"', page), name
    assert "<legend>Offences</legend>" in page
    # Each marking a radio button with its whole meaning beside it (a select cut them off).
    assert "<legend>Handling (Traffic Light Protocol)</legend>" in page
    assert re.search(
        r'<input checked id="tlp-\d" name="tlp"[^>]* type="radio" value="AMBER">', page
    )
    assert re.search(r'<label for="tlp-\d">TLP:RED: the named recipients only</label>', page)
    assert "username@ExampleChat: sunnyday88" in page  # the selector format, shown


def test_a_sent_tip_is_stored_encrypted_audited_and_processed_like_an_api_tip(
    officer: Officer, runtime: Runtime, intake_keyring: IntakeKeyring
) -> None:
    status, location, _ = send(officer)
    assert status == 302
    [tip] = stored_tips(runtime)
    assert location.endswith(f"/partner/tips/{tip.id}")
    assert tip.agency_id == officer.agency_id
    assert tip.submitted_by_user_id == officer.user_id
    assert tip.status == TipStatus.RECEIVED
    with runtime.session_factory() as session:
        armored = session.scalar(select(TipCiphertext.armored))
        audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "tip.submitted"))
        [record] = list(audit)
    assert armored is not None and armored.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert b"little ones" not in armored and b"sunnyday88" not in armored
    assert record.actor == f"user:{officer.user_id}" and record.subject == f"tip:{tip.id}"

    page = officer.client.get(location).get_data(as_text=True)
    assert tip.tracking_number in page and 'data-status="received"' in page
    # Said plainly, with nothing to do: no asking to reload.
    assert "Your tip is stored" in page and "will not be lost" in page
    assert "reload" not in page.lower() and "Check the status again" not in page

    tasks.process_tip(runtime.job_context(), tip.id)
    with runtime.session_factory() as session:
        processed = session.get(Tip, tip.id)
        assert processed is not None
        selectors = session.scalar(
            select(func.count()).select_from(TipSelector).where(TipSelector.tip_id == tip.id)
        )
    assert processed.status == TipStatus.IN_TRIAGE, processed.reason
    assert processed.signed_by == intake_keyring.web_form_fingerprint
    assert (processed.country, processed.region) == ("PH", "Central Luzon")
    assert processed.imminent_danger and processed.ongoing_abuse
    assert not processed.live_streaming
    assert processed.offence_types == ["live_streaming_abuse", "trafficking"]
    assert (processed.victim_count, processed.youngest_victim_age) == (3, 2)
    assert processed.tlp == "AMBER"
    assert selectors == 4
    page = officer.client.get(location).get_data(as_text=True)
    assert 'data-status="in_triage">Received and valid: with the centre' in page
    assert "Your tip is stored" not in page


def test_sending_the_same_form_twice_stores_one_tip(officer: Officer, runtime: Runtime) -> None:
    page = officer.client.get(FORM).get_data(as_text=True)
    data = form_data(page, external_reference="")
    first = officer.client.post(FORM, data=data)
    second = officer.client.post(FORM, data=data)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    [tip] = stored_tips(runtime)
    with runtime.session_factory() as session:
        audited = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "tip.submitted")
        )
    assert audited == 1
    followed = officer.client.get(second.headers["Location"]).get_data(as_text=True)
    assert "already been sent" in followed and tip.tracking_number in followed


def test_a_new_rendering_of_the_form_is_a_new_tip(officer: Officer, runtime: Runtime) -> None:
    assert send(officer)[0] == 302
    assert send(officer)[0] == 302
    assert len(stored_tips(runtime)) == 2


def test_mistakes_are_shown_beside_their_fields_without_repeating_values(
    officer: Officer, runtime: Runtime
) -> None:
    status, _, page = send(
        officer,
        summary="   ",
        offence_types=None,
        country="",
        victim_count="1",
        victim_ages="4, secret-age",
        selectors="email: a@b.example\nfacebook: SECRETVALUE\n",
    )
    assert status == 400
    assert stored_tips(runtime) == []
    assert 'role="alert"' in page and "The tip was not sent" in page
    errors = re.findall(r'<p class="error" id="([a-z_]+)-error">([^<]*)</p>', page)
    by_field = dict(errors)
    assert by_field["summary"] == "Write a summary."
    assert by_field["country"] == "Choose the country."
    assert by_field["offence_types"] == "Tick at least one offence."
    assert "whole number from 0 to 25" in by_field["victim_ages"]
    assert by_field["selectors"].startswith("Line 2: write type: value")
    assert 'aria-describedby="summary-hint summary-error" aria-invalid="true"' in page
    assert 'aria-describedby="offence_types-hint offence_types-error"' in page
    assert all(
        "SECRETVALUE" not in message and "secret-age" not in message for _, message in errors
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"selectors": "email: a@b.example\nusername: nobody\n"}, "selectors", "Line 2: name the"),
        ({"selectors": "email@Chat: a@b.example"}, "selectors", "Line 1: only a username"),
        ({"victim_count": "1", "victim_ages": "3, 4"}, "victim_ages", "more ages than victims"),
        ({"region": "x" * 101}, "region", "Field cannot be longer than 100 characters."),
    ],
)
def test_each_rule_of_the_form_has_a_message(
    officer: Officer, changes: dict[str, object], field: str, message: str
) -> None:
    status, _, page = send(officer, **changes)
    assert status == 400
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    assert found and message in found.group(1)


def test_a_schema_error_in_a_selector_points_at_its_line(
    officer: Officer, runtime: Runtime
) -> None:
    # Well formed for the form, but not a phone number the blind index can normalise.
    status, _, page = send(officer, selectors="email: a@b.example\n\n\nphone: not a number 12")
    assert status == 400
    assert stored_tips(runtime) == []
    found = re.search(r'<p class="error" id="selectors-error">([^<]*)</p>', page)
    assert found and found.group(1).startswith("Line 4: "), page
    assert "not a number" not in found.group(1)


def test_a_control_character_in_a_line_is_a_form_error(officer: Officer, runtime: Runtime) -> None:
    status, _, page = send(officer, city="Angeles\x07")
    assert status == 400
    found = re.search(r'<p class="error" id="city-error">([^<]*)</p>', page)
    assert found and "single line without control characters" in found.group(1)


def test_a_tampered_form_key_asks_to_send_again(officer: Officer, runtime: Runtime) -> None:
    status, _, page = send(officer, submission="not-a-nonce")
    assert status == 400
    assert "This form had expired" in page
    assert stored_tips(runtime) == []


def test_nothing_is_stored_when_the_tip_cannot_be_encrypted(
    officer: Officer, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> str:
        raise EncryptError("encryption failed")

    monkeypatch.setattr(runtime.web_form_signer(), "encrypt", refuse)
    status, _, page = send(officer)
    assert status == 503
    assert "could not be encrypted" in page and "nothing was stored" in page
    assert stored_tips(runtime) == []


def test_the_form_without_its_csrf_token_is_refused(officer: Officer, runtime: Runtime) -> None:
    page = officer.client.get(FORM).get_data(as_text=True)
    data = form_data(page)
    del data["csrf_token"]
    assert officer.client.post(FORM, data=data).status_code == 400
    assert stored_tips(runtime) == []
