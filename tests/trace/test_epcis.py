"""EPCIS 2.0 export: schema-valid documents (GS1's schema, format checks on), CBV 2.0 hash ids stored
when events are recorded and agreeing with the reference implementation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker
from sqlalchemy import delete as sa_delete
from sqlalchemy import func, or_, select
from sqlmodel import Session

from tests import factories as f
from trace.epcis import document, hashid, vocab
from trace.epcis import query as epcis_query
from trace.epcis.models import EpcisEventId
from trace.events.ledger import capture
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import CorrectionIn, InputUsed, LossIn, SellIn, StoreIn
from trace.organisations import Organisation
from trace.platform.config import get_settings

SCHEMA = Path(__file__).resolve().parents[2] / "trace/epcis/standards/EPCIS-JSON-Schema.json"


def gs1_validator() -> Draft7Validator:
    """Built here, not taken from the code under test: GS1's schema with every format checked."""
    return Draft7Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())


@dataclass
class Chain:
    grower: Organisation
    processor: Organisation
    lot_id: int
    dried_lot_id: int
    lost_event_id: str


def build_chain(session: Session, *, units: bool = True) -> Chain:
    """harvest → ship → receive → transform → store, sell, loss (declared erroneous), + units and a carton."""
    grower = f.org(session, gln=None)
    processor = f.org(session, "processor")
    area = f.location(session, grower, gln="9521234000013")
    fresh = f.product(session, grower)
    dried = f.product(session, processor, name_vi="Long nhãn sấy")
    store_place = f.location(session, processor, kind="warehouse", code=f"KHO-{processor.id}")
    harvest = f.harvest(
        session,
        grower,
        "100",
        prod=fresh,
        loc=area,
        days_ago=6,
        expiry_date=f.today(),
        inputs_used=[
            InputUsed(kind="fertiliser", name="NPK 16-16-8", applied_on=f.today() - timedelta(days=30), dose="2 kg")
        ],
        biz_transactions=[{"type": "inv", "id": "HĐ-0001/2026"}, {"type": "other", "id": "https://x.example/doc/1"}],
    )
    lot_id = harvest.lot_ids[0]
    shipped = f.ship(session, grower, lot_id, processor, "60", days_ago=5)
    f.receive(session, processor, shipped.shipment_id, days_ago=4.5)  # type: ignore[arg-type]
    made = f.transform(session, processor, [(lot_id, "50")], [(dried, "10")], days_ago=4)
    dried_lot = made.lot_ids[0]
    member = f.member(processor)
    capture(
        session=session,
        actor=member,
        items=[
            (EventType.STORE, StoreIn(lot_id=dried_lot, location_id=store_place.id, event_time=f.when(3.5))),  # type: ignore[arg-type]
            (EventType.SELL, SellIn(lot_id=dried_lot, quantity=Decimal("2.5"), event_time=f.when(3))),
        ],
    )
    lost = capture(
        session=session,
        actor=member,
        items=[
            (EventType.LOSS, LossIn(lot_id=dried_lot, quantity=Decimal("1"), reason="damage", event_time=f.when(2.5)))
        ],
    )
    capture(
        session=session,
        actor=member,
        items=[
            (
                EventType.CORRECTION,
                CorrectionIn(event_id=lost.event_ids[0], reason="did_not_occur", event_time=f.when(2)),
            )
        ],
    )
    if units:
        from trace.events.schemas import CommissionIn, PackIn, UnitRef

        made_units = capture(
            session=session,
            actor=member,
            items=[
                (
                    EventType.COMMISSION,
                    CommissionIn(lot_id=dried_lot, count=3, event_time=f.when(1.5), override_reason=None),
                )
            ],
        )
        capture(
            session=session,
            actor=member,
            items=[
                (
                    EventType.PACK,
                    PackIn(
                        parent_id="095212340000000017",
                        children=[UnitRef(lot_id=dried_lot, serial=s) for s in made_units.serials[:2]],
                        event_time=f.when(1),
                    ),
                )
            ],
        )
    return Chain(grower, processor, lot_id, dried_lot, lost.event_ids[0])


