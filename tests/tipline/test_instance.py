"""Secret files that cannot be trusted are refused, in one line that names the file and what
to do: missing, truncated, readable by others, or not a file at all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import run_tipline, tipline_env
from tipline import create_app
from tipline.config import ConfigError, Settings
from tipline.instance import (
    BLIND_INDEX_KEY,
    FLASK_SECRET_KEY,
    INTAKE_KEY_PASSPHRASE,
    SECRET_SIZES,
    read_intake_passphrase,
    read_secret,
)


def _missing(path: Path) -> None:
    path.unlink()


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:5])


def _readable_by_others(path: Path) -> None:
    path.chmod(0o644)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir(mode=0o700)


def _not_text(path: Path) -> None:
    path.write_bytes(b"\xff\xfe" * 20)


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (_missing, "is missing: run `tipline init`"),
    "truncated": (_truncated, "is truncated: restore it from a backup"),
    "readable by others": (_readable_by_others, "is readable by others: chmod 600 it"),
    "a folder": (_a_folder, "cannot be read (Is a directory): restore it"),
}
PASSPHRASE_BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (_missing, "is missing: run `tipline init`"),
    "empty": (_empty, "is empty"),
    "readable by others": (_readable_by_others, "must be readable by its owner only (chmod 600)"),
    "a folder": (_a_folder, "cannot be read (Is a directory): restore it"),
    "not text": (_not_text, "is not a passphrase this service made: restore it"),
}


@pytest.mark.parametrize("name", sorted(SECRET_SIZES))
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_secret_that_cannot_be_trusted_is_refused_in_one_line(
    settings: Settings, name: str, breakage: str
) -> None:
    path = settings.secrets_dir / name
    breaking, expected = BREAKAGES[breakage]
    breaking(path)
    with pytest.raises(ConfigError) as refused:
        read_secret(settings, name)
    assert str(refused.value).startswith(f"{path} {expected}")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("breakage", sorted(PASSPHRASE_BREAKAGES))
def test_an_intake_passphrase_that_cannot_be_trusted_is_refused_in_one_line(
    settings: Settings, breakage: str
) -> None:
    path = settings.secrets_dir / INTAKE_KEY_PASSPHRASE
    breaking, expected = PASSPHRASE_BREAKAGES[breakage]
    breaking(path)
    with pytest.raises(ConfigError) as refused:
        read_intake_passphrase(settings)
    assert str(refused.value).startswith(str(path)) and expected in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_web_app_does_not_start_on_a_secret_readable_by_others(settings: Settings) -> None:
    _readable_by_others(settings.secrets_dir / FLASK_SECRET_KEY)
    with pytest.raises(ConfigError, match="readable by others"):
        create_app(settings)


def test_the_command_says_which_secret_is_wrong_in_one_line(settings: Settings) -> None:
    path = settings.secrets_dir / BLIND_INDEX_KEY
    _a_folder(path)
    result = run_tipline("intake-key", env=tipline_env(settings))
    assert result.returncode == 2
    assert result.stderr == f"tipline: {path} cannot be read (Is a directory): restore it\n"
    assert result.stdout == ""
