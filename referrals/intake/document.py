"""The tip document: what a partner sends, once decrypted, and what triage may keep of it.

A tip is a UTF-8 JSON document checked against ``tip.schema.json`` (JSON Schema 2020-12), the
contract partners code against; ``docs/tip-document.md`` describes it for them. Parsing returns
the whole document (to be kept in memory only), the facts triage may store in clear, and the
selectors to blind-index.

Every error names the place in the document (a JSON pointer) and says what is wrong in words
a partner can act on. No message ever quotes a value from the document: values are
investigative content (a narrative, an e-mail address), and messages reach logs and HTTP
answers.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from crypto.errors import InvalidSelector
from crypto.selectors import SelectorType, normalise_selector

SCHEMA_ID = "tipline.tip/1"
SUPPORTED_SCHEMAS = (SCHEMA_ID,)

#: Larger documents are refused before they are decoded. The schema's own limits keep a valid
#: document well under this; the cap bounds the work a hostile one can cause.
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
#: The schema needs five levels; anything much deeper is not a tip.
MAX_DEPTH = 16

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<off_hour>\d{2}):(?P<off_minute>\d{2}))"
)
# Keys outside this shape are not echoed, even in a JSON pointer: a key is normally a field
# name, but one that is not could be anything the partner typed.
_SAFE_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_PATTERN_MESSAGES = {
    r"\S": "must not be blank",
    r"^[^\u0000-\u001f\u007f]*$": "must be a single line without control characters",
    "^[A-Z]{2}$": "must be an ISO 3166-1 alpha-2 country code in upper case, like PH",
    "^[0-9a-fA-F]{32}$": "must be 32 hexadecimal digits",
    "^[0-9a-fA-F]{40}$": "must be 40 hexadecimal digits",
    "^[0-9a-fA-F]{64}$": "must be 64 hexadecimal digits",
    "^[A-Za-z0-9+/=]+$": "must be base64 or hexadecimal",
}
_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


class InvalidTipDocument(ValueError):
    """The document is not a valid tip; ``path`` says where, ``message`` says why.

    Attributes:
        path: JSON pointer (RFC 6901) of the first problem, ``""`` for the whole document.
        message: a reason the partner can act on; never quotes a value from the document.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"schema error at {path or '/'}: {message}")


@dataclass(frozen=True)
class SelectorEntry:
    """One selector as the document gave it (kept only in memory)."""

    type: str
    value: str
    platform: str | None


@dataclass(frozen=True)
class SelectorWarning:
    """A selector kept in the tip but not indexed: its place and why (never its value)."""

    pointer: str
    message: str


@dataclass(frozen=True)
class TriageFacts:
    """What triage needs and may be stored in clear."""

    reported_at: datetime
    imminent_danger: bool
    ongoing_abuse: bool
    live_streaming: bool
    country: str
    region: str | None
    # How closely the document places the victims or suspects: "country", "region" or "city"
    # (the city's name is content and stays in the ciphertext).
    location_precision: str
    offence_types: tuple[str, ...]
    victim_count: int
    youngest_victim_age: int | None
    tlp: str
    handling_code: str | None
    source_reliability: str | None
    information_accuracy: int | None


@dataclass(frozen=True)
class TipDocument:
    """A validated tip: the document itself (in memory only), its facts and its selectors."""

    data: Mapping[str, Any]
    facts: TriageFacts
    selectors: tuple[SelectorEntry, ...]
    # Selectors that are kept in the document but cannot be indexed (a malformed phone number):
    # the tip is accepted all the same, and the partner is told which.
    selector_warnings: tuple[SelectorWarning, ...] = ()


def load_schema() -> dict[str, Any]:
    """The tip JSON Schema as published in ``referrals/intake/tip.schema.json``.

    Returns a fresh copy each time; the file is read once.
    """
    return copy.deepcopy(_schema())