def chain_document(session: Session, chain: Chain, actor: Any) -> dict[str, Any]:
    body = b"".join(document.stream(epcis_query.lot_chain(session=session, actor=actor, lot_id=chain.lot_id)))
    return json.loads(body)  # type: ignore[no-any-return]


def test_a_lot_chain_exports_as_a_schema_valid_epcis_document(session: Session) -> None:
    # given a chain of two organisations with every kind of event we export
    chain = build_chain(session)
    # when the processor exports the fresh lot's chain (forward to the dried lot, its units, the carton)
    doc = chain_document(session, chain, f.member(chain.processor))
    # then GS1's schema (formats included) accepts it
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in gs1_validator().iter_errors(doc)]
    assert errors == []
    assert document.schema_errors(doc) == []  # and so does the validator capture uses
    assert doc["type"] == "EPCISDocument" and doc["@context"][0] == vocab.CONTEXT_URL
    # and it holds every event on the two lots, plus the correction as a copy with errorDeclaration
    on_lots = select(EventLot.event_id).where(EventLot.lot_id.in_([chain.lot_id, chain.dried_lot_id]))  # type: ignore[attr-defined]
    expected = session.exec(
        select(func.count())
        .select_from(Event)
        .where(  # type: ignore[call-overload]
            or_(Event.id.in_(on_lots), Event.corrects_event_id.in_(on_lots))
        )
    ).one()[0]  # type: ignore[attr-defined]
    events = doc["epcisBody"]["eventList"]
    assert len(events) == expected
    times = [
        hashid._time(e["errorDeclaration"]["declarationTime"])
        if "errorDeclaration" in e
        else hashid._time(e["eventTime"])
        for e in events
    ]
    assert times == sorted(times)
    kinds = [e["hytrace:eventType"] for e in events]
    assert kinds[:4] == ["harvest", "ship", "receive", "transform"]
    declared = [e for e in events if "errorDeclaration" in e]
    assert len(declared) == 1 and declared[0]["errorDeclaration"]["reason"] == "did_not_occur"
    assert [e["eventID"] for e in events].count(declared[0]["eventID"]) == 2  # the event, then its declaration
    transform = events[3]
    assert transform["type"] == "TransformationEvent" and transform["inputQuantityList"][0]["uom"] == "KGM"
    pack = next(e for e in events if e["type"] == "AggregationEvent")
    assert pack["parentID"] == "https://id.gs1.org/00/095212340000000017" and len(pack["childEPCs"]) == 2


def test_the_grower_sees_the_processors_events_without_their_private_facts(session: Session) -> None:
    chain = build_chain(session)
    doc = chain_document(session, chain, f.member(chain.grower))
    assert list(gs1_validator().iter_errors(doc)) == []
    events = doc["epcisBody"]["eventList"]
    harvest = events[0]
    assert "hytrace:inputsUsed" in harvest and len(harvest["bizTransactionList"]) == 2  # its own
    commission = next(e for e in events if e["hytrace:eventType"] == "commission")
    assert "epcList" not in commission and commission["quantityList"][0]["quantity"] == 3  # serials stay private
    pack = next(e for e in events if e["type"] == "AggregationEvent")
    assert "childEPCs" not in pack and pack["childQuantityList"][0]["quantity"] == 2


def test_every_event_gets_its_hash_id_when_recorded(session: Session) -> None:
    from trace.recalls import holds, recall
    from trace.recalls.models import ReasonIn

    chain = build_chain(session)
    why = ReasonIn(reason="Kiểm tra dư lượng thuốc")
    holds.hold(session=session, actor=f.member(chain.processor), lot_id=chain.dried_lot_id, data=why)
    holds.release(session=session, actor=f.member(chain.processor), lot_id=chain.dried_lot_id, data=why)
    recall.recall(session=session, actor=f.member(chain.processor), lot_id=chain.dried_lot_id, data=why)
    doc = chain_document(session, chain, f.ADMIN)  # every fact shown: the form hash ids are computed on
    assert list(gs1_validator().iter_errors(doc)) == []
    assert {"hold", "release", "recall"} <= {e["hytrace:eventType"] for e in doc["epcisBody"]["eventList"]}
    stored = dict(session.exec(select(EpcisEventId.epcis_id, EpcisEventId.event_id)).all())  # type: ignore[call-overload]
    for event in doc["epcisBody"]["eventList"]:
        assert event["eventID"] in stored
        if "errorDeclaration" not in event:
            # the stored id is the hash of the event as exported (nothing changed since)
            assert event["eventID"] == hashid.hash_id(event)
    # corrections have none of their own: EPCIS names them by the event they declare erroneous
    corrections = session.exec(select(Event.id).where(Event.type == EventType.CORRECTION)).all()
    assert corrections and not set(corrections) & set(stored.values())


