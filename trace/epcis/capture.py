"""Capture: an EPCISDocument from another system → our events, through the existing recorders
(``trace/events/ledger.py``), all or nothing.

Each event is checked against GS1's schema first, then mapped to one of our kinds (by its
``hytrace:eventType`` when it has one, else by its shape: ObjectEvent ADD commissioning → harvest,
OBSERVE shipping/receiving/retail_selling/storing/inspecting → ship/receive/sell/store/inspect,
destroying/sampling → loss, TransformationEvent → transform, ObjectEvent ADD commissioning with an
``epcList`` of unit Digital Links → commission of those serials, AggregationEvent ADD packing → pack) and
recorded with our rules (the actor's organisation must own the place, hold the lot, ...). A unit's human
code is not in EPCIS: a captured unit gets a new one, as our own commissioning gives. Decommissioning
(which names codes, not serials) is not captured. Master data must exist: an unknown lot, product,
place or party is refused with its URI. An event keeps the ``eventID`` it came with (or gets its
hash id): an id we already hold is a duplicate — a whole document sent again is answered as the first
time, nothing stored; a document mixing new and known events is refused (409, naming the known ones)
unless ``duplicates="skip"``. An event with ``errorDeclaration`` whose id we know (or that came earlier
in the same document) is recorded as the correction of that event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import ValidationError
from sqlmodel import Session, SQLModel, col, select

from trace.access import Actor, require_writer
from trace.epcis import document as doc
from trace.epcis import vocab
from trace.epcis.hashid import hash_id, namespaces_of
from trace.epcis.ids import lookup, store
from trace.epcis.models import EPCIS_ID_LENGTH
from trace.epcis.refs import Resolver
from trace.errors import Conflict, DomainError, Forbidden, RuleViolation
from trace.events.ledger import INPUT_OF, capture
from trace.events.models import Event, EventType
from trace.events.schemas import CommissionIn
from trace.identifiers import validate_serial
from trace.lots import Lot, Shipment, ShipmentStatus
from trace.platform.sqltypes import in_chunks
from trace.platform.timeutil import parse_offset

H = vocab.PREFIX + ":"
BY_STEP = {
    "shipping": EventType.SHIP,
    "receiving": EventType.RECEIVE,
    "retail_selling": EventType.SELL,
    "storing": EventType.STORE,
    "inspecting": EventType.INSPECT,
    "destroying": EventType.LOSS,
    "sampling": EventType.LOSS,
}
LOSS_REASON = {"damaged": "damage", "destroyed": "spoilage", "non_sellable_other": "sample"}
BATCH = 500  # events per call of the recorders
MAKERS = (EventType.HARVEST, EventType.TRANSFORM, EventType.SHIP)  # make lots or shipments later items may need


@dataclass
class Outcome:
    """What a capture did: the EPCIS ids of the document's events, in order, and what became of them."""

    event_ids: list[str] = field(default_factory=list)
    recorded: int = 0
    corrections: int = 0
    skipped: list[str] = field(default_factory=list)
    replayed: bool = False


def _bare(value: str) -> str:
    return value.rsplit("-", 1)[-1] if value.startswith("https://ref.gs1.org/cbv/") else value.rsplit(":", 1)[-1]


def _kind(event: dict[str, Any]) -> EventType:
    named = event.get(H + "eventType")
    if named in {k.value for k in INPUT_OF}:
        return EventType(named)
    step = _bare(event.get("bizStep", ""))
    if event["type"] == "TransformationEvent":
        return EventType.TRANSFORM
    if (
        event["type"] == "ObjectEvent"
        and event.get("action") == "ADD"
        and step == "commissioning"
        and event.get("quantityList")
    ):
        return EventType.HARVEST
    if (
        event["type"] == "ObjectEvent"
        and event.get("action") == "ADD"
        and step == "commissioning"
        and event.get("epcList")
    ):
        return EventType.COMMISSION
    if event["type"] == "AggregationEvent" and event.get("action") == "ADD" and step == "packing":
        return EventType.PACK
    if event["type"] == "ObjectEvent" and step in BY_STEP:
        return BY_STEP[step]
    raise RuleViolation(
        f"A {event['type']} with bizStep {step or 'none'} is not something hytrace records", code="not_capturable"
    )


