"""Importing and pinning partner agencies' public keys."""

from __future__ import annotations

import pytest

from crypto.errors import (
    FingerprintMismatch,
    KeyExpired,
    KeyImportError,
    KeyNotUsable,
    KeyRevoked,
    MalformedKey,
    SecretKeyRefused,
)
from crypto.keyring import Keyring
from tests.crypto.conftest import Partners, public_key_fingerprints


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
