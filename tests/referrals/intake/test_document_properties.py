"""Properties of the parser: every valid tip parses to the facts it states, and nothing a
partner (or an attacker) sends makes it fail in any way but InvalidTipDocument."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referrals.intake.document import InvalidTipDocument, SelectorEntry, parse_tip_document
from tests.referrals.intake.conftest import encode, example
from tests.referrals.intake.strategies import tips

CANARY = "CANARY-5b1e-selector"

_slow = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example]
)


@_slow
@given(tips())
def test_every_valid_tip_parses_to_the_facts_it_states(
    drawn: tuple[dict[str, Any], datetime],
) -> None:
    document, moment = drawn

    parsed = parse_tip_document(encode(document))

    facts = parsed.facts
    ages = [v["approx_age"] for v in document.get("victims", []) if v["approx_age"] is not None]
    region = document["location"].get("region")
    assert facts.reported_at == moment
    assert facts.reported_at.tzinfo is UTC
    assert facts.country == document["location"]["country"]
    assert facts.region == (region.strip() if region is not None else None)
    assert facts.offence_types == tuple(document["offence_types"])
    assert facts.victim_count == len(document.get("victims", []))
    assert facts.youngest_victim_age == min(ages, default=None)
    assert facts.tlp == document["handling"]["tlp"]
    assert facts.handling_code == document["handling"].get("code")
    assert [facts.imminent_danger, facts.ongoing_abuse, facts.live_streaming] == list(
        document["urgency"].values()
    )
    assert parsed.selectors == tuple(
        SelectorEntry(s["type"], s["value"], s.get("platform"))
        for s in document.get("selectors", [])
    )
    assert parsed.data == document


@given(st.binary(max_size=4096))
def test_arbitrary_bytes_fail_only_as_an_invalid_document(raw: bytes) -> None:
    with contextlib.suppress(InvalidTipDocument):
        parse_tip_document(raw)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
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


_VALID = example()
_PATHS = [path for path in _paths(_VALID) if path]


@given(st.sampled_from(_PATHS), _json_values | st.just(CANARY))
def test_any_field_replaced_by_anything_fails_only_as_an_invalid_document(
    path: tuple[Any, ...], replacement: Any
) -> None:
    document = example()
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = replacement

    try:
        parse_tip_document(encode(document))
    except InvalidTipDocument as error:
        assert CANARY not in str(error)


@given(_json_values)
def test_arbitrary_json_fails_only_as_an_invalid_document(value: Any) -> None:
    with contextlib.suppress(InvalidTipDocument):
        parse_tip_document(json.dumps(value).encode())
