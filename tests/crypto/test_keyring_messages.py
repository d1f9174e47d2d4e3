"""Encrypting, signing and decrypting tips through the keyring."""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crypto.errors import (
    DecryptError,
    EncryptError,
    MalformedMessage,
    NotEncryptedToUs,
    PlaintextTooLarge,
    SecretKeyLocked,
    SignError,
    TooManySessionKeys,
)
from crypto.keyring import Keyring, SignatureStatus
from crypto.packets import dearmor
from tests.crypto.conftest import (
    NARRATIVE,
    Intake,
    Partners,
    _key_block,
    gpg,
    public_key_fingerprints,
    stop_agent,
)
from tests.partners import armor, split_first_packet
from tests.support import gpg_wrapper


def test_signed_tip_decrypts_with_the_partners_primary_fingerprint(
    intake: Intake, partners: Partners, signed_tip: str, tip: bytes
) -> None:
    message = intake.keyring.decrypt_and_verify(signed_tip)

    assert message.plaintext == tip
    assert message.signature_valid
    assert message.signature_status is SignatureStatus.VALID
    # The partner signs with a subkey; the pin is the primary fingerprint.
    assert message.signer_fingerprint == partners.fingerprint
    assert len(message.encrypted_to) == 1


def test_unsigned_message_has_no_signer(intake: Intake, tip: bytes) -> None:
    ciphertext = intake.keyring.encrypt(tip, [intake.fingerprint])

    message = intake.keyring.decrypt_and_verify(ciphertext)

    assert message.plaintext == tip
    assert message.signer_fingerprint is None
    assert not message.signature_valid
    assert message.signature_status is SignatureStatus.UNSIGNED


def test_signature_by_a_key_we_never_pinned_is_not_valid(
    intake: Intake, partners: Partners, tip: bytes
) -> None:
    ciphertext = gpg(
        partners.home,
        "--trust-model",
        "always",
        "--armor",
        "--encrypt",
        "--sign",
        "--local-user",
        partners.stranger_fingerprint,
        "--recipient",
        intake.fingerprint,
        stdin=tip,
    )

    message = intake.keyring.decrypt_and_verify(ciphertext)

    assert message.signature_status is SignatureStatus.UNKNOWN_SIGNER
    assert message.signer_fingerprint is None
    assert not message.signature_valid


def _seal(home: Path, recipient_key: Path, *signers: str, options: tuple[str, ...] = ()) -> bytes:
    """A tip sealed by a partner's own gpg: signed by each of ``signers``, encrypted to the
    public key in the file ``recipient_key``."""
    return gpg(
        home,
        *("--trust-model", "always", "--armor", "--encrypt", "--sign"),
        *(option for signer in signers for option in ("--local-user", signer)),
        *("--recipient-file", str(recipient_key), *options),
        stdin=b"a tip",
    )


def _fingerprint_of(home: Path, email: str) -> str:
    listing = gpg(home, "--with-colons", "--list-keys", email).decode().splitlines()
    [fingerprint] = [line.split(":")[9] for line in listing if line.startswith("fpr:")][:1]
    return fingerprint


def test_a_tip_signed_twice_is_not_valid(
    intake: Intake, partners: Partners, tmp_path: Path
) -> None:
    recipient_key = tmp_path / "intake.asc"
    recipient_key.write_text(intake.keyring.export_public_key(intake.fingerprint))
    # The pinned key and another: one good signature does not make the tip valid.
    signers = (partners.fingerprint, partners.stranger_fingerprint)
    sealed = _seal(partners.home, recipient_key, *signers)

    message = intake.keyring.decrypt_and_verify(sealed)

    assert message.signature_status is SignatureStatus.MULTIPLE_SIGNATURES
    assert not message.signature_valid and message.signer_fingerprint is None


def test_a_tip_signed_by_a_key_that_has_since_expired_is_not_valid(
    empty_keyring: Keyring, partners: Partners, tmp_path: Path
) -> None:
    """Signed on 1 January 2020 by a key that expired the next day (the keyring's own key
    is older, so that gpg seals to it on that day)."""
    gpg(
        empty_keyring.home,
        *("--faked-system-time", "20191231T000000", "--gen-key"),
        stdin=_key_block("Intake").encode(),
    )
    recipient_key = tmp_path / "intake.asc"
    recipient_key.write_text(
        empty_keyring.export_public_key(_fingerprint_of(empty_keyring.home, "intake@x.example"))
    )
    gpg(empty_keyring.home, "--import", stdin=partners.rejected["expired"])
    expired = _fingerprint_of(empty_keyring.home, "expired@x.example")
    sealed = _seal(
        partners.home,
        recipient_key,
        expired,
        options=("--faked-system-time", "20200101T120000"),
    )

    message = empty_keyring.decrypt_and_verify(sealed)

    assert message.plaintext == b"a tip"
    assert message.signature_status is SignatureStatus.SIGNER_KEY_EXPIRED
    assert not message.signature_valid and message.signer_fingerprint is None


