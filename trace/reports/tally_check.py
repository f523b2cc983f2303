"""The dashboard's lot and code figures (:mod:`trace.reports.tallies`) recomputed from the lots, their
events and the units, and compared row by row with what ``lot_bucket`` and ``code_bucket`` hold.

Run by verify-log after the lots and units themselves are checked against the events
(:mod:`trace.events.derived`): an insider who edits a bucket, or a lot's status or a code's status
behind the figures' back, is named, row and all. Both sides are sorted streams merged as they go
(:mod:`trace.platform.recount`, as the scans' figures are checked).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from trace.events.models import Event, EventType
from trace.lots import Lot, LotStatus
from trace.platform.recount import PAGE, Differs, Progress, byte_order, merged, quarter_sql, stream
from trace.reports.tallies import CODE_BUCKETS, LOT_BUCKETS, MADE_BY
from trace.units import Unit, UnitLevel, UnitStatus

LOTS = Lot.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]
UNITS = Unit.__table__  # type: ignore[attr-defined]


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
    count = 0
    for a, b in merged(made, held, key):
        want = int(getattr(a, value)) if a is not None else 0
        have = int(getattr(b, value)) if b is not None else None
        if want != (have or 0):
            row = a if a is not None else b
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
    kind = byte_order(connection, rows.c.kind)
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
    held_kind = byte_order(connection, LOT_BUCKETS.c.kind)
    held = select(LOT_BUCKETS.c.starts_at, held_kind.label("kind"), LOT_BUCKETS.c.lots).order_by(
        LOT_BUCKETS.c.starts_at, held_kind
    )
    return _compare(
        "lot_bucket",
        stream(connection, made),
        stream(connection, held),
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
        stream(connection, made),
        stream(connection, held),
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
