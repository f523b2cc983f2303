"""The portal's four feeds as incremental, keyset-paged reads: rows changed (recorded) since a time,
in a stable order, resumed by an opaque cursor, each row exactly once per change."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, or_, select, tuple_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from trace.access import Actor, Role
from trace.errors import Forbidden, RuleViolation
from trace.events.models import Event, EventLot, EventType
from trace.history import MasterVersion
from trace.locations import Location
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.config import get_settings
from trace.platform.timeutil import to_utc, utcnow
from trace.portal import mapping
from trace.products import Product

MAX_LIMIT = 1000
FEEDS = tuple(mapping.FILES)


def require_portal_reader(actor: Actor) -> None:
    """The province administrator, or a portal key (a user given the portal role reads nothing here)."""
    if actor.is_admin or (actor.role == Role.PORTAL and actor.api_key_id is not None):
        return
    raise Forbidden("Only the province administrator or a portal key may read the portal export", code="portal_only")


def _last_change(entity: str, created: Any) -> tuple[Any, ColumnElement[Any]]:
    """(subquery of each row's latest master version, coalesce(latest version, created_at))."""
    versions = (
        select(col(MasterVersion.entity_id).label("entity_id"), func.max(MasterVersion.valid_from).label("valid_from"))
        .where(col(MasterVersion.entity) == entity)
        .group_by(col(MasterVersion.entity_id))
        .subquery()
    )
    return versions, func.coalesce(versions.c.valid_from, created)


def _products() -> Select[Any]:
    versions, changed = _last_change("product", Product.created_at)
    return (
        select(
            *Product.__table__.columns,  # type: ignore[attr-defined]
            col(Organisation.tax_code).label("org_tax_code"),
            changed.label("changed_at"),
            col(Product.id).label("k1"),
            literal(0).label("k2"),
        )
        .join(Organisation, col(Organisation.id) == col(Product.organisation_id))
        .outerjoin(versions, versions.c.entity_id == col(Product.id))
    )


def _organisations() -> Select[Any]:
    return select(  # type: ignore[no-any-return]
        *Organisation.__table__.columns,  # type: ignore[attr-defined]
        col(Organisation.updated_at).label("changed_at"),
        col(Organisation.id).label("k1"),
        literal(0).label("k2"),
    )


def _locations() -> Select[Any]:
    versions, changed = _last_change("location", Location.created_at)
    return (
        select(
            *Location.__table__.columns,  # type: ignore[attr-defined]
            col(Organisation.tax_code).label("org_tax_code"),
            col(Organisation.kind).label("org_kind"),
            changed.label("changed_at"),
            col(Location.id).label("k1"),
            literal(0).label("k2"),
        )
        .join(Organisation, col(Organisation.id) == col(Location.organisation_id))
        .outerjoin(versions, versions.c.entity_id == col(Location.id))
    )


def _trace_codes() -> Select[Any]:
    org, source, destination = aliased(Organisation), aliased(Organisation), aliased(Organisation)
    return (
        select(  # type: ignore[return-value]
            col(Event.id).label("event_id"),
            col(Event.type).label("type"),
            col(Event.biz_step).label("biz_step"),
            col(Event.event_time).label("event_time"),
            col(Event.event_tz_offset).label("event_tz_offset"),
            col(Event.record_time).label("record_time"),
            col(Event.corrects_event_id).label("corrects_event_id"),
            col(Event.location_id).label("location_id"),
            col(Location.gln).label("location_gln"),
            col(Location.code).label("location_code"),
            col(Lot.gtin).label("gtin"),
            col(Lot.lot_code).label("lot_code"),
            col(Lot.production_date).label("production_date"),
            col(Lot.expiry_date).label("expiry_date"),
            col(EventLot.role).label("lot_role"),
            col(EventLot.quantity).label("quantity"),
            col(EventLot.unit).label("unit"),
            col(org.tax_code).label("org_tax_code"),
            col(source.tax_code).label("source_tax_code"),
            col(destination.tax_code).label("destination_tax_code"),
            col(Event.record_time).label("changed_at"),
            col(Event.id).label("k1"),
            func.coalesce(col(EventLot.id), 0).label("k2"),
        )
        .select_from(Event)
        .join(org, col(org.id) == col(Event.organisation_id))
        .outerjoin(EventLot, col(EventLot.event_id) == col(Event.id))
        .outerjoin(Lot, col(Lot.id) == col(EventLot.lot_id))
        .outerjoin(Location, col(Location.id) == col(Event.location_id))
        .outerjoin(source, col(source.id) == col(Event.source_organisation_id))
        .outerjoin(destination, col(destination.id) == col(Event.destination_organisation_id))
        .where(or_(col(EventLot.id).is_not(None), col(Event.type) == EventType.CORRECTION))
    )


QUERIES = {"products": _products, "organisations": _organisations, "locations": _locations, "trace-codes": _trace_codes}


@dataclass(frozen=True)
class Position:
    """Where a feed was read up to: the last row's change time and its keys."""

    changed_at: datetime
    k1: Any
    k2: int


def encode_cursor(feed: str, position: Position) -> str:
    """An opaque cursor (callers must not parse it; its form may change)."""
    raw = json.dumps([feed, position.changed_at.isoformat(), position.k1, position.k2], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(feed: str, cursor: str) -> Position:
    """The position a cursor names, or RuleViolation ``bad_cursor``."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        name, changed, k1, k2 = raw
        when = to_utc(datetime.fromisoformat(changed))[0]
        if name != feed or not isinstance(k2, int) or not isinstance(k1, (int, str)):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise RuleViolation("The cursor is not one this feed gave out", code="bad_cursor") from None
    return Position(when, k1, k2)


def settled_until(until: datetime | None = None, *, now: datetime | None = None) -> datetime:
    """The latest record time a read may include: rows recorded in the last few seconds may still be
    joined by rows of transactions that began earlier and have not committed yet (a cursor past them
    would skip those for ever)."""
    cap = (now or utcnow()) - timedelta(seconds=get_settings().portal_settle_seconds)
    return cap if until is None else min(to_utc(until)[0], cap)


def read(
    *, session: Session, feed: str, since: datetime | None, until: datetime, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` source rows of a feed, changed in [since, until], after ``after``, in order."""
    if feed not in QUERIES:
        raise RuleViolation(f"Unknown feed {feed!r}; one of {', '.join(FEEDS)}", code="unknown_feed")
    rows = QUERIES[feed]().subquery()
    query = select(rows).where(rows.c.changed_at <= until)
    if since is not None:
        query = query.where(rows.c.changed_at >= to_utc(since)[0])
    if after is not None:
        # The plain bound lets PostgreSQL start the index scan at the cursor (it does not use the
        # row comparison, whose last key is computed, as an index condition).
        query = query.where(rows.c.changed_at >= literal(after.changed_at, rows.c.changed_at.type))
        query = query.where(
            tuple_(rows.c.changed_at, rows.c.k1, rows.c.k2)
            > tuple_(literal(after.changed_at, rows.c.changed_at.type), literal(after.k1), literal(after.k2))
        )
    query = query.order_by(rows.c.changed_at, rows.c.k1, rows.c.k2).limit(limit)
    return [dict(row) for row in session.execute(query).mappings()]


def position(row: dict[str, Any]) -> Position:
    """The position just after ``row``."""
    return Position(row["changed_at"], row["k1"], int(row["k2"]))


@dataclass
class Page:
    """One page of a feed: the portal's records, and where to resume."""

    feed: str
    items: list[dict[str, str]]
    cursor: str | None  # resume here next time (even when nothing more is there now)
    more: bool  # whether the next page has rows already


def page(
    *,
    session: Session,
    actor: Actor,
    feed: str,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 500,
    now: datetime | None = None,
) -> Page:
    """One page of a feed for the portal (records changed since ``since``, after ``cursor``)."""
    require_portal_reader(actor)
    if not 1 <= limit <= MAX_LIMIT:
        raise RuleViolation(f"limit must be 1..{MAX_LIMIT}", code="bad_limit")
    after = decode_cursor(feed, cursor) if cursor else None
    if feed not in QUERIES:
        raise RuleViolation(f"Unknown feed {feed!r}; one of {', '.join(FEEDS)}", code="unknown_feed")
    rows = read(session=session, feed=feed, since=since, until=settled_until(now=now), after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    columns = mapping.FILES[feed][1]
    next_cursor = encode_cursor(feed, position(rows[-1])) if rows else cursor
    return Page(feed, [mapping.render(columns, row) for row in rows], next_cursor, more)


def every_row(
    *, session: Session, feed: str, since: datetime | None, until: datetime, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every source row of a feed in the window, read a batch at a time (never all at once)."""
    after: Position | None = None
    while True:
        rows = read(session=session, feed=feed, since=since, until=until, after=after, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        after = position(rows[-1])