def test_one_event_by_its_id_carries_its_error_declaration(session: Session) -> None:
    chain = build_chain(session, units=False)
    epcis_id = session.get(EpcisEventId, chain.lost_event_id).epcis_id  # type: ignore[union-attr]
    event = epcis_query.get_event(session=session, actor=f.member(chain.processor), epcis_id=epcis_id)
    assert event["eventID"] == epcis_id and event["errorDeclaration"]["reason"] == "did_not_occur"
    assert list(gs1_validator().iter_errors(event)) == []


def test_pre_hash_string_of_a_shipment_computed_by_hand() -> None:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-20T09:30:00.1234+07:00",
        "eventTimeZoneOffset": "+07:00",
        "quantityList": [{"epcClass": "urn:epc:class:lgtin:9521234.000012.L%2F1", "quantity": 60.0, "uom": "KGM"}],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:9521234.00001.0"},
        "sourceList": [{"type": "owning_party", "source": "https://id.gs1.org/417/9521234000020"}],
        "destinationList": [
            {"type": "owning_party", "destination": "https://a.example/epcis/id/org/0101"},
            {"type": "location", "destination": "https://trace.example.vn/414/9521234000013"},
        ],
        "recordTime": "2026-11-21T00:00:00Z",
        "eventID": "ignored",
        "hytrace:eventType": "ship",
        "hytrace:note": {"b": 2, "a": "x"},
    }
    # Written out by hand from CBV 2.0 §8.9: fixed order, UTC milliseconds, web vocabulary, canonical
    # Digital Links (an LGTIN's GTIN gets its check digit), sorted list items, extensions last.
    expected = (
        "eventType=ObjectEvent"
        "eventTime=2026-11-20T02:30:00.123Z"
        "eventTimeZoneOffset=+07:00"
        "quantityListquantityElementepcClass=https://id.gs1.org/01/09521234000129/10/L%2F1quantity=60uom=KGM"
        "action=OBSERVE"
        "bizStep=https://ref.gs1.org/cbv/BizStep-shipping"
        "disposition=https://ref.gs1.org/cbv/Disp-in_transit"
        "readPointid=https://id.gs1.org/414/9521234000013"
        "sourceListtype=https://ref.gs1.org/cbv/SDT-owning_partysource=https://id.gs1.org/417/9521234000020"
        "destinationList"
        "type=https://ref.gs1.org/cbv/SDT-locationdestination=https://id.gs1.org/414/9521234000013"
        "type=https://ref.gs1.org/cbv/SDT-owning_partydestination=https://a.example/epcis/id/org/0101"
        "{https://hytrace.vn/ns/epcis#}eventType=ship"
        "{https://hytrace.vn/ns/epcis#}notea=xb=2"  # names inside an extension stay as written
    )
    assert hashid.pre_hash(event) == expected
    import hashlib

    assert hashid.hash_id(event) == f"ni:///sha-256;{hashlib.sha256(expected.encode()).hexdigest()}?ver=CBV2.0"


