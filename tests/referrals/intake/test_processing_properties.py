"""Whatever a partner sends, processing ends it in a final state at the first attempt, in
bounded time: arbitrary bytes, valid tips mutated in every way, damaged ciphertexts.

A partner's input is never our fault, so it never leaves a tip `received` or `processing`
(to be retried) and never records a fault. Each example runs under a hang guard; memory is
bounded by the decryption limit (test_intake_worker's compression bomb) and the document
checks (test_document)."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from referrals.intake import tasks
from referrals.intake.models import Tip, TipStatus
from referrals.intake.receiving import NotAnOpenPGPMessage, TipReceiver
from referrals.intake.sweep import PROCESS_TIP_TIMEOUT
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, armor, valid_tip
from tests.referrals.intake.strategies import mutated_tips, tips
from tests.support import hang_guard
from tipline.runtime import Runtime

FINAL = {TipStatus.IN_TRIAGE, TipStatus.REJECTED}
ARMOR_BEGIN = b"-----BEGIN PGP MESSAGE-----\n"
ARMOR_END = b"\n-----END PGP MESSAGE-----\n"

_examples = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def process_to_the_end(runtime: Runtime, agency: RegisteredAgency, body: bytes) -> Tip:
    """Receive ``body`` as the API would and process it once; the tip as it was left."""
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        try:
            tip_id = receiver.receive(agency.id, body).tip.id
        except NotAnOpenPGPMessage:
            assume(False)  # answered 400 at the door: not a tip
    # Within the job's own time limit, which is what bounds a tip in production (a tighter
    # bound here would be a timing assertion, and fail on a loaded machine).
    with hang_guard(PROCESS_TIP_TIMEOUT):
        tasks.process_tip(runtime.job_context(), tip_id)
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
    assert tip.status in FINAL, (tip.status, tip.fault)
    assert (tip.attempts, tip.fault) == (1, None)
    return tip


@settings(_examples, max_examples=60)
@given(st.binary(max_size=3000), st.booleans())
def test_arbitrary_bytes_are_rejected(
    runtime: Runtime, agencies: dict[str, RegisteredAgency], raw: bytes, as_base64: bool
) -> None:
    body = armor(raw) if as_base64 else ARMOR_BEGIN + raw + ARMOR_END
    tip = process_to_the_end(runtime, agencies["agency-a"], body)
    assert tip.status == TipStatus.REJECTED and tip.reason


@settings(_examples, max_examples=30)
@given(st.data())
def test_valid_tips_mutated_in_any_way_end_accepted_or_rejected(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    data: st.DataObject,
) -> None:
    base = data.draw(st.just(valid_tip()) | tips().map(lambda drawn: drawn[0]))
    document = data.draw(mutated_tips(base))
    body = partners.seal(document, recipient=intake_keyring.fingerprint, signer="agency-a")
    process_to_the_end(runtime, agencies["agency-a"], body)


@cache
def _sealed(partners: PartnerKeys, recipient: str) -> bytes:
    return partners.seal(valid_tip(), recipient=recipient, signer="agency-a", armored=False)


def _mutate(data: st.DataObject, message: bytes) -> bytes:
    mutated = bytearray(message)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        at = data.draw(st.integers(min_value=0, max_value=len(mutated) - 1))
        match data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"])):
            case "flip":
                mutated[at] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
            case "truncate":
                del mutated[at:]
            case "insert":
                mutated[at:at] = data.draw(st.binary(min_size=1, max_size=16))
            case _:
                del mutated[at : at + data.draw(st.integers(min_value=1, max_value=16))]
        if not mutated:
            mutated = bytearray(b"\x00")
    return bytes(mutated)


@settings(_examples, max_examples=40)
@given(st.data(), st.booleans())
def test_damaged_ciphertexts_end_accepted_or_rejected(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    data: st.DataObject,
    damage_the_armor: bool,
) -> None:
    packets = _sealed(partners, intake_keyring.fingerprint)
    if damage_the_armor:
        # Between the armor lines, so that the body is still received as one message.
        inside = armor(packets).removeprefix(ARMOR_BEGIN).removesuffix(ARMOR_END)
        damaged = _mutate(data, inside)
        assume(ARMOR_BEGIN.strip() not in damaged)
        body = ARMOR_BEGIN + damaged + ARMOR_END
    else:
        body = armor(_mutate(data, packets))
    # Some damage is harmless (a space in the armor; gpg reads a session-key packet of
    # version 2 as one of version 3): final either way, and never a fault of ours.
    process_to_the_end(runtime, agencies["agency-a"], body)
