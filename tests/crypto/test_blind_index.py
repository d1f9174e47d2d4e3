"""Blind indexes: equal selectors match, different selectors never do."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from crypto.blind_index import BlindIndex
from crypto.errors import InvalidSelector

KEY = bytes(range(32))
index = BlindIndex(KEY)
REGIONS = sorted(
    region
    for region in phonenumbers.SUPPORTED_REGIONS
    if phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
)


def _mobile(region: str) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert number is not None
    return number


@given(region=st.sampled_from(REGIONS))
def test_phone_written_three_ways_has_one_index(region: str) -> None:
    number = _mobile(region)
    indexes = {
        index.compute("phone", phonenumbers.format_number(number, fmt), default_region=region)
        for fmt in (
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
        )
    }
    assert len(indexes) == 1


@given(first=st.sampled_from(REGIONS), second=st.sampled_from(REGIONS))
def test_different_phone_numbers_have_different_indexes(first: str, second: str) -> None:
    a, b = _mobile(first), _mobile(second)
    assume(a != b)
    e164 = phonenumbers.PhoneNumberFormat.E164
    assert index.compute("phone", phonenumbers.format_number(a, e164)) != index.compute(
        "phone", phonenumbers.format_number(b, e164)
    )


@given(a=st.ip_addresses(), b=st.ip_addresses())
def test_distinct_ips_have_distinct_indexes(
    a: ipaddress.IPv4Address | ipaddress.IPv6Address,
    b: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    def canonical(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
        mapped = getattr(address, "ipv4_mapped", None)
        return str(mapped or address)

    assume(canonical(a) != canonical(b))
    assert index.compute("ip", str(a)) != index.compute("ip", str(b))


@given(address=st.ip_addresses(v=6))
def test_ipv6_spellings_share_an_index(address: ipaddress.IPv6Address) -> None:
    assert index.compute("ip", address.exploded) == index.compute("ip", address.compressed)


@given(name=st.from_regex(r"[a-z0-9_]{1,15}", fullmatch=True))
def test_same_username_on_two_platforms_differs(name: str) -> None:
    assert index.compute("username", name, platform="chat") != index.compute(
        "username", name, platform="forum"
    )
    assert index.compute("username", f"@{name.upper()}", platform="Chat ") == index.compute(
        "username", name, platform="chat"
    )


def test_fields_are_length_prefixed() -> None:
    """("ab", "c") and ("a", "bc") must not collide across the platform/value boundary."""
    assert index.compute("username", "c", platform="ab") != index.compute(
        "username", "bc", platform="a"
    )


def test_same_value_as_different_types_differs() -> None:
    assert index.compute("device_id", "abc123") != index.compute("payment_account", "abc123")


def test_index_is_keyed_and_hex() -> None:
    value = index.compute("email", "a@b.example")

    # HMAC-SHA-256 under the key over the length-prefixed domain, type, platform and
    # normalised value: recomputed here independently of the code under test.
    fields = [b"tipline/blind-index/v1", b"email", b"", b"a@b.example"]
    message = b"".join(len(f).to_bytes(4, "big") + f for f in fields)
    assert value == hmac.new(KEY, message, hashlib.sha256).hexdigest()
    assert BlindIndex(b"k" * 32).compute("email", "a@b.example") != value
    assert repr(index) == "BlindIndex(key=<hidden>)"


@pytest.mark.parametrize("key", [b"", b"short", b"x" * 31])
def test_short_keys_are_refused(key: bytes) -> None:
    with pytest.raises(ValueError, match="^blind index key must be at least 32 bytes$"):
        BlindIndex(key)


def test_invalid_selector_is_a_typed_error() -> None:
    with pytest.raises(InvalidSelector):
        index.compute("phone", "not a phone")


def independent_index(kind: str, platform: str, canonical: str) -> str:
    """The index as the design describes it, computed without the code under test: stored
    indexes depend on every byte of this, so any change to it must be deliberate (a new
    domain version), never a side effect."""
    fields = [b"tipline/blind-index/v1", kind.encode(), platform.encode(), canonical.encode()]
    message = b"".join(len(f).to_bytes(4, "big") + f for f in fields)
    return hmac.new(KEY, message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("kind", "written", "platform", "canonical_platform", "canonical"),
    [
        ("email", "Sunny.Day88@Example.COM", None, "", "sunny.day88@example.com"),
        ("email", "a@mail.boX.", None, "", "a@mail.box"),
        ("phone", "+63 905 123 4567", None, "", "+639051234567"),
        ("username", "@SunnyDay88", " Chat ", "chat", "sunnyday88"),
        ("username", "SunnyDay88", "CHAT", "chat", "sunnyday88"),
        ("ip", "2001:DB8::1", None, "", "2001:db8::1"),
        ("url", "HTTPS://Example.com/a%2fb?q=%2f", None, "", "https://example.com/a%2Fb?q=%2F"),
        ("url", "https://Agent@Example.com/", None, "", "https://Agent@example.com/"),
        ("payment_account", "gb82 west-1234", None, "", "GB82WEST1234"),
        ("device_id", "ABC-123", None, "", "abc-123"),
    ],
)
def test_each_type_indexes_its_canonical_form(
    kind: str, written: str, platform: str | None, canonical_platform: str, canonical: str
) -> None:
    assert index.compute(kind, written, platform) == independent_index(
        kind, canonical_platform, canonical
    )
