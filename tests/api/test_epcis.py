"""The /epcis REST binding: export, query with paging, one event, capture (dedup, corrections,
refusals that store nothing)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, or_
from sqlmodel import Session, select

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, snapshot
from tests.trace.test_epcis import build_chain, gs1_validator
from trace.epcis import document, vocab
from trace.epcis.models import EpcisEventId
from trace.events.models import Event, EventType
from trace.lots import Lot, held_by

LD = "application/ld+json"


def _events(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(LD)
    body = response.json()
    assert list(gs1_validator().iter_errors(body)) == []
    return body["epcisBody"]["eventList"]  # type: ignore[no-any-return]


def test_lot_export_over_http_is_valid_ld_json(client: TestClient, session: Session) -> None:
    chain = build_chain(session)
    events = _events(
        client.get(f"/epcis/lots/{chain.dried_lot_id}/events", headers=headers_for(session, chain.processor))
    )
    assert events[0]["hytrace:eventType"] == "harvest"  # backward to the fresh lot's harvest
    # a lot one has nothing to do with is not there
    stranger = headers_for(session, f.org(session))
    assert_problem(client.get(f"/epcis/lots/{chain.dried_lot_id}/events", headers=stranger), 404)
    assert_problem(client.get(f"/epcis/lots/{chain.dried_lot_id}/events"), 401)


def test_query_pages_through_every_visible_event(client: TestClient, session: Session) -> None:
    chain = build_chain(session)
    h = headers_for(session, chain.processor)
    seen: list[dict[str, Any]] = []
    url: str | None = "/epcis/events?perPage=3"
    pages = 0
    while url:
        response = client.get(url, headers=h)
        seen += _events(response)
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
        pages += 1
    org = chain.processor.id
    expected = session.exec(
        select(func.count())
        .select_from(Event)
        .where(
            or_(  # type: ignore[call-overload]
                Event.organisation_id == org,
                Event.source_organisation_id == org,
                Event.destination_organisation_id == org,
            )
        )
    ).one()
    assert len(seen) == expected and pages == -(-expected // 3)
    times = [e["eventTime"] for e in seen]
    assert len({(e["eventID"], "errorDeclaration" in e) for e in seen}) == expected  # no event twice, none missing
    assert times  # ordered by event time (UTC) on the server: checked through the filters below


def test_query_filters(client: TestClient, session: Session) -> None:
    chain = build_chain(session)
    h = headers_for(session, chain.processor)
    transforms = _events(client.get("/epcis/events?eventType=TransformationEvent", headers=h))
    assert [e["type"] for e in transforms] == ["TransformationEvent"]
    shipped = _events(client.get("/epcis/events?EQ_bizStep=https://ref.gs1.org/cbv/BizStep-receiving", headers=h))
    assert [e["hytrace:eventType"] for e in shipped] == ["receive"]
    dried = session.get(Lot, chain.dried_lot_id)
    cls = vocab.lot_class(dried.gtin, dried.lot_code)  # type: ignore[union-attr]
    on_lot = _events(client.get(f"/epcis/events?MATCH_epcClass={quote(cls)}", headers=h))
    assert {e["hytrace:eventType"] for e in on_lot} >= {"transform", "store", "sell", "loss", "commission", "pack"}
    # the grower, involved with the fresh lot only, sees the dried lot's events only through its own
    grower_view = _events(
        client.get(f"/epcis/events?MATCH_epcClass={quote(cls)}", headers=headers_for(session, chain.grower))
    )
    assert grower_view == []
    store_place = next(e for e in on_lot if e["hytrace:eventType"] == "store")["bizLocation"]["id"]
    stored = _events(client.get(f"/epcis/events?EQ_bizLocation={quote(store_place)}", headers=h))
    assert [e["hytrace:eventType"] for e in stored] == ["store"]
    everything = _events(client.get("/epcis/events?perPage=1000", headers=h))
    middle = sorted(e["eventTime"] for e in everything)[len(everything) // 2]
    later = _events(client.get(f"/epcis/events?GE_eventTime={quote(middle)}&perPage=1000", headers=h))
    assert 0 < len(later) < len(everything)
    unit = next(e for e in on_lot if e["hytrace:eventType"] == "pack")["childEPCs"][0]
    by_unit = _events(client.get(f"/epcis/events?MATCH_epc={quote(unit)}", headers=h))
    assert {e["hytrace:eventType"] for e in by_unit} == {"commission", "pack"}
    assert_problem(client.get("/epcis/events?nextPageToken=bm9wZQ", headers=h), 422, "bad_page_token")
    assert_problem(client.get("/epcis/events?eventType=Nope", headers=h), 422, "bad_event_type")


def test_one_event_by_url_encoded_id(client: TestClient, session: Session) -> None:
    chain = build_chain(session, units=False)
    epcis_id = session.get(EpcisEventId, chain.lost_event_id).epcis_id  # type: ignore[union-attr]
    response = client.get(f"/epcis/events/{quote(epcis_id, safe='')}", headers=headers_for(session, chain.processor))
    assert response.status_code == 200 and response.headers["content-type"].startswith(LD)
    body = response.json()
    assert body["eventID"] == epcis_id and "errorDeclaration" in body and "@context" in body
    assert list(gs1_validator().iter_errors(body)) == []
    assert_problem(
        client.get(f"/epcis/events/{quote(epcis_id, safe='')}", headers=headers_for(session, f.org(session))), 404
    )
    assert_problem(
        client.get("/epcis/events/ni%3A%2F%2F%2Fsha-256%3Bfeed", headers=headers_for(session, chain.processor)), 404
    )


# --------------------------------------------------------------------------- capture


def _master(session: Session) -> tuple[Any, dict[str, str], Any, Any, Any]:
    grower = f.org(session)
    area = f.location(session, grower)
    product = f.product(session, grower)
    buyer = f.org(session, "processor")
    h = headers_for(session, grower)
    session.commit()  # a refused request rolls back to here
    return grower, h, area, product, buyer


def _harvest(
    product: Any, area: Any, lot: str, qty: float = 20, when: str = "2026-11-01T08:00:00+07:00"
) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": "+07:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantityList": [{"epcClass": vocab.lot_class(product.gtin, lot), "quantity": qty, "uom": "KGM"}],
        "bizLocation": {"id": vocab.location_uri(location_id=area.id, gln=area.gln, kind=area.kind, code=area.code)},
    }


def _doc(*events: dict[str, Any]) -> dict[str, Any]:
    return document.document(list(events))


def test_capture_records_a_foreign_document_once(client: TestClient, session: Session) -> None:
    grower, h, area, product, buyer = _master(session)
    ship = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-02T08:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "quantityList": [{"epcClass": vocab.lot_class(product.gtin, "EP-1"), "quantity": 5, "uom": "KGM"}],
        "destinationList": [
            {"type": "owning_party", "destination": vocab.party_uri(gln=None, tax_code=buyer.tax_code)}
        ],
    }
    doc = _doc(_harvest(product, area, "EP-1"), ship)  # no eventIDs: we compute their hash ids
    response = client.post("/epcis/capture", json=doc, headers=h)
    assert response.status_code == 201, response.text
    ids = response.json()["eventIDs"]
    assert response.json()["recorded"] == 2 and all(i.startswith("ni:///sha-256;") for i in ids)
    lot = session.exec(select(Lot).where(Lot.lot_code == "EP-1")).one()
    assert held_by(session=session, lot_id=lot.id, organisation_id=grower.id) == Decimal("15")  # type: ignore[arg-type]
    # the same document again: the same ids, nothing stored twice
    before = snapshot(session)
    again = client.post("/epcis/capture", json=doc, headers=h)
    assert again.status_code == 200 and again.json()["eventIDs"] == ids and again.json()["replayed"] is True
    assert snapshot(session) == before
    # a document mixing a known event and a new one: refused, naming the known one, nothing stored
    sell = {
        **copy.deepcopy(ship),
        "bizStep": "retail_selling",
        "disposition": "retail_sold",
        "eventTime": "2026-11-03T08:00:00+07:00",
    }
    del sell["destinationList"]
    mixed = _doc(_harvest(product, area, "EP-1"), sell)
    body = assert_problem(client.post("/epcis/capture", json=mixed, headers=h), 409, "duplicate_events")
    assert body["event_ids"] == [ids[0]]
    assert snapshot(session) == before
    skipped = client.post("/epcis/capture?duplicates=skip", json=mixed, headers=h)
    assert skipped.status_code == 201 and skipped.json()["recorded"] == 1 and skipped.json()["skipped"] == [ids[0]]
    # and the events are found by the ids we answered
    found = client.get(f"/epcis/events/{quote(ids[1], safe='')}", headers=h)
    assert found.status_code == 200 and found.json()["hytrace:eventType"] == "ship"


def test_our_own_export_sent_back_is_recognised(client: TestClient, session: Session) -> None:
    chain = build_chain(session, units=False)
    h = headers_for(session, chain.grower)
    session.commit()
    exported = client.get(f"/epcis/lots/{chain.lot_id}/events", headers=h).json()
    own = [e for e in exported["epcisBody"]["eventList"] if e["hytrace:organisation"].endswith(chain.grower.tax_code)]
    before = snapshot(session)
    response = client.post("/epcis/capture", json=_doc(*own), headers=h)
    assert response.status_code == 200 and response.json()["replayed"] is True
    assert snapshot(session) == before


def test_error_declaration_of_a_known_event_records_the_correction(client: TestClient, session: Session) -> None:
    _grower, h, area, product, _ = _master(session)
    harvest = _harvest(product, area, "EP-ERR")
    first = client.post("/epcis/capture", json=_doc(harvest), headers=h)
    epcis_id = first.json()["eventIDs"][0]
    declared = {
        **harvest,
        "eventID": epcis_id,
        "errorDeclaration": {"declarationTime": "2026-11-05T10:00:00+07:00", "reason": "did_not_occur"},
    }
    response = client.post("/epcis/capture", json=_doc(declared), headers=h)
    assert response.status_code == 201 and response.json()["corrections"] == 1, response.text
    lot = session.exec(select(Lot).where(Lot.lot_code == "EP-ERR")).one()
    assert lot.status == "cancelled"
    corrections = session.exec(
        select(Event).where(Event.type == EventType.CORRECTION, Event.corrects_event_id == lot.created_event_id)
    ).all()
    assert len(corrections) == 1 and corrections[0].payload["reason"] == "did_not_occur"
    # sent again: already declared, nothing more
    again = client.post("/epcis/capture", json=_doc(declared), headers=h)
    assert again.status_code == 200 and again.json()["replayed"] is True
    # a declaration for an event nobody recorded is refused
    unknown = {**declared, "eventID": "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"}
    assert_problem(client.post("/epcis/capture", json=_doc(unknown), headers=h), 422, "unknown_event")


def _bad_documents(product: Any, area: Any) -> list[tuple[str, Any, int, str, str]]:
    good = _harvest(product, area, "EP-BAD")
    no_time = {k: v for k, v in good.items() if k != "eventTime"}
    bad_time = {**good, "eventTime": "1 Nov 2026"}
    bad_uom = {**good, "quantityList": [{**good["quantityList"][0], "uom": "kilo"}]}
    bad_step = {**good, "bizStep": "harvesting"}
    unknown_lot = {
        **good,
        "bizStep": "retail_selling",
        "action": "OBSERVE",
        "quantityList": [{"epcClass": vocab.lot_class(product.gtin, "NOPE"), "quantity": 1}],
    }
    unknown_place = {**good, "bizLocation": {"id": "https://id.gs1.org/414/9521234999996"}}
    not_ours = {**good, "hytrace:organisation": vocab.party_uri(gln=None, tax_code="0000000000")}
    too_much_after = {**good, "quantityList": [{**good["quantityList"][0]}]}
    sell_too_much = {
        **good,
        "bizStep": "retail_selling",
        "action": "OBSERVE",
        "eventTime": "2026-11-02T08:00:00+07:00",
        "quantityList": [{**good["quantityList"][0], "quantity": 500}],
    }
    return [
        ("missing eventTime", _doc(no_time), 422, "epcis_schema", "/epcisBody/eventList/0"),
        ("eventTime not a date-time", _doc(bad_time), 422, "epcis_schema", "/epcisBody/eventList/0/eventTime"),
        ("uom not a UN/ECE code", _doc(bad_uom), 422, "epcis_schema", "/epcisBody/eventList/0/quantityList/0/uom"),
        ("bizStep not CBV nor a URI", _doc(bad_step), 422, "epcis_schema", "/epcisBody/eventList/0/bizStep"),
        ("no epcisBody", {**_doc(good), "epcisBody": {}}, 422, "epcis_schema", "/epcisBody"),
        ("unknown lot", _doc(unknown_lot), 422, "unknown_master_data", "NOPE"),
        ("unknown place", _doc(unknown_place), 422, "unknown_master_data", "9521234999996"),
        ("another organisation's event", _doc(not_ours), 403, "not_your_organisation", "0000000000"),
        ("second event breaks a rule", _doc(too_much_after, sell_too_much), 422, "exceeds_holding", "Event 1"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_bad_documents_are_refused_with_the_reason_and_store_nothing(
    client: TestClient, session: Session, case: int
) -> None:
    _grower, h, area, product, _ = _master(session)
    name, doc, status, code, where = _bad_documents(product, area)[case]
    before = snapshot(session)
    body = assert_problem(client.post("/epcis/capture", json=doc, headers=h), status, code)
    assert where in (json.dumps(body.get("errors", [])) + body["detail"]), (name, body)
    assert snapshot(session) == before, name


def test_capture_refuses_what_is_not_a_document(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _grower, h, area, product, _ = _master(session)
    before = snapshot(session)
    assert_problem(
        client.post("/epcis/capture", content=b"{not json", headers={**h, "Content-Type": LD}), 400, "not_json"
    )
    monkeypatch.setenv("HYTRACE_EPCIS_MAX_BODY_BYTES", "200")
    from trace.platform.config import get_settings

    get_settings.cache_clear()
    assert_problem(
        client.post("/epcis/capture", json=_doc(_harvest(product, area, "EP-BIG")), headers=h), 413, "payload_too_large"
    )
    # the body guard answers before the route looks at credentials
    assert_problem(
        client.post("/epcis/capture", json=_doc(_harvest(product, area, "EP-BIG"))), 413, "payload_too_large"
    )
    assert_problem(client.post("/epcis/capture", content=b"{}"), 401)
    assert snapshot(session) == before


def test_an_event_twice_in_one_document_is_recorded_once(client: TestClient, session: Session) -> None:
    _grower, h, area, product, _ = _master(session)
    harvest = _harvest(product, area, "EP-TWICE")
    response = client.post("/epcis/capture", json=_doc(harvest, copy.deepcopy(harvest)), headers=h)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["recorded"] == 1 and body["skipped"] == [body["eventIDs"][0]] == [body["eventIDs"][1]]
    assert len(session.exec(select(Lot).where(Lot.lot_code == "EP-TWICE")).all()) == 1
