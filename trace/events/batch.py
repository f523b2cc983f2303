"""One capture call's working state, typed: what the items of a batch share while the call lasts.

:func:`trace.events.ledger.capture` opens a call (:func:`open_call`) around its items and closes it after its
final flush. The recorders, rules and effects reach it through :func:`current`; outside a capture call (a hold,
a right's grant, a correction on its own) there is none and they read and write the database directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlmodel import Session, SQLModel

from trace.events.models import ChainHead, Event, EventLot
from trace.lots import Lot

_KEY = "hytrace.capture_call"

RowKey = tuple[type[SQLModel], Any]  # (table model, primary key as session.get takes it)


@dataclass(eq=False)
class CaptureCall:
    """What a capture call keeps between its items (held strongly: the identity map holds rows weakly)."""

    existing_lots: set[tuple[int, str]]  # (product id, lot code) pairs that exist before the call
    lot_ids: Iterator[int] | None = None  # ids allocated ahead for the lots the call makes
    rows: dict[RowKey, SQLModel | None] = field(default_factory=dict)  # rows looked up or made (None: not found)
    heads: dict[int, ChainHead] = field(default_factory=dict)  # organisation id → its chain head, locked once
    new_lots: set[tuple[str, str]] = field(default_factory=set)  # (gtin, lot code) made in this call
    lot_inserts: list[dict[str, Any]] = field(default_factory=list)  # lots with ids ahead, not yet written
    new_lot_rows: list[Lot] = field(default_factory=list)  # expunged if the call fails
    settle: dict[int, Lot] = field(default_factory=dict)  # lots whose status is settled after the final flush
    sealed: list[tuple[Event, list[EventLot]]] = field(default_factory=list)  # the events it made, in order
    locked: set[int] = field(default_factory=set)  # lots whose row this call holds locked (or made)
    fresh: set[RowKey] = field(default_factory=set)  # rows read under their lot's lock (or made) in this call
    rights: set[tuple[int, int]] = field(default_factory=set)  # (organisation, designation) rights locked


def current(session: Session) -> CaptureCall | None:
    """The capture call open on this session, if any."""
    found: CaptureCall | None = session.info.get(_KEY)
    return found


@contextmanager
def open_call(session: Session, call: CaptureCall) -> Iterator[CaptureCall]:
    """Keep ``call`` on the session while the block runs.

    Lots made with ids allocated ahead are written in one executemany just before the session's next flush
    (an autoflush too), which would otherwise write rows that cite them first. The hook is this session's
    alone and lasts as long as the call.
    """

    def write_lots(flushing: Session, _context: object, _instances: object) -> None:
        write_allocated(flushing, call)

    session.info[_KEY] = call
    event.listen(session, "before_flush", write_lots)
    try:
        yield call
    finally:
        event.remove(session, "before_flush", write_lots)
        session.info.pop(_KEY, None)


_LOTS = Lot.__table__  # type: ignore[attr-defined]


def write_allocated(session: Session, call: CaptureCall) -> None:
    """Insert the lots made with ids allocated ahead (one executemany)."""
    if call.lot_inserts:
        rows, call.lot_inserts = call.lot_inserts, []
        session.connection().execute(_LOTS.insert(), rows)