def _time(event: dict[str, Any], name: str = "eventTime", offset: str | None = None) -> datetime:
    moment = datetime.fromisoformat(event[name].replace("Z", "+00:00"))
    return moment.astimezone(parse_offset(offset or event.get("eventTimeZoneOffset") or "+00:00"))


_SSCC = re.compile(re.escape(vocab.GS1_ID) + r"/00/(\d{18})")


def _parent(uri: str) -> str:
    """The carton or pallet id :func:`vocab.parent_uri` made a URI of."""
    if m := _SSCC.fullmatch(uri):
        return m[1]
    ours = f"{vocab.base()}/epcis/id/parent/"
    return unquote(uri[len(ours) :]) if uri.startswith(ours) else uri


def _offset(moment: str) -> str:
    """The offset a date-time was written with (``Z`` → ``+00:00``)."""
    return moment[-6:] if moment[-6:-5] in ("+", "-") else "+00:00"


class _Mapper:
    """One document's events → our inputs, resolving URIs against the database."""

    def __init__(self, session: Session, org: int) -> None:
        self.session, self.org, self.refs = session, org, Resolver(session)

    def _need(self, found: Any, what: str, uri: str) -> Any:
        if found is None:
            raise RuleViolation(f"Unknown {what}: {uri}", code="unknown_master_data", uri=uri)
        return found

    def _lot(self, uri: str) -> int:
        return self._need(self.refs.lot(uri), "lot (EPC class)", uri)  # type: ignore[no-any-return]

    def _place(self, event: dict[str, Any], required: bool = False) -> int | None:
        where = (event.get("bizLocation") or event.get("readPoint") or {}).get("id")
        if where is None:
            if required:
                raise RuleViolation("bizLocation is required for this event", code="location_required")
            return None
        return self._need(self.refs.location(where), "location", where)  # type: ignore[no-any-return]

    def _party(self, items: list[dict[str, Any]], key: str, kind: str = "owning_party") -> int | None:
        for item in items:
            if _bare(item.get("type", "")) == kind:
                return self._need(
                    self.refs.party(item[key]) if kind != "location" else self.refs.location(item[key]),
                    "party" if kind != "location" else "location",
                    item[key],
                )  # type: ignore[no-any-return]
        return None

    def _unit(self, uri: str) -> tuple[int, str]:
        """The lot and serial of a unit's Digital Link (``…/01/{gtin}/10/{lot}/21/{serial}``)."""
        ref = self.refs.ref(uri)
        if ref.kind != "unit" or not ref.gtin or not ref.lot or not ref.serial:
            raise RuleViolation(
                f"Not a unit's Digital Link with GTIN, lot and serial: {uri}", code="bad_unit_uri", uri=uri
            )
        validate_serial(ref.serial)
        lot = self._need(self.refs.lot(vocab.lot_class(ref.gtin, ref.lot)), "lot of unit", uri)
        return lot, ref.serial  # type: ignore[return-value]

    def _units(self, uris: list[str]) -> list[tuple[int, str]]:
        units = [self._unit(uri) for uri in uris]
        if len(set(units)) != len(units):
            raise RuleViolation("A unit is listed twice", code="duplicate_unit")
        return units

    def _one(self, event: dict[str, Any], name: str = "quantityList") -> tuple[int, Decimal]:
        items = event.get(name) or []
        if len(items) != 1 or items[0].get("quantity") is None:
            raise RuleViolation(f"{name} must name exactly one lot with its quantity", code="one_lot_expected")
        return self._lot(items[0]["epcClass"]), _qty(items[0]["quantity"])

    def common(self, event: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"event_time": _time(event)}
        transactions = []
        for item in event.get("bizTransactionList", []):
            kind = _bare(item.get("type", "other"))
            transactions.append(
                {
                    "type": kind if kind in ("inv", "desadv", "po", "recadv", "bol", "cert") else "other",
                    "id": vocab.biz_transaction_id(item["bizTransaction"]),
                }
            )
        out["biz_transactions"] = transactions
        for ours in ("kde", "note"):
            if event.get(H + ours):
                out[ours] = event[H + ours]
        return out

    def map(self, kind: EventType, event: dict[str, Any]) -> dict[str, Any]:
        data = self.common(event)
        if kind == EventType.HARVEST:
            items = event.get("quantityList") or []
            if len(items) != 1 or items[0].get("quantity") is None:
                raise RuleViolation("A harvest names exactly one new lot with its quantity", code="one_lot_expected")
            ref = self.refs.ref(items[0]["epcClass"])
            if ref.kind != "lot":
                raise RuleViolation(f"Not a lot class: {items[0]['epcClass']}", code="unknown_master_data")
            data.update(
                product_id=self._need(self.refs.product(ref.gtin or ""), "product (GTIN)", ref.gtin or ""),
                lot_code=ref.lot,
                quantity=_qty(items[0]["quantity"]),
                location_id=self._place(event, True),
                expiry_date=(event.get("ilmd") or {}).get("cbvmda:itemExpirationDate"),
                inputs_used=event.get(H + "inputsUsed", []),
            )
        elif kind == EventType.TRANSFORM:
            expiry = {e["epcClass"]: e["expiryDate"] for e in event.get(H + "outputExpiry", [])}
            outputs = []
            for item in event.get("outputQuantityList") or []:
                ref = self.refs.ref(item["epcClass"])
                if ref.kind != "lot":
                    raise RuleViolation(f"Not a lot class: {item['epcClass']}", code="unknown_master_data")
                outputs.append(
                    {
                        "product_id": self._need(self.refs.product(ref.gtin or ""), "product (GTIN)", ref.gtin or ""),
                        "lot_code": ref.lot,
                        "quantity": _qty(item.get("quantity")),
                        "expiry_date": expiry.get(item["epcClass"]),
                    }
                )
            data.update(
                inputs=[
                    {"lot_id": self._lot(i["epcClass"]), "quantity": _qty(i.get("quantity"))}
                    for i in event.get("inputQuantityList") or []
                ],
                outputs=outputs,
                conversion=event.get(H + "conversion"),
                location_id=self._place(event),
            )
        elif kind == EventType.SHIP:
            lot, quantity = self._one(event)
            destinations = event.get("destinationList", [])
            data.update(
                lot_id=lot,
                quantity=quantity,
                location_id=self._place(event),
                destination_organisation_id=self._need(
                    self._party(destinations, "destination"), "destination party", "destinationList owning_party"
                ),
                destination_location_id=self._party(destinations, "destination", "location"),
            )
        elif kind == EventType.RECEIVE:
            lot, quantity = self._one(event)
            data.update(shipment_id=self._shipment(event, lot), quantity=quantity, location_id=self._place(event))
        elif kind in (EventType.SELL, EventType.LOSS):
            lot, quantity = self._one(event)
            data.update(lot_id=lot, quantity=quantity, location_id=self._place(event))
            if kind == EventType.LOSS:
                data["reason"] = event.get(H + "reason") or (
                    "sample"
                    if _bare(event.get("bizStep", "")) == "sampling"
                    else LOSS_REASON.get(_bare(event.get("disposition", "")), "other")
                )
        elif kind == EventType.COMMISSION:
            if (
                event["type"] != "ObjectEvent"
                or event.get("action") != "ADD"
                or not event.get("epcList")
                or event.get("quantityList")
            ):
                raise RuleViolation(
                    "A commissioning is captured with its units' Digital Links (epcList), not a count",
                    code="units_expected",
                )
            units = self._units(event["epcList"])
            if len({lot for lot, _ in units}) != 1:
                raise RuleViolation("A commissioning names units of exactly one lot", code="one_lot_expected")
            data.update(
                lot_id=units[0][0],
                count=len(units),
                serials=[serial for _, serial in units],
                location_id=self._place(event),
            )
            if event.get(H + "level"):
                data["level"] = event[H + "level"]
        elif kind == EventType.PACK:
            if (
                event["type"] != "AggregationEvent"
                or event.get("action") != "ADD"
                or not event.get("parentID")
                or not event.get("childEPCs")
            ):
                raise RuleViolation(
                    "A packing is captured with its carton (parentID) and its units' Digital Links (childEPCs)",
                    code="units_expected",
                )
            data.update(
                parent_id=_parent(event["parentID"]),
                location_id=self._place(event),
                children=[{"lot_id": lot, "serial": serial} for lot, serial in self._units(event["childEPCs"])],
            )
        elif kind in (EventType.STORE, EventType.INSPECT):
            items = event.get("quantityList") or []
            if len(items) != 1:
                raise RuleViolation("quantityList must name exactly one lot", code="one_lot_expected")
            data.update(lot_id=self._lot(items[0]["epcClass"]), location_id=self._place(event, kind == EventType.STORE))
            if kind == EventType.INSPECT:
                data["result"] = event.get(H + "result") or (
                    "fail" if _bare(event.get("disposition", "")) == "non_conformant" else "pass"
                )
        else:
            raise RuleViolation(
                f"Events of kind {kind.value} are not captured from EPCIS documents", code="not_capturable"
            )
        return data

    def _shipment(self, event: dict[str, Any], lot: int) -> int:
        shipped = event.get(H + "shipEventID")
        if shipped:
            ours = lookup(self.session.connection(), [shipped]).get(shipped)
            found = self.session.exec(select(Shipment.id).where(Shipment.event_id == ours)).first() if ours else None
            if found is not None:
                return found
        sender = self._party(event.get("sourceList", []), "source")
        query = select(Shipment.id).where(
            Shipment.lot_id == lot, Shipment.to_organisation_id == self.org, Shipment.status == ShipmentStatus.OPEN
        )
        if sender is not None:
            query = query.where(Shipment.from_organisation_id == sender)
        found = self.session.exec(query.order_by(Shipment.id)).first()  # type: ignore[arg-type]
        return self._need(found, "shipment in transit to you of lot", event["quantityList"][0]["epcClass"])  # type: ignore[no-any-return]