def test_hash_ids_agree_with_the_reference_implementation(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    oracle = pytest.importorskip("epcis_event_hash_generator.json_to_py")
    from epcis_event_hash_generator import hash_generator

    # Digital Links of an https host (the reference reads no other), lots under another company
    # prefix (so their class is such a Digital Link) and under ours (an LGTIN).
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://trace.example.vn")
    get_settings.cache_clear()
    grower = f.org(session)
    area = f.location(session, grower, gln="9521234000013")
    ours = f.product(session, grower)
    theirs = f.product(session, grower, gtin="9501101530003")
    f.harvest(session, grower, "12.5", prod=ours, loc=area, expiry_date=f.today())
    other = f.harvest(session, grower, "40", prod=theirs, loc=area)
    dried = f.product(session, grower, name_vi="Nhãn sấy")
    f.transform(session, grower, [(other.lot_ids[0], "40")], [(dried, "8"), (ours, "2")])
    lots = [*other.lot_ids]
    doc = json.loads(
        b"".join(document.stream(epcis_query.lot_chain(session=session, actor=f.member(grower), lot_id=lots[0])))
    )
    events = doc["epcisBody"]["eventList"]
    assert len(events) == 2
    # the reference reads the document as a file would hold it, without our answer's ids
    # GS1's context is the same file as the one the reference bundles (for gs1.github.io): it fetches nothing.
    doc["@context"][0] = "https://gs1.github.io/EPCIS/epcis-context.jsonld"
    parsed = oracle.event_list_from_epcis_document_str(json.dumps(doc))
    expected = hash_generator.epcis_hashes_from_events(parsed)
    assert [e["eventID"] for e in events] == expected


@pytest.mark.parametrize(
    "change",
    [
        {"eventTime": "yesterday"},
        {"eventTimeZoneOffset": "+7"},
        {"bizStep": "harvesting"},
        {"action": "MAYBE"},
        {"readPoint": {"id": "not a uri"}},
        {"quantityList": [{"epcClass": "urn:x:y", "uom": "kilo"}]},
        {"eventID": "no scheme"},
        {"recordTime": "2026-13-01T00:00:00Z"},
        {"ilmd": {"no namespace": 1}},
        {"type": "ObjectEvent", "action": None},
        {"extra field": 1},
    ],
)
def test_the_capture_validator_refuses_what_jsonschema_refuses(change: dict[str, Any]) -> None:
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "eventTime": "2026-11-01T08:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "epcList": [],
        "bizStep": "shipping",
    }
    assert document.schema_errors(document.document([event])) == []
    bad = document.document([{k: v for k, v in {**event, **change}.items() if v is not None}])
    assert list(gs1_validator().iter_errors(bad)), change  # the pure-Python validator, formats checked
    assert document.schema_errors(bad), change  # jsonschema-rs, as capture runs it


def test_schema_refusals_name_the_place_and_reason() -> None:
    bad = document.document(
        [
            {
                "type": "ObjectEvent",
                "action": "OBSERVE",
                "eventTime": "yesterday",
                "eventTimeZoneOffset": "+07:00",
                "epcList": [],
            }
        ]
    )
    errors = document.schema_errors(bad)
    assert errors and errors[0]["pointer"] == "/epcisBody/eventList/0/eventTime" and "date-time" in errors[0]["reason"]


def test_backfill_gives_events_recorded_before_the_migration_their_hash_ids(session: Session) -> None:
    from trace.epcis import ids, render

    # given events recorded as they were before this interface (no id stored)
    chain = build_chain(session)
    mine = [
        r[0]
        for r in session.exec(
            select(Event.id).where(  # type: ignore[call-overload]
                Event.organisation_id.in_([chain.grower.id, chain.processor.id])
            )
        )
    ]  # type: ignore[attr-defined]
    at_capture = dict(
        session.exec(select(EpcisEventId.event_id, EpcisEventId.epcis_id).where(EpcisEventId.event_id.in_(mine))).all()
    )  # type: ignore[attr-defined, call-overload]
    session.exec(sa_delete(EpcisEventId).where(EpcisEventId.event_id.in_(mine)))  # type: ignore[call-overload, attr-defined]
    assert not session.exec(select(EpcisEventId).where(EpcisEventId.event_id.in_(mine))).all()  # type: ignore[attr-defined, call-overload]
    # when the migration's backfill runs
    done = ids.backfill(session.connection())
    # then every event but the corrections has the hash id of its complete EPCIS form
    stored = dict(
        session.exec(select(EpcisEventId.event_id, EpcisEventId.epcis_id).where(EpcisEventId.event_id.in_(mine))).all()
    )  # type: ignore[attr-defined, call-overload]
    rows = [render.event_row(session.get(Event, i)) for i in mine]  # type: ignore[arg-type]
    facts = render.load(session.connection(), rows)
    expected = {r["id"]: hashid.hash_id(render.full_event(r, facts)) for r in rows if r["type"] != EventType.CORRECTION}
    assert done >= len(expected) == len(mine) - 1 and stored == expected  # one correction
    # and capture had stored the very same ids, from the rows in the session rather than the database
    assert at_capture == expected


