"""Processing tips in-process: idempotence, key pins over time, correlation, the sweep."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from sqlalchemy import func, select

from crypto import Keyring, SignatureStatus
from referrals.audit.models import AuditRecord
from referrals.intake import tasks
from referrals.intake.agencies import AgencyService
from referrals.intake.models import AgencyKey, IntakeKey, Tip, TipSelector, TipStatus
from referrals.intake.processing import Rejection, TipProcessor, _Work
from referrals.intake.receiving import TipReceiver
from referrals.intake.sweep import TipSweeper
from referrals.jobs import INTAKE_QUEUE
from tests.clock import ManualClock
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, armor, split_first_packet, valid_tip
from tests.support import gpg_wrapper
from tipline.runtime import Runtime


def receive(runtime: Runtime, agency: RegisteredAgency, body: bytes) -> str:
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        return receiver.receive(agency.id, body).tip.id


def load(runtime: Runtime, tip_id: str) -> Tip:
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        return tip


def selectors_of(runtime: Runtime, tip_id: str) -> set[str]:
    with runtime.session_factory() as session:
        return set(
            session.scalars(select(TipSelector.blind_index).where(TipSelector.tip_id == tip_id))
        )


def test_processing_twice_changes_nothing_more(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip_id = receive(runtime, agencies["agency-a"], body)
    tasks.process_tip(runtime.job_context(), tip_id)
    first = load(runtime, tip_id)
    first_selectors = selectors_of(runtime, tip_id)
    tasks.process_tip(runtime.job_context(), tip_id)
    again = load(runtime, tip_id)
    assert first.status == again.status == TipStatus.IN_TRIAGE
    assert again.processed_at == first.processed_at
    assert selectors_of(runtime, tip_id) == first_selectors
    assert len(first_selectors) == 7


def test_the_same_selector_written_differently_correlates_across_tips(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    """Deconfliction: agency B reports the facilitator's phone and handle in other forms."""
    other = valid_tip(
        selectors=[
            {"type": "phone", "value": "0905-123-4567"},  # national form, region from location
            {"type": "username", "value": "SunnyDay88", "platform": "examplechat"},
            {"type": "username", "value": "sunnyday88", "platform": "OtherApp"},
        ]
    )
    a_tip = receive(
        runtime,
        agencies["agency-a"],
        partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a"),
    )
    b_tip = receive(
        runtime,
        agencies["agency-b"],
        partners.seal(other, recipient=intake_keyring.fingerprint, signer="agency-b"),
    )
    for tip_id in (a_tip, b_tip):
        tasks.process_tip(runtime.job_context(), tip_id)
    shared = selectors_of(runtime, a_tip) & selectors_of(runtime, b_tip)
    # The phone number and the ExampleChat handle; the same handle elsewhere is another person.
    assert len(shared) == 2


def test_a_key_rotated_away_before_the_tip_arrived_no_longer_speaks_for_the_agency(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    a = agencies["agency-a"]
    signed_before = partners.seal(
        valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a"
    )
    before = receive(runtime, a, signed_before)
    with runtime.session_factory() as session:
        service = AgencyService(
            session, keyring=runtime.keyring, clock=runtime.clock, audit=runtime.audit(session)
        )
        partners_new = partners.fingerprints.get("agency-a-2") or partners.generate("agency-a-2")
        assert partners_new
        service.rotate_key(service.find(str(a.id)), partners.public_key("agency-a-2"), actor="test")
    after_old = receive(
        runtime,
        a,
        partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a"),
    )
    after_new = receive(
        runtime,
        a,
        partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a-2"),
    )
    for tip_id in (before, after_old, after_new):
        tasks.process_tip(runtime.job_context(), tip_id)
    # Received while the old key was pinned: still accepted when processed later.
    assert load(runtime, before).status == TipStatus.IN_TRIAGE
    assert load(runtime, after_old).status == TipStatus.REJECTED
    assert load(runtime, after_new).status == TipStatus.IN_TRIAGE
    with runtime.session_factory() as session:
        keys = session.scalars(select(AgencyKey).where(AgencyKey.agency_id == a.id)).all()
        assert len(keys) == 2 and sum(k.retired_at is None for k in keys) == 1


def test_a_tip_to_a_retired_intake_key_is_rejected_with_the_current_one_named(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip_id = receive(runtime, agencies["agency-a"], body)
    new_fingerprint = runtime.keyring.generate_intake_key(name="Next", email="next@tipline.invalid")
    with runtime.session_factory.begin() as session:
        session.get(IntakeKey, intake_keyring.fingerprint).retired_at = runtime.clock.now()  # type: ignore[union-attr]
        session.add(IntakeKey(fingerprint=new_fingerprint, created_at=runtime.clock.now()))
    tasks.process_tip(runtime.job_context(), tip_id)
    tip = load(runtime, tip_id)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason is not None and new_fingerprint in tip.reason


def test_an_unknown_tip_id_is_ignored(runtime: Runtime) -> None:
    """A job for a tip that is not there (a stray or forged job id) ends at once, without an
    error to retry and without writing anything."""
    tasks.process_tip(runtime.job_context(), "00000000-0000-0000-0000-000000000000")
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Tip)) == 0
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 0