def _qty(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, TypeError):
        raise RuleViolation(f"{value!r} is not a quantity", code="bad_quantity") from None


def _validated(kind: EventType, data: dict[str, Any]) -> SQLModel:
    serials = data.pop("serials", None)
    try:
        validated = INPUT_OF[kind].model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RuleViolation(f"{where}: {first['msg']}", code="validation_error") from None
    if isinstance(validated, CommissionIn):
        validated._serials = serials  # the document's serials, not random ones
    return validated


def _reindex(error: DomainError, index: int) -> DomainError:
    """An error of the recorders, naming the document's event instead of the batch's."""
    local = error.details.pop("index", None)
    if local is not None and error.message.startswith(f"Event {local}: "):
        error.message = error.message[len(f"Event {local}: ") :]
    return error.at_index(index)


def capture_document(
    *, session: Session, actor: Actor, document: Any, duplicates: Literal["refuse", "skip"] = "refuse"
) -> Outcome:
    """Record a document's events (and error declarations) in the caller's transaction, or none."""
    doc.require_valid(document)
    if document.get("type") != "EPCISDocument":
        raise RuleViolation("Capture takes an EPCISDocument", code="not_a_document")
    org = require_writer(actor)
    events: list[dict[str, Any]] = document["epcisBody"]["eventList"]
    if not events:
        raise RuleViolation("The document has no events", code="empty_capture")
    names = namespaces_of(document.get("@context"))
    ids = [str(e.get("eventID") or hash_id(e, names)) for e in events]
    for index, epcis_id in enumerate(ids):
        if len(epcis_id) > EPCIS_ID_LENGTH:
            raise RuleViolation(
                f"eventID is longer than {EPCIS_ID_LENGTH} characters", code="event_id_too_long"
            ).at_index(index)
    known = lookup(session.connection(), ids)
    corrected: set[str | None] = set()
    for chunk in in_chunks(list(known.values())):
        corrected.update(
            session.exec(select(col(Event.corrects_event_id)).where(col(Event.corrects_event_id).in_(chunk)))
        )
    outcome = Outcome(event_ids=ids)
    seen: set[str] = set()
    plan: list[tuple[int, str]] = []  # (index, "event" | "correction")
    held: list[str] = []  # events already recorded before this document
    for index, (event, epcis_id) in enumerate(zip(events, ids, strict=True)):
        declared = "errorDeclaration" in event
        if declared:
            if epcis_id in known and known[epcis_id] in corrected:
                outcome.skipped.append(epcis_id)  # declared erroneous already
                held.append(epcis_id)
            elif epcis_id in known or epcis_id in seen:
                plan.append((index, "correction"))
            else:
                raise RuleViolation(
                    f"errorDeclaration for an event we do not hold: {epcis_id}", code="unknown_event", event_id=epcis_id
                ).at_index(index)
        elif epcis_id in known:
            outcome.skipped.append(epcis_id)
            held.append(epcis_id)
        elif epcis_id in seen:
            outcome.skipped.append(epcis_id)  # the same event twice in one document: recorded once
        else:
            seen.add(epcis_id)
            plan.append((index, "event"))
    if not plan:
        outcome.replayed = True  # the same document again: the same answer, nothing stored
        return outcome
    if held and duplicates == "refuse":
        raise Conflict(
            f"{len(held)} event(s) of the document are already recorded: {', '.join(held[:10])}",
            code="duplicate_events",
            event_ids=held,
        )
    _record(session, actor, org, events, ids, plan, outcome)
    return outcome