def test_an_id_already_held_is_refused_for_captured_events_and_replaced_for_ours(session: Session) -> None:
    from trace.epcis import ids
    from trace.errors import Conflict

    chain = build_chain(session, units=False)
    taken = session.get(EpcisEventId, chain.lost_event_id).epcis_id  # type: ignore[union-attr]
    # our own event whose content hashes like another's (identical events) gets a uuid URN instead
    twin = f.harvest(session, chain.grower).event_ids[0]
    session.exec(sa_delete(EpcisEventId).where(EpcisEventId.event_id == twin))  # type: ignore[call-overload, arg-type]
    ids.store(session.connection(), {twin: taken})
    assert session.get(EpcisEventId, twin).epcis_id == f"urn:uuid:{twin}"  # type: ignore[union-attr]
    # a captured event whose id is already held is a duplicate: refused, never stored twice
    session.exec(sa_delete(EpcisEventId).where(EpcisEventId.event_id == twin))  # type: ignore[call-overload, arg-type]
    with pytest.raises(Conflict) as refused:
        ids.store(session.connection(), {twin: taken}, fallback=False)
    assert refused.value.code == "duplicate_events"


# --------------------------------------------------------------------------- the fast path agrees with the plain one


def _plain_pre_hash(event: dict[str, Any], namespaces: dict[str, str] | None = None) -> str:
    """CBV 2.0 §8.9 written the plain way (no caches, no dispatch tables, one field at a time), as
    hashid.py was before it was made fast: the optimised code must give the very same text."""
    import re
    from datetime import UTC, datetime

    cbv = "https://ref.gs1.org/cbv/"
    names = {**vocab.EXTRA_CONTEXT, **(namespaces or {})}

    def number(text: str) -> str:
        try:
            value = float(text)
        except ValueError:
            return text
        if value != value or value in (float("inf"), float("-inf")):
            return text
        return str(int(value)) if int(value) == value else str(value)

    def canon(value: Any) -> str:
        if isinstance(value, bool):
            text = str(value)
        elif isinstance(value, float):
            return number(repr(value))
        elif isinstance(value, int):
            return str(value)
        else:
            text = str(value).strip()
        for kind, web in (("bizstep", "BizStep-"), ("disp", "Disp-"), ("btt", "BTT-"), ("sdt", "SDT-"), ("er", "ER-")):
            text = text.replace(f"urn:epcglobal:cbv:{kind}:", cbv + web)
        if re.match(r"[0-9+\-.iInN]", text):
            text = number(text)
        if text.startswith(("urn:epc:", "http")):
            try:
                return vocab.canonical_dl(text) or text
            except Exception:
                return text
        return text

    def word(value: str, kind: str) -> str:
        return canon(value if ":" in value else cbv + kind + value)

    def expand(name: str) -> str:
        head, sep, local = name.partition(":")
        return "{" + names[head] + "}" + local if sep and head in names else name

    def generic(name: str, value: Any) -> list[str]:
        if isinstance(value, list):
            return [piece for item in value for piece in generic(name, item)]
        if isinstance(value, dict):
            return [name + "".join(sorted(p for k, v in value.items() for p in generic(expand(k), v)))]
        if value is None:
            return [name]
        text = canon(value)
        return [name + ("=" + text if text else "")]

    def field(name: str, value: Any) -> str:
        if name == "eventTime":
            moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
            moment = moment.replace(microsecond=0) + timedelta(microseconds=round(moment.microsecond, -3))
            return f"{name}={moment.isoformat(timespec='milliseconds')[:-6]}Z"
        if name in ("epcList", "inputEPCList", "childEPCs", "outputEPCList"):
            return (name + "".join(sorted("epc=" + canon(v) for v in value))) if value else ""
        if name in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
            items = [
                "quantityElementepcClass="
                + canon(q["epcClass"])
                + ("quantity=" + canon(q["quantity"]) if q.get("quantity") is not None else "")
                + ("uom=" + canon(q["uom"]) if q.get("uom") else "")
                for q in value
            ]
            return (name + "".join(sorted(items))) if items else ""
        if name in ("readPoint", "bizLocation"):
            return name + "id=" + canon(value["id"])
        pairs = {
            "bizTransactionList": ("bizTransaction", "BTT-"),
            "sourceList": ("source", "SDT-"),
            "destinationList": ("destination", "SDT-"),
        }
        if name in pairs:
            key, kind = pairs[name]
            items = sorted(
                ("type=" + word(i["type"], kind) if i.get("type") else "") + key + "=" + canon(i[key]) for i in value
            )
            return (name + "".join(items)) if items else ""
        if name in ("bizStep", "disposition"):
            return name + "=" + word(value, "BizStep-" if name == "bizStep" else "Disp-")
        if name == "persistentDisposition":
            return name + "".join(f"{k}={word(v, 'Disp-')}" for k in ("set", "unset") for v in sorted(value.get(k, [])))
        if name == "certificationInfo":
            return "".join(sorted(f"{name}={canon(v)}" for v in (value if isinstance(value, list) else [value])))
        return "".join(generic(name, value))

    parts = ["eventType=" + str(event["type"])]
    parts += [field(name, event[name]) for name in hashid.ORDER if event.get(name) not in (None, "", [], {})]
    rest = sorted(
        p
        for name, value in event.items()
        if name not in hashid.IGNORED and name not in hashid.ORDER
        for p in generic(expand(name), value)
    )
    return "".join(parts) + "".join(rest)


