"""The partner side, as a partner agency's own tooling would do it: keys in a GnuPG home of
their own, tips signed and encrypted with the plain `gpg` command."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "referrals" / "intake" / "fixtures"
# Strings from the valid tip that must never be found in clear anywhere on our side.
NARRATIVE_MARK = "little ones"
SELECTOR_MARKS = ("sunnyday88", "sunny.day88@example.com", "905 123 4567", "EXR-6300-5512-0087")


def valid_tip(**changes: Any) -> dict[str, Any]:
    """The fictional example tip, with top-level fields changed as given."""
    document: dict[str, Any] = json.loads((FIXTURES / "tip-valid.json").read_text())
    document = copy.deepcopy(document)
    document.update(changes)
    return document


class PartnerKeys:
    """Partner agencies' key pairs in one scratch GnuPG home."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="tl-partner-", dir="/tmp"))
        self.fingerprints: dict[str, str] = {}

    def gpg(self, *args: str, stdin: bytes | None = None) -> bytes:
        result = subprocess.run(
            [
                "gpg",
                "--homedir",
                str(self.home),
                "--batch",
                "--yes",
                "--trust-model",
                "always",
                *args,
            ],
            input=stdin,
            capture_output=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr.decode(errors="replace"))
        return result.stdout

    def generate(self, name: str) -> str:
        uid = f"{name} <{name}@partners.invalid>"
        self.gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        listing = self.gpg("--with-colons", "--list-keys", uid).decode()
        fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        )
        self.gpg("--passphrase", "", "--quick-add-key", fingerprint, "cv25519", "encr", "never")
        self.fingerprints[name] = fingerprint
        return fingerprint

    def public_key(self, name: str) -> bytes:
        return self.gpg("--armor", "--export", self.fingerprints[name])

    def trust_recipient(self, armored_public_key: str | bytes) -> None:
        data = (
            armored_public_key.encode()
            if isinstance(armored_public_key, str)
            else armored_public_key
        )
        self.gpg("--import", stdin=data)

    def seal(
        self,
        document: dict[str, Any] | bytes,
        *,
        recipient: str,
        signer: str | None,
        armored: bool = True,
        options: tuple[str, ...] = (),
    ) -> bytes:
        """``gpg --sign --encrypt --armor``, as the README tells partners to (``armored=False``
        gives the binary packets, to take apart; ``options`` go before the others)."""
        payload = document if isinstance(document, bytes) else json.dumps(document).encode()
        args = [*options, "--encrypt", "--recipient", recipient]
        if armored:
            args = ["--armor", *args]
        if signer is not None:
            args = ["--sign", "--local-user", self.fingerprints[signer], *args]
        return self.gpg(*args, stdin=payload)

    def close(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.home, ignore_errors=True)


def _crc24(data: bytes) -> int:
    """RFC 4880 section 6.1, bit by bit: independent of the reader under test."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor(packets: bytes, *, checksum: bool = True) -> bytes:
    """Binary OpenPGP packets as an armored message, the way gpg writes one."""
    body = base64.b64encode(packets).decode()
    lines = ["-----BEGIN PGP MESSAGE-----", ""]
    lines += [body[i : i + 64] for i in range(0, len(body), 64)]
    if checksum:
        lines.append("=" + base64.b64encode(_crc24(packets).to_bytes(3, "big")).decode())
    lines += ["-----END PGP MESSAGE-----", ""]
    return "\n".join(lines).encode()


def split_first_packet(packets: bytes) -> tuple[bytes, bytes]:
    """The first packet of gpg's output (an old-format header, as gpg writes session-key
    packets) and the rest."""
    ctb = packets[0]
    assert ctb & 0xC0 == 0x80, "expected an old-format packet header"
    width = {0: 1, 1: 2, 2: 4}[ctb & 0x03]
    length = int.from_bytes(packets[1 : 1 + width], "big")
    end = 1 + width + length
    return packets[:end], packets[end:]
