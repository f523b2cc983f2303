"""The public pages' hot reads (trace.platform.prepared) on a connection without a transaction
(trace.platform.db.read_connection): the values SQLAlchemy's column types would give, each statement a
snapshot of its own, nothing left open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, bindparam, column, insert, select, table
from sqlalchemy.exc import DBAPIError

from tests.conftest import migrate
from trace.platform.db import make_engine, read_connection
from trace.platform.prepared import PreparedRead
from trace.scans.tallies import TALLY

_TALLY_OF = PreparedRead(
    select(TALLY.c.scans, TALLY.c.first_at, TALLY.c.last_at).where(
        TALLY.c.scope == "unit", TALLY.c.code_id == bindparam("code_id")
    )
)
_ALL_UNITS = PreparedRead(
    select(TALLY.c.code_id, TALLY.c.scans).where(TALLY.c.scope == bindparam("scope")).order_by(TALLY.c.code_id)
)


@pytest.fixture
def migrated(fresh: tuple[str, Engine]) -> Engine:
    url, _ = fresh
    migrate(url)
    return make_engine(url, pool_size=2, pre_ping=False)


def _tally(engine: Engine, code_id: int, scans: int, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(TALLY).values(
                scope="unit", code_id=code_id, scans=scans, first_at=at, last_at=at, networks=1, places=0
            )
        )


def test_a_prepared_read_gives_what_the_orm_gives_and_sees_each_commit_at_once(migrated: Engine) -> None:
    at = datetime(2026, 12, 4, 16, 59, 59, 123456, tzinfo=UTC)
    _tally(migrated, 7, 3, at)
    with read_connection(migrated) as conn:
        # the same values, types and all, as a SQLAlchemy read of the same statement
        got = _TALLY_OF.first(conn, {"code_id": 7})
        with migrated.connect() as other:
            expected = other.execute(_TALLY_OF.statement, {"code_id": 7}).one()
        assert got == tuple(expected) and got is not None and got[1] == at and got[1].tzinfo is not None
        assert _TALLY_OF.first(conn, {"code_id": 8}) is None
        # a commit made meanwhile on another connection is seen by the next statement: no snapshot kept open
        _tally(migrated, 8, 1, at + timedelta(days=1))
        assert _TALLY_OF.first(conn, {"code_id": 8}) == (1, at + timedelta(days=1), at + timedelta(days=1))
        assert _ALL_UNITS.all(conn, {"scope": "unit"}) == [(7, 3), (8, 1)]
        # and the reads left no transaction open on the driver's connection
        assert not _in_transaction(conn)
    # the connection went back to the pool with no transaction open: a writer is not held up by it
    with migrated.begin() as conn:
        conn.execute(TALLY.update().where(TALLY.c.code_id == 7).values(scans=4))
    with read_connection(migrated) as conn:
        assert _TALLY_OF.first(conn, {"code_id": 7}) == (4, at, at)


def _in_transaction(conn: Connection) -> bool:
    raw = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        import psycopg

        return raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE  # type: ignore[union-attr]
    return bool(raw.in_transaction)  # type: ignore[union-attr]


def test_a_prepared_read_that_fails_raises_sqlalchemys_error_as_any_read_would(migrated: Engine) -> None:
    # given a read of a table that is not there (as when a migration has not run)
    missing = PreparedRead(select(column("x")).select_from(table("no_such_table")).where(column("x") == bindparam("x")))
    with read_connection(migrated) as conn:
        # then the error is SQLAlchemy's (the API's handlers answer it: 503 or 500 with a reason), the driver's kept
        with pytest.raises(DBAPIError) as raised:
            missing.first(conn, {"x": 1})
        assert isinstance(raised.value.orig, migrated.dialect.loaded_dbapi.Error)
        assert not raised.value.connection_invalidated


def test_a_connection_the_database_dropped_is_invalidated_and_the_next_one_reads(postgres_engine: Engine) -> None:
    url = postgres_engine.url
    engine = make_engine(url.render_as_string(hide_password=False), pool_size=1, pre_ping=False)
    try:
        with read_connection(engine) as conn:
            assert _TALLY_OF.first(conn, {"code_id": 1}) is None
            pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        # when the server drops the pooled connection (a restart, a failover)
        with postgres_engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid}, 5000)")
        with read_connection(engine) as conn:
            with pytest.raises(DBAPIError) as raised:
                _TALLY_OF.first(conn, {"code_id": 1})
        # then the error says the connection is gone, and the pool hands out a new one that reads
        assert raised.value.connection_invalidated
        with read_connection(engine) as conn:
            assert _TALLY_OF.first(conn, {"code_id": 1}) is None
    finally:
        engine.dispose()


def test_a_prepared_read_refuses_parameters_that_need_converting() -> None:
    from sqlalchemy.dialects import sqlite

    from trace.scans.models import Scan

    statement = PreparedRead(
        select(TALLY.c.scans).where(TALLY.c.first_at < bindparam("at", type_=Scan.scanned_at.type))
    )  # type: ignore[attr-defined]

    class Fake:
        dialect = sqlite.dialect()

    with pytest.raises(TypeError, match="binds as they are"):
        statement._for(Fake())  # type: ignore[arg-type]
