"""The database: declarative base, column types, engines and schema migrations.

The same Alembic migrations build the schema on SQLite (the embedded default) and PostgreSQL
(production); ``upgrade_schema`` is how every caller brings a database to the current version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CursorResult, DateTime, Engine, MetaData, Result, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS = Path(__file__).parent / "migrations"

# Stable constraint names, so migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no time zone; without this, the same column would come back naive there and
    aware on PostgreSQL, and comparisons would break on one of them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``, tuned for the database behind it."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        # Several processes (web, workers) write the same file: wait for the lock rather
        # than fail, and let readers run beside the writer.
        options.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No ping before every checkout: it was 7% of a request's time under load. A connection
    # that died with a restart fails one request (answered 503, "retry") and the pool is
    # renewed; connections are also recycled before servers or proxies drop idle ones.
    options.setdefault("pool_recycle", 1800)
    if backend == "postgresql":
        # No server-side prepared statements: a plan fixed while a table was empty (a fresh
        # install) kept walking every tip of an agency instead of using the unique index
        # (2.96 ms against 0.016 ms at 10,000 tips, measured in bench/README.md).
        connect_args = dict(options.pop("connect_args", {}))
        connect_args.setdefault("prepare_threshold", None)
        options["connect_args"] = connect_args
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a receipt means committed, power cut or not
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that do not expire objects on commit (jobs enqueue ids after committing)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py picks the engine up from here rather than from a URL that may hold a password.
    config.attributes["engine"] = engine
    return config


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (by default the newest)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade_schema(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision`` (``base`` for empty)."""
    command.downgrade(alembic_config(engine), revision)


def schema_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def rows_matched(result: Result[Any]) -> int:
    """Rows a guarded UPDATE matched: 0 means another run got there first (typed access:
    SQLAlchemy only declares ``rowcount`` on CursorResult)."""
    return int(cast(CursorResult[Any], result).rowcount)
