"""The public pages' hot reads (trace.platform.prepared) on a connection without a transaction
(trace.platform.db.read_connection): the values SQLAlchemy's column types would give, each statement a
snapshot of its own, nothing left open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, bindparam, insert, select

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
        assert not conn.in_transaction() or migrated.dialect.name == "postgresql"
    # the connection went back to the pool with no transaction open: a writer is not held up by it
    with migrated.begin() as conn:
        conn.execute(TALLY.update().where(TALLY.c.code_id == 7).values(scans=4))
    with read_connection(migrated) as conn:
        assert _TALLY_OF.first(conn, {"code_id": 7}) == (4, at, at)


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
