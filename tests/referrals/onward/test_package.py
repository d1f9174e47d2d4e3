"""A package joins a referral's tips into one tip document another centre takes in as it
would any tip: for any valid tips, the joined document is valid, carries every victim, suspect
and file, each selector once, and each selector still points at its own suspect."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referrals.intake.document import parse_tip_document
from referrals.onward.package import compose
from tests.partners import valid_tip
from tests.referrals.intake.strategies import tips

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def joined(documents: list[dict[str, Any]], prefer: str | None = None) -> dict[str, Any]:
    return compose(
        documents,
        external_reference="RF-2026-000042/1",
        summary="Two tips about one facilitator.",
        tlp="AMBER",
        handling_code="H2",
        source_reliability="B",
        information_accuracy=3,
        prefer_country=prefer,
        now=NOW,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tips(), min_size=1, max_size=4))
def test_any_valid_tips_join_into_a_valid_tip(drawn: list[tuple[dict[str, Any], datetime]]) -> None:
    documents = [document for document, _ in drawn]
    package = joined(documents)
    parsed = parse_tip_document(json.dumps(package).encode())  # valid, as the recipient checks
    assert parsed.data["external_reference"] == "RF-2026-000042/1"
    assert parsed.data["handling"] == {
        "tlp": "AMBER",
        "code": "H2",
        "source_reliability": "B",
        "information_accuracy": 3,
    }
    assert len(package["victims"]) == sum(len(d.get("victims", [])) for d in documents)
    assert len(package["suspects"]) == sum(len(d.get("suspects", [])) for d in documents)
    assert len(package["files"]) == sum(len(d.get("files", [])) for d in documents)
    # Each selector once, and each with its own suspect's description.
    keys = [(s["type"], s["value"]) for s in package["selectors"]]
    assert len(keys) == len(set(keys))
    owners = {}
    for document in documents:
        for selector in document.get("selectors", []):
            if "suspect" in selector:
                owners.setdefault(
                    (selector["type"], selector["value"]), document["suspects"][selector["suspect"]]
                )
    for selector in package["selectors"]:
        key = (selector["type"], selector["value"])
        if "suspect" in selector and key in owners:
            assert package["suspects"][selector["suspect"]] == owners[key]
    for flag in ("imminent_danger", "ongoing_abuse", "live_streaming"):
        assert package["urgency"][flag] == any(d["urgency"][flag] for d in documents)


def test_the_narrative_carries_each_tip_and_the_place_is_the_recipients_country() -> None:
    first = valid_tip(location={"country": "GB"}, summary="First summary.")
    second = valid_tip(location={"country": "PH", "region": "Cebu"}, summary="Second summary.")
    package = joined([first, second], prefer="PH")
    assert package["location"] == {"country": "PH", "region": "Cebu"}
    assert package["narrative"].startswith("Tip 1 of 2, reported ")
    assert "First summary." in package["narrative"] and "Second summary." in package["narrative"]
    assert joined([first, second], prefer="TH")["location"] == {"country": "GB"}
