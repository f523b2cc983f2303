"""A SELECT compiled once per dialect and run straight on the connection's DBAPI cursor.

For the few reads made on every public page not cached yet (issue 17): SQLAlchemy's per-execution work
(cache key, execution context, result wrapping, events) cost 115 µs of a 130 µs unit look-up on SQLite,
the query itself 18 µs. The statement is still built with SQLAlchemy, its SQL and bound values compiled
by SQLAlchemy for the connection's dialect, and its columns' result processors applied: only the
per-execution bookkeeping is skipped. Reads only: nothing here writes, so nothing is missed by the
engine's write tracking (:mod:`trace.platform.changes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True)
class _Compiled:
    sql: str
    defaults: dict[str, Any]  # the statement's own bound values (literals written in it)
    order: Sequence[str] | None  # positional parameter names (qmark, format), None for named styles
    processors: list[Callable[[Any], Any] | None]


class PreparedRead:
    """``statement`` (a SELECT with ``bindparam``\\ s) to run many times with different values."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, connection: Connection) -> _Compiled:
        dialect = connection.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            if compiled._bind_processors:  # type: ignore[attr-defined]
                raise TypeError("PreparedRead takes parameters the driver binds as they are (str, int)")
            processors: list[Callable[[Any], Any] | None] = [
                column.type._cached_result_processor(dialect, None)  # type: ignore[misc]
                for column in self.statement.selected_columns
            ]
            positional = compiled.positiontup if dialect.positional else None
            found = _Compiled(str(compiled), dict(compiled.params), positional, processors)
            self._compiled[dialect.name] = found
        return found

    def _execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        compiled = self._for(connection)
        values = {**compiled.defaults, **params}
        bound = tuple(values[name] for name in compiled.order) if compiled.order is not None else values
        dialect = connection.dialect
        raw = connection.connection.dbapi_connection
        cursor = raw.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, bound)
        except dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy's own execution would: its exception (the API answers 503 for a database away,
            # not a 500), and a connection the database dropped is invalidated, so the caller may retry.
            cursor.close()
            dropped = dialect.is_disconnect(error, raw, cursor)
            if dropped:
                connection.invalidate(error)
            raise DBAPIError.instance(
                compiled.sql, bound, error, dialect.loaded_dbapi.Error, connection_invalidated=dropped, dialect=dialect
            ) from error
        return cursor, compiled.processors

    def first(self, connection: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row (with its columns' result processing), or None."""
        cursor, processors = self._execute(connection, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else _processed(row, processors)

    def all(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row (with its columns' result processing)."""
        cursor, processors = self._execute(connection, params)
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [_processed(row, processors) for row in rows]


def _processed(row: Sequence[Any], processors: list[Callable[[Any], Any] | None]) -> tuple[Any, ...]:
    return tuple(
        value if process is None or value is None else process(value)
        for value, process in zip(row, processors, strict=True)
    )
