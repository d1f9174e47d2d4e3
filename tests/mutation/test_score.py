"""The mutation score: mutants grouped into areas, caught or not, floors that only go up."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest import mock

import pytest

from tests.mutation import score

RESULTS = """\
    crypto.keyring.x_decrypt__mutmut_1: killed
    crypto.keyring.x_decrypt__mutmut_2: survived
    crypto.packets.x_count__mutmut_1: timeout
    referrals.accounts.services.xǁAccountServiceǁcreate__mutmut_4: no tests
    referrals.audit.services.x_chain_hash__mutmut_1: killed
    referrals.intake.receiving.x_receive__mutmut_1: survived
    tipline.access.x__enforce__mutmut_9: skipped
    referrals.intake.processing.xǁTipProcessorǁjudge__mutmut_1: killed
    referrals.intake.processing.xǁTipProcessorǁjudge__mutmut_2: not checked
"""


def test_mutants_are_counted_in_their_area_and_others_ignored() -> None:
    found = score.scores(score.parse_results(RESULTS.splitlines()))
    assert (found["crypto"].caught, found["crypto"].survived) == (2, 1)
    assert (found["accounts"].caught, found["accounts"].survived) == (0, 1)  # no test: survived
    assert (found["audit log"].caught, found["audit log"].survived) == (1, 0)
    # Not checked yet: in the total, not caught, so a partial run's score is a lower bound.
    processing = found["tip processing"]
    assert (processing.caught, processing.survived, processing.not_judged) == (1, 0, 1)
    assert processing.score == pytest.approx(1 / 2)
    assert found["access"].total == 0  # skipped by configuration: not a mutant of the area
    assert processing.total == 2  # receiving is not in the area
    assert found["crypto"].score == pytest.approx(2 / 3)


def _run(tmp_path: Path, results: str, *argv: str) -> tuple[int, dict[str, dict[str, float]]]:
    scores_file = tmp_path / "scores.json"
    if not scores_file.exists():
        scores_file.write_text(json.dumps({"crypto": {"floor": 0.5}, "audit log": {"floor": 1.0}}))
    completed = mock.Mock(stdout=results)
    with (
        mock.patch.object(score, "SCORES", scores_file),
        mock.patch.object(score.subprocess, "run", return_value=completed) as run,
    ):
        status = score.main(list(argv))
    assert run.call_args.args[0][0] == str(Path(sys.executable).with_name("mutmut"))
    return status, json.loads(scores_file.read_text())


def test_a_score_below_its_floor_fails_and_records_nothing(tmp_path: Path) -> None:
    status, recorded = _run(tmp_path, "    crypto.a.x_f__mutmut_1: survived\n", "--record")
    assert status == 1
    assert recorded == {"crypto": {"floor": 0.5}, "audit log": {"floor": 1.0}}


def test_recording_raises_floors_never_lowers_them_and_keeps_areas_not_run(
    tmp_path: Path,
) -> None:
    status, recorded = _run(tmp_path, RESULTS, "--record")
    assert status == 0
    assert recorded["crypto"] == {
        "caught": 2,
        "survived": 1,
        "not_judged": 0,
        "score": 0.6667,
        "floor": 0.6667,
    }
    assert recorded["audit log"]["floor"] == 1.0
    assert recorded["tip processing"]["not_judged"] == 1
    assert recorded["accounts"]["floor"] == 0.0  # 0 of 1: recorded as it is, a floor of 0
    assert "access" not in recorded  # not run: nothing to record

    lower = "    crypto.a.x_f__mutmut_1: killed\n    crypto.a.x_f__mutmut_2: survived\n"
    status, recorded = _run(tmp_path, lower, "--record")
    assert status == 1  # 50 % is below the floor of 66.67 % the first run set
    assert recorded["crypto"]["floor"] == 0.6667


def test_an_area_the_run_judged_nothing_of_keeps_its_recorded_figures(tmp_path: Path) -> None:
    """A run of some areas only (mutmut's name patterns) lists the others' mutants as not
    checked: that must neither fail those areas nor overwrite what they had."""
    status, before = _run(tmp_path, RESULTS, "--record")
    assert status == 0
    others_not_checked = (
        "    crypto.keyring.x_decrypt__mutmut_1: not checked\n"
        "    referrals.audit.services.x_chain_hash__mutmut_1: killed\n"
    )
    status, after = _run(tmp_path, others_not_checked, "--record")
    assert status == 0
    assert after["crypto"] == before["crypto"]
    assert after["audit log"]["caught"] == 1


def test_an_area_judged_too_little_to_tell_is_neither_failed_nor_recorded(
    tmp_path: Path,
) -> None:
    """A partial run's lower bound under the floor, its upper bound over it: undecided. Only
    a score that stays under the floor even with every unjudged mutant caught fails."""
    partial = (
        "    referrals.audit.services.x_chain_hash__mutmut_1: killed\n"
        "    referrals.audit.services.x_chain_hash__mutmut_2: not checked\n"
        "    referrals.audit.services.x_chain_hash__mutmut_3: not checked\n"
        "    crypto.a.x_f__mutmut_1: killed\n"
    )
    status, recorded = _run(tmp_path, partial, "--record")
    assert status == 0
    assert recorded["audit log"] == {"floor": 1.0}  # 1/3 now, at most 3/3: not recorded
    assert recorded["crypto"]["caught"] == 1
    beaten = "    referrals.audit.services.x_chain_hash__mutmut_1: survived\n" + partial
    status, _ = _run(tmp_path, beaten, "--record")
    assert status == 1  # at most 3/4 against a floor of 100 %