def parse_tip_document(raw: bytes) -> TipDocument:
    """Decode, validate and summarise a decrypted tip document.

    Args:
        raw: the plaintext as decrypted, expected to be UTF-8 JSON.

    Returns:
        The validated document, the facts triage may store and the selectors it names.

    Raises:
        InvalidTipDocument: the document is too large, not UTF-8, not JSON, has a duplicated
            key, is nested too deeply, is not of a supported schema version, or breaks the
            schema. A selector whose value is not valid for its type does not reject the tip
            (a child-safety tip must not bounce for one bad phone number): it is left out of
            ``selectors`` and named in ``selector_warnings``.
    """
    data = _decode(raw)
    _check_supported_version(data)
    _check_array_sizes(data)
    error = best_match(_validator().iter_errors(data))
    if error is not None:
        raise _describe(error)
    selectors, warnings = _selectors(data)
    return TipDocument(
        data=MappingProxyType(data),
        facts=_facts(data),
        selectors=selectors,
        selector_warnings=warnings,
    )


# -- decoding ---------------------------------------------------------------------------------


class _DuplicateKey(dict[str, Any]):
    """A JSON object in which ``key`` appeared more than once (reported after decoding, when
    the object's place in the document is known)."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _DuplicateKey(pairs, key)
        seen.add(key)
    return dict(pairs)


def _refuse_constant(name: str) -> Any:
    raise InvalidTipDocument("", f"not valid JSON: {name} is not a JSON number")


def _decode(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidTipDocument(
            "", f"the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidTipDocument(
            "", f"the document is not valid UTF-8 (first bad byte at offset {exc.start})"
        ) from None
    # RFC 8259 lets a parser ignore a byte order mark; some Windows tools write one.
    text = text.removeprefix("\ufeff")
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidTipDocument(
            "", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except InvalidTipDocument:
        raise
    except RecursionError:
        raise InvalidTipDocument("", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        # Python refuses integers of more than 4300 digits.
        raise InvalidTipDocument("", "not valid JSON: a number is too long") from None
    _check_structure(data)
    if not isinstance(data, dict):
        raise InvalidTipDocument("", "the document must be a JSON object")
    return data


def _check_structure(data: Any) -> None:
    """Refuse what JSON allows but a tip must not have: duplicated keys (which of the two
    would we believe?), deep nesting, and unpaired surrogate escapes (text that cannot be
    stored as UTF-8). Depth first, holding one iterator per level: memory stays flat however
    many items a list has."""
    stack: list[tuple[Iterator[tuple[str | int, Any]], tuple[str | int, ...]]] = []

    def enter(value: Any, path: tuple[str | int, ...]) -> None:
        if len(path) > MAX_DEPTH:
            raise InvalidTipDocument(
                _safe_pointer(path[:MAX_DEPTH]), f"nested deeper than {MAX_DEPTH}"
            )
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, list):
            stack.append((iter(enumerate(value)), path))
        elif isinstance(value, dict):
            if isinstance(value, _DuplicateKey):
                raise InvalidTipDocument(
                    _pointer_to_key(path, value.key),
                    "a key appears twice in the same object; send it once",
                )
            for key in value:
                _check_text(key, path)
            stack.append((iter(value.items()), path))

    enter(data, ())
    while stack:
        children, path = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
        else:
            enter(child[1], (*path, child[0]))


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidTipDocument(
            _safe_pointer(path),
            "text contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)",
        ) from None


def _check_supported_version(data: Mapping[str, Any]) -> None:
    supported = ", ".join(SUPPORTED_SCHEMAS)
    if "schema" not in data:
        raise InvalidTipDocument(
            "/schema", f"required: the document format version (supported: {supported})"
        )
    if data["schema"] not in SUPPORTED_SCHEMAS:
        raise InvalidTipDocument(
            "/schema", f"unsupported document format version (supported: {supported})"
        )


# -- schema validation ------------------------------------------------------------------------


def _check_array_sizes(data: Mapping[str, Any]) -> None:
    """Refuse a list longer than the schema's ``maxItems`` at its place, before jsonschema
    runs: jsonschema checks every item of a list whatever its length, and ``uniqueItems`` on
    objects is quadratic (4,000 items took 11 s, 1.7 million tiny ones 30 s and 470 MB).

    Walks the schema and the document together through ``properties``, ``items``, ``allOf``
    and ``$ref`` (to ``$defs``); the pointer is built from the schema's own field names.
    """
    schema = _schema()
    stack: list[tuple[Mapping[str, Any], Any, tuple[str | int, ...]]] = [(schema, data, ())]
    while stack:
        node, value, path = stack.pop()
        while "$ref" in node:
            # Keywords beside a $ref apply too (the schema narrows maxLength that way).
            node = {
                **_resolve(schema, node["$ref"]),
                **{k: v for k, v in node.items() if k != "$ref"},
            }
        stack.extend((part, value, path) for part in node.get("allOf", ()))
        if isinstance(value, list):
            limit = node.get("maxItems")
            if limit is not None and len(value) > limit:
                raise InvalidTipDocument(_pointer(path), f"must list at most {limit} items")
            items = node.get("items")
            if isinstance(items, dict):
                stack.extend((items, item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, dict):
            fields = node.get("properties", {})
            stack.extend(
                (fields[key], item, (*path, key)) for key, item in value.items() if key in fields
            )


def _resolve(schema: Mapping[str, Any], reference: str) -> Mapping[str, Any]:
    prefix = "#/$defs/"
    if not reference.startswith(prefix):  # pragma: no cover - the published schema has no other
        raise ValueError(f"unsupported $ref {reference}")
    resolved: Mapping[str, Any] = schema["$defs"][reference.removeprefix(prefix)]
    return resolved


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("referrals.intake").joinpath("tip.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Any:
    # Our own date-time check rather than jsonschema's, which silently checks nothing unless
    # the optional rfc3339-validator package happens to be installed.
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    return Draft202012Validator(_schema(), format_checker=checker)


def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    return _parse_date_time(instance) is not None


def _parse_date_time(text: str) -> datetime | None:
    """An RFC 3339 date-time (section 5.6) as an aware datetime, or None."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    second = int(match["second"])
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    try:
        if match["utc"]:
            zone = UTC
        else:
            offset = timedelta(hours=int(match["off_hour"]), minutes=int(match["off_minute"]))
            zone = timezone(-offset if match["sign"] == "-" else offset)
        # A leap second (:60) is valid RFC 3339; Python cannot represent it, so it is read
        # as the last representable instant of that minute.
        moment = datetime.fromisoformat(match["date"]).replace(
            hour=int(match["hour"]),
            minute=int(match["minute"]),
            second=min(second, 59),
            microsecond=999999 if second == 60 else int(fraction),
            tzinfo=zone,
        )
        # Year 1 east of UTC or year 9999 west of it has no UTC instant Python can hold:
        # refused here, at its place, rather than an OverflowError when it is stored.
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment


