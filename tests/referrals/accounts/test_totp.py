"""TOTP codes: any standard RFC 6238 authenticator works, a code is good once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from referrals.accounts import totp


def rfc6238_code(secret_base32: str, moment: datetime, *, digits: int = 6) -> str:
    """An independent implementation of RFC 6238 (HMAC-SHA1, 30 s steps), as an
    authenticator app computes it — not pyotp."""
    key = base64.b32decode(secret_base32.upper() + "=" * (-len(secret_base32) % 8))
    counter = int(moment.timestamp()) // 30
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def test_the_independent_implementation_matches_the_rfc_test_vector() -> None:
    # RFC 6238 appendix B, SHA1 seed "12345678901234567890", T = 59 s: 94287082 (8 digits).
    seed = base64.b32encode(b"12345678901234567890").decode()
    assert rfc6238_code(seed, datetime.fromtimestamp(59, UTC), digits=8) == "94287082"


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1)))
def test_a_code_from_a_standard_authenticator_is_accepted(moment: datetime) -> None:
    now = moment.replace(tzinfo=UTC)
    secret = totp.new_secret()
    assert totp.matching_step(secret, rfc6238_code(secret, now), now=now, after=None) == (
        totp.time_step(now)
    )


def test_one_step_of_drift_either_side_is_tolerated_and_no_more() -> None:
    secret = totp.new_secret()
    now = datetime(2026, 11, 29, 12, 0, 15, tzinfo=UTC)
    for drift, accepted in ((-60, False), (-30, True), (0, True), (30, True), (60, False)):
        code = rfc6238_code(secret, now + timedelta(seconds=drift))
        assert (totp.matching_step(secret, code, now=now, after=None) is not None) is accepted


def test_a_code_for_a_step_already_used_is_refused() -> None:
    secret = totp.new_secret()
    now = datetime(2026, 11, 29, 12, 0, 15, tzinfo=UTC)
    code = rfc6238_code(secret, now)
    step = totp.matching_step(secret, code, now=now, after=None)
    assert step is not None
    assert totp.matching_step(secret, code, now=now, after=step) is None
    # Nor an older code still inside the window.
    earlier = rfc6238_code(secret, now - timedelta(seconds=30))
    assert totp.matching_step(secret, earlier, now=now, after=step) is None


def test_spaces_are_allowed_and_junk_is_refused() -> None:
    secret = totp.new_secret()
    now = datetime(2026, 11, 29, 12, 0, 15, tzinfo=UTC)
    code = rfc6238_code(secret, now)
    assert totp.matching_step(secret, f"{code[:3]} {code[3:]}", now=now, after=None)
    for junk in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert totp.matching_step(secret, junk, now=now, after=None) is None


def test_the_provisioning_uri_names_the_issuer_and_account() -> None:
    seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    uri = totp.provisioning_uri(seed, account="analyst@centre.example")
    assert uri.startswith("otpauth://totp/Tipline:analyst%40centre.example?")
    assert "issuer=Tipline" in uri and f"secret={seed}" in uri


def test_a_new_seed_has_160_random_bits() -> None:
    seeds = {totp.new_secret() for _ in range(20)}
    assert len(seeds) == 20
    for seed in seeds:
        assert len(base64.b32decode(seed)) * 8 == 160
