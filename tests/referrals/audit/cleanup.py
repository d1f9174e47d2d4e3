"""Getting past the append-only triggers (the audit log, referrals' timelines), for tests only.

``append_only_lifted`` does what an attacker with the database owner's rights could do (and
what the tamper tests need); ``empty_append_only`` is for fixtures that empty every table
between tests. Nothing outside ``tests/`` may do either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, delete, inspect, text

from referrals.audit.models import AuditRecord
from referrals.casework.models import ReferralEvent

#: Tables whose triggers refuse UPDATE and DELETE, children first.
APPEND_ONLY = (ReferralEvent.__tablename__, AuditRecord.__tablename__)


@contextmanager
def append_only_lifted(connection: Connection, table: str = "audit_log") -> Iterator[None]:
    """Inside this block, on ``connection``, UPDATE and DELETE on ``table`` go through.

    The triggers come back as they were at the end of the block, in the same transaction
    (SQLite drops and re-creates them from their own stored SQL; PostgreSQL disables them).
    Use it inside ``engine.begin()``.
    """
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # pysqlite starts transactions only before DML: start one now so that dropping and
        # re-creating the triggers is atomic with the change in between.
        if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            connection.exec_driver_sql("BEGIN")
        triggers = connection.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table"
            ),
            {"table": table},
        ).all()
        for name, _sql in triggers:
            connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
        yield
        for _name, sql in triggers:
            connection.exec_driver_sql(sql)
    elif dialect == "postgresql":
        connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        yield
        connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    else:  # pragma: no cover
        raise NotImplementedError(dialect)


def empty_audit_log(engine: Engine) -> None:
    """Delete every audit record (a test database only), leaving the triggers in place."""
    if not inspect(engine).has_table(AuditRecord.__tablename__):
        return
    with engine.begin() as connection, append_only_lifted(connection):
        connection.execute(delete(AuditRecord))


def empty_append_only(engine: Engine) -> None:
    """Empty every append-only table (a test database only), leaving the triggers in place."""
    held = set(inspect(engine).get_table_names())
    for table in APPEND_ONLY:
        if table in held:
            with engine.begin() as connection, append_only_lifted(connection, table):
                connection.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608 - our names
