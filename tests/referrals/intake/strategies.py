"""Hypothesis strategies for tip documents: anything drawn from ``tips()`` is a valid tip;
``mutated_tips()`` draws the invalid ones a partner might send."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import phonenumbers
from hypothesis import strategies as st
from hypothesis.provisional import domains

OFFENCE_TYPES = [
    "csam_possession",
    "csam_distribution",
    "csam_production",
    "live_streaming_abuse",
    "contact_abuse",
    "grooming",
    "online_enticement",
    "sextortion",
    "trafficking",
    "other",
]
TLPS = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
COUNTRIES = ["PH", "GB", "US", "DE", "TH", "KE", "BR", "IN", "AU", "RO"]
_NOT_BLANK = re.compile(r"\S")

# Text with anything but control characters and lone surrogates (which JSON can carry, but
# which no tip should).
_printable = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))


def lines(max_size: int) -> st.SearchStrategy[str]:
    """Single-line text that is not blank (it may start or end with spaces)."""
    return st.text(_printable, min_size=1, max_size=max_size).filter(_NOT_BLANK.search)


def texts(max_size: int) -> st.SearchStrategy[str]:
    return st.text(min_size=1, max_size=max_size).filter(_NOT_BLANK.search)


_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=9, minutes=30))]
)
timestamps = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31), timezones=_zones
)


@st.composite
def rfc3339(draw: st.DrawFn) -> tuple[str, datetime]:
    """A date-time written as a partner might, and the instant it means."""
    moment = draw(timestamps)
    written = moment.isoformat()
    if moment.utcoffset() == timedelta(0) and draw(st.booleans()):
        written = written.removesuffix("+00:00") + "Z"
    return written, moment


_MOBILE_EXAMPLES = [
    number
    for region in ("PH", "GB", "US", "TH", "DE")
    if (number := phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE))
]
_phones = st.builds(
    phonenumbers.format_number,
    st.sampled_from(_MOBILE_EXAMPLES),
    st.sampled_from(
        [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL]
    ),
)
_SELECTOR_VALUES: dict[str, st.SearchStrategy[str]] = {
    "email": st.emails(),
    "phone": _phones,
    "username": st.from_regex(r"@?[A-Za-z0-9_.]{1,30}", fullmatch=True),
    "ip": st.ip_addresses().map(str),
    "payment_account": st.from_regex(r"[A-Z]{2}[0-9]{2}[ -]?[A-Z0-9]{4,30}", fullmatch=True),
    "device_id": st.from_regex(r"[0-9A-Fa-f]{8,40}", fullmatch=True),
    "url": st.builds(
        "https://{}/{}".format,
        domains(),
        st.from_regex(r"[a-z0-9_/-]{0,30}", fullmatch=True),
    ),
}


@st.composite
def selectors(draw: st.DrawFn, suspects: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(_SELECTOR_VALUES)))
    selector: dict[str, Any] = {"type": kind, "value": draw(_SELECTOR_VALUES[kind])}
    if kind == "username":
        selector["platform"] = draw(lines(100))
    optional: dict[str, st.SearchStrategy[Any]] = {
        "esp": lines(200),
        "esp_identifier": lines(200),
        "seen_at": rfc3339().map(lambda pair: pair[0]),
        "event": st.sampled_from(["login", "registration", "upload", "purchase", "other"]),
        "note": texts(2000),
    }
    if suspects:
        optional["suspect"] = st.integers(0, suspects - 1)
    if kind == "ip":
        optional |= {"port": st.integers(0, 65535), "possible_proxy": st.booleans()}
    if kind == "device_id":
        optional["kind"] = st.sampled_from(["IMEI", "IDFA", "AAID", "MAC"])
    if kind in {"email", "phone"}:
        optional["verified"] = st.booleans()
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        selector[name] = draw(optional[name])
    return selector


_hex = {"md5": 32, "sha1": 40, "sha256": 64}
files = st.fixed_dictionaries(
    {
        "hashes": st.fixed_dictionaries(
            {},
            optional={
                name: st.from_regex(f"[0-9a-f]{{{size}}}", fullmatch=True)
                for name, size in _hex.items()
            }
            | {"photodna": st.from_regex(r"[A-Za-z0-9+/]{4,200}={0,2}", fullmatch=True)},
        ).filter(bool),
    },
    optional={
        "file_name": lines(1024),
        "viewed_by_esp": st.booleans(),
        "publicly_available": st.booleans(),
    },
)


@st.composite
def tips(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    """A valid tip document and the instant its ``reported_at`` means."""
    reported_at, moment = draw(rfc3339())
    location: dict[str, Any] = {"country": draw(st.sampled_from(COUNTRIES))}
    location |= draw(st.fixed_dictionaries({}, optional={"region": lines(100), "city": lines(100)}))
    suspects = draw(
        st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["abuser", "facilitator", "customer", "distributor"])},
                optional={"description": texts(5000)},
            ),
            max_size=5,
        )
    )
    handling: dict[str, Any] = {"tlp": draw(st.sampled_from(TLPS))}
    handling |= draw(
        st.fixed_dictionaries(
            {},
            optional={
                "code": st.sampled_from(["H0", "H1", "H2", "H3"]),
                "source_reliability": st.sampled_from(["A", "B", "C", "X"]),
                "information_accuracy": st.integers(1, 4),
            },
        )
    )
    document: dict[str, Any] = {
        "schema": "tipline.tip/1",
        "external_reference": draw(lines(200)),
        "reported_at": reported_at,
        "summary": draw(texts(1000)),
        "narrative": draw(texts(5000)),
        "urgency": {
            name: draw(st.booleans())
            for name in ("imminent_danger", "ongoing_abuse", "live_streaming")
        },
        "location": location,
        "offence_types": draw(st.lists(st.sampled_from(OFFENCE_TYPES), min_size=1, unique=True)),
        "handling": handling,
    }
    victims = st.lists(
        st.fixed_dictionaries(
            {
                "approx_age": st.none() | st.integers(0, 25),
                "sex": st.sampled_from(["female", "male", "unknown"]),
            }
        ),
        max_size=10,
    )
    optional: dict[str, st.SearchStrategy[Any]] = {
        "victims": victims,
        "selectors": st.lists(selectors(len(suspects)), max_size=8),
        "files": st.lists(files, max_size=3),
        "incident_at": rfc3339().map(lambda pair: pair[0]),
    }
    if suspects:
        document["suspects"] = suspects
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        document[name] = draw(optional[name])
    return document, moment


# -- valid tips made invalid: what a partner's buggy or hostile tooling might send ------------

EXTREMES: list[Any] = [
    None,
    -1,
    10**30,
    -(10**30),
    1e308,
    -0.0,
    "",
    " ",
    "x" * 100_001,
    "\u202e\u0000\ud7ff",
    [],
    {},
    [{"n": n} for n in range(5_000)],
    list(range(20_000)),
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2024-02-30T09:30:00Z",
    "2024-05-02T25:61:61Z",
    "2024-05-02T09:30:00",
]
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_tips(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """``base`` (a valid tip) with a few fields dropped, duplicated or replaced by anything,
    extreme values included, as the bytes a partner would seal."""
    document = json.loads(json.dumps(base))
    duplicated: list[str] = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [path for path in _paths(document) if path]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["drop", "duplicate", "replace", "extreme"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "duplicate" and len(path) == 1:
            duplicated.append(path[0])
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(parent[path[-1]])
        elif action == "extreme":
            # A copy: a later step may change what it holds in place (drop a key of one of
            # its objects, append to it), and EXTREMES must stay as it is for every example
            # (hypothesis replays examples and found them drawn differently: flaky).
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(EXTREMES)))
        else:
            parent[path[-1]] = draw(_json_values)
    text = json.dumps(document)
    for key in duplicated:
        # The same top-level key twice: JSON allows it, a tip must not.
        text = "{" + json.dumps(key) + ": " + json.dumps(draw(_json_values)) + ", " + text[1:]
    return text.encode()
