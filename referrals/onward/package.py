"""Composing one ``tipline.tip/1`` document from the tips of a referral (pure: no database,
no keys), so that another centre takes it in as an ordinary tip.

Its narrative carries each tip's summary and account in turn (never the agency that sent it:
that is not ours to pass on), victims, suspects, selectors (each once; a selector's suspect
renumbered to its place in the joined list) and file hashes joined, urgency flags joined, the
location of the first tip placed in the recipient's country (else the first tip's), and the
referral's markings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

SCHEMA = "tipline.tip/1"


def compose(
    tips: Sequence[Mapping[str, Any]],
    *,
    external_reference: str,
    summary: str,
    tlp: str,
    handling_code: str | None,
    source_reliability: str | None = None,
    information_accuracy: int | None = None,
    prefer_country: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The package document for ``tips`` (validated tip documents, oldest first).

    Raises:
        ValueError: no tips.
    """
    if not tips:
        raise ValueError("a package carries at least one tip")
    placed = next((tip for tip in tips if tip["location"]["country"] == prefer_country), tips[0])
    suspects: list[Any] = []
    victims: list[Any] = []
    selectors: list[dict[str, Any]] = []
    files: list[Any] = []
    offences: list[str] = []
    seen: set[tuple[str, str]] = set()
    accounts = []
    for number, tip in enumerate(tips, 1):
        offset = len(suspects)
        suspects += list(tip.get("suspects", []))
        victims += list(tip.get("victims", []))
        files += list(tip.get("files", []))
        offences += [kind for kind in tip["offence_types"] if kind not in offences]
        for selector in tip.get("selectors", []):
            key = (str(selector["type"]), str(selector["value"]))
            if key in seen:
                continue
            seen.add(key)
            moved = dict(selector)
            if "suspect" in moved:
                moved["suspect"] = int(moved["suspect"]) + offset
            selectors.append(moved)
        accounts.append(
            f"Tip {number} of {len(tips)}, reported {tip['reported_at']}:\n"
            f"{tip['summary'].strip()}\n\n{tip['narrative'].strip()}"
        )
    incidents = [str(tip["incident_at"]) for tip in tips if tip.get("incident_at")]
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "external_reference": external_reference,
        "reported_at": now.isoformat(),
        "summary": summary,
        "narrative": "\n\n".join(accounts),
        "urgency": {
            flag: any(bool(tip["urgency"][flag]) for tip in tips)
            for flag in ("imminent_danger", "ongoing_abuse", "live_streaming")
        },
        "location": dict(placed["location"]),
        "offence_types": offences,
        "victims": victims,
        "suspects": suspects,
        "selectors": selectors,
        "files": files,
        "handling": {
            "tlp": tlp,
            **({"code": handling_code} if handling_code else {}),
            **({"source_reliability": source_reliability} if source_reliability else {}),
            **({"information_accuracy": information_accuracy} if information_accuracy else {}),
        },
    }
    if incidents:
        document["incident_at"] = min(incidents, key=_instant)
    return document


def _instant(value: str) -> datetime:
    """An RFC 3339 time as validated in a tip document (offset required; ``Z`` allowed)."""
    return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