def _record(
    session: Session,
    actor: Actor,
    org: int,
    events: list[dict[str, Any]],
    ids: list[str],
    plan: list[tuple[int, str]],
    outcome: Outcome,
) -> None:
    mapper = _Mapper(session, org)
    pending: list[tuple[int, EventType, SQLModel]] = []
    made_lots: list[int] = []

    def flush() -> None:
        # The recorders in parts of BATCH (as bench.capture measures them), all inside this call's
        # savepoint: one part refused undoes the parts before it.
        for start in range(0, len(pending), BATCH):
            part = pending[start : start + BATCH]
            try:
                result = capture(
                    session=session, actor=actor, items=[(k, d) for _, k, d in part], minimal=True, epcis_ids=False
                )
            except DomainError as error:
                local = error.details.get("index", 0)
                raise _reindex(error, part[local][0] if local < len(part) else part[0][0]) from None
            made_lots.extend(result.lot_ids)
            store(
                session.connection(),
                {
                    ours: ids[index]
                    for (index, kind, _), ours in zip(part, result.event_ids, strict=True)
                    if kind != EventType.CORRECTION
                },
                fallback=False,
            )
            outcome.recorded += sum(1 for _, kind, _ in part if kind != EventType.CORRECTION)
            outcome.corrections += sum(1 for _, kind, _ in part if kind == EventType.CORRECTION)
        pending.clear()
        mapper.refs.forget_lots()

    try:
        with session.begin_nested():
            for index, what in plan:
                event = events[index]
                try:
                    if what == "correction":
                        flush()  # the event it corrects may be in the batch
                        ours = lookup(session.connection(), [ids[index]])[ids[index]]
                        declaration = event["errorDeclaration"]
                        reason = _bare(declaration.get("reason", "incorrect_data"))
                        data: Any = {
                            "event_id": ours,
                            "reason": reason,
                            "event_time": _time(
                                declaration, "declarationTime", _offset(declaration["declarationTime"])
                            ),
                        }
                        pending.append((index, EventType.CORRECTION, _validated(EventType.CORRECTION, data)))
                        flush()
                        continue
                    kind = _kind(event)
                    recorder = event.get(H + "organisation")
                    if recorder is not None and mapper.refs.party(recorder) != org:
                        raise Forbidden(
                            f"Event recorded by {recorder}: you may only capture your organisation's events",
                            code="not_your_organisation",
                        )
                    if kind != EventType.HARVEST and any(k in MAKERS for _, k, _ in pending):
                        flush()
                    validated = _validated(kind, mapper.map(kind, event))
                    validated._epcis_id = ids[index]  # type: ignore[attr-defined]
                    pending.append((index, kind, validated))
                except DomainError as error:
                    if "index" in error.details:
                        raise
                    raise error.at_index(index) from None
            flush()
    except BaseException:
        session.expire_all()
        # Lots written directly (Core) by earlier parts are gone with the savepoint: forget them.
        made = set(made_lots)
        for key in [k for k in list(session.identity_map.keys()) if k[0] is Lot and k[1][0] in made]:
            session.expunge(session.identity_map[key])
        raise
