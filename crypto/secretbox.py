"""Small secrets sealed at rest with AES-256-GCM (TOTP seeds, for one).

OpenPGP is for tips and their attachments; a 20-byte TOTP seed read at every login wants
something cheap in process. The context (for example ``b"totp:user:12"``) is bound as
associated data, so a sealed value copied onto another row does not open there.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.errors import CryptoError

NONCE_BYTES = 12
VERSION = b"\x01"


class SealedValueInvalid(CryptoError):
    """A sealed value was altered, belongs elsewhere, or was sealed with another key."""


class SecretBox:
    """Seals and opens small values with one 256-bit key.

    Args:
        key: 32 random bytes, kept apart from the database.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the key must be at least 32 bytes")
        self._aead = AESGCM(key[:32])

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, VERSION + context)

    def open(self, sealed: bytes, *, context: bytes) -> bytes:
        """The plaintext.

        Raises:
            SealedValueInvalid: altered, sealed for another context, or with another key.
        """
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != VERSION:
            raise SealedValueInvalid("not a sealed value")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, VERSION + context)
        except InvalidTag:
            raise SealedValueInvalid("the sealed value does not open with this key here") from None
