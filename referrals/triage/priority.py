"""Priority with stated reasons: a tip's triage facts scored by the rules, in the open.

Pure: the same facts and rules always give the same priority and reasons, so a score can be
explained, tested reason by reason, and recomputed when the rules change.
"""

from __future__ import annotations

from dataclasses import dataclass

from referrals.triage.rules import TriageRules

INFORMATIONAL_REASON = "informational: no place finer than the country and no identifier to act on"


@dataclass(frozen=True)
class TriageFacts:
    """What scoring reads: the facts processing stored in clear, and what correlation found."""

    imminent_danger: bool
    ongoing_abuse: bool
    live_streaming: bool
    youngest_victim_age: int | None
    victim_count: int
    location_precision: str  # "country", "region" or "city"
    selectors: int  # every selector the tip names, indexed or not
    tlp: str | None
    linked_tips: int  # other tips it shares a selector value with
    linked_referrals: int = 0  # open referrals holding such a tip


@dataclass(frozen=True)
class Assessment:
    priority: str  # P1 … P4
    score: int
    reasons: tuple[str, ...]  # each fact that counted, with its points


def assess(facts: TriageFacts, rules: TriageRules) -> Assessment:
    """Score ``facts``: each fact that counts adds its weight and says so."""
    counted: list[tuple[str, int]] = []

    def count(reason: str, points: int) -> None:
        if points:
            counted.append((reason, points))

    if facts.imminent_danger:
        count("imminent danger reported", rules.imminent_danger)
    if facts.live_streaming:
        count("abuse streamed live", rules.live_streaming)
    if facts.ongoing_abuse:
        count("abuse reported as ongoing", rules.ongoing_abuse)
    age = facts.youngest_victim_age
    if age is not None:
        if age <= 5:
            count(f"youngest victim aged {age}", rules.victim_aged_0_5)
        elif age <= 12:
            count(f"youngest victim aged {age}", rules.victim_aged_6_12)
        elif age <= 17:
            count(f"youngest victim aged {age}", rules.victim_aged_13_17)
    if facts.victim_count >= 5:
        count(f"{facts.victim_count} victims", rules.victims_5_or_more)
    elif facts.victim_count >= 2:
        count(f"{facts.victim_count} victims", rules.victims_2_to_4)
    if facts.location_precision == "city":
        count("located to a city", rules.location_city)
    elif facts.location_precision == "region":
        count("located to a region", rules.location_region)
    if facts.linked_tips:
        plural = "s" if facts.linked_tips != 1 else ""
        count(
            f"shares identifiers with {facts.linked_tips} other tip{plural}",
            rules.matches_earlier_tips,
        )
    if facts.linked_referrals:
        plural = "s" if facts.linked_referrals != 1 else ""
        count(
            f"shares identifiers with {facts.linked_referrals} open referral{plural}",
            rules.matches_open_referrals,
        )
    if facts.tlp == "RED":
        count("partner marked it TLP:RED", rules.tlp_red)
    elif facts.tlp == "AMBER+STRICT":
        count("partner marked it TLP:AMBER+STRICT", rules.tlp_amber_strict)

    score = sum(points for _, points in counted)
    reasons = tuple(f"{reason} (+{points})" for reason, points in counted)
    if facts.location_precision == "country" and facts.selectors == 0:
        return Assessment(priority="P4", score=score, reasons=(INFORMATIONAL_REASON, *reasons))
    if score >= rules.p1_threshold:
        priority = "P1"
    elif score >= rules.p2_threshold:
        priority = "P2"
    else:
        priority = "P3"
    return Assessment(priority=priority, score=score, reasons=reasons)
