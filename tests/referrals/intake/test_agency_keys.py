"""Pinned keys live in the database; each host imports them into its keyring when it first
verifies a tip they may have signed (several hosts, one database)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crypto import Keyring
from referrals.intake.agencies import AgencyError, AgencyService
from referrals.intake.models import AgencyKey, Tip, TipStatus
from referrals.intake.processing import SignerKeyUnavailable, TipProcessor
from referrals.intake.receiving import TipReceiver
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tipline.runtime import Runtime


def fingerprints_in(home: Path) -> set[str]:
    """The public keys in a GnuPG home, as plain gpg lists them."""
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-keys"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")}


@pytest.fixture
def new_host(intake_keyring: IntakeKeyring) -> Iterator[Callable[[], Keyring]]:
    """Makes the keyring of another host as copied before any agency was added: the intake key
    pair and nothing else."""
    source = Keyring(intake_keyring.home, passphrase=intake_keyring.passphrase)
    exported = source.export_secret_key(intake_keyring.fingerprint)
    made: list[Keyring] = []

    def make() -> Keyring:
        home = Path(tempfile.mkdtemp(prefix="tl-host-", dir="/tmp"))
        keyring = Keyring(home, passphrase=intake_keyring.passphrase)
        keyring.import_secret_key(exported, fingerprint=intake_keyring.fingerprint)
        made.append(keyring)
        return keyring

    yield make
    for keyring in made:
        keyring.close()
        shutil.rmtree(keyring.home, ignore_errors=True)


@pytest.fixture
def other_host(new_host: Callable[[], Keyring]) -> Keyring:
    return new_host()


def service(runtime: Runtime, session: Session, keyring: Keyring) -> AgencyService:
    return AgencyService(
        session, keyring=keyring, clock=runtime.clock, audit=runtime.audit(session)
    )


def receive(runtime: Runtime, agency_id: int, body: bytes) -> str:
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        return receiver.receive(agency_id, body).tip.id


def process_on(runtime: Runtime, keyring: Keyring, tip_id: str) -> Tip:
    """What a worker of the host owning ``keyring`` does with the tip."""
    TipProcessor(
        runtime.session_factory,
        keyring=keyring,
        blind_index=runtime.blind_index,  # type: ignore[arg-type]
        audit_key=runtime.audit_key,
        clock=runtime.clock,
    ).process(tip_id)
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        return tip


def test_a_tip_of_an_agency_added_elsewhere_is_verified_by_this_hosts_worker(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    other_host: Keyring,
) -> None:
    key = partners.fingerprints["agency-a"]
    assert key not in fingerprints_in(other_host.home)
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")

    tip = process_on(runtime, other_host, receive(runtime, agencies["agency-a"].id, body))

    assert tip.status == TipStatus.IN_TRIAGE, tip.reason
    assert tip.signed_by == key
    assert key in fingerprints_in(other_host.home)
    # Only the keys that could have signed it were imported: not agency B's.
    assert partners.fingerprints["agency-b"] not in fingerprints_in(other_host.home)


def test_a_key_rotated_elsewhere_verifies_on_a_host_that_never_saw_it(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    other_host: Keyring,
) -> None:
    a = agencies["agency-a"]
    new_key = partners.fingerprints.get("agency-a-2") or partners.generate("agency-a-2")
    with runtime.session_factory() as session:
        agencies_here = service(runtime, session, runtime.keyring)
        agencies_here.rotate_key(
            agencies_here.find(str(a.id)), partners.public_key("agency-a-2"), actor="test"
        )
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a-2")

    tip = process_on(runtime, other_host, receive(runtime, a.id, body))

    assert tip.status == TipStatus.IN_TRIAGE, tip.reason
    assert tip.signed_by == new_key


def test_registering_or_refusing_an_agency_changes_no_keyring(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    other_host: Keyring,
) -> None:
    """A refused `agency add` leaves nothing behind: keys are stored, not imported."""
    before = fingerprints_in(other_host.home)
    with runtime.session_factory() as session:
        on_other_host = service(runtime, session, other_host)
        with pytest.raises(AgencyError, match="already pinned"):
            on_other_host.add(
                name="Copycat",
                country="FR",
                key_data=partners.public_key("agency-a"),
                actor="test",
            )
        on_other_host.add(
            name="Stranger", country="FR", key_data=partners.public_key("stranger"), actor="test"
        )
    assert fingerprints_in(other_host.home) == before


def test_the_centres_own_key_cannot_be_pinned_to_an_agency(
    runtime: Runtime, intake_keyring: IntakeKeyring
) -> None:
    with runtime.session_factory() as session, pytest.raises(AgencyError, match="centre's own"):
        service(runtime, session, runtime.keyring).add(
            name="Impostor",
            country="GB",
            key_data=intake_keyring.public_key.encode(),
            actor="test",
        )


def test_a_name_too_long_to_store_is_refused_with_a_reason(
    runtime: Runtime, partners: PartnerKeys
) -> None:
    with runtime.session_factory() as session, pytest.raises(AgencyError, match="at most 200"):
        service(runtime, session, runtime.keyring).add(
            name="N" * 201, country="GB", key_data=partners.public_key("stranger"), actor="test"
        )


def test_a_key_neither_stored_nor_in_the_keyring_leaves_the_tip_to_be_retried(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    other_host: Keyring,
) -> None:
    """Pinned before keys were stored, on a host whose `tipline init` has not copied it into
    the database yet: a fault of the deployment, so the tip is not rejected."""
    a = agencies["agency-a"]
    with runtime.session_factory.begin() as session:
        session.execute(update(AgencyKey).values(public_key=None))
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip_id = receive(runtime, a.id, body)

    with pytest.raises(SignerKeyUnavailable, match="tipline init"):
        process_on(runtime, other_host, tip_id)

    with runtime.session_factory() as session:
        assert session.get(Tip, tip_id).status == TipStatus.PROCESSING  # type: ignore[union-attr]


def test_keys_pinned_before_keys_were_stored_are_copied_from_the_keyring_that_has_them(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    new_host: Callable[[], Keyring],
) -> None:
    a_key, b_key = (partners.fingerprints[name] for name in ("agency-a", "agency-b"))
    with runtime.session_factory.begin() as session:
        session.execute(update(AgencyKey).values(public_key=None))
    # Where agency A was added, its key was imported then (as it used to be); not B's.
    first_host, other_host = new_host(), new_host()
    first_host.import_partner_key(partners.public_key("agency-a"))
    with runtime.session_factory() as session:
        stored, missing = service(runtime, session, other_host).store_missing_public_keys()
    assert (stored, missing) == ([], [a_key, b_key])

    with runtime.session_factory() as session:
        stored, missing = service(runtime, session, first_host).store_missing_public_keys()
    assert (stored, missing) == ([a_key], [b_key])
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip = process_on(runtime, other_host, receive(runtime, agencies["agency-a"].id, body))
    assert tip.status == TipStatus.IN_TRIAGE, tip.reason
    with runtime.session_factory() as session:
        copies = dict(session.execute(select(AgencyKey.fingerprint, AgencyKey.public_key)).all())
    assert copies[a_key] is not None and copies[b_key] is None