def _describe(error: ValidationError) -> InvalidTipDocument:
    """Turn jsonschema's error, whose message quotes the offending value, into ours."""
    path: tuple[str | int, ...] = tuple(error.absolute_path)
    schema = error.schema
    validator = error.validator
    value = error.validator_value
    match validator:
        case "required":
            missing = [name for name in value if name not in error.instance]
            return InvalidTipDocument(_pointer_to_key(path, missing[0]), "required, but missing")
        case "additionalProperties":
            allowed = ", ".join(sorted(schema.get("properties", {})))
            extras = [key for key in error.instance if key not in schema.get("properties", {})]
            return InvalidTipDocument(
                _pointer_to_key(path, extras[0]),
                f"unknown field (allowed here: {allowed})",
            )
        case "type":
            types = [value] if isinstance(value, str) else list(value)
            return InvalidTipDocument(
                _pointer(path), "must be " + " or ".join(_TYPE_NAMES[t] for t in types)
            )
        case "enum":
            choices = ", ".join(str(choice) for choice in value)
            return InvalidTipDocument(_pointer(path), f"must be one of: {choices}")
        case "const":
            return InvalidTipDocument(_pointer(path), f"must be {value}")
        case "pattern":
            message = _PATTERN_MESSAGES.get(value, f"must match the pattern {value}")
            return InvalidTipDocument(_pointer(path), message)
        case "format":
            return InvalidTipDocument(
                _pointer(path),
                "must be an RFC 3339 date-time with a UTC offset, like 2024-05-01T09:30:00Z",
            )
        case "minLength":
            return InvalidTipDocument(_pointer(path), f"must be at least {value} characters")
        case "maxLength":
            return InvalidTipDocument(_pointer(path), f"must be at most {value} characters")
        case "minItems":
            return InvalidTipDocument(_pointer(path), f"must list at least {value} item(s)")
        case "maxItems":
            return InvalidTipDocument(_pointer(path), f"must list at most {value} items")
        case "uniqueItems":
            return InvalidTipDocument(_pointer(path), "must not list the same value twice")
        case "minimum":
            return InvalidTipDocument(_pointer(path), f"must be at least {value}")
        case "maximum":
            return InvalidTipDocument(_pointer(path), f"must be at most {value}")
        case "not" if list(value) == ["required"] and len(value["required"]) == 1:
            # The selector schema's way of saying "this field is for other types only".
            key = value["required"][0]
            return InvalidTipDocument(
                _pointer_to_key(path, key),
                "does not apply to this type of selector; see docs/tip-document.md",
            )
        case "minProperties":
            return InvalidTipDocument(_pointer(path), "must not be empty")
    return InvalidTipDocument(_pointer(path), f"breaks the schema's '{validator}' rule")