def test_a_tip_signed_by_a_key_that_has_since_been_revoked_is_not_valid(
    empty_keyring: Keyring, tmp_path: Path
) -> None:
    intake_key = empty_keyring.generate_intake_key(name="Intake", email="intake@tl.test")
    recipient_key = tmp_path / "intake.asc"
    recipient_key.write_text(empty_keyring.export_public_key(intake_key))
    partner_home = Path(tempfile.mkdtemp(prefix="tlr-", dir="/tmp"))
    try:
        gpg(partner_home, "--gen-key", stdin=_key_block("Leaver").encode())
        leaver = _fingerprint_of(partner_home, "leaver@x.example")
        sealed = _seal(partner_home, recipient_key, leaver)
        gpg(empty_keyring.home, "--import", stdin=gpg(partner_home, "--armor", "--export", leaver))
        revocation = (partner_home / "openpgp-revocs.d" / f"{leaver}.rev").read_text()
    finally:
        stop_agent(partner_home)
        shutil.rmtree(partner_home, ignore_errors=True)
    assert empty_keyring.decrypt_and_verify(sealed).signature_status is SignatureStatus.VALID
    # The partner revokes the key afterwards (its certificate is kept "disarmed" by a colon).
    gpg(
        empty_keyring.home,
        "--import",
        stdin=revocation.replace(":-----BEGIN", "-----BEGIN").encode(),
    )

    message = empty_keyring.decrypt_and_verify(sealed)

    assert message.signature_status is SignatureStatus.SIGNER_KEY_REVOKED
    assert not message.signature_valid and message.signer_fingerprint is None


def test_message_for_another_key_is_refused_with_its_recipients(
    intake: Intake, partners: Partners, partner_keyring: Keyring, tip: bytes
) -> None:
    others = [partners.stranger_fingerprint, partners.fingerprint]
    ciphertext = partner_keyring.encrypt(tip, others)

    with pytest.raises(NotEncryptedToUs) as caught:
        intake.keyring.decrypt_and_verify(ciphertext)

    named = caught.value.recipient_key_ids
    # The encryption subkeys of both keys, as the operator would look them up.
    assert len(named) == 2
    assert set(named) <= {i for fpr in others for i in partner_keyring.encryption_key_ids(fpr)}
    assert str(caught.value) == (
        "message is not encrypted to this centre's intake key "
        f"(encrypted to: {named[0]}, {named[1]})"
    )


def test_a_refusal_without_recipient_ids_says_they_were_hidden() -> None:
    assert str(NotEncryptedToUs(())) == (
        "message is not encrypted to this centre's intake key (encrypted to: hidden recipients)"
    )


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"   ",
        b"hello, this is not OpenPGP",
        b"-----BEGIN PGP MESSAGE-----\n\nbm90IGEgbWVzc2FnZQ==\n-----END PGP MESSAGE-----\n",
        bytes(range(256)) * 4,
    ],
    ids=["empty", "blank", "text", "armored junk", "binary junk"],
)
def test_garbage_is_a_malformed_message(intake: Intake, garbage: bytes) -> None:
    with pytest.raises(MalformedMessage):
        intake.keyring.decrypt_and_verify(garbage)


def test_tampered_ciphertext_is_refused(intake: Intake, signed_tip: str) -> None:
    raw = bytearray(gpg(intake.home, "--dearmor", stdin=signed_tip.encode()))
    raw[-20] ^= 0x01

    with pytest.raises(DecryptError) as caught:
        intake.keyring.decrypt_and_verify(bytes(raw))

    assert not isinstance(caught.value, NotEncryptedToUs)


def test_a_tip_altered_before_it_was_encrypted_is_refused(
    intake: Intake, partners: Partners
) -> None:
    """The signature no longer matches the content, though the encryption is intact: GnuPG
    2.2 stops at the bad signature, before it says the decryption was good, so this is a
    DecryptError (the partner's fault), never a message with a BAD signature status."""
    signed = gpg(
        partners.home,
        *("--compress-algo", "none", "--sign", "--local-user", partners.fingerprint),
        stdin=b"a tip from a partner",
    )

    def seal(packets: bytes) -> bytes:
        # --no-literal: encrypt these packets as they are, not as the content of a message.
        return gpg(
            partners.home,
            *("--trust-model", "always", "--no-literal", "--armor", "--encrypt"),
            *("--recipient", intake.fingerprint),
            stdin=packets,
        )

    assert intake.keyring.decrypt_and_verify(seal(signed)).signature_valid
    altered = signed.replace(b"a tip from a partner", b"A tip from a partner")

    with pytest.raises(DecryptError) as caught:
        intake.keyring.decrypt_and_verify(seal(altered))

    assert type(caught.value) is DecryptError


