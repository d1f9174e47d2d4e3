"""The priority rules, reason by reason: each fact that counts says so, with its points."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from referrals.triage.priority import INFORMATIONAL_REASON, TriageFacts, assess
from referrals.triage.rules import InvalidRules, TriageRules

RULES = TriageRules()
# Nothing urgent, one identifier, placed only to its country: P3 with no reason at all.
PLAIN = TriageFacts(
    imminent_danger=False,
    ongoing_abuse=False,
    live_streaming=False,
    youngest_victim_age=None,
    victim_count=1,
    location_precision="country",
    selectors=1,
    tlp="GREEN",
    linked_tips=0,
)


def test_a_tip_with_nothing_that_counts_is_p3_without_reasons() -> None:
    assert assess(PLAIN, RULES) == assess(PLAIN, RULES)
    assessed = assess(PLAIN, RULES)
    assert (assessed.priority, assessed.score, assessed.reasons) == ("P3", 0, ())


@pytest.mark.parametrize(
    ("change", "reason", "points"),
    [
        ({"imminent_danger": True}, "imminent danger reported", 60),
        ({"live_streaming": True}, "abuse streamed live", 30),
        ({"ongoing_abuse": True}, "abuse reported as ongoing", 25),
        ({"youngest_victim_age": 0}, "youngest victim aged 0", 25),
        ({"youngest_victim_age": 5}, "youngest victim aged 5", 25),
        ({"youngest_victim_age": 6}, "youngest victim aged 6", 15),
        ({"youngest_victim_age": 12}, "youngest victim aged 12", 15),
        ({"youngest_victim_age": 13}, "youngest victim aged 13", 5),
        ({"youngest_victim_age": 17}, "youngest victim aged 17", 5),
        ({"victim_count": 2}, "2 victims", 10),
        ({"victim_count": 4}, "4 victims", 10),
        ({"victim_count": 5}, "5 victims", 20),
        ({"location_precision": "region"}, "located to a region", 5),
        ({"location_precision": "city"}, "located to a city", 10),
        ({"linked_tips": 1}, "shares identifiers with 1 other tip", 10),
        ({"linked_tips": 3}, "shares identifiers with 3 other tips", 10),
        ({"linked_referrals": 1}, "shares identifiers with 1 open referral", 20),
        ({"linked_referrals": 2}, "shares identifiers with 2 open referrals", 20),
        ({"tlp": "RED"}, "partner marked it TLP:RED", 10),
        ({"tlp": "AMBER+STRICT"}, "partner marked it TLP:AMBER+STRICT", 5),
    ],
)
def test_each_fact_that_counts_is_a_stated_reason(
    change: dict[str, object], reason: str, points: int
) -> None:
    assessed = assess(dataclasses.replace(PLAIN, **change), RULES)  # type: ignore[arg-type]
    assert assessed.reasons == (f"{reason} (+{points})",)
    assert assessed.score == points


@pytest.mark.parametrize(
    "change",
    [{"youngest_victim_age": 18}, {"victim_count": 0}, {"tlp": "AMBER"}, {"tlp": "CLEAR"}],
)
def test_facts_outside_every_band_add_nothing(change: dict[str, object]) -> None:
    assessed = assess(dataclasses.replace(PLAIN, **change), RULES)  # type: ignore[arg-type]
    assert (assessed.priority, assessed.score, assessed.reasons) == ("P3", 0, ())


def test_the_thresholds_make_p1_and_p2() -> None:
    imminent = assess(dataclasses.replace(PLAIN, imminent_danger=True), RULES)
    streamed = assess(dataclasses.replace(PLAIN, live_streaming=True), RULES)
    ongoing = assess(dataclasses.replace(PLAIN, ongoing_abuse=True), RULES)
    assert (imminent.priority, streamed.priority, ongoing.priority) == ("P1", "P2", "P3")


def test_the_published_example_is_p1_with_every_reason_listed() -> None:
    facts = TriageFacts(
        imminent_danger=True,
        ongoing_abuse=True,
        live_streaming=True,
        youngest_victim_age=2,
        victim_count=4,
        location_precision="city",
        selectors=7,
        tlp="AMBER+STRICT",
        linked_tips=0,
    )
    assessed = assess(facts, RULES)
    assert assessed.priority == "P1"
    assert assessed.score == 60 + 30 + 25 + 25 + 10 + 10 + 5
    assert len(assessed.reasons) == 7


def test_nothing_to_act_on_is_informational_whatever_the_points() -> None:
    facts = dataclasses.replace(PLAIN, selectors=0, imminent_danger=True)
    assessed = assess(facts, RULES)
    assert assessed.priority == "P4"
    assert assessed.reasons[0] == INFORMATIONAL_REASON
    assert "imminent danger reported (+60)" in assessed.reasons
    # A place finer than the country, or one identifier, is something to act on.
    assert assess(dataclasses.replace(facts, location_precision="region"), RULES).priority == "P1"
    assert assess(dataclasses.replace(facts, selectors=1), RULES).priority == "P1"


def test_administrators_weights_and_thresholds_decide() -> None:
    rules = dataclasses.replace(RULES, ongoing_abuse=70, imminent_danger=0)
    assert assess(dataclasses.replace(PLAIN, ongoing_abuse=True), rules).priority == "P1"
    imminent = assess(dataclasses.replace(PLAIN, imminent_danger=True), rules)
    assert (imminent.priority, imminent.reasons) == ("P3", ())  # a weight of 0 says nothing
    stricter = dataclasses.replace(RULES, p1_threshold=200, p2_threshold=100)
    assert assess(dataclasses.replace(PLAIN, imminent_danger=True), stricter).priority == "P3"


facts_strategy = st.builds(
    TriageFacts,
    imminent_danger=st.booleans(),
    ongoing_abuse=st.booleans(),
    live_streaming=st.booleans(),
    youngest_victim_age=st.none() | st.integers(0, 17),
    victim_count=st.integers(0, 20),
    location_precision=st.sampled_from(["country", "region", "city"]),
    selectors=st.integers(0, 5),
    tlp=st.sampled_from(["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]),
    linked_tips=st.integers(0, 5),
    linked_referrals=st.integers(0, 3),
)
URGENT_FLAGS = ("imminent_danger", "ongoing_abuse", "live_streaming")


@given(facts=facts_strategy, flag=st.sampled_from(URGENT_FLAGS))
def test_reporting_more_danger_never_lowers_the_priority(facts: TriageFacts, flag: str) -> None:
    before = assess(facts, RULES)
    after = assess(dataclasses.replace(facts, **{flag: True}), RULES)
    assert after.priority <= before.priority  # "P1" < "P2" < …
    assert after.score >= before.score


@given(facts=facts_strategy)
def test_the_score_is_the_sum_of_the_stated_points(facts: TriageFacts) -> None:
    assessed = assess(facts, RULES)
    stated = [
        int(reason.rsplit("(+", 1)[1].rstrip(")")) for reason in assessed.reasons if "(+" in reason
    ]
    assert sum(stated) == assessed.score


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"p2_threshold": 60}, "p2_threshold must be lower than p1_threshold"),
        ({"sla_hours_p1": 48}, "a more urgent priority cannot have a longer SLA"),
        ({"correlation_cap": 1}, "correlation_cap must be between 2 and 100000"),
        ({"imminent_danger": -1}, "imminent_danger must be between 0 and 1000"),
        ({"imminent_danger": True}, "imminent_danger must be a whole number"),
        ({"sla_hours_p4": 9000}, "sla_hours_p4 must be between 1 and 8760"),
    ],
)
def test_rules_that_cannot_work_are_refused_by_name(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRules) as refused:
        dataclasses.replace(RULES, **change)  # type: ignore[arg-type]
    assert str(refused.value) == message


def test_a_stored_version_reads_with_todays_code() -> None:
    old = {"imminent_danger": 40, "a_rule_since_removed": 3}
    rules = TriageRules.from_json(old)
    assert rules.imminent_danger == 40
    assert rules.live_streaming == RULES.live_streaming  # added since: its default