def _pointer(path: tuple[str | int, ...]) -> str:
    # RFC 6901 escapes, kept for correctness although no path can need them today: keys are
    # the schema's field names or pass _SAFE_KEY, which allows neither "~" nor "/".
    parts = (str(part).replace("~", "~0").replace("/", "~1") for part in path)  # pragma: no mutate
    return "".join(f"/{part}" for part in parts)


def _pointer_to_key(path: tuple[str | int, ...], key: str) -> str:
    return _pointer((*path, key)) if _SAFE_KEY.fullmatch(key) else _pointer(path)


def _safe_pointer(path: tuple[str | int, ...]) -> str:
    """The pointer to ``path`` up to its first key that is not shaped like a field name (a key
    the partner typed, such as a name, is not echoed)."""
    safe: list[str | int] = []
    for part in path:
        if isinstance(part, str) and not _SAFE_KEY.fullmatch(part):
            break
        safe.append(part)
    return _pointer(tuple(safe))


# -- what the document says -------------------------------------------------------------------


def _selectors(
    data: Mapping[str, Any],
) -> tuple[tuple[SelectorEntry, ...], tuple[SelectorWarning, ...]]:
    """The selectors the blind index can take, each checked by its normaliser, and a warning
    with its place for each that it cannot (which is kept in the document, not indexed)."""
    country = data["location"]["country"]
    suspects = len(data.get("suspects", []))
    entries = []
    warnings = []
    for index, item in enumerate(data.get("selectors", [])):
        if "suspect" in item and item["suspect"] >= suspects:
            raise InvalidTipDocument(
                f"/selectors/{index}/suspect",
                f"there is no suspect with this index (the document lists {suspects})",
            )
        try:
            normalise_selector(
                SelectorType(item["type"]),
                item["value"],
                platform=item.get("platform"),
                default_region=country,
            )
        except InvalidSelector as exc:
            # crypto's messages never quote the value.
            warnings.append(SelectorWarning(f"/selectors/{index}/value", str(exc)))
            continue
        entries.append(SelectorEntry(item["type"], item["value"], item.get("platform")))
    return tuple(entries), tuple(warnings)


def _facts(data: Mapping[str, Any]) -> TriageFacts:
    reported_at = _parse_date_time(data["reported_at"])
    if reported_at is None:  # pragma: no cover - the schema's format check parsed it already
        raise InvalidTipDocument("/reported_at", "must be an RFC 3339 date-time")
    victims = data.get("victims", [])
    ages = [int(victim["approx_age"]) for victim in victims if victim["approx_age"] is not None]
    location = data["location"]
    region = location.get("region")
    precision = "city" if location.get("city") else "region" if region else "country"
    return TriageFacts(
        reported_at=reported_at.astimezone(UTC),
        imminent_danger=data["urgency"]["imminent_danger"],
        ongoing_abuse=data["urgency"]["ongoing_abuse"],
        live_streaming=data["urgency"]["live_streaming"],
        country=data["location"]["country"],
        region=region.strip() if region is not None else None,
        location_precision=precision,
        offence_types=tuple(data["offence_types"]),
        victim_count=len(victims),
        youngest_victim_age=min(ages, default=None),
        tlp=data["handling"]["tlp"],
        handling_code=data["handling"].get("code"),
        source_reliability=data["handling"].get("source_reliability"),
        information_accuracy=data["handling"].get("information_accuracy"),
    )
