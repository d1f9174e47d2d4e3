"""Every tip reaches a final state: the poison tips that once looped for ever, each now
rejected with a reason at the first attempt, and its Idempotency-Key released."""

from __future__ import annotations

from typing import Any

import pytest

from referrals.intake import tasks
from referrals.intake.models import Tip, TipStatus
from referrals.intake.receiving import TipReceiver
from referrals.intake.sweep import PROCESS_TIP_TIMEOUT
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, armor, split_first_packet, valid_tip
from tests.support import hang_guard
from tipline.runtime import Runtime

REFERENCE = "ECA-2024-CSE-004417"


def send(runtime: Runtime, agency: RegisteredAgency, body: bytes) -> tuple[str, bool]:
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        receipt = receiver.receive(agency.id, body, idempotency_key=REFERENCE)
        return receipt.tip.id, receipt.created


def process(runtime: Runtime, tip_id: str) -> Tip:
    # Within the job's own time limit, which is what bounds a tip in production (a tighter
    # bound here would be a timing assertion, and fail on a loaded machine).
    with hang_guard(PROCESS_TIP_TIMEOUT):
        tasks.process_tip(runtime.job_context(), tip_id)
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        return tip


def assert_rejected_and_released(
    runtime: Runtime,
    agency: RegisteredAgency,
    tip: Tip,
    reason: str,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    assert (tip.status, tip.attempts) == (TipStatus.REJECTED, 1)
    assert tip.reason is not None and reason in tip.reason
    # The partner's corrected resend under the same reference is a new tip, not the old receipt.
    corrected = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    resent, created = send(runtime, agency, corrected)
    assert created and resent != tip.id
    assert process(runtime, resent).status == TipStatus.IN_TRIAGE


def test_a_ciphertext_with_damaged_bytes_is_rejected(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    a = agencies["agency-a"]
    packets = bytearray(
        partners.seal(
            valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a", armored=False
        )
    )
    packets[len(packets) // 2] ^= 0x5A  # inside the encrypted data; the armor is made after
    tip_id, _ = send(runtime, a, armor(bytes(packets)))

    tip = process(runtime, tip_id)

    assert_rejected_and_released(
        runtime, a, tip, "could not be decrypted", partners, intake_keyring
    )


@pytest.mark.parametrize(
    "reported_at", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"], ids=["1", "9999"]
)
def test_a_reported_at_whose_utc_time_does_not_exist_is_rejected_at_its_place(
    reported_at: str,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    a = agencies["agency-a"]
    body = partners.seal(
        valid_tip(reported_at=reported_at), recipient=intake_keyring.fingerprint, signer="agency-a"
    )
    tip_id, _ = send(runtime, a, body)

    tip = process(runtime, tip_id)

    assert_rejected_and_released(
        runtime, a, tip, "schema error at /reported_at", partners, intake_keyring
    )


def test_thousands_of_offence_types_are_refused_by_their_count(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    """jsonschema's uniqueItems is quadratic on objects: 4,000 took 16 s, 20,000 would take
    minutes on every retry. The count is checked first."""
    a = agencies["agency-a"]
    many: list[dict[str, Any]] = [{"n": n} for n in range(20_000)]
    body = partners.seal(
        valid_tip(offence_types=many), recipient=intake_keyring.fingerprint, signer="agency-a"
    )
    tip_id, _ = send(runtime, a, body)

    tip = process(runtime, tip_id)

    assert_rejected_and_released(
        runtime,
        a,
        tip,
        "schema error at /offence_types: must list at most 10 items",
        partners,
        intake_keyring,
    )


def test_a_message_with_many_session_key_packets_is_refused(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    """Each bogus session-key packet naming the intake key costs gpg-agent a private-key
    operation; thousands of them outlast the job's time limit on every try."""
    a = agencies["agency-a"]
    packets = partners.seal(
        valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a", armored=False
    )
    session_key, rest = split_first_packet(packets)
    bogus = bytearray(session_key)
    bogus[20] ^= 0xFF  # the ephemeral point: names the intake key, decrypts to nothing
    tip_id, _ = send(runtime, a, armor(bytes(bogus) * 40 + session_key + rest))

    tip = process(runtime, tip_id)

    assert_rejected_and_released(runtime, a, tip, "session-key packets", partners, intake_keyring)