VARIED_EVENTS: list[dict[str, Any]] = [
    {
        "type": "ObjectEvent",
        "eventTime": "2026-11-20T09:30:00.0005+07:00",
        "eventTimeZoneOffset": "+07:00",
        "epcList": [
            "urn:epc:id:sgtin:9521234.000012.S%2F1",
            "https://id.gs1.org/01/9521234000129/21/A1",
            "https://x.example/01/09521234000129/10/L1/21/Z9",
            "urn:epc:id:sscc:9521234.0000000001",
        ],
        "action": "OBSERVE",
        "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
        "disposition": "urn:epcglobal:cbv:disp:in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:9521234.00001.0"},
        "bizLocation": {"id": "urn:epc:id:sgln:9521234.00001.7"},
        "bizTransactionList": [
            {"type": "urn:epcglobal:cbv:btt:po", "bizTransaction": "urn:epcglobal:cbv:bt:9521234000013:P1"},
            {"bizTransaction": "https://x.example/doc/1"},
        ],
    },
    {
        "type": "ObjectEvent",
        "eventTime": "2026-11-20T09:30:00.0015Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": [],
        "quantityList": [
            {"epcClass": "urn:epc:class:lgtin:9521234.000012.L%2F1", "quantity": 1.5, "uom": "KGM"},
            {"epcClass": "https://id.gs1.org/01/09521234000129", "quantity": 3},
            {"epcClass": "urn:epc:idpat:sgtin:9521234.000012.*"},
        ],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "persistentDisposition": {
            "set": ["completeness_verified", "active"],
            "unset": ["urn:epcglobal:cbv:disp:damaged"],
        },
        "certificationInfo": ["https://cert.example/2", "https://cert.example/1"],
        "ilmd": {"cbvmda:itemExpirationDate": "2026-12-18", "cbvmda:lotNumber": " L1 "},
        "hytrace:eventType": "harvest",
        "hytrace:inputsUsed": [
            {
                "kind": "fertiliser",
                "name": "NPK 16-16-8",
                "applied_on": "2026-10-19",
                "pre_harvest_interval_days": 14,
                "dose": None,
            },
            {"kind": "pesticide", "name": "", "ok": True, "share": 0.25},
        ],
        "hytrace:note": {"b": [1, 2.0, "3.50", "-0", "nan", "inf"], "a": {"z": None, "y": False}},
        "recordTime": "x",
        "eventID": "y",
    },
    {
        "type": "TransformationEvent",
        "eventTime": "2026-11-20T23:59:59.9996-05:00",
        "eventTimeZoneOffset": "-05:00",
        "inputQuantityList": [
            {"epcClass": "https://id.gs1.org/01/09521234000129/10/B", "quantity": 60.0, "uom": "KGM"},
            {"epcClass": "https://id.gs1.org/01/09521234000129/10/A", "quantity": 60.0, "uom": "KGM"},
        ],
        "outputEPCList": ["https://id.gs1.org/414/9521234000013/254/7"],
        "transformationID": "urn:uuid:1",
        "bizStep": "https://ref.gs1.org/cbv/BizStep-commissioning",
        "disposition": "",
        "action": None,
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:pgln:9521234.00002"}],
        "destinationList": [
            {"type": "location", "destination": "https://id.gs1.org/414/9521234000013"},
            {"type": "owning_party", "destination": "https://a.example/epcis/id/org/0101"},
        ],
        "sensorElementList": [
            {
                "sensorMetadata": {"time": "2026-11-20T00:00:00Z"},
                "sensorReport": [{"type": "gs1:Temperature", "value": 26.0, "uom": "CEL"}],
            }
        ],
        "ext:flag": "  padded  ",
        "ext:count": 7,
        "other": [],
        "example:deep": {"example:x": {"example:y": [1, {"example:z": ""}]}},
    },
    {
        "type": "AggregationEvent",
        "eventTime": "2026-01-01T00:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "parentID": "https://id.gs1.org/00/095212340000000017",
        "childEPCs": [
            "https://h.example/01/09521234000129/10/L1/21/B",
            "https://h.example/01/09521234000129/10/L1/21/A",
        ],
        "childQuantityList": [{"epcClass": "urn:epc:class:lgtin:9521234.000012.L1", "quantity": 2, "uom": "H87"}],
        "action": "ADD",
        "bizStep": "packing",
        "readPoint": {"id": "https://h.example/epcis/id/location/growing_area/VN%20HY"},
    },
]


