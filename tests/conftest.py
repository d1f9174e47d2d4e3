"""Fixtures shared by every test: a database, a Redis and an instance home.

Tests run against the embedded default (SQLite and the embedded Redis) unless
TIPLINE_TEST_DATABASE_URL / TIPLINE_TEST_REDIS_URL name a PostgreSQL database and a Redis
server, in which case they run against those. With TIPLINE_TEST_REQUIRE_SERVICES=1 a missing
variable is an error rather than a quiet fall-back to the embedded default.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from crypto import Keyring
from referrals.accounts.passwords import PasswordHashing
from referrals.database import Base, make_engine, upgrade_schema
from referrals.intake.agencies import AgencyService
from referrals.intake.models import IntakeKey, WebFormKey
from referrals.intake.services import (
    INTAKE_KEY_EMAIL,
    INTAKE_KEY_NAME,
    WEB_FORM_KEY_EMAIL,
    WEB_FORM_KEY_NAME,
)
from referrals.messages.models import PortalKey
from referrals.messages.portal_key import PORTAL_KEY_EMAIL, PORTAL_KEY_NAME
from tests.partners import PartnerKeys
from tests.referrals.audit.cleanup import APPEND_ONLY, empty_append_only
from tipline import create_app
from tipline.config import Settings
from tipline.embedded_redis import EmbeddedRedis
from tipline.instance import (
    INTAKE_KEY_PASSPHRASE,
    SECRET_SIZES,
    WEB_FORM_KEY_PASSPHRASE,
    ensure_secret,
)
from tipline.runtime import Runtime

PG_URL = os.environ.get("TIPLINE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TIPLINE_TEST_REDIS_URL")


# Fixtures shared across folders: tips made directly in the database (no gpg), teams.
pytest_plugins = ["tests.referrals.triage.fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("TIPLINE_TEST_REQUIRE_SERVICES") == "1" and not (PG_URL and REDIS_URL):
        raise pytest.UsageError(
            "TIPLINE_TEST_REQUIRE_SERVICES=1 needs TIPLINE_TEST_DATABASE_URL and "
            "TIPLINE_TEST_REDIS_URL"
        )


def pytest_report_header() -> list[str]:
    return [
        f"tipline database: {'PostgreSQL' if PG_URL else 'SQLite (embedded default)'}",
        f"tipline redis: {'server' if REDIS_URL else 'embedded'}",
    ]


class DatabaseFactory:
    """Makes empty databases: SQLite files, or schemas of their own in the PostgreSQL test
    database (dropped at the end), so tests never touch anything they did not create."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.schemas: list[str] = []

    def new_url(self) -> str:
        name = f"tipline_test_{os.getpid()}_{secrets.token_hex(4)}"
        if not PG_URL:
            return f"sqlite:///{self.folder / name}.sqlite3"
        engine = make_engine(PG_URL)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        engine.dispose()
        self.schemas.append(name)
        separator = "&" if "?" in PG_URL else "?"
        return f"{PG_URL}{separator}options={quote(f'-csearch_path={name}')}"

    def drop_all(self) -> None:
        if not self.schemas:
            return
        engine = make_engine(PG_URL or "")
        # One transaction per schema: dropping them all in one takes a lock per table of every
        # schema at once, past PostgreSQL's lock table ("out of shared memory") once the suite
        # has made a few dozen.
        for name in self.schemas:
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def database_url(databases: DatabaseFactory) -> str:
    """One migrated database for the session; tables are emptied after each test."""
    url = databases.new_url()
    engine = make_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if REDIS_URL:
        yield REDIS_URL
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.start(attach=False)
    server.stop()


@pytest.fixture
def gnupg_home() -> Iterator[Path]:
    """A GnuPG home on a short path (gpg-agent's socket path is limited), its agent stopped
    and the folder removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="tl-gpg-", dir="/tmp"))
    yield home
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],  # noqa: S607
        check=False,
        capture_output=True,
    )
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def home_env(tmp_path: Path, gnupg_home: Path) -> tuple[Path, dict[str, str]]:
    """A fresh, uninitialised home and the environment a `tipline` process needs to use it
    (with the embedded default: no service URLs)."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(TIPLINE_HOME=str(home), TIPLINE_GNUPG_HOME=str(gnupg_home))
    return home, env


@dataclass(frozen=True)
class IntakeKeyring:
    """The centre's keyring for the whole session (key generation is slow): the intake key
    pair, and the web-form and portal key pairs (under the partner face's passphrase)."""

    home: Path
    passphrase: str
    fingerprint: str
    public_key: str
    web_form_passphrase: str
    web_form_fingerprint: str
    web_form_public_key: str
    portal_fingerprint: str
    portal_public_key: str


