"""Normalisation of selectors (identifiers found in tips) before blind indexing.

Two spellings of the same identifier must normalise to the same string, or correlation across
tips silently fails; two different identifiers must never collide. Each rule below only
applies transformations that are safe for every provider (e.g. e-mail local parts are
lower-cased, but dots and ``+tags`` are kept: only some providers ignore them).

Error messages never echo the value: selectors are investigative data.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

import phonenumbers

from crypto.errors import InvalidSelector

_MAX_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_PAYMENT_SEPARATORS = re.compile(r"[\s\-]+")


class SelectorType(enum.StrEnum):
    """Kinds of selector a tip may carry."""

    EMAIL = "email"
    PHONE = "phone"
    USERNAME = "username"
    IP = "ip"
    URL = "url"
    PAYMENT_ACCOUNT = "payment_account"
    DEVICE_ID = "device_id"


def selector_type(value: SelectorType | str) -> SelectorType:
    """Parse a selector type name.

    Raises:
        InvalidSelector: unknown type.
    """
    try:
        return SelectorType(value.strip().lower())
    except ValueError:
        known = ", ".join(member.value for member in SelectorType)
        raise InvalidSelector(f"unknown selector type; expected one of: {known}") from None


def normalise_platform(platform: str | None) -> str:
    """A platform name as used in username selectors: trimmed, lower-case."""
    name = unicodedata.normalize("NFC", platform or "").strip().lower()
    if not name:
        raise InvalidSelector("a username selector needs its platform")
    return name


def normalise_selector(
    kind: SelectorType | str,
    value: str,
    *,
    platform: str | None = None,
    default_region: str | None = None,
) -> str:
    """Return the canonical form of a selector value.

    Args:
        kind: the selector type.
        value: the value as written in the tip.
        platform: required for usernames, refused for every other type.
        default_region: ISO 3166 region for phone numbers written without ``+``.

    Raises:
        InvalidSelector: unknown type, missing/extra platform, or a value that is not valid
            for its type.
    """
    kind = selector_type(kind)
    if not isinstance(value, str):
        raise InvalidSelector(f"{kind} selector value must be text")
    if len(value) > _MAX_LENGTH:
        raise InvalidSelector(f"{kind} selector is longer than {_MAX_LENGTH} characters")
    if kind is not SelectorType.USERNAME and platform is not None:
        raise InvalidSelector(f"a platform only applies to username selectors, not {kind}")
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise InvalidSelector(f"{kind} selector is empty")
    match kind:
        case SelectorType.EMAIL:
            return _email(text)
        case SelectorType.PHONE:
            return _phone(text, default_region)
        case SelectorType.USERNAME:
            normalise_platform(platform)
            return _username(text)
        case SelectorType.IP:
            return _ip(text)
        case SelectorType.URL:
            return _url(text)
        case SelectorType.PAYMENT_ACCOUNT:
            return _payment_account(text)
        case SelectorType.DEVICE_ID:
            return text.lower()
    raise AssertionError(kind)  # pragma: no cover pragma: no mutate - every type is matched


def _host(host: str) -> str:
    """A DNS host name in lower-case ASCII (IDNA), without a trailing dot."""
    host = host.rstrip(".")
    if not host or any(c.isspace() for c in host):
        raise InvalidSelector("host name is empty or contains spaces")
    try:
        return host.encode("idna").decode().lower()  # pragma: no mutate (codec names ignore case)
    except UnicodeError:
        raise InvalidSelector("host name is not a valid internationalised domain") from None


def _email(text: str) -> str:
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in local):
        raise InvalidSelector("not a valid e-mail address")
    return f"{local.lower()}@{_host(domain)}"


def _phone(text: str, default_region: str | None) -> str:
    region = default_region.upper() if default_region else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidSelector(
            "not a valid phone number (write it with +country code, or give a default region)"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidSelector("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _username(text: str) -> str:
    name = text.removeprefix("@").strip().casefold()
    if not name:
        raise InvalidSelector("username is empty")
    return name


def _ip(text: str) -> str:
    try:
        address = ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        raise InvalidSelector("not a valid IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return address.compressed


def _url(text: str) -> str:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidSelector("not a valid URL") from None
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc or parts.hostname is None:
        raise InvalidSelector("URL needs a scheme and a host, like https://example.org/path")
    host = parts.hostname
    try:
        host = f"[{ipaddress.IPv6Address(host).compressed}]"
    except ValueError:
        host = _host(host)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    # A trailing slash is how people copy a link, not part of whom it names: `/u/name/` and
    # `/u/name` must correlate (a server that tells them apart is rare, and a missed match
    # costs more than a spurious one an analyst dismisses).
    path = parts.path.rstrip("/") or "/"
    path = _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), path)
    query = _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def _payment_account(text: str) -> str:
    account = _PAYMENT_SEPARATORS.sub("", text).upper()
    if not account:
        raise InvalidSelector("payment account is empty")
    return account