def test_the_fast_canonicalisation_gives_the_plain_pre_hash_text(session: Session) -> None:
    # given hand-made events using every rule (old URNs, every GS1 key form, numbers as text, nested and
    # namespaced extensions, empty values), and every kind of event we record, in their complete form
    chain = build_chain(session)
    doc = chain_document(session, chain, f.ADMIN)
    ours = [{k: v for k, v in e.items() if k != "errorDeclaration"} for e in doc["epcisBody"]["eventList"]]
    events = [*VARIED_EVENTS, *ours]
    assert {e["hytrace:eventType"] for e in ours} >= {
        "harvest",
        "ship",
        "receive",
        "transform",
        "store",
        "sell",
        "loss",
        "commission",
        "pack",
    }
    namespaces = {
        "ext": "https://ext.example/ns#",
        "example": "https://example.com/",
        "hytrace": "https://other.example/#",
    }
    for round_ in ("first", "again"):  # the second round is answered from the caches
        for event in events:
            assert hashid.pre_hash(event) == _plain_pre_hash(event), (round_, event)
            assert hashid.pre_hash(event, namespaces) == _plain_pre_hash(event, namespaces), (round_, event)


def test_ids_stored_by_capture_are_those_computed_from_the_database(session: Session) -> None:
    from trace.epcis import ids, render
    from trace.events.schemas import (
        HarvestIn,
        ReceiveIn,
        ShipIn,
        TransformIn,
        TransformInput,
        TransformOutput,
    )

    # given one capture call with many harvests and shipments (one flush), and one with receipts and a
    # transformation that reads the database between items (several flushes, rows kept between them)
    grower, processor = f.org(session), f.org(session, "processor")
    area, plant = (
        f.location(session, grower, gln="9521234000013"),
        f.location(session, processor, kind="packing_facility"),
    )
    fresh, dried = f.product(session, grower), f.product(session, processor, name_vi="Long nhãn sấy")
    harvests = [
        (
            EventType.HARVEST,
            HarvestIn(
                product_id=fresh.id,
                lot_code=f"HB{n:03d}",
                quantity=Decimal("100"),  # type: ignore[arg-type]
                location_id=area.id,
                event_time=f.when(5),
                expiry_date=f.today(),
                inputs_used=[InputUsed(kind="fertiliser", name="NPK", applied_on=f.today() - timedelta(days=40))],
            ),
        )
        for n in range(40)
    ]
    made = capture(session=session, actor=f.member(grower), items=harvests)
    ships = [
        (
            EventType.SHIP,
            ShipIn(
                lot_id=lot,
                quantity=Decimal("60"),
                destination_organisation_id=processor.id,  # type: ignore[arg-type]
                event_time=f.when(4),
                biz_transactions=[{"type": "desadv", "id": f"PGH-{lot}"}],
            ),
        )
        for lot in made.lot_ids[:6]
    ]
    shipped = capture(session=session, actor=f.member(grower), items=ships)
    second = capture(
        session=session,
        actor=f.member(processor),
        items=[
            *[
                (EventType.RECEIVE, ReceiveIn(shipment_id=s, location_id=plant.id, event_time=f.when(3)))
                for s in shipped.shipment_ids
            ],
            (
                EventType.TRANSFORM,
                TransformIn(
                    inputs=[TransformInput(lot_id=lot, quantity=Decimal("60")) for lot in made.lot_ids[:3]],
                    outputs=[TransformOutput(product_id=dried.id, lot_code="TB1", quantity=Decimal("20"))],  # type: ignore[arg-type]
                    location_id=plant.id,
                    event_time=f.when(2),
                ),
            ),
            (
                EventType.TRANSFORM,
                TransformIn(
                    inputs=[TransformInput(lot_id=lot, quantity=Decimal("60")) for lot in made.lot_ids[3:6]],
                    outputs=[TransformOutput(product_id=dried.id, lot_code="TB2", quantity=Decimal("20"))],  # type: ignore[arg-type]
                    location_id=plant.id,
                    event_time=f.when(2),
                ),
            ),
        ],
    )
    recorded = [*made.event_ids, *shipped.event_ids, *second.event_ids]
    # when the ids are computed again from the database alone (rows read back, nothing from the session)
    session.expire_all()
    rows = render.rows(
        *(lambda r: (list(r.keys()), r.all()))(
            session.connection().execute(render.SELECT.where(render.EVENTS.c.id.in_(recorded)))
        )
    )
    again = ids.compute(session.connection(), rows)
    # then they are the ids capture stored, each a hash id (no two of these events alike)
    stored = {r["id"]: r["epcis_id"] for r in rows}
    assert len(stored) == len(recorded) == 40 + 6 + 6 + 2
    assert again == stored
    assert all(v.startswith("ni:///sha-256;") for v in stored.values())


def test_identical_events_in_one_batch_keep_one_hash_id_the_first_holder_keeps_it(session: Session) -> None:
    from trace.epcis import ids

    chain = build_chain(session, units=False)
    taken = session.get(EpcisEventId, chain.lost_event_id).epcis_id  # type: ignore[union-attr]
    fresh = "ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"
    batch = {"e-1": fresh, "e-2": taken, "e-3": fresh, "e-4": "ni:///sha-256;" + "cd" * 32 + "?ver=CBV2.0"}
    before = session.exec(select(func.count()).select_from(EpcisEventId)).one()[0]  # type: ignore[call-overload]
    ids.store(session.connection(), batch)
    got = dict(
        session.exec(
            select(EpcisEventId.event_id, EpcisEventId.epcis_id).where(  # type: ignore[call-overload]
                EpcisEventId.event_id.in_(list(batch))
            )
        ).all()
    )  # type: ignore[attr-defined]
    assert got == {"e-1": fresh, "e-2": "urn:uuid:e-2", "e-3": "urn:uuid:e-3", "e-4": batch["e-4"]}
    assert session.exec(select(func.count()).select_from(EpcisEventId)).one()[0] == before + 4  # type: ignore[call-overload]
