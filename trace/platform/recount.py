"""What every recount of kept figures shares (the scans' in :mod:`trace.scans.check`, the dashboard's in
:mod:`trace.reports.tally_check`): sorted streams of what the rows make and what a table holds, merged key
by key in bounded memory, the quarter hour of a timestamp computed by the database, and the first
difference named with its row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import ColumnElement, Connection, text, type_coerce
from sqlmodel.sql.sqltypes import UTCDateTime

PAGE = 2000  # rows fetched at a time
Progress = Callable[[int], None]  # rows compared so far
Check = Callable[[Connection, Progress], int]  # one table's recount: rows compared


class Differs(Exception):
    """The first figure that is not what the rows it is kept from make."""

    def __init__(self, table: str, row: dict[str, Any], problem: str) -> None:
        super().__init__(f"{table} {row}: {problem}")
        self.table, self.row, self.problem = table, row, problem


def byte_order(connection: Connection, column: Any) -> Any:
    """A string column in byte order on every database (PostgreSQL's default collation is not)."""
    return column.collate("C") if connection.dialect.name == "postgresql" else column


def stream(connection: Connection, query: Any) -> Iterator[Any]:
    """The query's rows, fetched :data:`PAGE` at a time."""
    return iter(connection.execute(query.execution_options(yield_per=PAGE)))


def merged(left: Iterator[Any], right: Iterator[Any], key: Callable[[Any], Any]) -> Iterator[tuple[Any, Any]]:
    """Two streams sorted by ``key`` → (left row or None, right row or None), key by key."""
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and key(a) < key(b)):
            yield a, None
            a = next(left, None)
        elif a is None or key(b) < key(a):
            yield None, b
            b = next(right, None)
        else:
            yield a, b
            a, b = next(left, None), next(right, None)


def quarter_sql(connection: Connection, column: str) -> ColumnElement[Any]:
    """The quarter hour (UTC) of an instant column (``table.column``), computed by the database as
    :func:`trace.platform.timeutil.quarter_hour` computes it."""
    if connection.dialect.name == "postgresql":
        expression = f"to_timestamp(floor(extract(epoch FROM {column}) / 900) * 900)"
    else:  # 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): keep the hour, round the minutes down to 15
        expression = (
            f"substr({column}, 1, 14) || printf('%02d', (CAST(substr({column}, 15, 2) AS INTEGER) / 15) * 15)"
            " || '\\:00.000000'"  # the backslash keeps text() from reading ":00" as a parameter
        )
    return type_coerce(text(expression), UTCDateTime())
