"""The published schema: valid JSON Schema, consistent with the code, documented for partners."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from crypto.selectors import SelectorType
from referrals.intake.document import SCHEMA_ID, load_schema
from tests.referrals.intake.strategies import OFFENCE_TYPES

DOC = Path(__file__).parents[3] / "docs" / "tip-document.md"


def _fields(schema: Any) -> set[str]:
    """Every property name the schema defines, at any depth."""
    names: set[str] = set()
    if isinstance(schema, dict):
        names |= set(schema.get("properties", {}))
        for value in schema.values():
            names |= _fields(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _fields(value)
    return names


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema()

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema"]["const"] == SCHEMA_ID


def test_schema_allows_exactly_the_selector_types_the_blind_index_knows() -> None:
    types = load_schema()["$defs"]["selector"]["properties"]["type"]["enum"]

    assert sorted(types) == sorted(member.value for member in SelectorType)


def test_every_object_refuses_unknown_fields() -> None:
    def objects(schema: Any) -> list[dict[str, Any]]:
        found = []
        if isinstance(schema, dict):
            if schema.get("type") == "object":
                found.append(schema)
            for value in schema.values():
                found += objects(value)
        elif isinstance(schema, list):
            for value in schema:
                found += objects(value)
        return found

    found = objects(load_schema())
    # The tip, urgency, location, handling, victim, suspect, selector, file and hashes.
    assert len(found) == 9
    assert all(obj.get("additionalProperties") is False for obj in found)


def test_victims_cannot_carry_a_name() -> None:
    victim = load_schema()["properties"]["victims"]["items"]

    assert victim["additionalProperties"] is False
    assert set(victim["properties"]) == {"approx_age", "sex"}


def test_load_schema_hands_out_copies() -> None:
    load_schema()["properties"].clear()

    assert "narrative" in load_schema()["properties"]


def test_partner_documentation_names_every_field_and_offence_type() -> None:
    text = DOC.read_text("utf-8")

    missing = {
        name for name in _fields(load_schema()) | set(OFFENCE_TYPES) if f"`{name}`" not in text
    }
    assert missing == set()
    assert load_schema()["properties"]["offence_types"]["items"]["enum"] == OFFENCE_TYPES
    assert "tests/referrals/intake/fixtures/tip-valid.json" in text
