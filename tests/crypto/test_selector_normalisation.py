"""Selector normalisation: one canonical form per identifier, whatever the spelling."""

from __future__ import annotations

import ipaddress

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.errors import InvalidSelector
from crypto.selectors import normalise_selector

REGIONS = sorted(
    region
    for region in phonenumbers.SUPPORTED_REGIONS
    if phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
)
FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
]
blanks = st.text(alphabet=" \t", max_size=3)


def _mobile(region: str) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert number is not None
    return number


@given(region=st.sampled_from(REGIONS), fmt=st.sampled_from(FORMATS), pad=blanks)
def test_phone_spellings_normalise_to_e164(region: str, fmt: int, pad: str) -> None:
    number = _mobile(region)
    written = pad + phonenumbers.format_number(number, fmt) + pad

    assert normalise_selector("phone", written, default_region=region) == (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    )


@pytest.mark.parametrize("value", ["12345", "not a number", "+99 123"])
def test_invalid_phone_numbers_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(InvalidSelector) as caught:
        normalise_selector("phone", value, default_region="GB")

    assert value not in str(caught.value)


def test_national_number_needs_a_region() -> None:
    with pytest.raises(InvalidSelector, match="default region"):
        normalise_selector("phone", "0917 123 4567")


@given(address=st.ip_addresses(v=6))
def test_ipv6_exploded_and_compressed_are_equal(address: ipaddress.IPv6Address) -> None:
    assert normalise_selector("ip", address.exploded.upper()) == normalise_selector(
        "ip", f" {address.compressed} "
    )


@given(address=st.ip_addresses(v=4))
def test_ipv4_mapped_ipv6_is_the_ipv4_address(address: ipaddress.IPv4Address) -> None:
    assert normalise_selector("ip", f"::ffff:{address}") == str(address)
    assert normalise_selector("ip", f"[::FFFF:{address}]") == str(address)


@given(local=st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,20}", fullmatch=True), pad=blanks)
def test_email_case_and_whitespace_do_not_matter(local: str, pad: str) -> None:
    assert normalise_selector("email", f"{pad}{local.upper()}@Example.ORG.{pad}") == (
        f"{local}@example.org"
    )


def test_email_keeps_dots_and_plus_tags_and_encodes_idna() -> None:
    assert normalise_selector("email", "John.Doe+tips@Bücher.Example") == (
        "john.doe+tips@xn--bcher-kva.example"
    )
    assert normalise_selector("email", "mailto:a@b.example") == "a@b.example"


@given(name=st.from_regex(r"[A-Za-z0-9_.]{1,20}", fullmatch=True), pad=blanks)
def test_username_ignores_case_whitespace_and_at_sign(name: str, pad: str) -> None:
    assert normalise_selector("username", f"{pad}@{name.upper()}{pad}", platform=" Chat ") == (
        name.casefold()
    )


def test_username_needs_a_platform_and_others_refuse_one() -> None:
    with pytest.raises(InvalidSelector, match="platform"):
        normalise_selector("username", "someone")
    with pytest.raises(InvalidSelector, match="platform"):
        normalise_selector("email", "a@b.example", platform="chat")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("HTTPS://Example.COM:443/Path?Q=A#frag", "https://example.com/Path?Q=A"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com:8080/a%2fb", "http://example.com:8080/a%2Fb"),
        ("https://Bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("http://[2001:DB8::0001]:80/", "http://[2001:db8::1]/"),
        ("https://chat.example/u/SunnyDay88/", "https://chat.example/u/SunnyDay88"),
        ("https://chat.example//", "https://chat.example/"),
    ],
)
def test_url_normalisation(written: str, canonical: str) -> None:
    assert normalise_selector("url", written) == canonical


segments = st.lists(st.from_regex(r"[A-Za-z0-9_~-]{1,12}", fullmatch=True), max_size=4)


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,15}\.(org|example|net)", fullmatch=True),
    path=segments,
    slashes=st.integers(min_value=0, max_value=2),
    default_port=st.booleans(),
    pad=blanks,
)
def test_url_spellings_of_one_page_correlate(
    host: str, path: list[str], slashes: int, default_port: bool, pad: str
) -> None:
    """Scheme and host in any case, the default port written out, a trailing slash (how
    links are copied) and surrounding blanks: the same page, the same selector."""
    plain = "/" + "/".join(path)
    written = (
        f"{pad}HTTPS://{host.upper()}{':443' if default_port else ''}"
        f"{plain.rstrip('/')}{'/' * slashes}{pad}"
    )
    assert normalise_selector("url", written) == normalise_selector("url", f"https://{host}{plain}")


@given(path=segments.filter(bool))
def test_different_paths_stay_different_urls(path: list[str]) -> None:
    # Path case is the server's to judge: /Name and /name may be two people.
    one = normalise_selector("url", "https://chat.example/" + "/".join(path))
    other = normalise_selector("url", "https://chat.example/" + "/".join(path) + "x")
    assert one != other