def test_symmetrically_encrypted_message_is_malformed(intake: Intake, tip: bytes) -> None:
    ciphertext = gpg(
        intake.home,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "pw",
        "--no-symkey-cache",
        "--symmetric",
        "--armor",
        stdin=tip,
    )

    with pytest.raises(MalformedMessage):
        intake.keyring.decrypt_and_verify(ciphertext)


@pytest.mark.parametrize("passphrase", [None, "not-the-passphrase"])
def test_intake_key_is_unusable_without_its_passphrase(
    intake: Intake, signed_tip: str, passphrase: str | None
) -> None:
    """Also shows that the agent keeps no passphrase a process without the secret could use."""
    keyring = Keyring(intake.home, passphrase=passphrase)

    with pytest.raises(SecretKeyLocked):
        keyring.decrypt_and_verify(signed_tip)


def test_oversized_plaintext_is_refused(intake: Intake) -> None:
    ciphertext = intake.keyring.encrypt(b"\0" * 200_000, [intake.fingerprint])
    keyring = Keyring(intake.home, passphrase=intake.passphrase, max_plaintext_bytes=100_000)

    with pytest.raises(PlaintextTooLarge):
        keyring.decrypt_and_verify(ciphertext)


def test_feedback_to_a_partner_is_signed_by_the_centre(
    intake: Intake, partners: Partners, partner_keyring: Keyring
) -> None:
    ciphertext = intake.keyring.encrypt(
        b"Referral closed: two children safe.",
        [partners.fingerprint],
        sign_with=intake.fingerprint,
    )

    message = partner_keyring.decrypt_and_verify(ciphertext)

    assert message.plaintext == b"Referral closed: two children safe."
    assert message.signature_valid
    assert message.signer_fingerprint == intake.fingerprint


def test_encrypting_to_an_unknown_key_fails(intake: Intake, partners: Partners) -> None:
    with pytest.raises(EncryptError) as caught:
        intake.keyring.encrypt(b"x", [partners.stranger_fingerprint])

    assert str(caught.value) == (
        f"recipient key {partners.stranger_fingerprint} cannot be used: not found"
    )


@pytest.mark.parametrize("reason", ["revoked", "expired", "sign only"])
def test_encrypting_to_a_key_gpg_will_not_use_fails(
    empty_keyring: Keyring, partners: Partners, reason: str
) -> None:
    """A key can be in the keyring and still be refused: GnuPG 2.2 gives no reason for these
    (its code 0), so none is made up."""
    gpg(empty_keyring.home, "--import", stdin=partners.rejected[reason])
    [fingerprint] = public_key_fingerprints(empty_keyring.home)

    with pytest.raises(EncryptError) as caught:
        empty_keyring.encrypt(b"x", [fingerprint])

    assert str(caught.value) == f"recipient key {fingerprint} cannot be used: unusable"


def test_signing_with_a_key_whose_secret_is_not_here_fails(
    intake: Intake, partners: Partners
) -> None:
    """Not signed by another secret key of the home instead (python-gnupg names the signer
    with --default-key, which gpg passes over for a key it cannot sign with)."""
    with pytest.raises(SignError) as caught:
        intake.keyring.encrypt(b"x", [partners.fingerprint], sign_with=partners.fingerprint)

    assert str(caught.value) == (
        f"signing key {partners.fingerprint} cannot be used: no secret key"
    )


@pytest.mark.parametrize("passphrase", [None, "not-the-passphrase"])
def test_signing_with_a_locked_key_fails(
    intake: Intake, partners: Partners, passphrase: str | None
) -> None:
    keyring = Keyring(intake.home, passphrase=passphrase)

    with pytest.raises(SecretKeyLocked) as caught:
        keyring.encrypt(b"x", [partners.fingerprint], sign_with=intake.fingerprint)

    assert str(caught.value) == "the signing key could not be unlocked (check its passphrase)"


@pytest.mark.parametrize("recipients", [[], "ABCD"])
def test_encrypting_needs_a_list_of_fingerprints(intake: Intake, recipients: list[str]) -> None:
    with pytest.raises(EncryptError, match="^give a non-empty list of recipient fingerprints$"):
        intake.keyring.encrypt(b"x", recipients)


def test_short_key_ids_are_refused(intake: Intake) -> None:
    with pytest.raises(ValueError, match="40-hex"):
        intake.keyring.encrypt(b"x", [intake.fingerprint[-16:]])


