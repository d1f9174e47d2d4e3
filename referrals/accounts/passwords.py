"""Passwords: the policy a new one must meet, and argon2id hashes of them."""

from __future__ import annotations

import gzip
from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256


class PasswordRejected(ValueError):
    """The password does not meet the policy; the message says why (never repeating it)."""


@cache
def common_passwords() -> frozenset[str]:
    """The 20,000 most common passwords (Django's list, BSD licence, shipped with us)."""
    data = files("referrals.accounts").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def check_policy(password: str, *, email: str) -> None:
    """Raise PasswordRejected unless ``password`` is acceptable for the account ``email``."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"use at most {MAX_LENGTH} characters")
    lowered = password.lower().strip()
    if lowered in common_passwords() or len(set(lowered)) < 4:
        raise PasswordRejected("this password is too common: choose another")
    local_part = email.split("@", 1)[0].lower()
    if email.lower() in lowered or (len(local_part) >= 4 and local_part in lowered):
        raise PasswordRejected("the password must not contain your e-mail address")


class PasswordHashing:
    """argon2id hashes (RFC 9106 low-memory profile by default; tests pass cheaper costs).

    Args:
        hasher: the argon2 hasher; defaults to argon2-cffi's recommended parameters.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches; False for no stored hash (and the same work done,
        so timing does not tell whether the account exists)."""
        try:
            return bool(self.hasher.verify(stored or _DUMMY_HASH, password)) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return bool(self.hasher.check_needs_rehash(stored))


# A hash of a random password, verified against when an account has none.
_DUMMY_HASH = PasswordHasher().hash("not-a-password-anyone-has-0f6e2d1c")
