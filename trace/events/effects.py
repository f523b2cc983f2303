"""What recording an event changes besides the log: new lots, custody status, the sealed rows.

Shared by the recorders (capture.py) and corrections; written for the batch hot path (rows are
built lean, lots inserted with one compiled statement, statuses settled once per capture call).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from sqlalchemy import bindparam, func, text
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, select

from trace.epcis import ids
from trace.errors import Conflict
from trace.events import batch, chain
from trace.events import rules as r
from trace.events.models import Event, EventLot
from trace.lots import Holding, Lot, LotStatus, Shipment, ShipmentStatus
from trace.platform.sqltypes import fast_row
from trace.products import Product
from trace.reports import tallies
from trace.transparency import models as log_models


def lot_row(
    *,
    event_id: str,
    lot_id: int,
    role: str,
    quantity: Decimal | None = None,
    unit: str | None = None,
    organisation_id: int | None = None,
    delta: Decimal = Decimal(0),
) -> EventLot:
    """An event's lot row (built the lean way: one is made per event on the capture hot path)."""
    return fast_row(
        EventLot,
        id=None,
        event_id=event_id,
        lot_id=lot_id,
        role=role,
        quantity=quantity,
        unit=unit,
        organisation_id=organisation_id,
        delta=delta,
    )


def seal(*, session: Session, event: Event, lots: list[EventLot]) -> Event:
    """Append the event to its chain, store its lot rows and its EPCIS id."""
    chain.append(session=session, event=event)
    for row in lots:
        row.event_id = event.id
        session.add(row)
    call = batch.current(session)
    if call is not None:
        # The call stores the ids of all its events at once, after its final flush (or leaves them to
        # an EPCIS document's capture, whose events keep the ids they were sent with).
        call.sealed.append((event, lots))  # the call tells the public log after its final flush
    else:
        ids.give_ids(session=session, sealed=[(event, lots)])
        log_models.enqueue(session=session, event_ids=[event.id])
    return event


def refresh_status(*, session: Session, lot: Lot, holder: int | None = None) -> None:
    """A lot nobody holds and nothing is in flight of is consumed (and the reverse)."""
    if lot.status not in (LotStatus.ACTIVE, LotStatus.CONSUMED):
        return
    if holder is not None:
        row = r.get_row(session, Holding, (lot.id, holder))
        if row is not None and row.quantity > 0:  # someone still holds it: no need to ask the database
            if lot.status != LotStatus.ACTIVE:
                lot.status = LotStatus.ACTIVE
                session.add(lot)
            return
    call = batch.current(session)
    if call is not None:  # settled once for the whole capture call, after its one flush
        call.settle[lot.id] = lot  # type: ignore[index]
        return
    settle_statuses(session=session, lots=[lot])


def settle_statuses(*, session: Session, lots: list[Lot]) -> None:
    """Mark lots that nobody holds and that have nothing in flight consumed, the others active."""
    if not lots:
        return
    session.flush()
    ids = [lot.id for lot in lots]
    held: dict[int | None, Decimal] = dict(
        session.exec(  # type: ignore[call-overload]
            select(Holding.lot_id, func.sum(Holding.quantity))
            .where(col(Holding.lot_id).in_(ids))
            .group_by(col(Holding.lot_id))
        ).all()
    )
    flying = set(
        session.exec(
            select(Shipment.lot_id).where(col(Shipment.lot_id).in_(ids), Shipment.status == ShipmentStatus.OPEN)
        ).all()
    )
    for lot in lots:
        if lot.status in (LotStatus.ACTIVE, LotStatus.CONSUMED):
            empty = Decimal(held.get(lot.id) or 0) <= 0 and lot.id not in flying
            lot.status = LotStatus.CONSUMED if empty else LotStatus.ACTIVE
            session.add(lot)


_LOTS = Lot.__table__  # type: ignore[attr-defined]
_LOT_EXISTS = select(_LOTS.c.id).where(_LOTS.c.gtin == bindparam("gtin"), _LOTS.c.lot_code == bindparam("lot_code"))
_LOT_INSERT = _LOTS.insert().returning(_LOTS.c.id)


