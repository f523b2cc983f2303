"""EPCIS capture of unit-level events: commissioning of serialised units (the serials the document
names, a human code of our own) and packing them; the refusals store nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, snapshot
from tests.trace.test_epcis import Chain, build_chain, chain_document
from trace.epcis import document, vocab
from trace.events.models import Event, EventType
from trace.lots import Lot
from trace.units import Unit, UnitStatus, normalize_code

SSCC = "095212340000000024"


def _when(days_ago: float) -> str:
    return f.when(days_ago).isoformat()


def _commission(
    lot: Lot, serials: list[str], extra: dict[str, Any] | None = None, days_ago: float = 0.5
) -> dict[str, Any]:
    """A commissioning as another system writes it: no eventID, none of our extensions."""
    return {
        "type": "ObjectEvent",
        "eventTime": _when(days_ago),
        "eventTimeZoneOffset": "+00:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "epcList": [vocab.unit_uri(lot.gtin, lot.lot_code, s) for s in serials],
        **(extra or {}),
    }


def _pack(parent_uri: str, children: list[str], days_ago: float = 0.4) -> dict[str, Any]:
    return {
        "type": "AggregationEvent",
        "eventTime": _when(days_ago),
        "eventTimeZoneOffset": "+00:00",
        "action": "ADD",
        "bizStep": "packing",
        "disposition": "in_progress",
        "parentID": parent_uri,
        "childEPCs": children,
    }


def _setup(session: Session) -> tuple[Chain, Lot, list[str]]:
    chain = build_chain(session, units=True)
    lot = session.get(Lot, chain.dried_lot_id)
    assert lot is not None
    existing = list(session.exec(select(Unit.serial).where(Unit.lot_id == lot.id)))
    session.commit()
    return chain, lot, existing


def test_commissioning_and_packing_of_named_units_is_captured(client: TestClient, session: Session) -> None:
    # given the processor holding the dried lot
    chain, lot, existing = _setup(session)
    h = headers_for(session, chain.processor)
    session.commit()
    serials = ["CAP-1", "CAP/2", "CAP-3"]  # "/" is escaped in a Digital Link and must come back as it was
    uris = [vocab.unit_uri(lot.gtin, lot.lot_code, s) for s in serials]
    # when another system's document commissions three units and packs two of them into a carton
    response = client.post(
        "/epcis/capture",
        headers=h,
        json=document.document([_commission(lot, serials), _pack(f"https://id.gs1.org/00/{SSCC}", uris[:2])]),
    )
    # then both are recorded
    assert response.status_code == 201, response.text
    assert response.json()["recorded"] == 2
    session.expire_all()
    units = {
        u.serial: u for u in session.exec(select(Unit).where(Unit.lot_id == lot.id, col(Unit.serial).in_(serials)))
    }
    assert sorted(units) == sorted(serials)
    commission = session.exec(
        select(Event)
        .where(Event.type == EventType.COMMISSION, Event.lot_id == lot.id)
        .order_by(col(Event.event_time).desc())
    ).first()
    assert commission is not None and commission.payload["count"] == 3
    digest = hashlib.sha256("\n".join(sorted(serials)).encode()).hexdigest()
    assert commission.payload["serials_sha256"] == digest and "serials" not in commission.payload
    assert commission.organisation_id == chain.processor.id
    # each unit with a valid human code of our own, created by that event, active, the two packed
    for unit in units.values():
        assert normalize_code(unit.code) == unit.code
        assert unit.created_event_id == commission.id and unit.status == UnitStatus.ACTIVE
    assert {s: units[s].parent_id for s in serials} == {"CAP-1": SSCC, "CAP/2": SSCC, "CAP-3": None}
    assert len(set(session.exec(select(Unit.code)))) == len(existing) + 3  # codes unique in the instance
    # and the export names the same units, never their codes
    exported = chain_document(session, chain, f.ADMIN)
    events = exported["epcisBody"]["eventList"]
    again = [e for e in events if e.get("epcList") == uris]
    assert len(again) == 1 and again[0]["hytrace:eventType"] == "commission"
    packed = [e for e in events if e["type"] == "AggregationEvent" and e["parentID"].endswith(SSCC)]
    assert len(packed) == 1 and packed[0]["childEPCs"] == uris[:2]
    text = json.dumps(exported)
    assert not any(unit.code in text for unit in units.values())


def test_a_carton_of_our_own_uri_keeps_its_id(client: TestClient, session: Session) -> None:
    chain, lot, _ = _setup(session)
    h = headers_for(session, chain.processor)
    session.commit()
    uris = [vocab.unit_uri(lot.gtin, lot.lot_code, "OWN-1")]
    response = client.post(
        "/epcis/capture",
        headers=h,
        json=document.document(
            [_commission(lot, ["OWN-1"], {"hytrace:level": "carton"}), _pack(vocab.parent_uri("THUNG 7"), uris)]
        ),
    )
    assert response.status_code == 201, response.text
    session.expire_all()
    unit = session.exec(select(Unit).where(Unit.lot_id == lot.id, Unit.serial == "OWN-1")).one()
    assert unit.parent_id == "THUNG 7" and unit.level == "carton"


@dataclass
class Ctx:
    chain: Chain
    lot: Lot  # the dried lot, held by the processor, with 3 units (2 packed)
    fresh: Lot  # the fresh lot, which the processor holds too
    existing: list[str]
    packed: list[str]


Refusal = tuple[str, list[dict[str, Any]], int, str, str]  # who, events, status, code, text the reason names


def _exists(c: Ctx) -> Refusal:
    return "processor", [_commission(c.lot, ["NEW-1", c.existing[0]])], 409, "unit_exists", c.existing[0]


def _other_org(c: Ctx) -> Refusal:
    return "grower", [_commission(c.lot, ["NEW-1"])], 403, "not_holder", c.lot.lot_code


def _other_org_pack(c: Ctx) -> Refusal:
    loose = next(s for s in c.existing if s not in c.packed)
    return (
        "grower",
        [_pack(vocab.parent_uri(SSCC), [vocab.unit_uri(c.lot.gtin, c.lot.lot_code, loose)])],
        403,
        "not_holder",
        c.lot.lot_code,
    )


def _unknown_lot(c: Ctx) -> Refusal:
    event = _commission(c.lot, [])
    event["epcList"] = [vocab.unit_uri(c.lot.gtin, "NOPE", "X1")]
    return "processor", [event], 422, "unknown_master_data", "NOPE"


def _lot_not_unit(c: Ctx) -> Refusal:
    event = _commission(c.lot, [])
    event["epcList"] = [f"https://id.gs1.org/01/{c.lot.gtin}/10/{c.lot.lot_code}"]
    return "processor", [event], 422, "bad_unit_uri", c.lot.lot_code


def _no_lot(c: Ctx) -> Refusal:
    event = _commission(c.lot, [])
    event["epcList"] = [f"https://id.gs1.org/01/{c.lot.gtin}/21/X1"]
    return "processor", [event], 422, "bad_unit_uri", "/21/X1"


def _bad_gtin(c: Ctx) -> Refusal:
    event = _commission(c.lot, [])
    wrong = c.lot.gtin[:-1] + str((int(c.lot.gtin[-1]) + 1) % 10)  # a wrong check digit
    event["epcList"] = [vocab.unit_uri(wrong, c.lot.lot_code, "X1")]
    return "processor", [event], 422, "bad_unit_uri", wrong


def _bad_serial(c: Ctx) -> Refusal:
    return "processor", [_commission(c.lot, ["Số 1"])], 422, "serial_charset", "Số 1"


def _twice(c: Ctx) -> Refusal:
    # the same unit twice, written on two hosts (the schema refuses the very same string twice)
    event = _commission(c.lot, ["NEW-1"])
    event["epcList"].append(f"https://id.gs1.org/01/{c.lot.gtin}/10/{c.lot.lot_code}/21/NEW-1")
    return "processor", [event], 422, "duplicate_unit", "twice"


def _two_lots(c: Ctx) -> Refusal:
    event = _commission(c.lot, ["NEW-1"])
    event["epcList"].append(vocab.unit_uri(c.fresh.gtin, c.fresh.lot_code, "NEW-2"))
    return "processor", [event], 422, "one_lot_expected", "one lot"


def _counted(c: Ctx) -> Refusal:
    event = _commission(c.lot, [], {"hytrace:eventType": "commission"})  # as our export shows it to outsiders
    del event["epcList"]
    event["quantityList"] = [{"epcClass": vocab.lot_class(c.lot.gtin, c.lot.lot_code), "quantity": 3, "uom": "H87"}]
    return "processor", [event], 422, "units_expected", "epcList"


def _unknown_unit(c: Ctx) -> Refusal:
    # the first event alone would be recorded: the second's refusal undoes it
    return (
        "processor",
        [
            _commission(c.lot, ["NEW-1"]),
            _pack(vocab.parent_uri(SSCC), [vocab.unit_uri(c.lot.gtin, c.lot.lot_code, "NEW-9")]),
        ],
        422,
        "unknown_unit",
        "Event 1",
    )


def _already_packed(c: Ctx) -> Refusal:
    return (
        "processor",
        [_pack(vocab.parent_uri(SSCC), [vocab.unit_uri(c.lot.gtin, c.lot.lot_code, c.packed[0])])],
        422,
        "already_packed",
        c.packed[0],
    )


def _decommission(c: Ctx) -> Refusal:
    event = _commission(
        c.lot, c.existing[:1], {"action": "DELETE", "bizStep": "decommissioning", "disposition": "inactive"}
    )
    return "processor", [event], 422, "not_capturable", "decommissioning"


CASES: dict[str, Callable[[Ctx], Refusal]] = {
    fn.__name__[1:]: fn
    for fn in (
        _exists,
        _other_org,
        _other_org_pack,
        _unknown_lot,
        _lot_not_unit,
        _no_lot,
        _bad_gtin,
        _bad_serial,
        _twice,
        _two_lots,
        _counted,
        _unknown_unit,
        _already_packed,
        _decommission,
    )
}


@pytest.mark.parametrize("name", list(CASES))
def test_unit_events_that_break_a_rule_are_refused_with_the_reason_and_store_nothing(
    client: TestClient, session: Session, name: str
) -> None:
    chain, lot, existing = _setup(session)
    fresh = session.get(Lot, chain.lot_id)
    assert fresh is not None
    packed = list(session.exec(select(Unit.serial).where(Unit.lot_id == lot.id, col(Unit.parent_id).is_not(None))))
    assert len(existing) == 3 and len(packed) == 2
    who, events, status, code, named = CASES[name](Ctx(chain, lot, fresh, existing, packed))
    h = headers_for(session, chain.processor if who == "processor" else chain.grower)
    session.commit()
    before = snapshot(session)
    body = assert_problem(client.post("/epcis/capture", json=document.document(events), headers=h), status, code)
    assert named in body["detail"], body
    assert snapshot(session) == before
