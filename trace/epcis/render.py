"""Event rows → EPCIS 2.0 event objects (JSON-LD), a batch at a time: a handful of queries per batch,
never one per event.

Mapping (trace/events/models.py ``EPCIS_SHAPE`` gives type, action, bizStep and disposition):
harvest → ObjectEvent ADD with the new lot in ``quantityList`` (expiry in ``ilmd``); transform →
TransformationEvent (input/output quantity lists); ship/receive → ObjectEvent with owning-party
source and destination; commission/decommission → ObjectEvent with the units' Digital Links; pack →
AggregationEvent; a correction → a copy of the event it corrects carrying ``errorDeclaration`` (EPCIS's
way to declare an event erroneous; both have the corrected event's ``eventID``). Our own facts go under
the ``hytrace:`` namespace. Private facts (farming inputs, key data elements, business documents,
serials) are left out for readers outside the event's organisation, as ``trace/events/query.py`` does.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Text, select, type_coerce

from trace.access import Actor, Role, can_see_private
from trace.epcis import vocab
from trace.epcis.hashid import hash_id
from trace.epcis.models import EpcisEventId
from trace.events.models import Event, EventLot, EventType
from trace.locations import Location
from trace.lots import Lot
from trace.organisations import Organisation, OrgKind, PartyRow, may_identify
from trace.platform.sqltypes import in_chunks
from trace.platform.timeutil import parse_offset
from trace.units import Unit

EVENTS = Event.__table__  # type: ignore[attr-defined]
EVENT_LOTS = EventLot.__table__  # type: ignore[attr-defined]
LOTS = Lot.__table__  # type: ignore[attr-defined]
PLACES = Location.__table__  # type: ignore[attr-defined]
ORGS = Organisation.__table__  # type: ignore[attr-defined]
IDS = EpcisEventId.__table__  # type: ignore[attr-defined]
UNITS = Unit.__table__  # type: ignore[attr-defined]
H = vocab.PREFIX + ":"
_WITH_FACTS = frozenset({EventType.INSPECT, EventType.LOSS, EventType.DECOMMISSION, EventType.COMMISSION})
_COLUMNS = (
    "id",
    "organisation_id",
    "type",
    "epcis_type",
    "action",
    "biz_step",
    "disposition",
    "event_time",
    "event_tz_offset",
    "record_time",
    "location_id",
    "source_organisation_id",
    "destination_organisation_id",
    "lot_id",
    "corrects_event_id",
)
# What rendering reads of an event, with its EPCIS id; JSON as the stored text, decoded by :func:`row`
# (most payloads are tiny or empty: the generic JSON type's processing cost more than the rest of a row).
_READ = [
    *(EVENTS.c[name] for name in _COLUMNS if name not in ("event_time", "record_time")),
    type_coerce(EVENTS.c.event_time, Text).label("event_time"),
    type_coerce(EVENTS.c.record_time, Text).label("record_time"),
    type_coerce(EVENTS.c.payload, Text).label("payload"),
    type_coerce(EVENTS.c.biz_transactions, Text).label("biz_transactions"),
    IDS.c.epcis_id,
]
SELECT = select(*_READ).select_from(EVENTS.outerjoin(IDS, IDS.c.event_id == EVENTS.c.id))
# The same with each event's lot rows joined (one row per event and lot; ordered by the caller).
SELECT_LOTS = select(
    *_READ,
    EVENT_LOTS.c.lot_id.label("el_lot_id"),
    EVENT_LOTS.c.role.label("el_role"),
    EVENT_LOTS.c.quantity.label("el_quantity"),
    EVENT_LOTS.c.unit.label("el_unit"),
).select_from(
    EVENTS.outerjoin(IDS, IDS.c.event_id == EVENTS.c.id).outerjoin(EVENT_LOTS, EVENT_LOTS.c.event_id == EVENTS.c.id)
)


def _json(value: Any, empty: Any) -> Any:
    if value is None:
        return empty
    if isinstance(value, str):
        if value == "{}":
            return {}
        return [] if value == "[]" else json.loads(value)
    return value  # PostgreSQL's driver decodes json itself


def row(found: Mapping[Any, Any]) -> dict[str, Any]:
    """A :data:`SELECT` row (as a mapping) as :func:`render` reads it."""
    return rows(list(found.keys()), [tuple(found.values())])[0]


def rows(keys: list[str], found: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """:data:`SELECT` rows (plain tuples, with the result's keys) as :func:`render` reads them."""
    out = []
    for values in found:
        event = dict(zip(keys, values, strict=True))
        event["payload"] = _json(event["payload"], {})
        event["biz_transactions"] = _json(event["biz_transactions"], [])
        for name in ("event_time", "record_time"):  # read as text: the generic type's parsing cost more
            if isinstance(event[name], str):
                event[name] = datetime.fromisoformat(event[name])
        out.append(event)
    return out


def with_lots(
    keys: list[str], found: Iterable[Sequence[Any]], page: int
) -> Iterator[tuple[list[dict[str, Any]], dict[str, list[Mapping[Any, Any]]]]]:
    """:data:`SELECT_LOTS` rows (an event's rows together) → batches of ``page`` events with their lot rows."""
    lots_at = [keys.index(k) for k in ("el_lot_id", "el_role", "el_quantity", "el_unit")]
    width = lots_at[0]
    events: list[Sequence[Any]] = []
    lot_rows: dict[str, list[Mapping[Any, Any]]] = {}
    last = None
    for values in found:
        event_id = values[0]
        if event_id != last:
            if len(events) >= page:
                yield rows(keys[:width], events), lot_rows
                events, lot_rows = [], {}
            events.append(values[:width])
            lot_rows[event_id] = []
            last = event_id
        if values[lots_at[0]] is not None:
            lot_rows[event_id].append(
                {
                    "event_id": event_id,
                    "lot_id": values[lots_at[0]],
                    "role": values[lots_at[1]],
                    "quantity": values[lots_at[2]],
                    "unit": values[lots_at[3]],
                }
            )
    if events:
        yield rows(keys[:width], events), lot_rows


@dataclass
class Facts:
    """Everything a batch of events refers to, loaded at once."""

    lot_rows: dict[str, list[Mapping[Any, Any]]] = field(default_factory=lambda: defaultdict(list))
    lots: dict[int, Mapping[Any, Any]] = field(default_factory=dict)
    places: dict[int, Mapping[Any, Any]] = field(default_factory=dict)
    orgs: dict[int, Mapping[Any, Any]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # our event id → EPCIS event id
    targets: dict[str, Mapping[Any, Any]] = field(default_factory=dict)  # events that corrections correct
    uris: dict[tuple[str, Any], str | None] = field(default_factory=dict)  # each lot's, place's, party's URI, made once
    withheld: bool = False  # a party's identity was withheld from the body last rendered
    hidden: dict[tuple[int, Actor], bool] = field(default_factory=dict)  # (party, reader) → identity withheld
    log: bool = False  # rendering the log's form (log_forms): every household by number, no farming inputs
    serials: dict[str, list[str]] = field(default_factory=dict)  # commission event → the serials it registered

    def lot_class(self, lot_id: int) -> str:
        """The EPC class URI of a lot of the batch."""
        key = ("lot", lot_id)
        if key not in self.uris:
            lot = self.lots[lot_id]
            self.uris[key] = vocab.lot_class(lot["gtin"], lot["lot_code"])
        return self.uris[key]  # type: ignore[return-value]


def _in(connection: Connection, query: Any, column: Any, values: Iterable[Any]) -> list[Mapping[Any, Any]]:
    wanted = sorted({v for v in values if v is not None})
    out: list[Mapping[Any, Any]] = []
    for chunk in in_chunks(wanted):
        out.extend(connection.execute(query.where(column.in_(chunk))).mappings().all())
    return out


# What rendering reads of each lot, place and party (``known`` rows given to :func:`load` have these keys).
LOT_COLUMNS = ("id", "gtin", "lot_code")
PLACE_COLUMNS = ("id", "gln", "kind", "code")
ORG_COLUMNS = ("id", "gln", "tax_code", "practices_public", "kind", "name", "commune_code", "personal_name_consent")
_MASTER = {"lot": (LOTS, LOT_COLUMNS), "place": (PLACES, PLACE_COLUMNS), "org": (ORGS, ORG_COLUMNS)}
Known = MutableMapping[tuple[str, Any], Mapping[str, Any]]


def _master(connection: Connection, kind: str, ids: Iterable[Any], known: Known | None) -> dict[Any, Mapping[Any, Any]]:
    """Rows of one master table by id: those ``known`` has, the others read (and added to ``known``)."""
    table, columns = _MASTER[kind]
    found: dict[Any, Mapping[Any, Any]] = {}
    missing = []
    for key in {v for v in ids if v is not None}:
        if known is not None:
            try:
                found[key] = known[(kind, key)]
                continue
            except KeyError:
                pass
        missing.append(key)
    for read in _in(connection, select(*(table.c[c] for c in columns)), table.c.id, missing):
        found[read["id"]] = read
        if known is not None:
            known[(kind, read["id"])] = read
    return found


def load(
    connection: Connection,
    events: Sequence[Mapping[Any, Any]],
    lot_rows: dict[str, list[Mapping[Any, Any]]] | None = None,
    known: Known | None = None,
) -> Facts:
    """The lots, places, parties and ids the events mention (``lot_rows``: the events' lot rows, when
    the caller read them with the events; ``known``: lot, place and party rows the caller holds, by
    ``("lot" | "place" | "org", id)``, which are not read again)."""
    facts = Facts()
    corrections = [e for e in events if str(e["type"]) == EventType.CORRECTION]
    if corrections:
        targets = _in(connection, SELECT, EVENTS.c.id, (e["corrects_event_id"] for e in corrections))
        facts.targets = {t["id"]: row(t) for t in targets}
    every = [*events, *facts.targets.values()]
    if lot_rows is not None:
        facts.lot_rows.update(lot_rows)
    missing = [e["id"] for e in every if lot_rows is None or e["id"] not in lot_rows]
    wanted = select(
        EVENT_LOTS.c.event_id, EVENT_LOTS.c.lot_id, EVENT_LOTS.c.role, EVENT_LOTS.c.quantity, EVENT_LOTS.c.unit
    )
    for lot_row in _in(connection, wanted.order_by(EVENT_LOTS.c.id), EVENT_LOTS.c.event_id, missing):
        facts.lot_rows[lot_row["event_id"]].append(lot_row)
    lot_ids = {r["lot_id"] for rows in facts.lot_rows.values() for r in rows}
    place_ids: set[int | None] = set()
    org_ids: set[int | None] = set()
    referenced: list[str | None] = []
    for e in every:
        payload = e["payload"] or {}
        if payload:
            lot_ids.update(u["lot_id"] for u in payload.get("units", []) + payload.get("children", []))
            place_ids.add(payload.get("destination_location_id"))
            referenced.append(payload.get("ship_event_id"))
        place_ids.add(e["location_id"])
        org_ids.update((e["organisation_id"], e["source_organisation_id"], e["destination_organisation_id"]))
    facts.lots = _master(connection, "lot", lot_ids, known)
    facts.places = _master(connection, "place", place_ids, known)
    facts.orgs = _master(connection, "org", org_ids, known)
    facts.ids = {r["event_id"]: r["epcis_id"] for r in _in(connection, select(IDS), IDS.c.event_id, referenced)}
    # Commissions commit to their serials by a digest (older ones carry a copy): the unit table has them.
    registered = [
        e["id"] for e in every if str(e["type"]) == EventType.COMMISSION and "serials" not in (e["payload"] or {})
    ]
    units = select(UNITS.c.created_event_id, UNITS.c.serial).order_by(UNITS.c.id)
    for unit in _in(connection, units, UNITS.c.created_event_id, registered):
        facts.serials.setdefault(unit["created_event_id"], []).append(unit["serial"])
    return facts


_ZONES: dict[str, tuple[Any, Any]] = {}


def _time(value: datetime, offset: str | None = None) -> str:
    """A stored UTC instant as EPCIS writes it: with the event's own offset, or in UTC (``Z``)."""
    if value.tzinfo is UTC:
        value = value.replace(tzinfo=None)
    elif value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if offset is None:
        return value.isoformat() + "Z"
    if offset not in _ZONES:
        zone = parse_offset(offset)
        _ZONES[offset] = (zone.utcoffset(None), zone)
    delta, zone = _ZONES[offset]
    # Plain arithmetic with a cached zone: astimezone per event was a third of a 100,000-event export.
    return (value + delta).replace(tzinfo=zone).isoformat()


def _quantity(facts: Facts, row: Mapping[Any, Any]) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": facts.lot_class(row["lot_id"])}
    if row["quantity"] is not None:
        element["quantity"] = float(Decimal(row["quantity"]))
        if row["unit"] in vocab.UOM:
            element["uom"] = vocab.UOM[row["unit"]]
    return element


def _place(facts: Facts, location_id: int | None) -> str | None:
    key = ("place", location_id)
    if key not in facts.uris:
        place = facts.places.get(location_id) if location_id is not None else None
        facts.uris[key] = (
            None
            if place is None
            else vocab.location_uri(
                location_id=place["id"], gln=place["gln"], kind=str(place["kind"]), code=place["code"]
            )
        )
    return facts.uris[key]


def _party(facts: Facts, org_id: int | None, reader: Actor | None) -> str | None:
    """A party's URI: by GLN or tax code, or (a household whose identity ``reader`` may not see, see
    trace.organisations.shown_party and may_identify) by a number that says nothing of who it is. ``reader`` None: the
    full form, as the hash id is computed on."""
    org = facts.orgs.get(org_id) if org_id is not None else None
    if org is None:
        return None
    withheld = False
    if facts.log:
        # The log keeps what it records for ever, and a household may withdraw its consent: never its name.
        withheld = OrgKind(org["kind"]) == OrgKind.FARM
    elif reader is not None:  # decided once per party and reader: an export renders a party per event
        seen = (org["id"], reader)
        if seen not in facts.hidden:
            facts.hidden[seen] = not may_identify(
                PartyRow(org["id"], org["kind"], org["name"], org["commune_code"], bool(org["personal_name_consent"])),
                reader,
            )
        withheld = facts.hidden[seen]
    facts.withheld = facts.withheld or withheld
    key = ("party", (org_id, withheld))
    if key not in facts.uris:
        facts.uris[key] = (
            vocab.withheld_party_uri(org["id"])
            if withheld
            else vocab.party_uri(gln=org["gln"], tax_code=org["tax_code"])
        )
    return facts.uris[key]


def _units(facts: Facts, refs: Iterable[Mapping[Any, Any]]) -> list[str]:
    out = []
    for ref in refs:
        lot = facts.lots[ref["lot_id"]]
        out.append(vocab.unit_uri(lot["gtin"], lot["lot_code"], ref["serial"]))
    return out


def _unit_counts(facts: Facts, refs: Iterable[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    counted = Counter(ref["lot_id"] for ref in refs)
    return [
        {"epcClass": facts.lot_class(lot), "quantity": count, "uom": "H87"} for lot, count in sorted(counted.items())
    ]


_KINDS = {kind.value: kind for kind in EventType}  # a dict read, not an Enum call, per event


def _body(event: Mapping[Any, Any], facts: Facts, full: bool, reader: Actor | None = None) -> dict[str, Any]:
    kind = _KINDS[str(event["type"])]
    payload: dict[str, Any] = event["payload"] or {}
    rows = facts.lot_rows.get(event["id"], [])
    out: dict[str, Any] = {
        "type": event["epcis_type"],
        "eventTime": _time(event["event_time"], event["event_tz_offset"]),
        "eventTimeZoneOffset": event["event_tz_offset"],
    }
    if kind == EventType.TRANSFORM:
        out["inputQuantityList"] = [_quantity(facts, r) for r in rows if r["role"] == "input"]
        out["outputQuantityList"] = [_quantity(facts, r) for r in rows if r["role"] == "output"]
    elif kind == EventType.PACK:
        out["parentID"] = vocab.parent_uri(payload["parent_id"])
        if full:
            out["childEPCs"] = _units(facts, payload["children"])
        else:
            out["childQuantityList"] = _unit_counts(facts, payload["children"])
    elif kind == EventType.COMMISSION:
        lot = facts.lots[rows[0]["lot_id"]]
        if full:
            serials = payload["serials"] if "serials" in payload else facts.serials.get(event["id"], [])
            out["epcList"] = [vocab.unit_uri(lot["gtin"], lot["lot_code"], s) for s in serials]
        else:
            out["quantityList"] = [
                {"epcClass": facts.lot_class(rows[0]["lot_id"]), "quantity": payload["count"], "uom": "H87"}
            ]
    elif kind == EventType.DECOMMISSION:
        if full:
            out["epcList"] = _units(facts, payload["units"])
        else:
            out["quantityList"] = _unit_counts(facts, payload["units"])
    else:
        quantities = [_quantity(facts, r) for r in rows]
        if quantities:
            out["quantityList"] = quantities
        else:
            out["epcList"] = []  # a right to use names no lot: ObjectEvent still needs a list
    if event["action"]:
        out["action"] = event["action"]
    if event["biz_step"]:
        out["bizStep"] = event["biz_step"]
    if event["disposition"]:
        out["disposition"] = event["disposition"]
    place = _place(facts, event["location_id"])
    if place:
        out["readPoint"] = {"id": place}
        out["bizLocation"] = {"id": place}
    if full and event["biz_transactions"]:
        out["bizTransactionList"] = [
            {
                **({"type": bt["type"]} if bt["type"] in vocab.CBV_BTT else {}),
                "bizTransaction": vocab.biz_transaction_uri(bt["id"]),
            }
            for bt in event["biz_transactions"]
        ]
    if kind in (EventType.SHIP, EventType.RECEIVE):
        out["sourceList"] = [{"type": "owning_party", "source": _party(facts, event["source_organisation_id"], reader)}]
        out["destinationList"] = [
            {"type": "owning_party", "destination": _party(facts, event["destination_organisation_id"], reader)}
        ]
        destination_place = _place(facts, payload.get("destination_location_id"))
        if destination_place:
            out["destinationList"].append({"type": "location", "destination": destination_place})
    if kind == EventType.HARVEST and payload.get("expiry_date"):
        out["ilmd"] = {"cbvmda:itemExpirationDate": payload["expiry_date"]}
    out[H + "eventType"] = kind.value
    out[H + "organisation"] = _party(facts, event["organisation_id"], reader)  # whose chain records it
    _extensions(out, kind, payload, facts, full, event)
    return out


def _extensions(
    out: dict[str, Any], kind: EventType, payload: Mapping[Any, Any], facts: Facts, full: bool, event: Mapping[Any, Any]
) -> None:
    org = facts.orgs.get(event["organisation_id"])
    shown = full or (org and org["practices_public"] and not facts.log)  # a choice to publish can be undone
    if kind == EventType.HARVEST and payload.get("inputs_used") and shown:
        out[H + "inputsUsed"] = [{k: v for k, v in used.items() if v is not None} for used in payload["inputs_used"]]
    if kind == EventType.TRANSFORM:
        expiries = [
            {"epcClass": vocab.lot_class(o["gtin"], o["lot_code"]), "expiryDate": o["expiry_date"]}
            for o in payload.get("outputs", [])
            if o.get("expiry_date")
        ]
        if expiries:
            out[H + "outputExpiry"] = expiries
        if payload.get("conversion"):
            out[H + "conversion"] = payload["conversion"]
    if kind == EventType.RECEIVE and payload.get("ship_event_id") in facts.ids:
        out[H + "shipEventID"] = facts.ids[payload["ship_event_id"]]
    if kind in _WITH_FACTS:
        for name in ("result", "reason", "level"):
            if payload.get(name):
                out[H + name] = payload[name]
    if full:
        if payload.get("kde"):
            out[H + "kde"] = payload["kde"]
        if payload.get("note"):
            out[H + "note"] = payload["note"]


def full_event(event: Mapping[Any, Any], facts: Facts) -> dict[str, Any]:
    """The complete EPCIS form of one (non-correction) event, as its hash id is computed on."""
    return _body(event, facts, full=True)


def render(events: Sequence[Mapping[Any, Any]], facts: Facts, actor: Actor | None) -> list[dict[str, Any]]:
    """The events as EPCIS event objects for ``actor`` (None: everything), in the order given."""
    out = []
    for event in events:
        correction = str(event["type"]) == EventType.CORRECTION
        subject = facts.targets.get(event["corrects_event_id"]) if correction else event
        if subject is None:
            continue
        full = actor is None or can_see_private(actor, subject["organisation_id"])
        facts.withheld = False
        body = _body(subject, facts, full, actor)
        exact = full and not facts.withheld  # the form the hash id is computed on
        epcis_id = (
            subject.get("epcis_id")
            or facts.ids.get(subject["id"])
            or hash_id(body if exact else _body(subject, facts, True))
        )
        item: dict[str, Any] = {
            "type": body.pop("type"),
            "eventID": epcis_id,
            **body,
            "recordTime": _time(event["record_time"]),
        }
        if correction:
            item["errorDeclaration"] = {
                "declarationTime": _time(event["event_time"], event["event_tz_offset"]),
                "reason": (event["payload"] or {}).get("reason", "incorrect_data"),
            }
        out.append(item)
    return out


_LOG_READER = Actor(role=Role.MEMBER, organisation_id=None, name="public log")


def log_forms(events: Sequence[Mapping[Any, Any]], facts: Facts) -> list[dict[str, Any]]:
    """The events as the public log records them: their public form, with every household by number
    and no farming inputs (what it records stays public for ever; consent and choices can change)."""
    facts.log = True
    try:
        return render(events, facts, _LOG_READER)
    finally:
        facts.log = False


_EVENT_KEYS = tuple(EVENTS.c.keys())


def event_row(event: Event) -> dict[str, Any]:
    """An ORM event as the mapping :func:`render` reads."""
    loaded = event.__dict__
    return {name: loaded.get(name) for name in _EVENT_KEYS}