@pytest.fixture(scope="session")
def intake_keyring() -> Iterator[IntakeKeyring]:
    home = Path(tempfile.mkdtemp(prefix="tl-intake-", dir="/tmp"))
    passphrase = "test-" + secrets.token_hex(16)
    web_form_passphrase = "test-" + secrets.token_hex(16)
    with Keyring(home, passphrase=passphrase) as keyring:
        fingerprint = keyring.generate_intake_key(name=INTAKE_KEY_NAME, email=INTAKE_KEY_EMAIL)
        public_key = keyring.export_public_key(fingerprint)
    with Keyring(home, passphrase=web_form_passphrase) as keyring:
        web_form = keyring.generate_signing_key(name=WEB_FORM_KEY_NAME, email=WEB_FORM_KEY_EMAIL)
        web_form_public_key = keyring.export_public_key(web_form)
        portal = keyring.generate_encryption_key(name=PORTAL_KEY_NAME, email=PORTAL_KEY_EMAIL)
        portal_public_key = keyring.export_public_key(portal)
    yield IntakeKeyring(
        home,
        passphrase,
        fingerprint,
        public_key,
        web_form_passphrase,
        web_form,
        web_form_public_key,
        portal,
        portal_public_key,
    )
    Keyring(home).close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def partners(intake_keyring: IntakeKeyring) -> Iterator[PartnerKeys]:
    """Key pairs of two registered-to-be agencies and of a stranger, with our intake key."""
    keys = PartnerKeys()
    for name in ("agency-a", "agency-b", "stranger"):
        keys.generate(name)
    keys.trust_recipient(intake_keyring.public_key)
    yield keys
    keys.close()


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, redis_url: str, intake_keyring: IntakeKeyring
) -> Settings:
    home = tmp_path / "home"
    value = Settings(
        home=home,
        database_url=database_url,
        redis_url=redis_url,
        gnupg_home=intake_keyring.home,
        api_rate_limit="1000/second",
    )
    for name in SECRET_SIZES:
        ensure_secret(value, name)
    for name, passphrase in (
        (INTAKE_KEY_PASSPHRASE, intake_keyring.passphrase),
        (WEB_FORM_KEY_PASSPHRASE, intake_keyring.web_form_passphrase),
    ):
        passphrase_file = value.secrets_dir / name
        passphrase_file.write_text(passphrase + "\n")
        passphrase_file.chmod(0o600)
    return value


@pytest.fixture
def runtime(settings: Settings, intake_keyring: IntakeKeyring) -> Iterator[Runtime]:
    # Cheap argon2 costs: the suite hashes many passwords; production keeps the defaults.
    rt = Runtime.build(
        settings, password_hashing=PasswordHashing(PasswordHasher(time_cost=1, memory_cost=1024))
    )
    with rt.session_factory.begin() as session:
        session.add(IntakeKey(fingerprint=intake_keyring.fingerprint, created_at=rt.clock.now()))
        session.add(
            WebFormKey(
                fingerprint=intake_keyring.web_form_fingerprint,
                public_key=intake_keyring.web_form_public_key,
                created_at=rt.clock.now(),
            )
        )
        session.add(
            PortalKey(
                fingerprint=intake_keyring.portal_fingerprint,
                public_key=intake_keyring.portal_public_key,
                created_at=rt.clock.now(),
            )
        )
    yield rt
    _empty_tables(rt)
    rt.redis.flushdb()
    rt.close()


def _empty_tables(rt: Runtime) -> None:
    empty_append_only(rt.engine)  # lifts the append-only triggers for this one transaction
    with rt.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in APPEND_ONLY:
                connection.execute(table.delete())


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    application = create_app(runtime=runtime)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def redis_client(runtime: Runtime) -> redis.Redis:
    return runtime.redis


@dataclass(frozen=True)
class RegisteredAgency:
    id: int
    name: str
    token: str
    key_name: str  # the partner key it signs with

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def agencies(runtime: Runtime, partners: PartnerKeys) -> dict[str, RegisteredAgency]:
    """Agencies A (GB) and B (US), registered with their keys; each has a live token."""
    registered = {}
    with runtime.session_factory() as session:
        service = AgencyService(
            session, keyring=runtime.keyring, clock=runtime.clock, audit=runtime.audit(session)
        )
        for key_name, name, country in (
            ("agency-a", "Agency A", "GB"),
            ("agency-b", "Agency B", "US"),
        ):
            agency, token = service.add(
                name=name, country=country, key_data=partners.public_key(key_name), actor="test"
            )
            registered[key_name] = RegisteredAgency(agency.id, name, token, key_name)
    return registered
