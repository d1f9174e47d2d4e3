"""Parsing tip documents: what triage gets from a good tip, what a partner reads about a bad one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from referrals.intake import document as document_module
from referrals.intake.document import (
    MAX_DOCUMENT_BYTES,
    InvalidTipDocument,
    SelectorEntry,
    _describe,
    parse_tip_document,
)
from tests.referrals.intake.conftest import FIXTURES, encode, example
from tests.support import PATIENCE, hang_guard

CANARY = "Maria Dela Cruz 7f3a"


def test_published_example_gives_triage_its_facts() -> None:
    parsed = parse_tip_document((FIXTURES / "tip-valid.json").read_bytes())

    facts = parsed.facts
    assert facts.reported_at == datetime(2024, 5, 2, 8, 30, tzinfo=UTC)
    assert (facts.imminent_danger, facts.ongoing_abuse, facts.live_streaming) == (True,) * 3
    assert (facts.country, facts.region) == ("PH", "Central Luzon")
    assert facts.offence_types == ("live_streaming_abuse", "csam_production", "trafficking")
    assert facts.victim_count == 4
    assert facts.youngest_victim_age == 2
    assert (facts.tlp, facts.handling_code) == ("AMBER+STRICT", "H2")


def test_published_example_lists_its_selectors_as_written() -> None:
    parsed = parse_tip_document((FIXTURES / "tip-valid.json").read_bytes())

    assert parsed.selectors[0] == SelectorEntry("username", "@sunnyday88", "ExampleChat")
    assert [entry.type for entry in parsed.selectors] == [
        "username",
        "phone",
        "email",
        "payment_account",
        "ip",
        "device_id",
        "url",
    ]
    assert all(entry.platform is None for entry in parsed.selectors[1:])
    assert parsed.data["narrative"].startswith("This tip is fictional")


def test_cybertipline_shaped_example_keeps_capture_events_and_hashes() -> None:
    parsed = parse_tip_document((FIXTURES / "tip-cybertipline.json").read_bytes())

    upload = parsed.data["selectors"][3]
    assert (upload["type"], upload["event"], upload["possible_proxy"]) == ("ip", "upload", True)
    assert parsed.data["selectors"][0]["esp_identifier"] == "8817723990"
    assert parsed.data["files"][1]["hashes"]["photodna"]
    assert parsed.facts.youngest_victim_age is None
    assert parsed.facts.reported_at == datetime(2024, 6, 10, 20, 45, 12, 301000, tzinfo=UTC)


def test_youngest_age_ignores_victims_of_unknown_age(tip: dict[str, Any]) -> None:
    tip["victims"] = [{"approx_age": None, "sex": "unknown"}, {"approx_age": 9, "sex": "male"}]

    facts = parse_tip_document(encode(tip)).facts

    assert (facts.victim_count, facts.youngest_victim_age) == (2, 9)


def test_tip_without_victims_suspects_or_selectors_is_accepted(tip: dict[str, Any]) -> None:
    for optional in ("victims", "suspects", "selectors", "files", "incident_at"):
        del tip[optional]
    del tip["location"]["region"]

    parsed = parse_tip_document(encode(tip))

    assert (parsed.facts.victim_count, parsed.facts.youngest_victim_age) == (0, None)
    assert parsed.facts.region is None
    assert parsed.selectors == ()


def test_a_selector_that_cannot_be_indexed_is_named_and_the_tip_kept(tip: dict[str, Any]) -> None:
    """A child-safety tip must not bounce for one bad phone number."""
    tip["selectors"][1]["value"] = "12"  # the phone
    tip["selectors"][2]["value"] = CANARY  # the e-mail

    parsed = parse_tip_document(encode(tip))

    assert [entry.type for entry in parsed.selectors] == [
        "username",
        "payment_account",
        "ip",
        "device_id",
        "url",
    ]
    assert [(w.pointer, w.message) for w in parsed.selector_warnings] == [
        ("/selectors/1/value", "not a valid phone number"),
        ("/selectors/2/value", "not a valid e-mail address"),
    ]
    assert CANARY not in repr(parsed.selector_warnings)
    assert parsed.data["selectors"][2]["value"] == CANARY  # kept for analysts to read


@pytest.mark.parametrize(
    ("region", "city", "precision"),
    [
        (None, None, "country"),
        ("Central Luzon", None, "region"),
        ("Central Luzon", "Angeles", "city"),
    ],
)
def test_how_precise_the_location_is_is_a_fact_the_city_is_not(
    tip: dict[str, Any], region: str | None, city: str | None, precision: str
) -> None:
    tip["location"] = (
        {"country": "PH"}
        | ({"region": region} if region else {})
        | ({"city": city} if city else {})
    )

    facts = parse_tip_document(encode(tip)).facts

    assert facts.location_precision == precision
    assert "Angeles" not in repr(facts)


def test_age_written_as_whole_float_is_an_integer_age(tip: dict[str, Any]) -> None:
    tip["victims"] = [{"approx_age": 5.0, "sex": "female"}]

    age = parse_tip_document(encode(tip)).facts.youngest_victim_age

    assert age == 5
    assert type(age) is int


def test_byte_order_mark_is_ignored(tip: dict[str, Any]) -> None:
    assert parse_tip_document(b"\xef\xbb\xbf" + encode(tip)).facts.country == "PH"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2024-05-02T09:30:00Z", datetime(2024, 5, 2, 9, 30, tzinfo=UTC)),
        ("2024-05-02t09:30:00.123456789z", datetime(2024, 5, 2, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2024-05-02T01:30:00-08:00", datetime(2024, 5, 2, 9, 30, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_reported_at_is_read_as_utc(tip: dict[str, Any], written: str, expected: datetime) -> None:
    tip["reported_at"] = written

    assert parse_tip_document(encode(tip)).facts.reported_at == expected


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


def _delete(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return change


SCHEMA_ERRORS = {
    "victim with a name": (
        _set(("victims", 0, "name"), CANARY),
        "/victims/0/name",
        "unknown field (allowed here: approx_age, sex)",
    ),
    "username without platform": (
        _delete(("selectors", 0, "platform")),
        "/selectors/0/platform",
        "required, but missing",
    ),
    "platform on an e-mail": (
        _set(("selectors", 2, "platform"), CANARY),
        "/selectors/2/platform",
        "does not apply to this type of selector; see docs/tip-document.md",
    ),
    "bad TLP": (
        _set(("handling", "tlp"), CANARY),
        "/handling/tlp",
        "must be one of: CLEAR, GREEN, AMBER, AMBER+STRICT, RED",
    ),
    "lower-case country": (
        _set(("location", "country"), "ph"),
        "/location/country",
        "must be an ISO 3166-1 alpha-2 country code in upper case, like PH",
    ),
    "country name": (
        _set(("location", "country"), CANARY),
        "/location/country",
        "must be an ISO 3166-1 alpha-2 country code in upper case, like PH",
    ),
    "missing narrative": (_delete(("narrative",)), "/narrative", "required, but missing"),
    "blank narrative": (_set(("narrative",), " \n "), "/narrative", "must not be blank"),
    "narrative too long": (
        _set(("narrative",), "x" * 100_001),
        "/narrative",
        "must be at most 100000 characters",
    ),
    "misspelt field": (
        _set(("narative",), CANARY),
        "/narative",
        "unknown field (allowed here: external_reference, files, handling, incident_at, location, "
        "narrative, offence_types, reported_at, schema, selectors, summary, suspects, urgency, "
        "victims)",
    ),
    "age over 25": (
        _set(("victims", 0, "approx_age"), 31),
        "/victims/0/approx_age",
        "must be at most 25",
    ),
    "age as text": (
        _set(("victims", 0, "approx_age"), CANARY),
        "/victims/0/approx_age",
        "must be an integer or null",
    ),
    "date without offset": (
        _set(("reported_at",), "2024-05-02T09:30:00"),
        "/reported_at",
        "must be an RFC 3339 date-time with a UTC offset, like 2024-05-01T09:30:00Z",
    ),
    "date in local format": (
        _set(("reported_at",), "02/05/2024 09:30"),
        "/reported_at",
        "must be an RFC 3339 date-time with a UTC offset, like 2024-05-01T09:30:00Z",
    ),
    "impossible date": (
        _set(("reported_at",), "2024-02-30T09:30:00Z"),
        "/reported_at",
        "must be an RFC 3339 date-time with a UTC offset, like 2024-05-01T09:30:00Z",
    ),
    "no offence type": (
        _set(("offence_types",), []),
        "/offence_types",
        "must list at least 1 item(s)",
    ),
    "unknown offence type": (
        _set(("offence_types", 0), CANARY),
        "/offence_types/0",
        "must be one of: csam_possession, csam_distribution, csam_production, "
        "live_streaming_abuse, contact_abuse, grooming, online_enticement, sextortion, "
        "trafficking, other",
    ),
    "urgency flag as text": (
        _set(("urgency", "ongoing_abuse"), "yes"),
        "/urgency/ongoing_abuse",
        "must be true or false",
    ),
    "too many selectors": (
        _set(("selectors",), [{"type": "ip", "value": "203.0.113.1"}] * 501),
        "/selectors",
        "must list at most 500 items",
    ),
    "selector of an unknown suspect": (
        _set(("selectors", 0, "suspect"), 7),
        "/selectors/0/suspect",
        "there is no suspect with this index (the document lists 2)",
    ),
    "selector without type": (
        _delete(("selectors", 1, "type")),
        "/selectors/1/type",
        "required, but missing",
    ),
    "selector of unknown type": (
        _set(("selectors", 1, "type"), CANARY),
        "/selectors/1/type",
        "must be one of: email, phone, username, ip, payment_account, device_id, url",
    ),
    "port on a phone number": (
        _set(("selectors", 1, "port"), 80),
        "/selectors/1/port",
        "does not apply to this type of selector; see docs/tip-document.md",
    ),
    "region on two lines": (
        _set(("location", "region"), CANARY + "\nx"),
        "/location/region",
        "must be a single line without control characters",
    ),
    "file without hashes": (
        _set(("files", 0, "hashes"), {}),
        "/files/0/hashes",
        "must not be empty",
    ),
    "short sha256": (
        _set(("files", 0, "hashes", "sha256"), "abc123"),
        "/files/0/hashes/sha256",
        "must be 64 hexadecimal digits",
    ),
    "wrong schema version": (
        _set(("schema",), "tipline.tip/2"),
        "/schema",
        "unsupported document format version (supported: tipline.tip/1)",
    ),
    "no schema version": (
        _delete(("schema",)),
        "/schema",
        "required: the document format version (supported: tipline.tip/1)",
    ),
    # A key that is not a field name is never echoed, even in the pointer.
    "a field named with a slash and a tilde": (
        _set(("victims", 0, "given/name~"), CANARY),
        "/victims/0",
        "unknown field (allowed here: approx_age, sex)",
    ),
    "negative age": (
        _set(("victims", 0, "approx_age"), -1),
        "/victims/0/approx_age",
        "must be at least 0",
    ),
    "the same offence twice": (
        _set(("offence_types",), ["grooming", "grooming"]),
        "/offence_types",
        "must not list the same value twice",
    ),
}


@pytest.mark.parametrize(
    ("change", "path", "message"), SCHEMA_ERRORS.values(), ids=list(SCHEMA_ERRORS)
)
def test_schema_error_points_at_the_problem_in_words_without_quoting_it(
    tip: dict[str, Any],
    change: Callable[[dict[str, Any]], None],
    path: str,
    message: str,
) -> None:
    change(tip)

    with pytest.raises(InvalidTipDocument) as raised:
        parse_tip_document(encode(tip))

    error = raised.value
    # Exactly what the partner reads (the words are the interface: they say what to fix).
    assert (error.path, error.message) == (path, message)
    assert str(error) == f"schema error at {path}: {error.message}"
    assert CANARY not in str(error)
    assert "Maria" not in str(error)


def _duplicated_summary(tip: dict[str, Any]) -> bytes:
    text = encode(tip).decode()
    return (text[:-1] + ', "summary": "' + CANARY + '"}').encode()


def _duplicated_urgency_flag(tip: dict[str, Any]) -> bytes:
    text = encode(tip).decode()
    return text.replace(
        '"live_streaming": true', '"live_streaming": true, "live_streaming": false'
    ).encode()


def _lone_surrogate(tip: dict[str, Any]) -> bytes:
    tip["narrative"] = "NARRATIVE_MARK"
    return encode(tip).replace(b"NARRATIVE_MARK", b"abc \\ud800 def")


TWICE = "a key appears twice in the same object; send it once"
SURROGATE = "text contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)"
DOCUMENT_ERRORS: dict[str, tuple[Callable[[dict[str, Any]], bytes], str, str]] = {
    "not UTF-8": (
        lambda tip: b'{"city": "Angel\xe9s"}',
        "",
        "the document is not valid UTF-8 (first bad byte at offset 15)",
    ),
    "not JSON": (
        lambda tip: b'{\n "schema" "tipline.tip/1"}',
        "",
        "not valid JSON: Expecting ':' delimiter at line 2 column 11",
    ),
    "empty": (lambda tip: b"", "", "not valid JSON: Expecting value at line 1 column 1"),
    "top-level list": (lambda tip: encode([tip]), "", "the document must be a JSON object"),
    "top-level string": (lambda tip: encode(CANARY), "", "the document must be a JSON object"),
    "NaN": (
        lambda tip: encode(tip).replace(b"false", b"NaN", 1),
        "",
        "not valid JSON: NaN is not a JSON number",
    ),
    "huge number": (
        lambda tip: encode(tip).replace(b"2,", b"2" * 5000 + b",", 1),
        "",
        "not valid JSON: a number is too long",
    ),
    "duplicate top-level key": (_duplicated_summary, "/summary", TWICE),
    "duplicate nested key": (_duplicated_urgency_flag, "/urgency/live_streaming", TWICE),
    "duplicate odd key": (
        lambda tip: ('{"' + CANARY + '": 1, "' + CANARY + '": 2}').encode(),
        "",
        TWICE,
    ),
    "unpaired surrogate": (_lone_surrogate, "/narrative", SURROGATE),
    "oversize": (
        lambda tip: encode(tip | {"narrative": "x" * MAX_DOCUMENT_BYTES}),
        "",
        "the document is larger than 5 MiB",
    ),
    "deep nesting": (lambda tip: b"[" * 40 + b"]" * 40, "/0" * 16, "nested deeper than 16"),
    "very deep nesting": (
        lambda tip: b"[" * 100_000 + b"]" * 100_000,
        "",
        "nested deeper than 16 levels",
    ),
    "deep nesting in a field": (
        lambda tip: encode(tip | {"narrative": json.loads("[" * 30 + "]" * 30)}),
        "/narrative" + "/0" * 15,
        "nested deeper than 16",
    ),
    # The partner's own key names (here a person's name) are not quoted in the pointer.
    "deep nesting under a partner's key": (
        lambda tip: encode(tip | {"narrative": {CANARY: json.loads("[" * 30 + "]" * 30)}}),
        "/narrative",
        "nested deeper than 16",
    ),
    "unpaired surrogate under a partner's key": (
        lambda tip: encode(tip | {"urgency": {CANARY: {"x": "NARRATIVE_MARK"}}}).replace(
            b"NARRATIVE_MARK", b"\\udfff"
        ),
        "/urgency",
        SURROGATE,
    ),
}


@pytest.mark.parametrize(
    ("make", "path", "message"), DOCUMENT_ERRORS.values(), ids=list(DOCUMENT_ERRORS)
)
def test_unreadable_document_is_refused_with_a_reason(
    tip: dict[str, Any], make: Callable[[dict[str, Any]], bytes], path: str, message: str
) -> None:
    with pytest.raises(InvalidTipDocument) as raised:
        parse_tip_document(make(tip))

    assert (raised.value.path, raised.value.message) == (path, message)
    assert CANARY not in str(raised.value)
    assert str(raised.value).startswith(f"schema error at {path or '/'}: ")


# What the partner reads, word for word, for each kind of mistake the schema can find: partners'
# systems show it to the officer who wrote the tip, and docs/tip-document.md quotes it.
MESSAGES = {
    "unknown field": (
        _set(("urgency", "flagged"), True),
        "/urgency/flagged",
        "unknown field (allowed here: imminent_danger, live_streaming, ongoing_abuse)",
    ),
    "missing field": (
        _delete(("urgency", "live_streaming")),
        "/urgency/live_streaming",
        "required, but missing",
    ),
    "one type": (_set(("urgency",), "yes"), "/urgency", "must be an object"),
    "one of two types": (
        _set(("victims", 0, "approx_age"), "seven"),
        "/victims/0/approx_age",
        "must be an integer or null",
    ),
    "not a choice": (
        _set(("handling", "tlp"), "ORANGE"),
        "/handling/tlp",
        "must be one of: CLEAR, GREEN, AMBER, AMBER+STRICT, RED",
    ),
    "a pattern": (
        _set(("files", 0, "hashes", "md5"), "abc"),
        "/files/0/hashes/md5",
        "must be 32 hexadecimal digits",
    ),
    "a date-time": (
        _set(("reported_at",), "yesterday"),
        "/reported_at",
        "must be an RFC 3339 date-time with a UTC offset, like 2024-05-01T09:30:00Z",
    ),
    "too long": (
        _set(("narrative",), "x" * 100_001),
        "/narrative",
        "must be at most 100000 characters",
    ),
    "too few items": (
        _set(("offence_types",), []),
        "/offence_types",
        "must list at least 1 item(s)",
    ),
    "the same item twice": (
        _set(("offence_types",), ["grooming", "grooming"]),
        "/offence_types",
        "must not list the same value twice",
    ),
    "too small": (
        _set(("victims", 0, "approx_age"), -1),
        "/victims/0/approx_age",
        "must be at least 0",
    ),
    "too large": (
        _set(("handling", "information_accuracy"), 5),
        "/handling/information_accuracy",
        "must be at most 4",
    ),
    "a field for other selectors": (
        _set(("selectors", 1, "port"), 80),
        "/selectors/1/port",
        "does not apply to this type of selector; see docs/tip-document.md",
    ),
    "empty object": (_set(("files", 0, "hashes"), {}), "/files/0/hashes", "must not be empty"),
    "unknown suspect": (
        _set(("selectors", 0, "suspect"), 2),
        "/selectors/0/suspect",
        "there is no suspect with this index (the document lists 2)",
    ),
    "unsupported version": (
        _set(("schema",), "tipline.tip/2"),
        "/schema",
        "unsupported document format version (supported: tipline.tip/1)",
    ),
    "no version": (
        _delete(("schema",)),
        "/schema",
        "required: the document format version (supported: tipline.tip/1)",
    ),
}


@pytest.mark.parametrize(("change", "path", "message"), MESSAGES.values(), ids=list(MESSAGES))
def test_each_kind_of_schema_error_reads_as_partners_are_told(
    tip: dict[str, Any], change: Callable[[dict[str, Any]], None], path: str, message: str
) -> None:
    change(tip)

    with pytest.raises(InvalidTipDocument) as raised:
        parse_tip_document(encode(tip))

    assert (raised.value.path, raised.value.message) == (path, message)


def test_error_is_a_value_error_for_callers_that_catch_bad_input(tip: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="schema error at /handling/tlp"):
        parse_tip_document(encode(tip | {"handling": {"tlp": "ORANGE"}}))


def test_every_published_example_is_valid() -> None:
    for path in sorted(FIXTURES.glob("tip-*.json")):
        assert (
            parse_tip_document(path.read_bytes()).facts.country
            == example(path.name)["location"]["country"]
        )


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"reported_at": "0001-01-01T00:30:00+01:00"}, "/reported_at"),
        ({"reported_at": "9999-12-31T23:30:00-01:00"}, "/reported_at"),
        ({"incident_at": "9999-12-31T23:59:59.999999-00:01"}, "/incident_at"),
        (
            {
                "selectors": [
                    {"type": "ip", "value": "192.0.2.1", "seen_at": "0001-01-01T00:00:00+23:59"}
                ]
            },
            "/selectors/0/seen_at",
        ),
    ],
    ids=["year 1 east of UTC", "year 9999 west of UTC", "incident_at", "a selector's seen_at"],
)
def test_a_date_time_with_no_utc_instant_is_refused_at_its_place(
    tip: dict[str, Any], change: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidTipDocument) as raised:
        parse_tip_document(encode(tip | change))

    assert raised.value.path == path
    assert "RFC 3339" in raised.value.message


def test_the_last_instants_a_date_time_can_name_are_accepted(tip: dict[str, Any]) -> None:
    parsed = parse_tip_document(
        encode(
            tip
            | {"reported_at": "0001-01-01T00:30:00-01:00", "incident_at": "9999-12-31T23:59:59Z"}
        )
    )

    assert parsed.facts.reported_at == datetime(1, 1, 1, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "items", "limit"),
    [
        # uniqueItems compares objects pairwise: 4,000 took 11 s before the count came first.
        ("offence_types", [{"n": n} for n in range(100_000)], 10),
        # 5 MiB of tiny items: 30 s and 470 MB in jsonschema before.
        ("files", [0] * ((MAX_DOCUMENT_BYTES - 10_000) // 3), 1000),
        ("victims", [{"approx_age": 7, "sex": "female"}] * 101, 100),
    ],
    ids=["100,000 objects as offence types", "5 MiB of tiny files", "101 victims"],
)
def test_a_list_longer_than_the_schema_allows_is_refused_by_its_count(
    tip: dict[str, Any],
    field: str,
    items: list[Any],
    limit: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoValidation:
        def iter_errors(self, _document: object) -> Iterator[object]:
            raise AssertionError("the schema's (super-linear) validation ran on an oversize list")

    # Refused by counting alone, before the validator sees the document: judged by what ran,
    # not by how long it took (a loaded machine makes any time bound flaky).
    monkeypatch.setattr(document_module, "_validator", NoValidation)
    with hang_guard(PATIENCE), pytest.raises(InvalidTipDocument) as raised:
        parse_tip_document(encode(tip | {field: items}))

    assert raised.value.path == f"/{field}"
    assert raised.value.message == f"must list at most {limit} items"


@pytest.mark.parametrize(
    ("schema", "instance", "path", "message"),
    [
        (
            {"properties": {"a": {"minLength": 3}}},
            {"a": "xy"},
            "/a",
            "must be at least 3 characters",
        ),
        ({"properties": {"a": {"maxItems": 1}}}, {"a": [1, 2]}, "/a", "must list at most 1 items"),
        ({"properties": {"a": {"const": "v1"}}}, {"a": "v2"}, "/a", "must be v1"),
        (
            {"properties": {"a": {"pattern": "^x+$"}}},
            {"a": "y"},
            "/a",
            "must match the pattern ^x+$",
        ),
        (
            {"properties": {"a": {"multipleOf": 2}}},
            {"a": 3},
            "/a",
            "breaks the schema's 'multipleOf' rule",
        ),
        ({"additionalProperties": False}, {"b": 1}, "/b", "unknown field (allowed here: )"),
        (
            {"properties": {"a": {"not": {"required": ["x", "y"]}}}},
            {"a": {"x": 1, "y": 2}},
            "/a",
            "breaks the schema's 'not' rule",
        ),
    ],
    ids=["minLength", "maxItems", "const", "pattern", "another rule", "no properties", "not"],
)
def test_each_rule_a_future_schema_may_use_is_worded_too(
    schema: dict[str, Any], instance: Any, path: str, message: str
) -> None:
    """Rules the published schema does not reach today (its sizes are checked before it runs,
    its format version first), worded all the same for the schema that grows."""
    error = next(Draft202012Validator(schema).iter_errors(instance))
    described = _describe(error)
    assert (described.path, described.message) == (path, message)