@given(
    account=st.from_regex(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{8,20}", fullmatch=True),
    separator=st.sampled_from(["", " ", "-", " - "]),
    lower=st.booleans(),
)
def test_payment_account_spacing_and_case_do_not_matter(
    account: str, separator: str, lower: bool
) -> None:
    grouped = separator.join(account[i : i + 4] for i in range(0, len(account), 4))
    assert normalise_selector("payment_account", grouped.lower() if lower else grouped) == account


@given(name=st.from_regex(r"[a-z0-9_.]{1,20}", fullmatch=True))
def test_different_usernames_stay_different(name: str) -> None:
    assert normalise_selector("username", name, platform="chat") != normalise_selector(
        "username", name + "1", platform="chat"
    )


@pytest.mark.parametrize("value", ["example.com/path", "https://", "http://exa mple.com/"])
def test_urls_without_scheme_or_host_are_refused(value: str) -> None:
    with pytest.raises(InvalidSelector):
        normalise_selector("url", value)


def test_payment_account_and_device_id() -> None:
    assert normalise_selector("payment_account", " gb82 west-1234 5698 7654 32 ") == (
        "GB82WEST12345698765432"
    )
    assert normalise_selector("device_id", " ABCDEF-0123 ") == "abcdef-0123"


@pytest.mark.parametrize("kind", ["passport", "", "EMAILS"])
def test_unknown_selector_type_is_refused(kind: str) -> None:
    with pytest.raises(InvalidSelector, match="unknown selector type"):
        normalise_selector(kind, "x")


@pytest.mark.parametrize("kind", ["email", "phone", "username", "ip", "url", "device_id"])
def test_empty_values_are_refused(kind: str) -> None:
    with pytest.raises(InvalidSelector):
        normalise_selector(kind, "   ", platform="chat" if kind == "username" else None)


NEEDS_COUNTRY = "not a valid phone number (write it with +country code, or give a default region)"
NEEDS_SCHEME = "URL needs a scheme and a host, like https://example.org/path"
BAD_IDN = "host name is not a valid internationalised domain"
TYPES = "email, phone, username, ip, url, payment_account, device_id"


# What a partner is told about a selector that cannot be indexed: the exact words matter (they
# are shown as the reason), and none of them may echo the value.
@pytest.mark.parametrize(
    ("kind", "value", "platform", "message"),
    [
        ("email", "no-at-sign.example", None, "not a valid e-mail address"),
        ("email", "@example.org", None, "not a valid e-mail address"),
        ("email", "someone@", None, "not a valid e-mail address"),
        ("email", "some one@example.org", None, "not a valid e-mail address"),
        ("email", "a@exa mple.org", None, "host name is empty or contains spaces"),
        ("email", "a@.", None, "host name is empty or contains spaces"),
        ("email", f"a@{'x' * 64}.example", None, BAD_IDN),
        ("phone", "12345", "GB", "not a valid phone number"),
        ("phone", "0917 123 4567", None, NEEDS_COUNTRY),
        ("username", "@", "chat", "username is empty"),
        ("username", "someone", " ", "a username selector needs its platform"),
        ("ip", "300.1.2.3", None, "not a valid IPv4 or IPv6 address"),
        ("url", "http://[::1", None, "not a valid URL"),
        ("url", "example.org/path", None, NEEDS_SCHEME),
        ("url", "//example.org/path", None, NEEDS_SCHEME),
        ("url", "https://:80/path", None, NEEDS_SCHEME),
        ("url", "mailto:a@b.example", None, NEEDS_SCHEME),
        ("payment_account", " - - ", None, "payment account is empty"),
        ("device_id", " ", None, "device_id selector is empty"),
        ("device_id", "x" * 2049, None, "device_id selector is longer than 2048 characters"),
        ("passport", "x", None, f"unknown selector type; expected one of: {TYPES}"),
    ],
)  # fmt: skip
def test_each_refusal_says_what_is_wrong(
    kind: str, value: str, platform: str | None, message: str
) -> None:
    region = platform if kind == "phone" else None
    with pytest.raises(InvalidSelector) as caught:
        normalise_selector(
            kind, value, platform=None if kind == "phone" else platform, default_region=region
        )
    assert str(caught.value) == message


def test_a_value_of_the_longest_length_is_accepted() -> None:
    assert normalise_selector("device_id", "X" * 2048) == "x" * 2048


def test_a_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(InvalidSelector) as caught:
        normalise_selector("device_id", 12345)  # type: ignore[arg-type]
    assert str(caught.value) == "device_id selector value must be text"


def test_an_email_with_at_signs_in_its_quoted_local_part_keeps_them_there() -> None:
    # The domain follows the last @: the one before belongs to the (quoted) local part.
    assert normalise_selector("email", '"a@b"@Example.org') == '"a@b"@example.org'
    assert normalise_selector("email", '"a@Jö"@Example.org') == '"a@jö"@example.org'
