"""Scores of the last mutmut run, per area, against floors that only go up.

A mutant is a small change mutmut makes to the code (``<`` for ``<=``, a string emptied, a
condition negated). One the suite notices (a test fails, or it hangs past its time) is
*killed*; one it does not notice *survived*: a change to the guard no test would catch. Every
survivor is reviewed: a test that kills it is added, or, if the change means nothing (a codec
name's case, say), the line is marked ``# pragma: no mutate`` with the reason.

``scores.json`` records, per area, the last recorded run's figures and its floor. A run scoring
an area below its floor fails; ``--record`` writes the new figures and raises each floor to the
new score (never lowers it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SCORES = Path(__file__).with_name("scores.json")

# Which mutants belong to which area: mutmut names a mutant after its module (and function).
AREAS: dict[str, tuple[str, ...]] = {
    "crypto": ("crypto.",),
    "tip processing": (
        "referrals.intake.processing.",
        "referrals.intake.document.",
        "referrals.intake.sweep.",
        "referrals.intake.quarantine.",
    ),
    "accounts": ("referrals.accounts.",),
    "access": ("tipline.access.",),
    "audit log": ("referrals.audit.",),
}
# Caught, one way or another: a test failed, the mutant hung past its time, or crashed.
CAUGHT = {"killed", "timeout", "segfault"}
# Left out by configuration: not mutants of the area at all.
SKIPPED = {"skipped"}
# Not judged yet: the run stopped before them. They count in the total, as not (yet) caught,
# so a partial run's score is a lower bound of the full run's, and a floor recorded from one
# can only be met or beaten by a full run of the same code.
NOT_JUDGED = {"check was interrupted by user", "not checked"}


@dataclass(frozen=True)
class AreaScore:
    caught: int
    survived: int
    not_judged: int = 0

    @property
    def total(self) -> int:
        return self.caught + self.survived + self.not_judged

    @property
    def score(self) -> float:
        """The lower bound: every mutant not judged yet counted as not caught."""
        return self.caught / self.total if self.total else 1.0

    @property
    def best(self) -> float:
        """The upper bound: every mutant not judged yet counted as caught."""
        return (self.caught + self.not_judged) / self.total if self.total else 1.0


def area_of(mutant: str) -> str | None:
    """The area a mutant (``crypto.keyring.x_decrypt__mutmut_3``) belongs to, if any."""
    for area, prefixes in AREAS.items():
        if mutant.startswith(prefixes):
            return area
    return None


def parse_results(lines: list[str]) -> dict[str, Counter[str]]:
    """Counts of each status per area from ``mutmut results --all true``' lines
    (``    name: status``)."""
    counts: dict[str, Counter[str]] = {area: Counter() for area in AREAS}
    for line in lines:
        name, separator, status = line.strip().rpartition(": ")
        area = area_of(name) if separator else None
        if area is not None:
            counts[area][status.strip()] += 1
    return counts


def scores(counts: dict[str, Counter[str]]) -> dict[str, AreaScore]:
    """Each area's score; a status that is neither caught, skipped nor not yet judged counts as
    survived (``survived``, ``no tests``, ``suspicious``: nothing stopped the mutant)."""
    result = {}
    for area, statuses in counts.items():
        caught = sum(n for status, n in statuses.items() if status in CAUGHT)
        not_judged = sum(n for status, n in statuses.items() if status in NOT_JUDGED)
        survived = sum(
            n for status, n in statuses.items() if status not in CAUGHT | NOT_JUDGED | SKIPPED
        )
        result[area] = AreaScore(caught=caught, survived=survived, not_judged=not_judged)
    return result


def main(argv: list[str]) -> int:
    record = "--record" in argv
    output = subprocess.run(  # noqa: S603 - mutmut of this virtual environment, fixed args
        [str(Path(sys.executable).with_name("mutmut")), "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = scores(parse_results(output.splitlines()))
    recorded = json.loads(SCORES.read_text()) if SCORES.exists() else {}
    failed = []
    # An area of which this run judged nothing (left out by name patterns) keeps what an
    # earlier run recorded; one judged in part is scored with the rest counted as not caught.
    ran = {area: score for area, score in found.items() if score.caught + score.survived}
    for area in found.keys() - ran.keys():
        print(f"{area:15} not run (its recorded figures stand)")
    undecided = []
    for area, score in ran.items():
        floor = float(recorded.get(area, {}).get("floor", 0.0))
        if score.score >= floor:
            mark = "ok"
        elif score.best < floor:
            # Below even if every mutant not judged yet were caught: the suite got weaker.
            mark = "BELOW THE FLOOR"
            failed.append(area)
        else:
            # Judged too little to tell: the floor lies between what it can still score.
            mark = f"undecided (at most {score.best:.2%}): not recorded"
            undecided.append(area)
        print(
            f"{area:15} {score.caught:5} caught {score.survived:4} survived "
            f"{score.not_judged:5} not judged  "
            f"score {score.score:7.2%}  floor {floor:7.2%}  {mark}"
        )
    if failed:
        print(f"below the floor: {', '.join(failed)} (see the survivors: mutmut results)")
        return 1
    if record:
        for area, score in ran.items():
            if area in undecided:
                continue
            recorded[area] = {
                "caught": score.caught,
                "survived": score.survived,
                "not_judged": score.not_judged,
                "score": round(score.score, 4),
                "floor": max(
                    float(recorded.get(area, {}).get("floor", 0.0)), round(score.score, 4)
                ),
            }
        SCORES.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        print(f"recorded in {SCORES}")
    return 0
