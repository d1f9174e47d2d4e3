"""Keyrings for the crypto tests.

Key generation is slow, so the centre's intake keyring and the partners' keys are made once
per session. GnuPG homes live under short /tmp paths (the agent socket path is limited to
~100 characters) and every agent started in them is stopped at teardown.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crypto.keyring import Keyring
from crypto.passphrase import create_passphrase_file

NARRATIVE = "The facilitator streams from a house near the market; contact via handle sunnyday88."
PARTNER_UID = "Example Crime Agency <tips@agency.example>"


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run gpg on a scratch home (partner side: what a partner's own tooling would do)."""
    result = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", *args],
        input=stdin,
        capture_output=True,
        check=True,
    )
    return result.stdout


def public_key_fingerprints(home: Path) -> list[str]:
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-keys"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    lines = listing.splitlines()
    return [
        line.split(":")[9]
        for previous, line in zip(lines, lines[1:], strict=False)
        if previous.startswith("pub:") and line.startswith("fpr:")
    ]


def stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)


def _new_home(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _discard_home(home: Path) -> None:
    stop_agent(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def gnupg_home() -> Iterator[Path]:
    """An empty, short GnuPG home path (not yet created), removed with its agent afterwards."""
    parent = _new_home("tlc-")
    home = parent / "g"
    yield home
    if home.exists():
        stop_agent(home)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def empty_keyring(gnupg_home: Path) -> Keyring:
    return Keyring(gnupg_home)


def _key_block(name: str, *, usage: str = "sign,cert", subkey: bool = True) -> str:
    lines = ["Key-Type: EDDSA", "Key-Curve: ed25519", f"Key-Usage: {usage}"]
    if subkey:
        lines += ["Subkey-Type: ECDH", "Subkey-Curve: cv25519", "Subkey-Usage: encrypt"]
    lines += [f"Name-Real: {name}", f"Name-Email: {name.lower().replace(' ', '.')}@x.example"]
    return "\n".join([*lines, "Expire-Date: 0", "%no-protection", "%commit", ""])


@dataclass(frozen=True)
class Partners:
    """Partner-side key material, made with plain gpg in a scratch home."""

    home: Path
    fingerprint: str  # the pinned partner: cert-only primary, signing + encryption subkeys
    public_key: str
    secret_key: str
    stranger_fingerprint: str  # a valid key the centre never imported
    rejected: dict[str, bytes]  # reason -> key data that must be refused


@pytest.fixture(scope="session")
def partners() -> Iterator[Partners]:
    home = _new_home("tlp-")
    try:
        yield _make_partners(home)
    finally:
        _discard_home(home)


def _make_partners(home: Path) -> Partners:
    parameters = "".join(
        [
            # The pinned partner signs with a subkey, like many real deployments.
            "Key-Type: EDDSA\nKey-Curve: ed25519\nKey-Usage: cert\n"
            "Subkey-Type: ECDH\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
            "Name-Real: Example Crime Agency\nName-Email: tips@agency.example\n"
            "Expire-Date: 0\n%no-protection\n%commit\n",
            _key_block("Stranger"),
            _key_block("Sign Only", subkey=False),
            _key_block("Encrypt Only", usage="cert"),
            _key_block("Revoked"),
            "Key-Type: RSA\nKey-Length: 1024\nSubkey-Type: RSA\nSubkey-Length: 1024\n"
            "Name-Real: Weak\nName-Email: weak@x.example\nExpire-Date: 0\n%no-protection\n"
            "%commit\n",
        ]
    )
    gpg(home, "--gen-key", stdin=parameters.encode())
    # An expiry in the past: create the key at a faked time with a one-day lifetime.
    expired = _key_block("Expired").replace("Expire-Date: 0", "Expire-Date: 1d")
    gpg(home, "--faked-system-time", "20200101T000000", "--gen-key", stdin=expired.encode())

    by_name: dict[str, str] = {}
    listing = gpg(home, "--with-colons", "--list-keys").decode()
    current_fpr = ""
    expecting_fpr = False
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            expecting_fpr = True
        elif fields[0] == "fpr" and expecting_fpr:
            current_fpr, expecting_fpr = fields[9], False
        elif fields[0] == "uid":
            by_name[fields[9].split(" <")[0]] = current_fpr

    partner = by_name["Example Crime Agency"]
    gpg(
        home,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-add-key",
        partner,
        "ed25519",
        "sign",
        "0",
    )
    revoked = by_name["Revoked"]
    certificate = (home / "openpgp-revocs.d" / f"{revoked}.rev").read_text()
    gpg(home, "--import", stdin=certificate.replace(":-----BEGIN", "-----BEGIN").encode())

    def export(fingerprint: str) -> bytes:
        return gpg(home, "--armor", "--export", fingerprint)

    return Partners(
        home=home,
        fingerprint=partner,
        public_key=export(partner).decode(),
        secret_key=gpg(home, "--armor", "--export-secret-keys", partner).decode(),
        stranger_fingerprint=by_name["Stranger"],
        rejected={
            "secret key": gpg(home, "--armor", "--export-secret-keys", by_name["Stranger"]),
            "expired": export(by_name["Expired"]),
            "revoked": export(revoked),
            "sign only": export(by_name["Sign Only"]),
            "no signing": export(by_name["Encrypt Only"]),
            "weak rsa": export(by_name["Weak"]),
            "two keys": export(by_name["Stranger"]) + export(by_name["Sign Only"]),
            "empty": b"",
            "whitespace": b"  \n",
            "garbage": b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n",
            "binary garbage": bytes(range(256)),
        },
    )


@dataclass(frozen=True)
class Intake:
    """The centre's keyring with its passphrase-protected intake key."""

    home: Path
    keyring: Keyring
    fingerprint: str
    passphrase: str
    passphrase_file: Path


@pytest.fixture(scope="session")
def intake(partners: Partners) -> Iterator[Intake]:
    root = _new_home("tli-")
    passphrase_file = root / "secrets" / "intake-passphrase"
    passphrase = create_passphrase_file(passphrase_file)
    home = root / "g"
    keyring = Keyring(home, passphrase=passphrase)
    try:
        fingerprint = keyring.generate_intake_key(
            name="Tipline Intake Test", email="intake@tl.test"
        )
        keyring.import_partner_key(partners.public_key)
        # The partner's own tooling knows the centre's public key.
        gpg(partners.home, "--import", stdin=keyring.export_public_key(fingerprint).encode())
        yield Intake(home, keyring, fingerprint, passphrase, passphrase_file)
    finally:
        keyring.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def partner_keyring(partners: Partners, intake: Intake) -> Keyring:
    """The partner's side, through the same layer (its key is unprotected)."""
    return Keyring(partners.home)


@pytest.fixture
def tip() -> bytes:
    """A realistic tip document."""
    return (
        '{"schema": "tip/1", "narrative": "' + NARRATIVE + '", "urgency": ["child_at_risk"],'
        ' "selectors": [{"type": "username", "platform": "chat", "value": "sunnyday88"}]}'
    ).encode()


@pytest.fixture
def signed_tip(tip: bytes, intake: Intake, partners: Partners, partner_keyring: Keyring) -> str:
    return partner_keyring.encrypt(tip, [intake.fingerprint], sign_with=partners.fingerprint)