def existing_lots(*, session: Session, wanted: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of these (product id, lot code) pairs already exist: one query per 500 codes, not one per lot."""
    if not wanted:
        return set()
    codes = sorted({code for _, code in wanted})
    products = Product.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    gtins = list(
        connection.execute(select(products.c.gtin).where(products.c.id.in_({pid for pid, _ in wanted}))).scalars()
    )
    found: set[tuple[int, str]] = set()
    for start in range(0, len(codes), 500):
        chunk = codes[start : start + 500]
        # By (gtin, lot_code): the lots' unique index answers it without scanning the table.
        found.update(
            connection.execute(
                select(_LOTS.c.product_id, _LOTS.c.lot_code).where(_LOTS.c.gtin.in_(gtins), _LOTS.c.lot_code.in_(chunk))
            ).tuples()
        )
    return found


def allocate_lot_ids(*, session: Session, count: int) -> Iterator[int]:
    """``count`` fresh lot ids, taken before the lots are written (so a batch inserts them at once).

    PostgreSQL: from the id sequence. SQLite: after the largest id, which is safe because a
    writing transaction holds SQLite's write lock (BEGIN IMMEDIATE) from its start.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return iter(
            connection.execute(
                text("SELECT nextval(pg_get_serial_sequence('lot', 'id')) FROM generate_series(1, :n)"), {"n": count}
            )
            .scalars()
            .all()
        )
    start = int(connection.execute(text("SELECT coalesce(max(id), 0) FROM lot")).scalar_one()) + 1
    return iter(range(start, start + count))


def new_lot(
    session: Session,
    *,
    product: Product,
    lot_code: str,
    quantity: Decimal,
    org_id: int,
    location_id: int | None,
    event: Event,
    expiry: object,
) -> Lot:
    call = batch.current(session)
    created: set[tuple[str, str]] = call.new_lots if call is not None else set()
    connection = session.connection()
    known: set[tuple[int, str]] | None = call.existing_lots if call is not None else None
    if (product.gtin, lot_code) in created or (
        (product.id, lot_code) in known
        if known is not None
        else connection.execute(_LOT_EXISTS, {"gtin": product.gtin, "lot_code": lot_code}).first()
    ):
        # A duplicate identifier, like a duplicate GTIN or tax code: a conflict with what exists (409).
        raise Conflict(f"Lot {lot_code} of GTIN {product.gtin} already exists", code="lot_exists")
    values = dict(
        product_id=product.id,
        gtin=product.gtin,
        lot_code=lot_code,
        quantity=r.q(quantity),
        unit=product.unit,
        producer_organisation_id=org_id,
        origin_location_id=location_id,
        production_date=r.localise_date(event),
        expiry_date=expiry,
        status=LotStatus.ACTIVE,
        created_event_id=event.id,
        created_at=event.event_time,
        product_version=product.version,
    )
    if call is not None and call.lot_ids is not None:
        # Ids allocated for the whole batch: the lots go out in one executemany, just before
        # the next flush (which would otherwise write rows that refer to them first).
        lot_id = next(call.lot_ids)
        call.lot_inserts.append({"id": lot_id, **values})
    else:
        # A Core INSERT ... RETURNING (compiled once) gives the id without flushing the whole
        # unit of work for one lot.
        lot_id = connection.execute(_LOT_INSERT, values).scalar_one()
    lot = fast_row(Lot, id=lot_id, **values)
    make_transient_to_detached(lot)
    session.add(lot)
    created.add((product.gtin, lot_code))
    if call is not None:
        call.new_lot_rows.append(lot)  # expunged if the capture fails; counted by the call (ledger.capture)
    else:
        tallies.add_lots(connection=connection, made=[(lot.created_at, event.type)])
    r.remember(session, lot, lot_id)
    holding = fast_row(Holding, lot_id=lot_id, organisation_id=org_id, quantity=r.q(quantity))
    session.add(holding)
    r.remember(session, holding, (lot_id, org_id))
    if call is not None:  # nobody else sees the lot before the commit: it is as good as locked
        call.locked.add(lot_id)
        call.fresh.update({(Lot, lot_id), (Holding, (lot_id, org_id))})
    return lot
