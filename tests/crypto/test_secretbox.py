from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.secretbox import SealedValueInvalid, SecretBox

KEY = os.urandom(32)


@given(st.binary(max_size=256), st.binary(min_size=1, max_size=32))
def test_what_is_sealed_opens_again_in_its_context(plaintext: bytes, context: bytes) -> None:
    box = SecretBox(KEY)
    sealed = box.seal(plaintext, context=context)
    assert box.open(sealed, context=context) == plaintext


def test_the_sealed_form_does_not_contain_the_secret() -> None:
    seed = b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert seed not in SecretBox(KEY).seal(seed, context=b"totp:user:1")


def test_a_value_moved_to_another_row_does_not_open() -> None:
    box = SecretBox(KEY)
    sealed = box.seal(b"JBSWY3DPEHPK3PXP", context=b"totp:user:1")
    with pytest.raises(SealedValueInvalid):
        box.open(sealed, context=b"totp:user:2")


def test_an_altered_value_or_another_key_does_not_open() -> None:
    sealed = SecretBox(KEY).seal(b"seed", context=b"c")
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for box, value in [(SecretBox(KEY), altered), (SecretBox(os.urandom(32)), sealed)]:
        with pytest.raises(SealedValueInvalid, match="^the sealed value does not open with"):
            box.open(value, context=b"c")


@pytest.mark.parametrize(
    "value",
    [
        b"short",
        b"\x01" + bytes(27),  # our version byte, but shorter than a nonce and a tag
        b"\x02" + bytes(40),  # long enough, another version
    ],
)
def test_what_was_never_sealed_is_refused_before_decrypting(value: bytes) -> None:
    with pytest.raises(SealedValueInvalid) as caught:
        SecretBox(KEY).open(value, context=b"c")

    assert str(caught.value) == "not a sealed value"


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(b"too short")
