"""OpenPGP keyring and blind indexes: the bottom layer of Tipline (no Flask, no database)."""

from __future__ import annotations

from crypto.blind_index import BlindIndex
from crypto.errors import (
    CryptoError,
    DecryptError,
    EncryptError,
    FingerprintMismatch,
    GnuPGError,
    InvalidSelector,
    KeyExpired,
    KeyGenerationError,
    KeyImportError,
    KeyNotFound,
    KeyNotUsable,
    KeyRevoked,
    MalformedKey,
    MalformedMessage,
    NotEncryptedToUs,
    PlaintextTooLarge,
    SecretKeyLocked,
    SecretKeyRefused,
    SignError,
    TooManySessionKeys,
)
from crypto.keyring import (
    DecryptedMessage,
    Keyring,
    PartnerKey,
    SignatureStatus,
    Verification,
    normalise_fingerprint,
)
from crypto.packets import MAX_SESSION_KEY_PACKETS, MessageShape, read_encrypted_message
from crypto.passphrase import create_passphrase_file, read_passphrase_file
from crypto.selectors import SelectorType, normalise_selector

__all__ = [
    "MAX_SESSION_KEY_PACKETS",
    "BlindIndex",
    "CryptoError",
    "DecryptError",
    "DecryptedMessage",
    "EncryptError",
    "FingerprintMismatch",
    "GnuPGError",
    "InvalidSelector",
    "KeyExpired",
    "KeyGenerationError",
    "KeyImportError",
    "KeyNotFound",
    "KeyNotUsable",
    "KeyRevoked",
    "Keyring",
    "MalformedKey",
    "MalformedMessage",
    "MessageShape",
    "NotEncryptedToUs",
    "PartnerKey",
    "PlaintextTooLarge",
    "SecretKeyLocked",
    "SecretKeyRefused",
    "SelectorType",
    "SignError",
    "SignatureStatus",
    "TooManySessionKeys",
    "Verification",
    "create_passphrase_file",
    "normalise_fingerprint",
    "normalise_selector",
    "read_encrypted_message",
    "read_passphrase_file",
]
