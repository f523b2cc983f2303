"""Capture with idempotency keys, single or in batches, all-or-nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from trace.access import Actor
from trace.epcis import ids
from trace.errors import Conflict, Forbidden, RuleViolation
from trace.events import batch
from trace.events import capture as c
from trace.events import rules as r
from trace.events.corrections import record_correction
from trace.events.effects import allocate_lot_ids, existing_lots, settle_statuses
from trace.events.models import Event, EventLot, EventType, IdempotencyRecord
from trace.events.query import events_public
from trace.events.schemas import (
    CaptureResult,
    CommissionIn,
    CorrectionIn,
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
from trace.lots import Shipment
from trace.platform.sqltypes import in_chunks
from trace.platform.timeutil import utcnow
from trace.reports import tallies
from trace.transparency import models as log_models
from trace.units import normalize_code, serials_of

INPUT_OF: dict[EventType, type[SQLModel]] = {
    EventType.HARVEST: HarvestIn,
    EventType.SHIP: ShipIn,
    EventType.RECEIVE: ReceiveIn,
    EventType.TRANSFORM: TransformIn,
    EventType.COMMISSION: CommissionIn,
    EventType.PACK: PackIn,
    EventType.SELL: SellIn,
    EventType.STORE: StoreIn,
    EventType.INSPECT: InspectIn,
    EventType.LOSS: LossIn,
    EventType.CORRECTION: CorrectionIn,
    EventType.DECOMMISSION: DecommissionIn,
}


class _Outcome:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.shipments: list[Shipment] = []  # ids are read after the final flush
        self.lots: list[Any] = []
        self.serials: list[str] = []


def _run(session: Session, actor: Actor, kind: EventType, data: Any, out: _Outcome) -> None:
    recorder: dict[EventType, Callable[..., Any]] = {
        EventType.HARVEST: c.record_harvest,
        EventType.SHIP: c.record_ship,
        EventType.RECEIVE: c.record_receive,
        EventType.TRANSFORM: c.record_transform,
        EventType.COMMISSION: c.record_commission,
        EventType.PACK: c.record_pack,
        EventType.SELL: c.record_sell,
        EventType.STORE: c.record_store,
        EventType.INSPECT: c.record_inspect,
        EventType.LOSS: c.record_loss,
        EventType.CORRECTION: record_correction,
        EventType.DECOMMISSION: c.record_decommission,
    }
    result = recorder[kind](session=session, actor=actor, data=data)
    event = result[0] if isinstance(result, tuple) else result
    out.events.append(event)
    if kind in (EventType.SHIP, EventType.RECEIVE):
        out.shipments.append(result[1])
    elif kind == EventType.HARVEST:
        out.lots.append(result[1])
    elif kind == EventType.TRANSFORM:
        out.lots.extend(result[1])
    elif kind == EventType.COMMISSION:
        out.serials.extend(result[1])


def _lots_named(session: Session, items: Sequence[tuple[EventType, SQLModel]]) -> set[int]:
    """The existing lots whose custody these items read or change (lots they make are not there yet)."""
    named: set[int] = set()
    shipments: list[int] = []
    corrected: list[str] = []
    codes: list[str] = []
    for kind, data in items:
        if isinstance(data, TransformIn):
            named.update(item.lot_id for item in data.inputs)
        elif isinstance(data, PackIn):
            named.update(ref.lot_id for ref in data.children)
        elif isinstance(data, ReceiveIn):
            shipments.append(data.shipment_id)
        elif isinstance(data, CorrectionIn):
            corrected.append(data.event_id)
        elif isinstance(data, DecommissionIn):
            codes.extend(normalize_code(code) for code in data.codes)
        elif kind != EventType.HARVEST:
            named.add(data.lot_id)  # type: ignore[attr-defined]
    for part in in_chunks(shipments):
        named.update(session.exec(select(Shipment.lot_id).where(col(Shipment.id).in_(part))))
    for events in in_chunks(corrected):
        named.update(session.exec(select(EventLot.lot_id).where(col(EventLot.event_id).in_(events))))
    if codes:
        named.update(c.lots_of_codes(session=session, codes=codes))
    return named


def _fingerprint(items: Sequence[tuple[EventType, SQLModel]]) -> str:
    digest = hashlib.sha256()
    for kind, data in items:
        digest.update(kind.value.encode())
        digest.update(data.model_dump_json().encode())
    return digest.hexdigest()


def _replay(session: Session, actor: Actor, record: IdempotencyRecord, minimal: bool) -> CaptureResult:
    events = [session.get(Event, eid) for eid in record.event_ids]
    found = [e for e in events if e is not None]
    shown = events_public(session=session, actor=actor, events=found)
    result = CaptureResult(events=[] if minimal else shown, event_ids=[e.id for e in found], replayed=True)
    commissions = [e.id for e in found if e.type == EventType.COMMISSION and "serials" not in e.payload]
    registered = serials_of(session=session, event_ids=commissions) if commissions else {}
    for event in found:
        if event.type in (EventType.SHIP, EventType.RECEIVE):
            shipment_id = (
                event.payload.get("shipment_id")
                or session.exec(select(Shipment.id).where(Shipment.event_id == event.id)).first()
            )
            result.shipment_ids.append(shipment_id)  # type: ignore[arg-type]
            result.shipment_id = shipment_id
        if event.type in (EventType.HARVEST, EventType.TRANSFORM):
            result.lot_ids.extend(p.lot_id for p in shown[found.index(event)].lots if p.role == "output")
        if event.type == EventType.COMMISSION:
            result.serials.extend(event.payload.get("serials") or registered.get(event.id, []))
    return result


def capture(
    *,
    session: Session,
    actor: Actor,
    items: Sequence[tuple[EventType, SQLModel]],
    idempotency_key: str | None = None,
    minimal: bool = False,
    epcis_ids: bool = True,
) -> CaptureResult:
    """Record one or more events in the caller's transaction; any failure records none.

    ``minimal`` answers with ids only, not the events themselves (clients capturing in bulk).
    ``epcis_ids=False``: the caller stores the events' EPCIS ids itself (events captured from an EPCIS
    document keep the ids they were sent with).
    """
    if not items:
        raise RuleViolation("Nothing to capture", code="empty_capture")
    if idempotency_key is not None:
        if actor.organisation_id is None:
            raise Forbidden("Idempotency keys need an organisation", code="not_a_writer")
        if not 1 <= len(idempotency_key) <= 100:
            raise RuleViolation("An idempotency key has 1 to 100 characters", code="bad_idempotency_key")
        fingerprint = _fingerprint(items)
        found = session.get(IdempotencyRecord, (actor.organisation_id, idempotency_key))
        if found is not None:
            if found.fingerprint != fingerprint:
                raise Conflict("This idempotency key was used for a different request", code="idempotency_key_reused")
            return _replay(session, actor, found, minimal)
    out = _Outcome()
    wanted = [(d.product_id, d.lot_code) for k, d in items if k == EventType.HARVEST]  # type: ignore[attr-defined]
    wanted += [(o.product_id, o.lot_code) for k, d in items if k == EventType.TRANSFORM for o in d.outputs]  # type: ignore[attr-defined]
    call = batch.CaptureCall(existing_lots=existing_lots(session=session, wanted=wanted))
    if wanted:
        call.lot_ids = allocate_lot_ids(session=session, count=len(wanted))
    # A savepoint: a refused item undoes the items before it (and its own half-made custody
    # changes) even when the caller catches the error and goes on to commit.
    try:
        with batch.open_call(session, call), session.begin_nested():
            # Every lot the items name is locked before the first item, in id order: batches that
            # share lots take turns instead of deadlocking (rules.lock_lots).
            r.lock_lots(session=session, lot_ids=_lots_named(session, items))
            for index, (kind, data) in enumerate(items):
                try:
                    _run(session, actor, kind, data, out)
                except (RuleViolation, Conflict, Forbidden) as error:
                    if len(items) > 1:
                        raise error.at_index(index) from None
                    raise
            batch.write_allocated(session, call)
            session.flush()
            tallies.lots_made(
                connection=session.connection(), lots=call.new_lot_rows, events=[e for e, _ in call.sealed]
            )
            settle_statuses(session=session, lots=list(call.settle.values()))
            if epcis_ids:
                ids.give_ids(session=session, sealed=call.sealed)
            # The public log's sequencer appends them once this commits (one executemany for the call).
            log_models.enqueue(session=session, event_ids=[event.id for event, _ in call.sealed])
    except BaseException:
        # Rolling back a savepoint expires only rows changed inside it; a row merely read there
        # (and kept alive by the error's traceback) would otherwise keep its stale values.
        session.expire_all()
        # Lots inserted directly (Core) are gone with the savepoint; their ids may be reused.
        for lot in call.new_lot_rows:
            if lot in session:
                session.expunge(lot)
        raise
    if idempotency_key is not None:
        try:
            with session.begin_nested():
                session.add(
                    IdempotencyRecord(
                        organisation_id=actor.organisation_id,  # type: ignore[arg-type]
                        key=idempotency_key,
                        fingerprint=fingerprint,
                        event_ids=[e.id for e in out.events],
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            # A concurrent retry with the same key won; ours must not be stored twice.
            raise Conflict(
                "The same request is being processed; retry to get its answer", code="idempotency_in_progress"
            ) from None
    return CaptureResult(
        events=[] if minimal else events_public(session=session, actor=actor, events=out.events),
        event_ids=[e.id for e in out.events],
        shipment_id=out.shipments[-1].id if out.shipments else None,
        shipment_ids=[s.id for s in out.shipments],  # type: ignore[misc]
        lot_ids=[lot.id for lot in out.lots],
        serials=out.serials,
    )
