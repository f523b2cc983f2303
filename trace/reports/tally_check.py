"""The dashboard's lot and code figures (:mod:`trace.reports.tallies`) recomputed from the lots, their
events and the units, and compared row by row with what ``lot_bucket`` and ``code_bucket`` hold.

Run by verify-log after the lots and units themselves are checked against the events
(:mod:`trace.events.derived`): an insider who edits a bucket, or a lot's status or a code's status
behind the figures' back, is named, row and all. Both sides are sorted streams merged as they go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, text, type_coerce
from sqlmodel.sql.sqltypes import UTCDateTime

from trace.events.models import Event, EventType
from trace.lots import Lot, LotStatus
from trace.reports.tallies import CODE_BUCKETS, LOT_BUCKETS, MADE_BY
from trace.units import Unit, UnitLevel, UnitStatus

LOTS = Lot.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]
UNITS = Unit.__table__  # type: ignore[attr-defined]
PAGE = 2000
Progress = Callable[[int], None]  # rows compared so far


class Differs(Exception):
    """The first figure that is not what the lots, events and units make."""

    def __init__(self, table: str, row: dict[str, Any], problem: str) -> None:
        super().__init__(f"{table} {row}: {problem}")
        self.table, self.row, self.problem = table, row, problem


def quarter_sql(connection: Connection, column: str) -> ColumnElement[Any]:
    """The quarter hour (UTC) of an instant column (``table.column``), computed by the database."""
    if connection.dialect.name == "postgresql":
        expression = f"to_timestamp(floor(extract(epoch FROM {column}) / 900) * 900)"
    else:  # 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): keep the hour, round the minutes down to 15
        expression = (
            f"substr({column}, 1, 14) || printf('%02d', (CAST(substr({column}, 15, 2) AS INTEGER) / 15) * 15)"
            " || '\\:00.000000'"  # the backslash keeps text() from reading ":00" as a parameter
        )
    return type_coerce(text(expression), UTCDateTime())


def _bytes(connection: Connection, column: Any) -> Any:
    """A string column in byte order on every database (PostgreSQL's default collation is not)."""
    return column.collate("C") if connection.dialect.name == "postgresql" else column


def _stream(connection: Connection, query: Any) -> Iterator[Any]:
    return iter(connection.execute(query.execution_options(yield_per=PAGE)))


def _compare(
    table: str,
    made: Iterator[Any],
    held: Iterator[Any],
    key: Callable[[Any], tuple[Any, ...]],
    names: tuple[str, ...],
    value: str,
    progress: Progress,
) -> int:
    """Merge two streams sorted by ``key`` and compare ``value`` key by key; a held 0 is as good as no row."""
    a, b = next(made, None), next(held, None)
    count = 0
    while a is not None or b is not None:
        if b is None or (a is not None and key(a) < key(b)):
            row, want, have = a, int(getattr(a, value)), None
            a = next(made, None)
        elif a is None or key(b) < key(a):
            row, want, have = b, 0, int(getattr(b, value))
            b = next(held, None)
        else:
            row, want, have = a, int(getattr(a, value)), int(getattr(b, value))
            a, b = next(made, None), next(held, None)
        if want != (have or 0):
            shown = {n: v.isoformat() if isinstance(v, datetime) else v for n, v in zip(names, key(row), strict=True)}
            held_text = "no row" if have is None else f"{have}"
            raise Differs(table, shown, f"{value}: the rows make {want}; the table holds {held_text}")
        count += 1
        if count % PAGE == 0:
            progress(count)
    progress(count)
    return count


def _lots_made(connection: Connection) -> Any:
    """Each quarter hour's lots made by harvest and by transform, not cancelled, from the lots and their events."""
    rows = (
        select(quarter_sql(connection, "lot.created_at").label("starts_at"), EVENTS.c.type.label("kind"))
        .select_from(LOTS.join(EVENTS, EVENTS.c.id == LOTS.c.created_event_id))
        .where(
            LOTS.c.status != LotStatus.CANCELLED.value,
            EVENTS.c.type.in_([EventType(k).value for k in MADE_BY]),
        )
        .subquery()
    )
    kind = _bytes(connection, rows.c.kind)
    return (
        select(rows.c.starts_at, kind.label("kind"), func.count().label("lots"))
        .group_by(rows.c.starts_at, kind)
        .order_by(rows.c.starts_at, kind)
    )


def _codes_made(connection: Connection) -> Any:
    """Each lot's active package codes per quarter hour, from the units."""
    rows = (
        select(UNITS.c.lot_id, quarter_sql(connection, "unit.created_at").label("starts_at"))
        .where(UNITS.c.level == UnitLevel.UNIT.value, UNITS.c.status == UnitStatus.ACTIVE.value)
        .subquery()
    )
    return (
        select(rows.c.lot_id, rows.c.starts_at, func.count().label("codes"))
        .group_by(rows.c.lot_id, rows.c.starts_at)
        .order_by(rows.c.lot_id, rows.c.starts_at)
    )


def lots(connection: Connection, progress: Progress) -> int:
    """``lot_bucket`` against the lots made."""
    made = _lots_made(connection)
    held_kind = _bytes(connection, LOT_BUCKETS.c.kind)
    held = select(LOT_BUCKETS.c.starts_at, held_kind.label("kind"), LOT_BUCKETS.c.lots).order_by(
        LOT_BUCKETS.c.starts_at, held_kind
    )
    return _compare(
        "lot_bucket",
        _stream(connection, made),
        _stream(connection, held),
        lambda r: (r.starts_at, str(r.kind)),
        ("starts_at", "kind"),
        "lots",
        progress,
    )


def codes(connection: Connection, progress: Progress) -> int:
    """``code_bucket`` against the units."""
    made = _codes_made(connection)
    held = select(CODE_BUCKETS).order_by(CODE_BUCKETS.c.lot_id, CODE_BUCKETS.c.starts_at)
    return _compare(
        "code_bucket",
        _stream(connection, made),
        _stream(connection, held),
        lambda r: (int(r.lot_id), r.starts_at),
        ("lot_id", "starts_at"),
        "codes",
        progress,
    )


CHECKS: dict[str, Callable[[Connection, Progress], int]] = {"lot_bucket": lots, "code_bucket": codes}


def rebuild(*, connection: Connection) -> None:
    """Both tables made again from the lots, events and units: for rows written behind the domain's back
    (a bulk load, a test that backdates rows by hand), as migration 0020 backfilled them."""
    connection.execute(delete(LOT_BUCKETS))
    connection.execute(delete(CODE_BUCKETS))
    connection.execute(insert(LOT_BUCKETS).from_select(["starts_at", "kind", "lots"], _lots_made(connection)))
    connection.execute(insert(CODE_BUCKETS).from_select(["lot_id", "starts_at", "codes"], _codes_made(connection)))
