"""Alembic environment: runs against the engine handed over in ``config.attributes``.

``alembic`` on the command line (see alembic.ini) builds one from TIPLINE_DATABASE_URL instead.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Engine

import referrals.models  # noqa: F401 - registers every table on Base.metadata
from referrals.database import Base, make_engine

config = context.config


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    url = os.environ.get("TIPLINE_DATABASE_URL")
    if not url:
        raise SystemExit("set TIPLINE_DATABASE_URL to run alembic directly")
    return make_engine(url)


def run_migrations() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
            render_as_batch=engine.dialect.name == "sqlite",
            compare_type=True,
            # Each revision commits on its own: a revision that rebuilds a table on SQLite
            # turns foreign keys off first, which SQLite ignores inside an open transaction
            # (the one the previous revision's bookkeeping would otherwise have left open).
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
run_migrations()
