"""TLP 2.0 markings, which is the more restrictive, and what a marking allows to leave.

A referral carries the most restrictive marking of the tips merged into it. Information marked
TLP:RED (named recipients only) or TLP:AMBER+STRICT (the receiving organisation only) may not
be passed outside the centre (a hand-over to a law-enforcement unit, a package to another
centre) without the consent of the agency that marked it, recorded on the referral.
"""

from __future__ import annotations

import enum


class Tlp(enum.StrEnum):
    """FIRST Traffic Light Protocol 2.0, least restrictive first."""

    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER+STRICT"
    RED = "RED"


_TLP_RANK = {marking: rank for rank, marking in enumerate(Tlp)}

#: Markings under which nothing is passed on without the marking agency's consent.
NEEDS_CONSENT = frozenset({Tlp.AMBER_STRICT, Tlp.RED})

#: Handling codes agreed with partners, least restrictive first: H0 (no further condition) to
#: H3 (the partner's arrangement restricts use the most).
HANDLING_CODES = ("H0", "H1", "H2", "H3")

TLP_MEANING: dict[Tlp, str] = {
    Tlp.CLEAR: "no limit on disclosure",
    Tlp.GREEN: "may be shared within the community, not published",
    Tlp.AMBER: "the recipient organisation and those it must inform, on a need-to-know basis",
    Tlp.AMBER_STRICT: "the recipient organisation only",
    Tlp.RED: "the named recipients only",
}

SOURCE_RELIABILITY: dict[str, str] = {
    "A": "reliable",
    "B": "mostly reliable",
    "C": "not reliable",
    "X": "cannot be judged",
}
INFORMATION_ACCURACY: dict[int, str] = {
    1: "known to be true",
    2: "known to the source personally",
    3: "not known personally, corroborated",
    4: "cannot be judged",
}


def tlp(value: str | None) -> Tlp | None:
    """The marking named ``value`` (None for a tip processed before markings were kept, or an
    unknown name: such a tip is treated as the most restrictive by ``needs_consent``)."""
    try:
        return Tlp(value) if value is not None else None
    except ValueError:
        return None


def stricter_tlp(first: str | None, second: str | None) -> str | None:
    """The more restrictive of two markings (an unknown or missing one counts as neither)."""
    known = [marking for marking in (tlp(first), tlp(second)) if marking is not None]
    if not known:
        return None
    return max(known, key=_TLP_RANK.__getitem__).value


def stricter_code(first: str | None, second: str | None) -> str | None:
    """The more restrictive of two handling codes."""
    known = [code for code in (first, second) if code in HANDLING_CODES]
    return max(known, key=HANDLING_CODES.index) if known else None


def weaker_reliability(first: str | None, second: str | None) -> str | None:
    """The less assured of two source gradings (A reliable ... C not reliable, then X: cannot
    be judged): a referral is as assured as its least assured tip."""
    known = [grade for grade in (first, second) if grade in SOURCE_RELIABILITY]
    return max(known, key=list(SOURCE_RELIABILITY).index) if known else None


def weaker_accuracy(first: int | None, second: int | None) -> int | None:
    """The less assured of two information gradings (1 known to be true ... 4 cannot be
    judged)."""
    known = [grade for grade in (first, second) if grade in INFORMATION_ACCURACY]
    return max(known) if known else None


def grading(source: str | None, information: int | None) -> str | None:
    """A source and information grading in words ("source B, mostly reliable; information 2,
    known to the source personally"), or None when neither is given."""
    said = []
    if source in SOURCE_RELIABILITY:
        said.append(f"source {source}, {SOURCE_RELIABILITY[source]}")
    if information in INFORMATION_ACCURACY:
        said.append(f"information {information}, {INFORMATION_ACCURACY[information]}")
    return "; ".join(said) or None


def needs_consent(marking: str | None) -> bool:
    """Whether information under ``marking`` may leave the centre only with its agency's
    consent. A marking this code does not know is held to the strictest rule."""
    known = tlp(marking)
    return known is None or known in NEEDS_CONSENT
