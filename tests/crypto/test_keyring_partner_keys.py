"""Importing and pinning partner agencies' public keys."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from crypto.errors import (
    FingerprintMismatch,
    KeyExpired,
    KeyImportError,
    KeyNotFound,
    KeyNotUsable,
    KeyRevoked,
    MalformedKey,
    SecretKeyRefused,
)
from crypto.keyring import Keyring
from tests.crypto.conftest import Partners, gpg, public_key_fingerprints, stop_agent
from tests.support import gpg_wrapper


def test_partner_key_is_pinned_by_its_full_fingerprint(
    empty_keyring: Keyring, partners: Partners
) -> None:
    pin = empty_keyring.import_partner_key(partners.public_key)

    assert pin.fingerprint == partners.fingerprint
    assert pin.user_ids == ("Example Crime Agency <tips@agency.example>",)
    assert pin.created.tzinfo is not None
    assert pin.expires is None
    assert public_key_fingerprints(empty_keyring.home) == [partners.fingerprint]
    assert empty_keyring.encrypt(b"feedback", [pin.fingerprint]).startswith(
        "-----BEGIN PGP MESSAGE-----"
    )


def test_out_of_band_fingerprint_is_checked(empty_keyring: Keyring, partners: Partners) -> None:
    spaced = " ".join(partners.fingerprint[i : i + 4] for i in range(0, 40, 4)).lower()

    assert (
        empty_keyring.import_partner_key(
            partners.public_key, expected_fingerprint=spaced
        ).fingerprint
        == partners.fingerprint
    )


def test_a_key_other_than_the_confirmed_one_is_refused(
    empty_keyring: Keyring, partners: Partners
) -> None:
    with pytest.raises(FingerprintMismatch):
        empty_keyring.import_partner_key(
            partners.public_key, expected_fingerprint=partners.stranger_fingerprint
        )

    assert public_key_fingerprints(empty_keyring.home) == []


@pytest.mark.parametrize(
    ("case", "error", "reason"),
    [
        ("secret key", SecretKeyRefused, "secret"),
        ("expired", KeyExpired, "expired"),
        ("revoked", KeyRevoked, "revoked"),
        ("sign only", KeyNotUsable, "encryption"),
        ("no signing", KeyNotUsable, "signing"),
        ("weak rsa", KeyNotUsable, "2048"),
        ("two keys", MalformedKey, "exactly one"),
        ("empty", MalformedKey, "empty"),
        ("whitespace", MalformedKey, "empty"),
        ("garbage", MalformedKey, "no OpenPGP public key"),
        ("binary garbage", MalformedKey, "no OpenPGP public key"),
    ],
)
def test_unusable_keys_are_refused_before_reaching_the_keyring(
    empty_keyring: Keyring,
    partners: Partners,
    case: str,
    error: type[KeyImportError],
    reason: str,
) -> None:
    with pytest.raises(error, match=reason):
        empty_keyring.import_partner_key(partners.rejected[case])

    assert public_key_fingerprints(empty_keyring.home) == []
    assert not (empty_keyring.home / "private-keys-v1.d").exists() or not any(
        (empty_keyring.home / "private-keys-v1.d").iterdir()
    )


def test_secret_key_refusal_does_not_echo_key_material(
    empty_keyring: Keyring, partners: Partners
) -> None:
    with pytest.raises(SecretKeyRefused) as caught:
        empty_keyring.import_partner_key(partners.secret_key)

    assert "BEGIN" not in str(caught.value)
    assert partners.secret_key.splitlines()[3] not in str(caught.value)


def test_inspecting_a_key_leaves_the_keyring_unchanged_and_gives_a_copy_to_pin(
    empty_keyring: Keyring, partners: Partners, tmp_path: Path
) -> None:
    pin = empty_keyring.inspect_partner_key(partners.public_key)

    assert pin.fingerprint == partners.fingerprint
    assert public_key_fingerprints(empty_keyring.home) == []
    assert pin.armored.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert "armored" not in repr(pin)
    # The copy is what another host imports: afterwards it verifies the partner's tips.
    empty_keyring.import_pinned_key(pin.armored, fingerprint=pin.fingerprint)
    assert public_key_fingerprints(empty_keyring.home) == [partners.fingerprint]
    intake_key = empty_keyring.generate_intake_key(name="Intake", email="intake@tl.test")
    intake_public = tmp_path / "intake.asc"
    intake_public.write_text(empty_keyring.export_public_key(intake_key))
    sealed = gpg(
        partners.home,
        *("--trust-model", "always", "--armor", "--encrypt", "--sign"),
        *("--local-user", partners.fingerprint, "--recipient-file", str(intake_public)),
        stdin=b"tip",
    )
    verified = empty_keyring.decrypt_and_verify(sealed)
    assert verified.signature_valid and verified.signer_fingerprint == partners.fingerprint


def test_third_party_signatures_go_neither_into_a_keyring_nor_out_of_it(
    empty_keyring: Keyring, partners: Partners
) -> None:
    """What `agency keys` stores for a key a keyring already held (imported by hand, say,
    with another key's certification) is the minimal copy inspecting it would give; and a
    copy that carries one is pinned and imported without it."""
    home = empty_keyring.home
    gpg(home, "--import", stdin=partners.public_key.encode())
    gpg(home, "--import", stdin=partners.rejected["secret key"])  # the stranger's
    stranger = partners.stranger_fingerprint
    gpg(home, "--local-user", stranger, "--quick-sign-key", partners.fingerprint)

    def certified_by_stranger(key: bytes) -> bool:
        return f"keyid {stranger[-16:]}" in gpg(home, "--list-packets", stdin=key).decode()

    assert certified_by_stranger(gpg(home, "--export", partners.fingerprint))
    exported = empty_keyring.export_public_key(partners.fingerprint)
    assert not certified_by_stranger(exported.encode())
    assert empty_keyring.inspect_partner_key(exported).fingerprint == partners.fingerprint

    certified = gpg(home, "--armor", "--export", partners.fingerprint).decode()
    assert not certified_by_stranger(empty_keyring.inspect_partner_key(certified).armored.encode())
    other_home = Path(tempfile.mkdtemp(prefix="tlm-", dir="/tmp")) / "g"
    try:
        Keyring(other_home).import_pinned_key(certified, fingerprint=partners.fingerprint)
        assert not certified_by_stranger(gpg(other_home, "--export", partners.fingerprint))
    finally:
        stop_agent(other_home)
        shutil.rmtree(other_home.parent, ignore_errors=True)


def test_a_key_imported_here_is_known_present_without_asking_gpg_again(
    empty_keyring: Keyring, partners: Partners, tmp_path: Path
) -> None:
    """make_available runs before every signature check: once a key is known, no gpg."""
    wrapper, calls = gpg_wrapper(tmp_path)
    keyring = Keyring(empty_keyring.home, gpg_binary=wrapper)
    pin = keyring.inspect_partner_key(partners.public_key)
    keyring.import_pinned_key(pin.armored, fingerprint=pin.fingerprint)
    runs = calls.read_text().count("\n")

    assert keyring.make_available(pin.fingerprint, None) is True
    assert calls.read_text().count("\n") == runs


def test_exporting_a_key_the_keyring_lacks_names_it(
    empty_keyring: Keyring, partners: Partners
) -> None:
    with pytest.raises(KeyNotFound) as caught:
        empty_keyring.export_public_key(partners.stranger_fingerprint)

    assert str(caught.value) == f"no public key {partners.stranger_fingerprint} in the keyring"


def test_a_stored_copy_is_refused_when_empty_or_over_a_mebibyte(
    empty_keyring: Keyring, partners: Partners
) -> None:
    pin = empty_keyring.inspect_partner_key(partners.public_key)
    # The most inspect_partner_key accepts: its copy must import too.
    at_the_limit = pin.armored + "\n" * (1024 * 1024 - len(pin.armored.encode()))

    for copy in ["", " \n", at_the_limit + "\n"]:
        with pytest.raises(MalformedKey) as caught:
            empty_keyring.import_pinned_key(copy, fingerprint=pin.fingerprint)
        assert str(caught.value) == (
            f"the stored copy of key {pin.fingerprint} is empty or too large"
        )
    empty_keyring.import_pinned_key(at_the_limit, fingerprint=pin.fingerprint)
    assert public_key_fingerprints(empty_keyring.home) == [partners.fingerprint]


def test_a_pinned_copy_that_is_not_the_pinned_key_is_refused(
    empty_keyring: Keyring, partners: Partners
) -> None:
    pin = empty_keyring.inspect_partner_key(partners.public_key)

    with pytest.raises(MalformedKey, match=partners.stranger_fingerprint):
        empty_keyring.import_pinned_key(pin.armored, fingerprint=partners.stranger_fingerprint)


def test_make_available_imports_a_missing_key_once_and_reports_one_it_cannot(
    empty_keyring: Keyring, partners: Partners
) -> None:
    pin = empty_keyring.inspect_partner_key(partners.public_key)

    assert empty_keyring.make_available(partners.stranger_fingerprint, None) is False
    assert empty_keyring.make_available(pin.fingerprint, pin.armored) is True
    assert public_key_fingerprints(empty_keyring.home) == [partners.fingerprint]
    # Known present now: a damaged copy is not even looked at.
    assert empty_keyring.make_available(pin.fingerprint, "not a key") is True


def test_a_key_already_in_the_keyring_is_not_imported_again(
    empty_keyring: Keyring, partners: Partners
) -> None:
    pin = empty_keyring.import_partner_key(partners.public_key)
    fresh = Keyring(empty_keyring.home)  # another process on the same home

    assert fresh.make_available(pin.fingerprint, "not a key") is True