def test_the_sweep_requeues_a_tip_whose_job_was_lost_and_only_that(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    lost = receive(runtime, agencies["agency-a"], body)
    runtime.redis.flushdb()  # Redis restarted without its data: the job is gone
    waiting = receive(runtime, agencies["agency-a"], body)  # its job is still queued
    sweeper = TipSweeper(
        runtime.session_factory,
        queue=runtime.queue,
        clock=runtime.clock,
        audit_key=runtime.audit_key,
    )

    assert sweeper.sweep(grace=timedelta(minutes=5)).requeued == []  # too recent to be lost
    assert sweeper.sweep(grace=timedelta(0)).requeued == [lost]
    assert sorted(runtime.queue.queue(INTAKE_QUEUE).job_ids) == sorted(
        [f"process-tip-{lost}", f"process-tip-{waiting}"]
    )
    worker = runtime.queue.worker(runtime.job_context())
    worker.work(burst=True)
    assert load(runtime, lost).status == load(runtime, waiting).status == TipStatus.IN_TRIAGE
    assert sweeper.sweep(grace=timedelta(0)).requeued == []


def test_a_receipt_is_given_even_when_redis_is_down_and_the_sweep_catches_up(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable(*_args: object, **_kwargs: object) -> str:
        raise redis.ConnectionError("connection refused")

    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    with monkeypatch.context() as patched:
        patched.setattr(runtime.queue, "enqueue", unavailable)
        tip_id = receive(runtime, agencies["agency-a"], body)
    assert load(runtime, tip_id).status == TipStatus.RECEIVED
    assert runtime.queue.queue(INTAKE_QUEUE).count == 0
    sweeper = TipSweeper(
        runtime.session_factory,
        queue=runtime.queue,
        clock=runtime.clock,
        audit_key=runtime.audit_key,
    )
    assert sweeper.sweep(grace=timedelta(0)).requeued == [tip_id]
    runtime.queue.worker(runtime.job_context()).work(burst=True)
    assert load(runtime, tip_id).status == TipStatus.IN_TRIAGE
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Tip)) == 1


def test_a_rejection_releases_the_idempotency_key_for_the_corrected_tip(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    a = agencies["agency-a"]
    unsigned = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer=None)
    signed = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        first = receiver.receive(a.id, unsigned, idempotency_key="ECA-1").tip.id
        assert receiver.receive(a.id, unsigned, idempotency_key="ECA-1").tip.id == first
    tasks.process_tip(runtime.job_context(), first)
    assert load(runtime, first).status == TipStatus.REJECTED
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        corrected = receiver.receive(a.id, signed, idempotency_key="ECA-1")
        assert corrected.created and corrected.tip.id != first
        assert receiver.receive(a.id, signed, idempotency_key="ECA-1").tip.id == corrected.tip.id


