"""Recording events: each function checks the rules, changes custody and appends to the chain."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import update
from sqlmodel import Session, col, select

from trace.access import Actor, Role, require_writer
from trace.designations import claims
from trace.designations.models import ClaimSource
from trace.errors import Conflict, Forbidden, RuleViolation
from trace.events import rules as r
from trace.events.effects import lot_row, new_lot, refresh_status, seal
from trace.events.models import Event, EventType
from trace.events.schemas import (
    CommissionIn,
    DecommissionIn,
    HarvestIn,
    InspectIn,
    LossIn,
    PackIn,
    ReceiveIn,
    SellIn,
    ShipIn,
    StoreIn,
    TransformIn,
)
from trace.locations import LocationKind
from trace.lots import Holding, Lot, LotEdge, Shipment, ShipmentStatus
from trace.organisations import Organisation
from trace.platform.sqltypes import in_chunks
from trace.printing import capacity
from trace.products import Product
from trace.reports import tallies
from trace.units import Unit, UnitStatus, display_code, normalize_code, register_units, serials_digest

LOSS_SHAPE = {
    "spoilage": ("destroying", "destroyed"),
    "damage": ("destroying", "damaged"),
    "sample": ("sampling", "non_sellable_other"),
    "other": ("destroying", "destroyed"),
}


def _own_product(session: Session, org_id: int, product_id: int) -> Product:
    product = r.get_row(session, Product, product_id)
    if product is None:
        raise RuleViolation(f"Product {product_id} does not exist", code="unknown_product")
    if product.organisation_id != org_id:
        raise Forbidden(f"Product {product.gtin} belongs to another organisation", code="not_your_product")
    return product


def record_harvest(*, session: Session, actor: Actor, data: HarvestIn) -> tuple[Event, Lot]:
    """A harvest (commissioning): a new lot at a growing area, with the inputs used."""
    org = require_writer(actor)
    when = r.event_time(data)
    location = r.own_location(
        session=session,
        organisation_id=org,
        location_id=data.location_id,
        required=True,
        kinds=(LocationKind.GROWING_AREA, LocationKind.FARM),
    )
    product = _own_product(session, org, data.product_id)
    harvest_day = r.local_day(when)
    for used in data.inputs_used:
        if used.applied_on > harvest_day:
            raise RuleViolation(f"{used.name} is dated after the harvest", code="input_after_harvest")
        if (
            used.pre_harvest_interval_days is not None
            and (harvest_day - used.applied_on).days < used.pre_harvest_interval_days
        ):
            raise RuleViolation(
                f"{used.name} was applied {(harvest_day - used.applied_on).days} days before harvest; "
                f"its pre-harvest interval is {used.pre_harvest_interval_days} days",
                code="pre_harvest_interval",
            )
    if data.expiry_date and data.expiry_date < harvest_day:
        raise RuleViolation("The expiry date is before the harvest", code="expiry_before_production")
    accepted = claims.check_harvest(
        session=session,
        organisation_id=org,
        on=harvest_day,
        product=product,
        location=location,
        designation_ids=data.designation_ids,
    )
    payload = {
        "product_id": product.id,
        "product_version": product.version,
        "gtin": product.gtin,
        "lot_code": data.lot_code,
        "quantity": str(r.q(data.quantity)),
        "unit": product.unit,
        "expiry_date": data.expiry_date.isoformat() if data.expiry_date else None,
        "inputs_used": [u.model_dump(mode="json") for u in data.inputs_used],
    }
    if accepted:
        payload["designations"] = [claims.payload_entry(c) for c in accepted]
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.HARVEST,
        when=when,
        data=data,
        location=location,
        lot_id=None,
        payload=payload,
    )
    lot = new_lot(
        session,
        product=product,
        lot_code=data.lot_code,
        quantity=data.quantity,
        org_id=org,
        location_id=location.id if location else None,
        event=event,
        expiry=data.expiry_date,
    )
    event.lot_id = lot.id
    claims.record(session=session, lot_id=lot.id, claims=accepted, source=ClaimSource.HARVEST, event_id=event.id)  # type: ignore[arg-type]
    seal(
        session=session,
        event=event,
        lots=[
            lot_row(
                event_id=event.id,
                lot_id=lot.id,  # type: ignore[arg-type]
                role="output",
                quantity=r.q(data.quantity),
                unit=lot.unit,
                organisation_id=org,
                delta=r.q(data.quantity),
            )
        ],
    )
    return event, lot


def record_ship(*, session: Session, actor: Actor, data: ShipIn) -> tuple[Event, Shipment]:
    """Goods leave the holder for another organisation; custody moves on receipt."""
    org = require_writer(actor)
    when = r.event_time(data)
    lot = r.lot_for_update(session=session, lot_id=data.lot_id)
    r.require_after_lot(lot, when[0])
    r.take(session=session, lot=lot, organisation_id=org, quantity=r.q(data.quantity))
    r.require_movable(lot)
    if data.destination_organisation_id == org:
        raise RuleViolation("Shipping to yourself: record a store event instead", code="ship_to_self")
    dest = r.get_row(session, Organisation, data.destination_organisation_id)
    if dest is None or not dest.active:
        raise RuleViolation(
            f"Organisation {data.destination_organisation_id} does not exist", code="unknown_destination"
        )
    if data.destination_location_id is not None:
        r.own_location(session=session, organisation_id=dest.id, location_id=data.destination_location_id)  # type: ignore[arg-type]
    location = r.own_location(session=session, organisation_id=org, location_id=data.location_id)
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.SHIP,
        when=when,
        data=data,
        location=location,
        lot_id=lot.id,
        source=org,
        destination=dest.id,
        payload={
            "quantity": str(r.q(data.quantity)),
            "unit": lot.unit,
            "destination_location_id": data.destination_location_id,
        },
    )
    shipment = Shipment(
        event_id=event.id,
        lot_id=lot.id,  # type: ignore[arg-type]
        from_organisation_id=org,
        to_organisation_id=dest.id,  # type: ignore[arg-type]
        quantity=r.q(data.quantity),
        shipped_at=when[0],
    )
    session.add(shipment)
    seal(
        session=session,
        event=event,
        lots=[
            lot_row(
                event_id=event.id,
                lot_id=lot.id,  # type: ignore[arg-type]
                role="object",
                quantity=r.q(data.quantity),
                unit=lot.unit,
                organisation_id=org,
                delta=-r.q(data.quantity),
            )
        ],
    )
    refresh_status(session=session, lot=lot, holder=org)
    return event, shipment


def record_receive(*, session: Session, actor: Actor, data: ReceiveIn) -> tuple[Event, Shipment]:
    """The receiver confirms a shipment addressed to it (all or part of it)."""
    org = require_writer(actor)
    when = r.event_time(data)
    shipment = r.get_row(session, Shipment, data.shipment_id)
    if shipment is None or shipment.to_organisation_id != org:
        raise RuleViolation(
            f"No shipment {data.shipment_id} addressed to your organisation", code="no_matching_shipment"
        )
    # What is still in transit is read under the lot's lock: two receipts of it take turns.
    lot = r.lot_for_update(session=session, lot_id=shipment.lot_id)
    shipment = r.fresh_row(session, Shipment, data.shipment_id)
    assert shipment is not None  # a shipment is never deleted
    if shipment.status != ShipmentStatus.OPEN:
        raise RuleViolation(f"Shipment {shipment.id} is already {shipment.status}", code="shipment_closed")
    outstanding = r.q(shipment.quantity - shipment.received_quantity)
    quantity = r.q(data.quantity) if data.quantity is not None else outstanding
    if quantity > outstanding:
        raise RuleViolation(
            f"Only {outstanding} is still in transit on shipment {shipment.id}",
            code="exceeds_shipment",
            outstanding=str(outstanding),
        )
    if when[0] < shipment.shipped_at:
        raise RuleViolation("Received before it was shipped", code="receive_before_ship")
    location = r.own_location(session=session, organisation_id=org, location_id=data.location_id)
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.RECEIVE,
        when=when,
        data=data,
        location=location,
        lot_id=lot.id,
        source=shipment.from_organisation_id,
        destination=org,
        payload={
            "quantity": str(quantity),
            "unit": lot.unit,
            "shipment_id": shipment.id,
            "ship_event_id": shipment.event_id,
        },
    )
    shipment.received_quantity = r.q(shipment.received_quantity + quantity)
    if shipment.received_quantity >= shipment.quantity:
        shipment.status = ShipmentStatus.RECEIVED
    session.add(shipment)
    r.give(session=session, lot=lot, organisation_id=org, quantity=quantity)
    seal(
        session=session,
        event=event,
        lots=[
            lot_row(
                event_id=event.id,
                lot_id=lot.id,  # type: ignore[arg-type]
                role="object",
                quantity=quantity,
                unit=lot.unit,
                organisation_id=org,
                delta=quantity,
            )
        ],
    )
    refresh_status(session=session, lot=lot, holder=org)
    return event, shipment


def record_transform(*, session: Session, actor: Actor, data: TransformIn) -> tuple[Event, list[Lot]]:
    """Inputs (with quantities) become new output lots; lineage edges link them."""
    org = require_writer(actor)
    when = r.event_time(data)
    location = r.own_location(session=session, organisation_id=org, location_id=data.location_id)
    inputs = []
    r.lock_lots(session=session, lot_ids=[item.lot_id for item in data.inputs])
    for item in data.inputs:
        lot = r.lot_for_update(session=session, lot_id=item.lot_id)
        r.require_after_lot(lot, when[0])
        r.take(session=session, lot=lot, organisation_id=org, quantity=r.q(item.quantity))
        r.require_movable(lot)
        inputs.append((lot, r.q(item.quantity)))
    products = [_own_product(session, org, o.product_id) for o in data.outputs]
    if data.conversion is not None:
        units_in = {lot.unit for lot, _ in inputs}
        units_out = {p.unit for p in products}
        if units_in != {data.conversion.input_unit} or units_out != {data.conversion.output_unit}:
            raise RuleViolation(
                "The conversion's units do not match the input and output lots", code="conversion_units"
            )
    # Designations pass to the outputs only as their rules and the transformer's own right allow;
    # one that does not pass is noted, never a reason to refuse the transformation.
    inherited, dropped = claims.inherit(
        session=session,
        organisation_id=org,
        on=r.local_day(when),
        input_lot_ids=[lot.id for lot, _ in inputs],  # type: ignore[misc]
        outputs=[(p, o.lot_code) for p, o in zip(products, data.outputs, strict=True)],
    )
    payload = {
        "inputs": [
            {"lot_id": lot.id, "gtin": lot.gtin, "lot_code": lot.lot_code, "quantity": str(qty), "unit": lot.unit}
            for lot, qty in inputs
        ],
        "outputs": [
            {
                "product_id": p.id,
                "product_version": p.version,
                "gtin": p.gtin,
                "lot_code": o.lot_code,
                "quantity": str(r.q(o.quantity)),
                "unit": p.unit,
                "expiry_date": o.expiry_date.isoformat() if o.expiry_date else None,
            }
            for p, o in zip(products, data.outputs, strict=True)
        ],
        "conversion": data.conversion.model_dump(mode="json") if data.conversion else None,
    }
    if inherited:
        payload["designations"] = [claims.payload_entry(c, data.outputs[c.output].lot_code) for c in inherited]
    if dropped:
        payload["designations_not_inherited"] = dropped
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.TRANSFORM,
        when=when,
        data=data,
        location=location,
        lot_id=None,
        payload=payload,
    )
    rows = [
        lot_row(
            event_id=event.id,
            lot_id=lot.id,  # type: ignore[arg-type]
            role="input",
            quantity=qty,
            unit=lot.unit,
            organisation_id=org,
            delta=-qty,
        )
        for lot, qty in inputs
    ]
    outputs = []
    for product, out in zip(products, data.outputs, strict=True):
        lot = new_lot(
            session,
            product=product,
            lot_code=out.lot_code,
            quantity=out.quantity,
            org_id=org,
            location_id=location.id if location else None,
            event=event,
            expiry=out.expiry_date,
        )
        outputs.append(lot)
        rows.append(
            lot_row(
                event_id=event.id,
                lot_id=lot.id,  # type: ignore[arg-type]
                role="output",
                quantity=r.q(out.quantity),
                unit=lot.unit,
                organisation_id=org,
                delta=r.q(out.quantity),
            )
        )
        for parent, _ in inputs:
            session.add(LotEdge(parent_lot_id=parent.id, child_lot_id=lot.id, event_id=event.id))  # type: ignore[arg-type]
    event.lot_id = outputs[0].id
    for index, lot in enumerate(outputs):
        claims.record(
            session=session,
            lot_id=lot.id,  # type: ignore[arg-type]
            claims=[c for c in inherited if c.output == index],
            source=ClaimSource.INHERITED,
            event_id=event.id,
        )
    seal(session=session, event=event, lots=rows)
    for lot, _ in inputs:
        refresh_status(session=session, lot=lot, holder=org)
    return event, outputs


def record_commission(*, session: Session, actor: Actor, data: CommissionIn) -> tuple[Event, list[str]]:
    """Register ``count`` units (random serials, or those EPCIS capture names) of a lot the organisation holds."""
    org = require_writer(actor)
    when = r.event_time(data)
    lot = r.lot_for_update(session=session, lot_id=data.lot_id)
    held = r.get_row(session, Holding, (lot.id, org))
    # A former holder (its row stays at zero) must not label goods it no longer has.
    if held is None or held.quantity <= 0:
        raise Forbidden(f"Your organisation does not hold lot {lot.lot_code}", code="not_holder")
    r.require_after_lot(lot, when[0])
    given = data._serials
    if given is not None:
        if len(given) != data.count or len(set(given)) != len(given):
            raise RuleViolation("The serials must be count distinct values", code="duplicate_unit")
        taken = sorted(
            {
                serial
                for chunk in in_chunks(given)
                for serial in session.exec(
                    select(Unit.serial).where(Unit.lot_id == lot.id, col(Unit.serial).in_(chunk))
                )
            }
        )
        if taken:
            raise Conflict(
                f"Lot {lot.lot_code} already has unit(s) {', '.join(taken[:10])}", code="unit_exists", serials=taken
            )
    location = r.own_location(session=session, organisation_id=org, location_id=data.location_id)
    room = capacity.check(
        session=session, lot=lot, wanted=data.count, override_reason=data.override_reason, level=data.level
    )
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.COMMISSION,
        when=when,
        data=data,
        location=location,
        lot_id=lot.id,
        payload={"count": data.count, "level": str(data.level)},
    )
    made = register_units(
        session=session,
        lot_id=lot.id,  # type: ignore[arg-type]
        count=data.count,
        event_id=event.id,
        level=data.level,
        print_run_id=data._print_run_id,
        serials=given,
    )
    serials = [serial for serial, _ in made]
    # The event commits to the set by its digest; the unit table holds the serials (issue 17: a copy
    # made each page of a 100,000-code lot read 1.4 MB of JSON).
    event.payload["serials_sha256"] = serials_digest(serials)
    if data.count > room.left:
        # An override is part of the record: who printed beyond the lot, and why.
        event.payload["override"] = {"reason": data.override_reason, "limit": room.limit, "used": room.used}
    if data._print_run_id is not None:
        event.payload["print_run_id"] = data._print_run_id
    seal(
        session=session,
        event=event,
        lots=[
            lot_row(
                event_id=event.id,
                lot_id=lot.id,  # type: ignore[arg-type]
                role="object",
                quantity=None,
                unit=None,
                organisation_id=org,
            )
        ],
    )
    return event, serials


def lots_of_codes(*, session: Session, codes: list[str]) -> list[int]:
    """The lots these label codes belong to (unknown codes name none)."""
    return sorted(
        {
            lot_id
            for chunk in in_chunks(codes)
            for lot_id in session.exec(select(Unit.lot_id).where(col(Unit.code).in_(chunk)).distinct())
        }
    )


def record_decommission(*, session: Session, actor: Actor, data: DecommissionIn) -> Event:
    """Void codes the organisation registered: from now on they read as not valid."""
    org = require_writer(actor)
    when = r.event_time(data)
    codes = list(dict.fromkeys(normalize_code(c) for c in data.codes))
    # The codes' states are read under their lots' locks: two voids of one code take turns.
    r.lock_lots(session=session, lot_ids=lots_of_codes(session=session, codes=codes))
    found: dict[str, tuple[Unit, int]] = {}
    for chunk in in_chunks(codes):
        query = (
            select(Unit, Event.organisation_id)
            .join(Event, Event.id == Unit.created_event_id)  # type: ignore[arg-type]
            .where(col(Unit.code).in_(chunk))
            .execution_options(populate_existing=True)
        )
        found.update((unit.code, (unit, owner)) for unit, owner in session.exec(query))
    for code in codes:
        if code not in found or found[code][1] != org:
            # Another organisation's code is reported as unknown: its existence is not ours to confirm.
            raise RuleViolation(
                f"Label code {display_code(code)} is not one of your organisation's", code="unknown_code"
            )
        if found[code][0].status != UnitStatus.ACTIVE:
            raise Conflict(f"Label code {display_code(code)} is already void", code="already_void")
    units = [found[code][0] for code in codes]
    lot_ids = sorted({u.lot_id for u in units})
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.DECOMMISSION,
        when=when,
        data=data,
        location=None,
        lot_id=lot_ids[0],
        payload={
            "reason": data.reason,
            "units": [{"lot_id": u.lot_id, "serial": u.serial, "code": u.code} for u in units],
        },
    )
    tallies.codes_changed(connection=session.connection(), units=units, active=False)
    for part in in_chunks([u.id for u in units]):
        session.execute(update(Unit).where(col(Unit.id).in_(part)).values(status=UnitStatus.VOID))
    for unit in units:
        session.expire(unit, ["status"])
    return seal(
        session=session,
        event=event,
        lots=[lot_row(event_id=event.id, lot_id=lid, role="object", organisation_id=org) for lid in lot_ids],
    )


def record_pack(*, session: Session, actor: Actor, data: PackIn) -> Event:
    """Aggregate known units into a carton or pallet."""
    org = require_writer(actor)
    when = r.event_time(data)
    location = r.own_location(session=session, organisation_id=org, location_id=data.location_id)
    lots: dict[int, Lot] = {}
    units = []
    wanted: dict[int, set[str]] = defaultdict(set)
    for ref in data.children:
        if ref.serial in wanted[ref.lot_id]:
            raise RuleViolation(f"Unit {ref.serial} of lot {ref.lot_id} is listed twice", code="duplicate_unit")
        wanted[ref.lot_id].add(ref.serial)
    # The units' parents are read under their lots' locks: two packs of one unit take turns.
    r.lock_lots(session=session, lot_ids=wanted)
    # One query per lot and chunk of serials, not one per unit (a pallet holds thousands).
    found = {
        (u.lot_id, u.serial): u
        for lot_id, serials in wanted.items()
        for chunk in in_chunks(sorted(serials))
        for u in session.exec(
            select(Unit)
            .where(Unit.lot_id == lot_id, col(Unit.serial).in_(chunk))
            .execution_options(populate_existing=True)
        )
    }
    for ref in data.children:
        unit = found.get((ref.lot_id, ref.serial))
        if unit is None or unit.status != UnitStatus.ACTIVE:
            raise RuleViolation(f"Unit {ref.serial} of lot {ref.lot_id} is not known", code="unknown_unit")
        if unit.lot_id not in lots:
            lot = r.lot_for_update(session=session, lot_id=unit.lot_id)
            held = r.get_row(session, Holding, (lot.id, org))
            if held is None or held.quantity <= 0:
                raise Forbidden(f"Your organisation does not hold lot {lot.lot_code}", code="not_holder")
            r.require_movable(lot)
            r.require_after_lot(lot, when[0])
            lots[unit.lot_id] = lot
        if unit.parent_id is not None:
            raise RuleViolation(f"Unit {ref.serial} is already packed in {unit.parent_id}", code="already_packed")
        units.append(unit)
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.PACK,
        when=when,
        data=data,
        location=location,
        lot_id=next(iter(lots)),
        payload={"parent_id": data.parent_id, "children": [{"lot_id": u.lot_id, "serial": u.serial} for u in units]},
    )
    for unit in units:
        unit.parent_id = data.parent_id
        session.add(unit)
    seal(
        session=session,
        event=event,
        lots=[lot_row(event_id=event.id, lot_id=lid, role="object", organisation_id=org) for lid in lots],
    )
    return event


def _simple(
    *,
    session: Session,
    actor: Actor,
    data: SellIn | LossIn,
    type: EventType,
    kinds: tuple[LocationKind, ...] | None,
    step: str | None = None,
    disp: str | None = None,
    extra: dict[str, object] | None = None,
) -> Event:
    org = require_writer(actor)
    when = r.event_time(data)
    lot = r.lot_for_update(session=session, lot_id=data.lot_id)
    r.require_after_lot(lot, when[0])
    r.take(session=session, lot=lot, organisation_id=org, quantity=r.q(data.quantity))
    if type == EventType.SELL:
        r.require_movable(lot)
    location = r.own_location(session=session, organisation_id=org, location_id=data.location_id, kinds=kinds)
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=type,
        when=when,
        data=data,
        location=location,
        lot_id=lot.id,
        biz_step=step,
        disposition=disp,
        payload={"quantity": str(r.q(data.quantity)), "unit": lot.unit, **(extra or {})},
    )
    seal(
        session=session,
        event=event,
        lots=[
            lot_row(
                event_id=event.id,
                lot_id=lot.id,  # type: ignore[arg-type]
                role="object",
                quantity=r.q(data.quantity),
                unit=lot.unit,
                organisation_id=org,
                delta=-r.q(data.quantity),
            )
        ],
    )
    refresh_status(session=session, lot=lot, holder=org)
    return event


def record_sell(*, session: Session, actor: Actor, data: SellIn) -> Event:
    """Retail sale to consumers: the quantity leaves the chain."""
    return _simple(session=session, actor=actor, data=data, type=EventType.SELL, kinds=None)


def record_loss(*, session: Session, actor: Actor, data: LossIn) -> Event:
    """Spoilage, damage, samples: the quantity is written off."""
    step, disp = LOSS_SHAPE[data.reason]
    return _simple(
        session=session,
        actor=actor,
        data=data,
        type=EventType.LOSS,
        kinds=None,
        step=step,
        disp=disp,
        extra={"reason": data.reason},
    )


def record_store(*, session: Session, actor: Actor, data: StoreIn) -> Event:
    """The holder puts (part of) a lot in one of its warehouses or shops."""
    org = require_writer(actor)
    when = r.event_time(data)
    lot = r.lot_for_update(session=session, lot_id=data.lot_id)
    if r.get_row(session, Holding, (lot.id, org)) is None:
        raise Forbidden(f"Your organisation does not hold lot {lot.lot_code}", code="not_holder")
    r.require_after_lot(lot, when[0])
    location = r.own_location(session=session, organisation_id=org, location_id=data.location_id, required=True)
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.STORE,
        when=when,
        data=data,
        location=location,
        lot_id=lot.id,
        payload={},
    )
    seal(
        session=session,
        event=event,
        lots=[lot_row(event_id=event.id, lot_id=lot.id, role="object", organisation_id=org)],  # type: ignore[arg-type]
    )
    return event


def record_inspect(*, session: Session, actor: Actor, data: InspectIn) -> Event:
    """An inspection: by a market inspector (any lot), or by an organisation's own quality control on a
    lot it holds stock of now. A former holder (its holding down to zero) no longer may: the public
    timeline would show it inspecting goods it no longer has."""
    if actor.organisation_id is None:
        raise Forbidden("Inspections are recorded by an inspector's or holder's organisation", code="not_a_writer")
    org = actor.organisation_id
    when = r.event_time(data)
    lot = r.lot_for_update(session=session, lot_id=data.lot_id)
    if actor.role != Role.INSPECTOR:
        require_writer(actor)
        if r.stock_for_update(session=session, lot_id=lot.id, organisation_id=org) <= 0:  # type: ignore[arg-type]
            raise Forbidden(
                f"Your organisation holds none of lot {lot.lot_code} now: only a market inspector "
                "or an organisation holding stock of it may record an inspection",
                code="not_holder",
            )
    r.require_after_lot(lot, when[0])
    location = r.own_location(session=session, organisation_id=org, location_id=data.location_id)
    disposition = {"pass": "conformant", "warning": "conformant", "fail": "non_conformant"}[data.result]
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.INSPECT,
        when=when,
        data=data,
        location=location,
        lot_id=lot.id,
        disposition=disposition,
        payload={"result": data.result, "photos": data.photos},
    )
    seal(
        session=session,
        event=event,
        lots=[lot_row(event_id=event.id, lot_id=lot.id, role="object", organisation_id=org)],  # type: ignore[arg-type]
    )
    return event
