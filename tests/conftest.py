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
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from referrals.database import Base, make_engine, upgrade_schema
from tipline import create_app
from tipline.config import Settings
from tipline.embedded_redis import EmbeddedRedis
from tipline.instance import (
    BLIND_INDEX_KEY,
    FLASK_SECRET_KEY,
    ensure_intake_passphrase,
    ensure_secret,
)
from tipline.runtime import Runtime

PG_URL = os.environ.get("TIPLINE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TIPLINE_TEST_REDIS_URL")


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
        with engine.begin() as connection:
            for name in self.schemas:
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


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, gnupg_home: Path) -> Settings:
    home = tmp_path / "home"
    value = Settings(
        home=home,
        database_url=database_url,
        redis_url=redis_url,
        gnupg_home=gnupg_home,
    )
    for name in (FLASK_SECRET_KEY, BLIND_INDEX_KEY):
        ensure_secret(value, name)
    ensure_intake_passphrase(value)
    return value


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.build(settings)
    yield rt
    _empty_tables(rt)
    rt.redis.flushdb()
    rt.close()


def _empty_tables(rt: Runtime) -> None:
    with rt.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
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
