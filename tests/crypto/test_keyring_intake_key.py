"""The centre's intake key and the GnuPG home it lives in."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crypto.errors import (
    CryptoError,
    EncryptError,
    KeyNotFound,
    MalformedKey,
    SecretKeyLocked,
)
from crypto.keyring import Keyring
from crypto.passphrase import create_passphrase_file, read_passphrase_file
from tests.crypto.conftest import Intake, Partners, gpg


def test_intake_key_uses_modern_curves_and_the_given_user_id(intake: Intake) -> None:
    listing = gpg(intake.home, "--with-colons", "--list-secret-keys", intake.fingerprint)
    records = [line.split(":") for line in listing.decode().splitlines()]

    uids = [record[9] for record in records if record[0] == "uid"]
    curves = {record[0]: record[16] for record in records if record[0] in {"sec", "ssb"}}
    assert uids == ["Tipline Intake Test <intake@tl.test>"]
    assert socket.gethostname() not in uids[0]
    assert curves == {"sec": "ed25519", "ssb": "cv25519"}


def test_intake_secret_key_is_found_by_fingerprint(intake: Intake, partners: Partners) -> None:
    assert intake.keyring.has_secret_key(intake.fingerprint)
    assert not intake.keyring.has_secret_key(partners.fingerprint)
    assert not intake.keyring.has_secret_key("0" * 40)


def test_exported_intake_key_is_public_only(intake: Intake) -> None:
    exported = intake.keyring.export_public_key(intake.fingerprint)

    assert exported.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert "PRIVATE" not in exported


def test_exporting_an_unknown_key_fails(intake: Intake) -> None:
    with pytest.raises(KeyNotFound):
        intake.keyring.export_public_key("0" * 40)


@pytest.mark.parametrize(
    ("name", "email"),
    [("Intake\nPassphrase: x", "a@b.example"), ("Intake", "a@b.example\n%commit"), ("", "a@b")],
)
def test_user_id_cannot_inject_key_parameters(
    empty_keyring: Keyring, name: str, email: str
) -> None:
    with pytest.raises(ValueError):
        empty_keyring.generate_intake_key(name=name, email=email)


def test_a_key_name_is_1_to_200_printable_characters_without_user_id_syntax(
    empty_keyring: Keyring,
) -> None:
    for name in ["X", "N" * 200]:
        fingerprint = empty_keyring.generate_signing_key(name=name, email="web@tl.test")
        listing = gpg(empty_keyring.home, "--with-colons", "--list-keys", fingerprint).decode()
        assert f"{name} <web@tl.test>" in listing
    for name in ["N" * 201, "Tab\there", "Intake (test)", "<Intake>", 'The "intake"']:
        with pytest.raises(ValueError) as caught:
            empty_keyring.generate_signing_key(name=name, email="web@tl.test")
        assert str(caught.value) == 'name must be 1-200 printable characters without <>()"'


def test_a_key_email_is_one_address_of_at_most_254_characters(empty_keyring: Keyring) -> None:
    longest = "i" * 239 + "@tl.example.org"  # 254 characters
    fingerprint = empty_keyring.generate_signing_key(name="Web form", email=longest)
    assert fingerprint in gpg(empty_keyring.home, "--with-colons", "--list-keys", longest).decode()
    for email in ["i" + longest, "two@tl.test three@tl.test", "tl.test"]:
        with pytest.raises(ValueError) as caught:
            empty_keyring.generate_signing_key(name="Web form", email=email)
        assert str(caught.value) == "email must be a single address like intake@example.org"


@pytest.mark.parametrize("passphrase", ["p" * 43, None])
def test_a_generated_key_is_stored_protected_by_the_keyrings_passphrase(
    gnupg_home: Path, passphrase: str | None
) -> None:
    """A copy of the GnuPG home alone must not yield the key (see crypto.keyring)."""
    Keyring(gnupg_home, passphrase=passphrase).generate_signing_key(
        name="Web form", email="web@tl.test"
    )

    [stored] = (gnupg_home / "private-keys-v1.d").glob("*.key")
    assert (b"protected-private-key" in stored.read_bytes()) is (passphrase is not None)


def test_gnupg_home_is_created_private(gnupg_home: Path) -> None:
    Keyring(gnupg_home)

    assert stat.S_IMODE(gnupg_home.stat().st_mode) == 0o700


def test_loose_gnupg_home_permissions_are_tightened(gnupg_home: Path) -> None:
    gnupg_home.mkdir(mode=0o755)
    os.chmod(gnupg_home, 0o755)  # noqa: S103 - deliberately loose: the Keyring must tighten it

    Keyring(gnupg_home)

    assert stat.S_IMODE(gnupg_home.stat().st_mode) == 0o700


def test_close_stops_the_agent(intake: Intake, signed_tip: str) -> None:
    keyring = Keyring(intake.home, passphrase=intake.passphrase)
    keyring.decrypt_and_verify(signed_tip)
    socket_path = Path(
        subprocess.run(
            ["gpgconf", "--homedir", str(intake.home), "--list-dirs", "agent-socket"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    assert socket_path.exists()

    keyring.close()

    deadline = time.monotonic() + 5
    while socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not socket_path.exists()
    # Other users of the home are unaffected: the agent restarts on demand.
    assert intake.keyring.decrypt_and_verify(signed_tip).signature_valid


def test_the_key_ids_a_message_to_the_intake_key_names_are_those_gpg_lists(
    intake: Intake, partners: Partners
) -> None:
    listing = gpg(intake.home, "--with-colons", "--list-keys", intake.fingerprint).decode()
    key_ids = {
        line.split(":")[4] for line in listing.splitlines() if line.startswith(("pub:", "sub:"))
    }

    assert len(key_ids) == 2
    assert intake.keyring.encryption_key_ids(intake.fingerprint) == key_ids
    with pytest.raises(KeyNotFound) as caught:
        intake.keyring.encryption_key_ids(partners.stranger_fingerprint)
    assert str(caught.value) == f"no public key {partners.stranger_fingerprint} in the keyring"


def test_a_keyring_shows_its_home_and_never_its_passphrase(intake: Intake) -> None:
    assert repr(intake.keyring) == f"Keyring(home={str(intake.home)!r})"
    assert intake.passphrase not in repr(intake.keyring)


def test_passphrase_file_is_private_and_round_trips(intake: Intake) -> None:
    assert stat.S_IMODE(intake.passphrase_file.stat().st_mode) == 0o600
    assert read_passphrase_file(intake.passphrase_file) == intake.passphrase
    assert len(intake.passphrase) >= 43  # 256 bits, URL-safe base64


def test_a_new_passphrase_file_and_its_folder_are_private(tmp_path: Path) -> None:
    """`tipline init` on a fresh home: the secrets folder does not exist yet, nor its parent.
    (The session's intake fixture makes its file once, for whichever test runs first.)"""
    path = tmp_path / "instance" / "secrets" / "intake_key_passphrase"

    passphrase = create_passphrase_file(path)

    assert path.read_text(encoding="ascii") == passphrase + "\n"
    assert read_passphrase_file(path) == passphrase
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_existing_passphrase_file_is_never_overwritten(intake: Intake) -> None:
    with pytest.raises(FileExistsError):
        create_passphrase_file(intake.passphrase_file)


def test_readable_passphrase_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pass"
    create_passphrase_file(path)
    os.chmod(path, 0o644)

    with pytest.raises(CryptoError, match="chmod 600"):
        read_passphrase_file(path)


@pytest.mark.parametrize("passphrase", ["", " padded", "two\nlines"])
def test_unusable_passphrases_are_refused(gnupg_home: Path, passphrase: str) -> None:
    with pytest.raises(ValueError):
        Keyring(gnupg_home, passphrase=passphrase)


def test_a_signing_key_signs_and_cannot_be_encrypted_to(empty_keyring: Keyring) -> None:
    fingerprint = empty_keyring.generate_signing_key(name="Web form", email="web@tl.test")

    listing = gpg(empty_keyring.home, "--with-colons", "--list-secret-keys", fingerprint)
    records = [line.split(":") for line in listing.decode().splitlines()]
    assert [(r[0], r[16]) for r in records if r[0] in {"sec", "ssb"}] == [("sec", "ed25519")]
    with pytest.raises(EncryptError):
        empty_keyring.encrypt(b"content", [fingerprint])
    # As the web form does: a tip to the intake key, signed with the web-form key.
    intake_key = empty_keyring.generate_intake_key(name="Intake", email="intake@tl.test")
    signed = empty_keyring.encrypt(b"tip", [intake_key], sign_with=fingerprint)
    assert empty_keyring.decrypt_and_verify(signed).signer_fingerprint == fingerprint


def test_a_secret_key_moves_to_another_home_with_its_passphrase_only(intake: Intake) -> None:
    exported = intake.keyring.export_secret_key(intake.fingerprint)
    assert exported.startswith("-----BEGIN PGP PRIVATE KEY BLOCK-----")
    home = Path(tempfile.mkdtemp(prefix="tlx-", dir="/tmp"))
    try:
        copy = Keyring(home, passphrase=intake.passphrase)
        copy.import_secret_key(exported, fingerprint=intake.fingerprint)
        assert copy.has_secret_key(intake.fingerprint)
        signed = copy.encrypt(b"tip", [intake.fingerprint], sign_with=intake.fingerprint)
        assert copy.decrypt_and_verify(signed).signature_valid
        # Still protected: the same home without the passphrase cannot use it.
        with pytest.raises(SecretKeyLocked):
            Keyring(home).decrypt_and_verify(signed)
    finally:
        Keyring(home).close()
        shutil.rmtree(home, ignore_errors=True)


def test_a_secret_key_is_exported_only_with_its_passphrase(
    intake: Intake, partner_keyring: Keyring, partners: Partners
) -> None:
    with pytest.raises(SecretKeyLocked) as caught:
        Keyring(intake.home, passphrase="not-the-passphrase").export_secret_key(intake.fingerprint)
    assert str(caught.value) == f"the secret key {intake.fingerprint} could not be exported"
    # An unprotected key (the partners' own, here) needs none.
    exported = partner_keyring.export_secret_key(partners.fingerprint)
    assert exported.startswith("-----BEGIN PGP PRIVATE KEY BLOCK-----")


def test_exporting_a_secret_key_this_keyring_lacks_fails(
    intake: Intake, partners: Partners
) -> None:
    with pytest.raises(KeyNotFound) as caught:
        intake.keyring.export_secret_key(partners.fingerprint)

    assert str(caught.value) == f"no secret key {partners.fingerprint} in the keyring"


def test_importing_anything_but_the_named_secret_key_fails(
    intake: Intake, partners: Partners, empty_keyring: Keyring
) -> None:
    exported = intake.keyring.export_secret_key(intake.fingerprint)
    public_only = intake.keyring.export_public_key(intake.fingerprint)

    for armored, fingerprint in [
        (public_only, intake.fingerprint),  # the public half only
        (exported, partners.fingerprint),  # another key than the one named
    ]:
        with pytest.raises(MalformedKey) as caught:
            empty_keyring.import_secret_key(armored, fingerprint=fingerprint)
        assert str(caught.value) == f"GnuPG did not import the secret key {fingerprint}"


def test_keys_are_generated_even_when_generation_straddles_a_second() -> None:
    """The agent keeps the passphrase for gpg under a nonce while a key is made and signed;
    before, that entry died at the next tick of the agent's clock, so on a busy machine a
    generation now and then failed with "can't get input": 3 and 13 in 150, 12 at a time, in
    two runs (a few seconds; enough generations at once that some straddle a second)."""
    homes = [Path(tempfile.mkdtemp(prefix="tlg-", dir="/tmp")) for _ in range(150)]

    def generate(home: Path) -> str:
        keyring = Keyring(home, passphrase="p" * 43)
        try:
            return keyring.generate_intake_key(name="Busy", email="busy@tl.test")
        finally:
            keyring.close()

    try:
        with ThreadPoolExecutor(12) as pool:
            fingerprints = list(pool.map(generate, homes))
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
    assert len(set(fingerprints)) == len(homes)


def test_a_passphrase_given_once_is_not_kept_by_the_shared_agent(
    intake: Intake, signed_tip: str
) -> None:
    assert intake.keyring.decrypt_and_verify(signed_tip).signature_valid
    # Past the agent's next tick: a process without the passphrase file gets nothing from it.
    time.sleep(2.1)
    with pytest.raises(SecretKeyLocked):
        Keyring(intake.home).decrypt_and_verify(signed_tip)
