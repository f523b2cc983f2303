"""The checks every capture shares: time, custody, mass balance, lot status, locations."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import select
from sqlmodel import Session, SQLModel, col

from trace.access import Actor
from trace.errors import Forbidden, RuleViolation
from trace.events import batch
from trace.events.models import EPCIS_SHAPE, Event, EventType
from trace.events.schemas import EventCommon
from trace.locations import Location, LocationKind
from trace.lots import Holding, Lot, LotStatus
from trace.platform.config import get_settings
from trace.platform.sqltypes import fast_row, in_chunks
from trace.platform.timeutil import local_zone, localise, to_utc, utcnow

T = TypeVar("T", bound=SQLModel)
Q = Decimal("0.001")


def get_row(session: Session, model: type[T], key: Any) -> T | None:
    """``session.get`` through the capture call's cache.

    The session's identity map holds rows weakly, so a batch of 500 harvests at one growing
    area would load that location 500 times; during a capture the rows are held strongly.
    """
    call = batch.current(session)
    if call is None:
        return session.get(model, key)
    cache = call.rows
    if (model, key) not in cache:
        # No autoflush: rows made earlier in this call are in the cache, and every row looked up
        # here is one that exists before it, so the batch's pending rows can wait for one flush.
        with session.no_autoflush:
            cache[(model, key)] = session.get(model, key)
    # Keyed by the model: the row under (model, key) is a model or None.
    return cast("T | None", cache[(model, key)])


def remember(session: Session, row: SQLModel, key: Any) -> None:
    """Put a new row in the capture call's cache (so later items of the batch see it)."""
    call = batch.current(session)
    if call is not None:
        call.rows[(type(row), key)] = row


def q(value: Decimal | int | str) -> Decimal:
    """Quantities are exact to three places."""
    return Decimal(value).quantize(Q)


def event_time(data: EventCommon) -> tuple[datetime, str]:
    """The event's UTC instant and offset; refuses times too far in the future."""
    # Now, in the instance's zone (not the server's: a machine on UTC would stamp +00:00 beside +07:00).
    when, offset = to_utc(data.event_time) if data.event_time else to_utc(datetime.now(local_zone()))
    limit = utcnow() + timedelta(seconds=get_settings().future_tolerance_seconds)
    if when > limit:
        raise RuleViolation("The event time is in the future", code="event_in_future", event_time=when.isoformat())
    if when.year < 2000:
        raise RuleViolation("The event time is implausibly old", code="event_too_old")
    return when, offset


def new_event(
    *,
    actor: Actor,
    organisation_id: int,
    type: EventType,
    when: tuple[datetime, str],
    data: EventCommon,
    location: Location | None,
    lot_id: int | None,
    payload: dict[str, Any],
    source: int | None = None,
    destination: int | None = None,
    disposition: str | None = None,
    biz_step: str | None = None,
    corrects: str | None = None,
) -> Event:
    """An unsealed event with our type's EPCIS shape; the chain seals it."""
    epcis_type, action, default_step, default_disp = EPCIS_SHAPE[type]
    extra = {k: v for k, v in (("kde", data.kde), ("note", data.note), ("epcis_id", data._epcis_id)) if v}
    return fast_row(
        Event,
        id=str(uuid.uuid4()),
        organisation_id=organisation_id,
        seq=0,
        type=type,
        epcis_type=epcis_type,
        action=action,
        biz_step=biz_step or default_step,
        disposition=disposition or default_disp,
        event_time=when[0],
        event_tz_offset=when[1],
        record_time=utcnow(),
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
        location_id=location.id if location else None,
        location_version=location.version if location else None,
        source_organisation_id=source,
        destination_organisation_id=destination,
        lot_id=lot_id,
        biz_transactions=[b.model_dump() for b in data.biz_transactions],
        payload={**payload, **extra},
        corrects_event_id=corrects,
        prev_hash="",
        hash="",
    )


def own_location(
    *,
    session: Session,
    organisation_id: int,
    location_id: int | None,
    kinds: tuple[LocationKind, ...] | None = None,
    required: bool = False,
) -> Location | None:
    """A location of the acting organisation (a cooperative cannot act at another's place)."""
    if location_id is None:
        if required:
            raise RuleViolation("location_id is required", code="location_required")
        return None
    location = get_row(session, Location, location_id)
    if location is None or location.organisation_id != organisation_id:
        raise RuleViolation(f"Location {location_id} is not one of your organisation's", code="not_your_location")
    if not location.active:
        raise RuleViolation(f"Location {location_id} is no longer in use", code="location_inactive")
    if kinds and location.kind not in kinds:
        raise RuleViolation(
            f"Location {location.name} is a {location.kind}, expected {' or '.join(kinds)}", code="wrong_location_kind"
        )
    return location


