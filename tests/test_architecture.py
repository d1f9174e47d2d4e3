"""The dependency direction tipline -> referrals -> crypto is checked by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert executable, "import-linter is not installed"
    return subprocess.run(
        [executable, "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_the_packages_depend_in_one_direction_only() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


def test_an_import_pointing_back_up_is_caught(tmp_path: Path) -> None:
    """The same contract on a copy of the layout where the domain imports the web app."""
    for package in ("tipline", "referrals", "crypto"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "tipline" / "app.py").write_text("import referrals.model\n")
    (tmp_path / "referrals" / "model.py").write_text("import tipline.app\n")
    config = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config[config.index("[tool.importlinter]") :])
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "referrals.model -> tipline.app" in result.stdout