def test_several_processes_share_the_intake_key(intake: Intake, signed_tip: str) -> None:
    """Web and worker processes each open the home and pass the passphrase; one agent serves
    them all concurrently."""

    def decrypt(_: int) -> bool:
        keyring = Keyring(intake.home, passphrase=intake.passphrase)
        return keyring.decrypt_and_verify(signed_tip).signature_valid

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(decrypt, range(8)))


def test_nothing_of_a_tip_or_a_key_reaches_the_logs(
    caplog: pytest.LogCaptureFixture, intake: Intake, partners: Partners, tip: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = Keyring(partners.home)
    ciphertext = sender.encrypt(tip, [intake.fingerprint], sign_with=partners.fingerprint)
    intake.keyring.decrypt_and_verify(ciphertext)
    with pytest.raises(NotEncryptedToUs):
        intake.keyring.decrypt_and_verify(sender.encrypt(tip, [partners.fingerprint]))
    intake.keyring.import_partner_key(partners.public_key)
    with pytest.raises(SecretKeyLocked):
        Keyring(intake.home, passphrase="wrong").decrypt_and_verify(ciphertext)

    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    key_body = partners.public_key.splitlines()[3]
    assert logging.getLogger("gnupg").getEffectiveLevel() >= logging.WARNING
    assert NARRATIVE not in logged
    assert base64.b64encode(tip[:30]).decode()[:20] not in logged
    assert key_body not in logged
    assert "PGP" not in logged
    assert intake.passphrase not in logged


def test_decrypted_message_repr_hides_the_plaintext(intake: Intake, signed_tip: str) -> None:
    message = intake.keyring.decrypt_and_verify(signed_tip)

    assert NARRATIVE not in repr(message)


def test_the_key_that_really_decrypted_is_reported_not_the_recipients_claimed(
    gnupg_home: Path,
) -> None:
    """A message can name our current key as a recipient and still be decrypted with another
    key we hold (a retired one): it must be judged by the key that decrypted it."""
    keyring = Keyring(gnupg_home)
    current = keyring.generate_intake_key(name="Current", email="current@tl.test")
    retired = keyring.generate_intake_key(name="Retired", email="retired@tl.test")
    to_retired = dearmor(keyring.encrypt(b"a tip", [retired]).encode())
    to_current = dearmor(keyring.encrypt(b"another", [current]).encode())
    retired_session_key, encrypted_data = split_first_packet(to_retired)
    current_session_key, _ = split_first_packet(to_current)
    spliced = armor(retired_session_key + current_session_key + encrypted_data)

    message = keyring.decrypt_and_verify(spliced)

    assert message.plaintext == b"a tip"
    assert set(message.encrypted_to) & keyring.encryption_key_ids(current)
    assert message.decrypted_with == retired


def test_a_message_with_too_many_session_keys_never_reaches_gpg(
    intake: Intake, partners: Partners, partner_keyring: Keyring, tmp_path: Path
) -> None:
    binary = dearmor(partner_keyring.encrypt(b"a tip", [intake.fingerprint]).encode())
    session_key, rest = split_first_packet(binary)
    wrapper, calls = gpg_wrapper(tmp_path)
    keyring = Keyring(intake.home, gpg_binary=wrapper, passphrase=intake.passphrase)
    assert keyring.decrypt_and_verify(armor(session_key * 8 + rest)).plaintext == b"a tip"
    assert calls.read_text().count("--decrypt") == 1

    with pytest.raises(TooManySessionKeys) as caught:
        keyring.decrypt_and_verify(armor(session_key * 9 + rest))

    # Given to the partner as the reason the tip was rejected.
    assert str(caught.value) == (
        "the message carries more than 8 session-key packets (one per recipient): "
        "encrypt it to the intake key and at most a few other keys"
    )

    assert calls.read_text().count("--decrypt") == 1


def test_gpg_exiting_with_an_error_after_a_good_signature_is_an_error(
    intake: Intake, signed_tip: str, tmp_path: Path
) -> None:
    wrapper, _ = gpg_wrapper(tmp_path, exit_after_decrypt=2)
    keyring = Keyring(intake.home, gpg_binary=wrapper, passphrase=intake.passphrase)

    with pytest.raises(DecryptError, match="GnuPG reported an error"):
        keyring.decrypt_and_verify(signed_tip)


def test_gpg_exiting_with_an_error_after_writing_a_message_is_an_error(
    intake: Intake, partners: Partners, tmp_path: Path
) -> None:
    """What gpg wrote may be cut short: a message is returned only when gpg says it is done."""
    wrapper, _ = gpg_wrapper(tmp_path, exit_after_encrypt=2)
    keyring = Keyring(intake.home, gpg_binary=wrapper, passphrase=intake.passphrase)

    with pytest.raises(EncryptError, match="^encryption failed$"):
        keyring.encrypt(b"feedback", [partners.fingerprint])
