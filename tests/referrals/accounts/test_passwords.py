"""The password policy at its limits, in the words the enrolment page shows."""

from __future__ import annotations

import pytest

from referrals.accounts.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordHashing,
    PasswordRejected,
    check_policy,
)

EMAIL = "anna.cruz@centre.example"


@pytest.mark.parametrize(
    "password",
    [
        "q7e" + "w" * (MIN_LENGTH - 3),  # as short as allowed
        "q7e" + "w" * (MAX_LENGTH - 3),  # as long as allowed
        "abcdabcdabcd",  # four different characters are enough
        "x-ana-x-ana-x-ana",  # a local part shorter than four characters may appear
    ],
)
def test_passwords_at_the_policys_limits_are_accepted(password: str) -> None:
    check_policy(password, email=EMAIL)
    check_policy(password, email="ana@centre.example")


@pytest.mark.parametrize(
    ("password", "email", "reason"),
    [
        ("q7e" + "w" * (MIN_LENGTH - 4), EMAIL, f"use at least {MIN_LENGTH} characters"),
        ("q7e" + "w" * (MAX_LENGTH - 2), EMAIL, f"use at most {MAX_LENGTH} characters"),
        ("abcabcabcabcabc", EMAIL, "this password is too common: choose another"),
        ("  Password1234  ", EMAIL, "this password is too common: choose another"),
        (
            "my name is ANNA.CRUZ@CENTRE.EXAMPLE",
            EMAIL,
            "the password must not contain your e-mail address",
        ),
        ("fourteen: Anna.cruz!", EMAIL, "the password must not contain your e-mail address"),
        (
            "x-anna-x-anna-x",
            "anna@centre.example",
            "the password must not contain your e-mail address",
        ),
    ],
)
def test_a_password_outside_the_policy_is_refused_saying_why(
    password: str, email: str, reason: str
) -> None:
    with pytest.raises(PasswordRejected) as refused:
        check_policy(password, email=email)
    assert str(refused.value) == reason


def test_no_stored_hash_never_matches() -> None:
    hashing = PasswordHashing()
    assert not hashing.verify(None, "not-a-password-anyone-has-0f6e2d1c")
    assert not hashing.verify("", "anything at all")
    assert not hashing.verify("not an argon2 hash", "anything at all")