def lock_lots(*, session: Session, lot_ids: Iterable[int], holdings: bool = True) -> dict[int, Lot]:
    """Lock these lots' rows to the end of the transaction, in ascending id order, and read them and
    their holdings afresh.

    Every rule that reads a lot's custody (its holdings, status, open shipments, units, labels
    issued) to decide a write takes the lot's lock first, so two writers of one lot take turns on
    PostgreSQL as they do on SQLite (whose writers are one at a time: BEGIN IMMEDIATE). The order
    is fixed: lots by id, then designation rights, then the organisation's chain head; a batch
    locks all its lots before its first item. The fresh read matters as much as the lock: a row
    the session loaded before the lock (the identity map keeps it) would answer with stale values.
    A lot made in this call is locked by being invisible to everyone else. ``holdings=False``: the lots
    only (a recall's reach, whose custody it does not read)."""
    call = batch.current(session)
    wanted = sorted({lot_id for lot_id in lot_ids if call is None or lot_id not in call.locked})
    found: dict[int, Lot] = {}
    # No autoflush: nothing pending can touch a lot this call has not locked yet.
    with session.no_autoflush:
        for chunk in in_chunks(wanted):
            lots = session.scalars(
                select(Lot)
                .where(col(Lot.id).in_(chunk))
                .order_by(col(Lot.id))
                .with_for_update()
                .execution_options(populate_existing=True)
            ).all()
            held = (
                session.scalars(
                    select(Holding).where(col(Holding.lot_id).in_(chunk)).execution_options(populate_existing=True)
                ).all()
                if holdings
                else []
            )
            found.update((lot.id, lot) for lot in lots)  # type: ignore[misc]
            if call is not None:
                for lot in lots:
                    call.rows[(Lot, lot.id)] = lot
                    call.fresh.add((Lot, lot.id))
                for row in held:
                    call.rows[(Holding, (row.lot_id, row.organisation_id))] = row
                    call.fresh.add((Holding, (row.lot_id, row.organisation_id)))
                call.locked.update(found)
    return found


def fresh_row(session: Session, model: type[T], key: Any) -> T | None:
    """A row read from the database now (its lot locked first), or as this call has already read or made it."""
    call = batch.current(session)
    if call is not None and (model, key) in call.fresh:
        return cast("T | None", call.rows[(model, key)])
    with session.no_autoflush:
        row = session.get(model, key, populate_existing=True)
    if call is not None:
        call.rows[(model, key)] = row
        call.fresh.add((model, key))
    return row


def lot_for_update(*, session: Session, lot_id: int) -> Lot:
    """A lot under its row lock (see :func:`lock_lots`), or a 4xx naming it."""
    call = batch.current(session)
    if call is not None and lot_id in call.locked:
        lot = get_row(session, Lot, lot_id)
    else:
        lot = lock_lots(session=session, lot_ids=[lot_id]).get(lot_id)
    if lot is None:
        raise RuleViolation(f"Lot {lot_id} does not exist", code="unknown_lot")
    return lot


def require_movable(lot: Lot) -> None:
    """Held or recalled lots may not move, be transformed or sold."""
    if lot.status == LotStatus.ON_HOLD:
        raise RuleViolation(f"Lot {lot.lot_code} is on hold", code="lot_on_hold")
    if lot.status == LotStatus.RECALLED:
        raise RuleViolation(f"Lot {lot.lot_code} is recalled", code="lot_recalled")
    if lot.status == LotStatus.CANCELLED:
        raise RuleViolation(f"Lot {lot.lot_code} was cancelled", code="lot_cancelled")


def require_after_lot(lot: Lot, when: datetime) -> None:
    """No event on a lot before the lot existed."""
    if when < lot.created_at:
        raise RuleViolation(
            f"The event is dated before lot {lot.lot_code} existed ({lot.created_at.isoformat()}Z)",
            code="before_lot_exists",
        )


def holding(*, session: Session, lot_id: int, organisation_id: int) -> Holding:
    """The (possibly new, zero) holding row of an organisation in a lot."""
    row = get_row(session, Holding, (lot_id, organisation_id))
    if row is None:
        row = fast_row(Holding, lot_id=lot_id, organisation_id=organisation_id, quantity=Decimal(0))
        session.add(row)
        remember(session, row, (lot_id, organisation_id))
        call = batch.current(session)
        if call is not None:
            call.fresh.add((Holding, (lot_id, organisation_id)))
    return row


def stock_for_update(*, session: Session, lot_id: int, organisation_id: int) -> Decimal:
    """How much of a lot an organisation holds, its holding row locked to the end of the transaction.

    For a rule that reads stock to allow a write that does not change it (an inspection): on
    PostgreSQL a sale of the last of it, updating the row meanwhile, is waited for and seen, and one
    that comes after waits for this transaction. SQLite's writers are one at a time anyway (BEGIN
    IMMEDIATE). Pending changes of the same capture call are flushed first, so they count."""
    held = session.execute(
        select(col(Holding.quantity))
        .where(col(Holding.lot_id) == lot_id, col(Holding.organisation_id) == organisation_id)
        .with_for_update()
    ).scalar()
    return Decimal(held) if held is not None else Decimal(0)


def take(*, session: Session, lot: Lot, organisation_id: int, quantity: Decimal, forbid: bool = True) -> None:
    """Remove from an organisation's holding: it must hold the lot and enough of it (mass balance)."""
    row = get_row(session, Holding, (lot.id, organisation_id))
    held = row.quantity if row else Decimal(0)
    if held <= 0 and forbid:
        raise Forbidden(f"Your organisation does not hold lot {lot.lot_code}", code="not_holder")
    if quantity > held:
        raise RuleViolation(
            f"Lot {lot.lot_code}: {quantity} {lot.unit} asked but only {held} {lot.unit} held",
            code="exceeds_holding",
            held=str(held),
            asked=str(quantity),
        )
    assert row is not None
    row.quantity = q(held - quantity)
    session.add(row)


def give(*, session: Session, lot: Lot, organisation_id: int, quantity: Decimal) -> None:
    """Add to an organisation's holding."""
    row = holding(session=session, lot_id=lot.id, organisation_id=organisation_id)  # type: ignore[arg-type]
    row.quantity = q(row.quantity + quantity)
    session.add(row)


def local_day(when: tuple[datetime, str]) -> date:
    """The calendar day, where it happened, of an event instant."""
    return localise(when[0], when[1]).date()


def localise_date(event: Event) -> date:
    """The local calendar day of a (built) event."""
    return localise(event.event_time, event.event_tz_offset).date()
