"""The dashboard's lot and label figures kept as lots and codes are written, so that reading a year of them
costs the same at 1,000 and at 1,000,000 lots and codes.

- ``lot_bucket``: lots made per quarter hour (UTC) of their ``created_at`` and the kind of event that made
  them (harvest or transform), cancelled lots left out. Written by :func:`trace.events.effects.new_lot`
  (outside a capture call) or by :func:`trace.events.ledger.capture` after its final flush (the lots of the
  call at once), and taken back by a correction that cancels the lots (:mod:`trace.events.corrections`).
- ``code_bucket``: active package codes (level ``unit``) per lot and quarter hour of their ``created_at``.
  Written by :func:`trace.units.register_units`; a decommission and a correction (of a commission or a
  decommission) move the codes whose status they change. A lot's claims are joined at read time, so a
  claim added later needs nothing here.

A local day, month or year starts at a local midnight, a whole number of quarter hours in UTC in every
zone, so the dashboard's months are sums of whole buckets (as the scans' ``scan_bucket``). Each write adds
to what is there (``n = n + excluded.n``): concurrent writers (two cooperatives harvesting in one quarter
hour) never lose a count, and rows are upserted in key order so no two writers wait on each other in a
circle. A row that falls to 0 is kept (deleting it would race with a writer adding to it); readers and
the check treat it as absent. :mod:`trace.reports.tally_check` recomputes both from the lots, events and
units (verify-log runs it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Index
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from trace.platform.timeutil import quarter_hour

MADE_BY = ("harvest", "transform")  # the events that make lots (trace.events.derived checks no other does)


class LotBucket(SQLModel, table=True):
    """Lots made (not cancelled) per quarter hour (UTC) of their creation, by the kind of event that made them."""

    __tablename__ = "lot_bucket"

    starts_at: datetime = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=10)  # harvest | transform
    lots: int = Field(sa_column=Column(BigInteger, nullable=False))


class CodeBucket(SQLModel, table=True):
    """Active package codes per lot and quarter hour (UTC) of their registration."""

    __tablename__ = "code_bucket"
    __table_args__ = (Index("ix_code_bucket_starts_at", "starts_at", "lot_id"),)

    lot_id: int = Field(foreign_key="lot.id", primary_key=True)
    starts_at: datetime = Field(primary_key=True)
    codes: int = Field(sa_column=Column(BigInteger, nullable=False))


LOT_BUCKETS = LotBucket.__table__  # type: ignore[attr-defined]
CODE_BUCKETS = CodeBucket.__table__  # type: ignore[attr-defined]


def _add(connection: Connection, table: Any, keys: tuple[str, str], value: str, counts: dict[Any, int]) -> None:
    """Add ``counts`` (key → n, nonzero) to ``table``'s ``value`` column, upserted in key order."""
    rows = [{**dict(zip(keys, key, strict=True)), value: n} for key, n in sorted(counts.items()) if n]
    if not rows:
        return
    insert = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(table)
    statement = insert.on_conflict_do_update(
        index_elements=[table.c[name] for name in keys],
        set_={value: table.c[value] + insert.excluded[value]},
    )
    connection.execute(statement, rows)


def _kind(value: Any) -> str:
    return str(getattr(value, "value", value))


def add_lots(*, connection: Connection, made: Iterable[tuple[datetime, Any]], sign: int = 1) -> None:
    """Count lots made (``sign`` -1: cancelled) at these (created_at, kind of the making event) pairs."""
    counts: dict[tuple[datetime, str], int] = {}
    for at, kind in made:
        key = (quarter_hour(at), _kind(kind))
        if key[1] not in MADE_BY:
            raise ValueError(f"a {key[1]} event makes no lot")
        counts[key] = counts.get(key, 0) + sign
    _add(connection, LOT_BUCKETS, ("starts_at", "kind"), "lots", counts)


def lots_made(*, connection: Connection, lots: Iterable[Any], events: Iterable[Any]) -> None:
    """Count the lots a capture call made (its ``new_lot_rows``), each under the type of its event."""
    kinds = {event.id: event.type for event in events}
    add_lots(connection=connection, made=[(lot.created_at, kinds[lot.created_event_id]) for lot in lots])


def add_codes(*, connection: Connection, codes: Iterable[tuple[int, datetime, int]]) -> None:
    """Add (lot id, created_at, how many: negative for codes voided) to the active package codes."""
    counts: dict[tuple[int, datetime], int] = {}
    for lot_id, at, n in codes:
        key = (int(lot_id), quarter_hour(at))
        counts[key] = counts.get(key, 0) + n
    _add(connection, CODE_BUCKETS, ("lot_id", "starts_at"), "codes", counts)


def codes_changed(*, connection: Connection, units: Iterable[Any], active: bool) -> None:
    """Units whose status just changed (to active, or to void): their package codes counted in or out."""
    sign = 1 if active else -1
    add_codes(
        connection=connection,
        codes=[(u.lot_id, u.created_at, sign) for u in units if _kind(u.level) == "unit"],
    )
