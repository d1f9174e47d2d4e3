from __future__ import annotations

import hashlib
import socket
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from referrals.database import head_revision, make_engine, schema_revision
from tests.support import run_tipline
from tipline.cli import cli


def snapshot(home: Path) -> dict[str, str]:
    """A digest of every file `init` writes, except the embedded Redis's own working files
    and GnuPG's lock and random-seed files."""
    skip = ("redis", "random_seed", ".lock", "S.gpg-agent", ".#lk")
    digests = {}
    for path in sorted(home.rglob("*")):
        relative = str(path.relative_to(home))
        if path.is_file() and not any(part in relative for part in skip):
            digests[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_init_creates_everything_and_a_second_run_changes_nothing(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    home, env = home_env
    first = run_tipline("init", env=env)
    assert first.returncode == 0, first.stderr
    assert "generated the intake key" in first.stdout
    assert "generated the web-form key" in first.stdout
    assert "generated the portal key" in first.stdout
    assert "created secret blind_index_key" in first.stdout
    assert "created secret web_form_key_passphrase" in first.stdout

    engine = make_engine(f"sqlite:///{home / 'tipline.sqlite3'}")
    assert schema_revision(engine) == head_revision()
    engine.dispose()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    gnupg_home = Path(env["TIPLINE_GNUPG_HOME"])
    assert stat.S_IMODE(gnupg_home.stat().st_mode) == 0o700
    for secret in (home / "secrets").iterdir():
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    before = snapshot(home) | snapshot(gnupg_home)

    second = run_tipline("init", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"{home}: already up to date"
    assert snapshot(home) | snapshot(gnupg_home) == before


def test_intake_key_prints_the_public_key_with_an_explicit_user_id(
    home_env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, env = home_env
    assert run_tipline("init", env=env).returncode == 0
    result = run_tipline("intake-key", env=env)
    assert result.returncode == 0, result.stderr
    armored = result.stdout
    assert armored.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert "PRIVATE" not in armored
    # What a partner sees on import: our user id, and nothing of the host it was made on.
    import gnupg  # type: ignore[import-untyped]

    (tmp_path / "partner").mkdir(mode=0o700)
    partner = gnupg.GPG(gnupghome=str(tmp_path / "partner"))
    [key] = partner.scan_keys_mem(armored)
    assert key["uids"] == ["Tipline intake <intake@tipline.invalid>"]
    assert all(socket.gethostname() not in uid for uid in key["uids"])
    assert key["algo"] == "22"  # EdDSA


def test_intake_key_before_init_says_what_to_do(home_env: tuple[Path, dict[str, str]]) -> None:
    home, env = home_env
    home.mkdir()
    (home / "tipline.sqlite3").touch()
    result = run_tipline("intake-key", env=env)
    assert result.returncode != 0
    assert "tipline init" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_refuses_to_mint_a_second_intake_key_when_the_keyring_lost_it(
    home_env: tuple[Path, dict[str, str]], gnupg_home: Path
) -> None:
    _, env = home_env
    assert run_tipline("init", env=env).returncode == 0
    # Another host's empty GnuPG home (short path: gpg-agent's socket must fit).
    env["TIPLINE_GNUPG_HOME"] = str(gnupg_home / "another")
    result = run_tipline("init", env=env)
    assert result.returncode == 1
    assert "lacks the secret intake key" in result.stderr


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, (*prefix, name)))
    return paths


@pytest.mark.parametrize("path", _command_paths(cli), ids=" ".join)
def test_every_command_explains_itself(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    summary = (command.help or "").split("\n\n")[0]
    assert summary and " ".join(summary.split()) in " ".join(result.output.split())


def test_the_command_lists_its_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "intake-key", "worker", "serve", "probe", "agency", "sweep"):
        assert command in result.output


def test_first_admin_prints_a_link_until_an_admin_has_enrolled(
    home_env: tuple[Path, dict[str, str]],
) -> None:
    _, env = home_env
    assert run_tipline("init", env=env).returncode == 0
    first = run_tipline("user", "first-admin", env=env)
    assert first.returncode == 0, first.stderr
    assert "admin@centre.example" in first.stdout
    assert "/enrol?token=" in first.stdout
    # Not enrolled yet: running again (scripts/run does) gives a fresh link, the old one dies.
    second = run_tipline("user", "first-admin", env=env)
    old_link = first.stdout.strip().splitlines()[-1]
    new_link = second.stdout.strip().splitlines()[-1]
    assert new_link != old_link and "/enrol?token=" in new_link