def test_the_outcome_of_processing_is_audited_without_content(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    from referrals.audit.models import AuditRecord

    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip_id = receive(runtime, agencies["agency-a"], body)
    tasks.process_tip(runtime.job_context(), tip_id)
    tasks.process_tip(runtime.job_context(), tip_id)  # a second delivery records nothing more
    with runtime.session_factory() as session:
        records = session.scalars(
            select(AuditRecord).where(AuditRecord.subject == f"tip:{tip_id}")
        ).all()
        assert [(r.action, r.actor) for r in records] == [("tip.status_changed", "system:worker")]
        assert records[0].details == {
            "status": "in_triage",
            "selectors": 7,
            "priority": "P1",
            "linked_tips": 0,
            "team_id": None,
        }
        assert runtime.audit(session).verify().ok


def test_a_tip_signed_by_a_key_pinned_only_after_the_tip_arrived_is_rejected(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    """Whoever held the new key before it was pinned did not speak for the agency then."""
    a = agencies["agency-a"]
    clock = ManualClock()
    partners.fingerprints.get("agency-a-later") or partners.generate("agency-a-later")
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a-later")
    with runtime.session_factory() as session:
        tip_id = TipReceiver(session, queue=runtime.queue, clock=clock).receive(a.id, body).tip.id
    clock.advance(minutes=1)
    with runtime.session_factory() as session:
        service = AgencyService(
            session, keyring=runtime.keyring, clock=clock, audit=runtime.audit(session)
        )
        service.rotate_key(
            service.find(str(a.id)), partners.public_key("agency-a-later"), actor="test"
        )

    tasks.process_tip(runtime.job_context(), tip_id)

    tip = load(runtime, tip_id)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason == "the tip is signed by a key that is not pinned to your agency"


def test_gnupg_exiting_with_an_error_after_a_good_signature_does_not_accept_the_tip(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    tmp_path: Path,
) -> None:
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip_id = receive(runtime, agencies["agency-a"], body)
    wrapper, calls = gpg_wrapper(tmp_path, exit_after_decrypt=2)
    keyring = Keyring(intake_keyring.home, gpg_binary=wrapper, passphrase=intake_keyring.passphrase)

    tasks.process_tip(dataclasses.replace(runtime.job_context(), keyring=keyring), tip_id)

    assert "--decrypt" in calls.read_text()  # gpg ran, reported the good signature, exited 2
    tip = load(runtime, tip_id)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason is not None and "could not be decrypted" in tip.reason


def test_a_tip_is_judged_by_the_intake_key_that_decrypted_it_not_the_one_it_names(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    """Session keys for a retired intake key (tried first) and for the current one (decrypting
    nothing): the message names the current key, but the retired one decrypted it."""
    retired = runtime.keyring.generate_intake_key(name="Retired", email="retired@tipline.invalid")
    with runtime.session_factory.begin() as session:
        session.add(
            IntakeKey(
                fingerprint=retired, created_at=runtime.clock.now(), retired_at=runtime.clock.now()
            )
        )
    partners.trust_recipient(runtime.keyring.export_public_key(retired))
    to_retired = partners.seal(valid_tip(), recipient=retired, signer="agency-a", armored=False)
    to_current = partners.seal(
        b"{}", recipient=intake_keyring.fingerprint, signer=None, armored=False
    )
    retired_session_key, encrypted_data = split_first_packet(to_retired)
    current_session_key, _ = split_first_packet(to_current)
    tip_id = receive(
        runtime,
        agencies["agency-a"],
        armor(retired_session_key + current_session_key + encrypted_data),
    )

    tasks.process_tip(runtime.job_context(), tip_id)

    tip = load(runtime, tip_id)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason == (
        f"the tip is encrypted to a retired intake key, not the current one "
        f"({intake_keyring.fingerprint})"
    )


def test_each_fault_of_the_message_is_told_to_the_partner_in_words_it_can_act_on(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    """What the partner reads in the status answer for each fault of its message (in-process,
    so that changing the words, or losing a case, is seen here)."""
    intake = intake_keyring.fingerprint
    stranger = partners.fingerprints["agency-b"]
    signer = partners.fingerprints["agency-a"]
    signed_only = partners.gpg("--armor", "--sign", "--local-user", signer, stdin=b"not encrypted")
    bomb = partners.seal(
        b'{"schema": "tipline.tip/1", "pad": "' + b"0" * (6 * 1024 * 1024) + b'"}',
        recipient=intake,
        signer="agency-a",
        options=("--compress-level", "9"),
    )
    cases = {
        "encrypted to another key": (
            partners.seal(valid_tip(), recipient=stranger, signer="agency-a"),
            f"the tip is not encrypted to the intake key {intake} (fetch the current key and "
            "encrypt to it)",
        ),
        "larger than a document may be": (
            bomb,
            "the decrypted tip is larger than 5 MiB, the most a tip document may be: send files "
            "as attachments",
        ),
    }
    for name, (body, reason) in cases.items():
        tip_id = receive(runtime, agencies["agency-a"], body)
        tasks.process_tip(runtime.job_context(), tip_id)
        tip = load(runtime, tip_id)
        assert (tip.status, tip.reason) == (TipStatus.REJECTED, reason), name
    tip_id = receive(runtime, agencies["agency-a"], signed_only)
    tasks.process_tip(runtime.job_context(), tip_id)
    tip = load(runtime, tip_id)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason is not None
    assert tip.reason.startswith("the body is not an OpenPGP message that can be read: ")


def test_what_triage_needs_is_stored_in_clear_exactly_as_the_document_says(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    document = valid_tip(
        reported_at="2026-03-01T09:30:00+08:00",
        urgency={"imminent_danger": False, "ongoing_abuse": True, "live_streaming": True},
        location={"country": "PH", "region": "Cebu", "city": "Cebu City"},
        handling={
            "tlp": "AMBER",
            "code": "H1",
            "source_reliability": "C",
            "information_accuracy": 3,
        },  # fmt: skip
    )
    body = partners.seal(document, recipient=intake_keyring.fingerprint, signer="agency-a")
    tip_id = receive(runtime, agencies["agency-a"], body)
    tasks.process_tip(runtime.job_context(), tip_id)
    tip = load(runtime, tip_id)
    assert (tip.status, tip.reason, tip.schema) == (TipStatus.IN_TRIAGE, None, "tipline.tip/1")
    assert (
        tip.reported_at is not None and tip.reported_at.isoformat() == "2026-03-01T01:30:00+00:00"
    )
    assert (tip.imminent_danger, tip.ongoing_abuse, tip.live_streaming) == (False, True, True)
    assert (tip.country, tip.region, tip.location_precision) == ("PH", "Cebu", "city")
    assert tip.offence_types == document["offence_types"]
    assert tip.victim_count == len(document["victims"])
    assert (tip.tlp, tip.handling_code) == ("AMBER", "H1")
    assert (tip.source_reliability, tip.information_accuracy) == ("C", 3)
    assert tip.signed_by == partners.fingerprints["agency-a"]


def test_a_damaged_message_and_an_unverifiable_signature_are_told_in_words(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    packets = partners.seal(
        valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a", armored=False
    )
    damaged = bytearray(packets)
    damaged[len(damaged) // 2] ^= 0x5A
    tip_id = receive(runtime, agencies["agency-a"], armor(bytes(damaged)))
    tasks.process_tip(runtime.job_context(), tip_id)
    assert load(runtime, tip_id).reason == (
        "the message could not be decrypted: it was damaged or altered after it was sealed; "
        "seal it again (gpg --sign --encrypt) and send it"
    )
    unsigned = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer=None)
    tip_id = receive(runtime, agencies["agency-a"], unsigned)
    tasks.process_tip(runtime.job_context(), tip_id)
    assert load(runtime, tip_id).reason == (
        "the tip is not signed: sign it with your agency's registered key (gpg --sign --encrypt)"
    )
    # GnuPG could not check the signature at all (a status no table row names).
    context = runtime.job_context()
    processor = TipProcessor(
        context.session_factory,
        keyring=context.keyring,
        blind_index=context.blind_index,
        audit_key=context.audit_key,
        clock=context.clock,
    )
    unchecked = SimpleNamespace(signature_status=SignatureStatus.ERROR, signer_fingerprint=None)
    work = _Work(
        armored=b"", agency_id=1, received_at=runtime.clock.now(), submitted_by_user_id=None
    )
    with pytest.raises(Rejection) as refused:
        processor._check_signer(unchecked, work, allowed={})  # type: ignore[arg-type]
    assert refused.value.reason == "the signature could not be verified"
