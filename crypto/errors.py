"""Typed errors raised by the crypto layer.

Messages say what went wrong in words an operator or a partner can act on. They never carry
plaintext, key material, passphrases or selector values: callers may show them in an HTTP 4xx
body or a log line as they are. Fingerprints and key ids are public metadata and may appear.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every OpenPGP failure raised by :mod:`crypto`."""


class KeyGenerationError(CryptoError):
    """GnuPG did not create the requested key."""


class KeyNotFound(CryptoError):
    """No key with the given fingerprint is in the keyring."""


class KeyImportError(CryptoError):
    """A key was refused for import; nothing was added to the keyring.

    Subclasses name the reason so callers can answer precisely.
    """


class MalformedKey(KeyImportError):
    """The input is empty, not OpenPGP key data, or holds more or less than one key."""


class SecretKeyRefused(KeyImportError):
    """The input holds a secret key; partners must send their public key only."""


class KeyExpired(KeyImportError):
    """The key (or every subkey able to do what we need) has expired."""


class KeyRevoked(KeyImportError):
    """The key has been revoked by its owner."""


class KeyNotUsable(KeyImportError):
    """The key lacks a usable signing or encryption capability, or is too weak."""


class FingerprintMismatch(KeyImportError):
    """The key is not the one whose fingerprint was confirmed out of band."""


class EncryptError(CryptoError):
    """Encryption failed, e.g. a recipient key is unknown, expired or revoked."""


class SignError(CryptoError):
    """Signing failed, e.g. no usable secret key for the requested signer."""


class DecryptError(CryptoError):
    """Decryption failed. Subclasses distinguish the causes a caller must tell apart."""


class MalformedMessage(DecryptError):
    """The input is not an OpenPGP message encrypted to a public key (garbage, empty,
    signed-only or symmetrically encrypted)."""


class NotEncryptedToUs(DecryptError):
    """A valid OpenPGP message, but not encrypted to any secret key this keyring holds."""

    def __init__(self, recipient_key_ids: tuple[str, ...]) -> None:
        self.recipient_key_ids = recipient_key_ids
        listed = ", ".join(recipient_key_ids) or "hidden recipients"
        super().__init__(
            f"message is not encrypted to this centre's intake key (encrypted to: {listed})"
        )


class PlaintextTooLarge(DecryptError):
    """The decrypted content exceeds the configured limit (e.g. a compression bomb)."""


class TooManySessionKeys(DecryptError):
    """The message carries more session-key packets than a tip needs; refused before GnuPG
    tries them (each one naming a key we hold costs gpg-agent a private-key operation)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the message carries more than {limit} session-key packets (one per recipient): "
            "encrypt it to the intake key and at most a few other keys"
        )


class GnuPGError(CryptoError):
    """GnuPG did not run as expected (no answer, killed, or a version that does not report
    what this code relies on). A fault of the server, not of the message: retry later."""


class SecretKeyLocked(CryptoError):
    """Our secret key could not be unlocked (wrong or missing passphrase).

    Deliberately not a :class:`DecryptError`: it is a server configuration fault, not a fault of
    the message, so a worker should keep the tip and retry rather than reject it.
    """


class InvalidSelector(ValueError):
    """A selector value or type cannot be normalised. The message never echoes the value."""
