from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_tipline
from tipline.config import ConfigError, Face, Settings


def test_defaults_put_everything_in_the_home(tmp_path: Path) -> None:
    settings = Settings.from_environment({"TIPLINE_HOME": str(tmp_path / "h")})
    assert settings.home == tmp_path / "h"
    assert settings.database_url == f"sqlite:///{tmp_path / 'h' / 'tipline.sqlite3'}"
    assert settings.redis_url is None
    assert settings.uses_embedded_redis
    assert settings.gnupg_home == tmp_path / "h" / "gnupg"
    assert settings.web_face == Face.ALL


def test_the_web_face_is_read_whatever_its_case(tmp_path: Path) -> None:
    environ = {"TIPLINE_HOME": str(tmp_path), "TIPLINE_WEB_FACE": "Partner"}
    assert Settings.from_environment(environ).web_face == Face.PARTNER


def test_home_defaults_to_instance_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings.from_environment({}).home == tmp_path / "instance"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TIPLINE_DATABASE_URL", "not a url", "TIPLINE_DATABASE_URL: not a database URL"),
        ("TIPLINE_DATABASE_URL", "mysql://u@h/db", "unsupported database 'mysql'"),
        ("TIPLINE_DATABASE_URL", "sqlite://", "in-memory SQLite"),
        ("TIPLINE_REDIS_URL", "http://localhost:6379", "TIPLINE_REDIS_URL: expected"),
        ("TIPLINE_LOG_LEVEL", "chatty", "TIPLINE_LOG_LEVEL: expected one of"),
        ("TIPLINE_WEB_FACE", "internet", "TIPLINE_WEB_FACE: expected partner, staff or all"),
        ("TIPLINE_ENROLMENT_APPROVAL", "maybe", "TIPLINE_ENROLMENT_APPROVAL: expected auto"),
        ("TIPLINE_MAX_ATTACHMENTS_PER_TIP", "many", "expected a number of files"),
        ("TIPLINE_MAX_ATTACHMENT_BYTES_PER_TIP", "0", "must be positive"),
    ],
)
def test_a_bad_value_names_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")) as caught:
        Settings.from_environment({"TIPLINE_HOME": str(tmp_path), variable: value})
    assert "\n" not in str(caught.value)


def test_a_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        Settings.from_environment({"TIPLINE_HOME": str(tmp_path / "file")})


def test_the_command_prints_one_line_and_exits_2_on_a_bad_setting(tmp_path: Path) -> None:
    secret_url = "postgresql+psycopg://user:hunter2@db.example/tipline"
    result = run_tipline(
        "init",
        env={
            "TIPLINE_HOME": str(tmp_path),
            "TIPLINE_DATABASE_URL": secret_url.replace("postgresql+psycopg", "oracle"),
            "PATH": "/usr/bin:/bin",
        },
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "TIPLINE_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr  # a URL's password is never echoed


def test_trusted_proxies_is_a_small_count_of_hops(tmp_path: Path) -> None:
    env = {"TIPLINE_HOME": str(tmp_path)}
    assert Settings.from_environment(env).trusted_proxies == 0
    assert Settings.from_environment(env | {"TIPLINE_TRUSTED_PROXIES": "1"}).trusted_proxies == 1
    for value in ("yes", "-1", "²", "50"):
        with pytest.raises(ConfigError, match="TIPLINE_TRUSTED_PROXIES: expected"):
            Settings.from_environment(env | {"TIPLINE_TRUSTED_PROXIES": value})


def test_the_attachment_quota_per_tip_is_read_with_its_defaults(tmp_path: Path) -> None:
    defaults = Settings.from_environment({"TIPLINE_HOME": str(tmp_path)})
    assert (defaults.max_attachments_per_tip, defaults.max_attachment_bytes_per_tip) == (
        50,
        2 * 1024**3,
    )
    set_ = Settings.from_environment(
        {
            "TIPLINE_HOME": str(tmp_path),
            "TIPLINE_MAX_ATTACHMENTS_PER_TIP": "7",
            "TIPLINE_MAX_ATTACHMENT_BYTES_PER_TIP": "5000000000",
        }
    )
    assert (set_.max_attachments_per_tip, set_.max_attachment_bytes_per_tip) == (7, 5_000_000_000)
