"""Two hosts sharing one database and one Redis, set up as the README's deployment section
says: an agency added (and later re-keyed) on host A, its tips processed by host B's worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import PG_URL, REDIS_URL, DatabaseFactory
from tests.partners import PartnerKeys, valid_tip
from tests.support import add_agency, free_port, run_tipline
from tipline.embedded_redis import EmbeddedRedis


@pytest.fixture
def partner() -> Iterator[PartnerKeys]:
    keys = PartnerKeys()
    yield keys
    keys.close()


@pytest.fixture
def gnupg_homes() -> Iterator[tuple[Path, Path]]:
    """Host A's and host B's GnuPG homes (short paths: gpg-agent's socket)."""
    parent = Path(tempfile.mkdtemp(prefix="tl-2h-", dir="/tmp"))
    homes = (parent / "a", parent / "b")
    yield homes
    for home in homes:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],  # noqa: S607
            check=False,
            capture_output=True,
        )
    shutil.rmtree(parent, ignore_errors=True)


def keys_in(gnupg_home: Path) -> str:
    return subprocess.run(
        ["gpg", "--homedir", str(gnupg_home), "--batch", "--with-colons", "--list-keys"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def wait_until_up(port: int, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):  # noqa: S310
                return
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.2)
    raise AssertionError(f"host A's web server did not answer within {timeout:g} s")


def send(port: int, token: str, body: bytes) -> str:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"http://127.0.0.1:{port}/api/v1/tips",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/pgp-encrypted"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        assert answer.status == 202
        return str(json.load(answer)["id"])


def status(port: int, token: str, tip_id: str) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"http://127.0.0.1:{port}/api/v1/tips/{tip_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        found: dict[str, str] = json.load(answer)
        return found


@pytest.mark.slow
def test_an_agency_added_on_host_a_has_its_tips_processed_by_host_b(
    tmp_path: Path,
    databases: DatabaseFactory,
    gnupg_homes: tuple[Path, Path],
    partner: PartnerKeys,
) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    gnupg_a, gnupg_b = gnupg_homes
    # The embedded default shares host A's SQLite file and Redis socket; the suite's servers
    # when it runs against PostgreSQL and a Redis server.
    database_url = databases.new_url() if PG_URL else f"sqlite:///{home_a / 'tipline.sqlite3'}"
    redis_url = REDIS_URL or EmbeddedRedis(home_a / "redis").url
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env_a = dict(
        base, TIPLINE_HOME=str(home_a), TIPLINE_GNUPG_HOME=str(gnupg_a),
        TIPLINE_DATABASE_URL=database_url,
    )  # fmt: skip
    if REDIS_URL:
        env_a["TIPLINE_REDIS_URL"] = REDIS_URL
    env_b = dict(
        base, TIPLINE_HOME=str(home_b), TIPLINE_GNUPG_HOME=str(gnupg_b),
        TIPLINE_DATABASE_URL=database_url, TIPLINE_REDIS_URL=redis_url,
    )  # fmt: skip

    init_a = run_tipline("init", env=env_a)
    assert init_a.returncode == 0, init_a.stderr
    # Host B as the README says: host A's secrets and GnuPG home copied over, before any
    # agency exists; `tipline init` there finds everything in place.
    home_b.mkdir(mode=0o700)
    shutil.copytree(home_a / "secrets", home_b / "secrets")
    shutil.copytree(gnupg_a, gnupg_b, ignore=shutil.ignore_patterns("S.*", "*.lock", ".#*"))
    init_b = run_tipline("init", env=env_b)
    assert init_b.returncode == 0, init_b.stderr
    assert init_b.stdout.strip() == f"{home_b}: already up to date"

    intake_key = run_tipline("intake-key", env=env_a).stdout.encode()
    partner.trust_recipient(intake_key)
    listing = partner.gpg("--with-colons", "--import-options", "show-only", "--import",
                          stdin=intake_key).decode()  # fmt: skip
    intake_fpr = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    first_key, next_key = partner.generate("agency"), partner.generate("agency-next")
    key_file = tmp_path / "agency.asc"
    key_file.write_bytes(partner.public_key("agency"))

    port = free_port()
    # Host A serves the web (no job worker: host B does the work). It also keeps the embedded
    # Redis that host B uses running.
    server = subprocess.Popen(
        [sys.executable, "-m", "tipline", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "0"],
        env=env_a,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(port)
        added = add_agency(env_a, key_file)
        agency_id, token = str(added["id"]), str(added["token"])
        assert first_key not in keys_in(gnupg_a) + keys_in(gnupg_b)

        tip_id = send(port, token, partner.seal(valid_tip(), recipient=intake_fpr, signer="agency"))
        worker = run_tipline("worker", "--burst", env=env_b)
        assert worker.returncode == 0, worker.stderr
        assert status(port, token, tip_id)["status"] == "in_triage"
        assert first_key in keys_in(gnupg_b)

        # Re-keyed on host A: host B has never seen the new key.
        key_file.write_bytes(partner.public_key("agency-next"))
        rotated = run_tipline("agency", "key", agency_id, "--key-file", str(key_file), env=env_a)
        assert rotated.returncode == 0, rotated.stderr
        assert next_key not in keys_in(gnupg_b)
        after = send(
            port, token, partner.seal(valid_tip(), recipient=intake_fpr, signer="agency-next")
        )
        worker = run_tipline("worker", "--burst", env=env_b)
        assert worker.returncode == 0, worker.stderr
        assert status(port, token, after)["status"] == "in_triage", status(port, token, after)
        assert next_key in keys_in(gnupg_b)
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
        if REDIS_URL:
            redis.Redis.from_url(REDIS_URL).flushdb()
    assert server.returncode == 0, output
    assert "Traceback" not in output
