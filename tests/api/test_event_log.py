"""Idempotent retries, all-or-nothing batches and EPCIS-style queries of the event log, over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, count, iso, party, snapshot
from trace.events.models import Event, EventLot, IdempotencyRecord
from trace.lots import Lot
from trace.units import Unit

API = "/api/v1"


def _setup(session: Session) -> tuple[Any, dict[str, str], Any, Any]:
    coop, headers = party(session)
    product, area = f.product(session, coop), f.location(session, coop)
    session.commit()
    return coop, headers, product, area


def _harvest_body(product: Any, area: Any, code: str = "IDEM-1", qty: str = "10") -> dict[str, Any]:
    return {
        "product_id": product.id,
        "lot_code": code,
        "quantity": qty,
        "location_id": area.id,
        "event_time": iso(f.when(1)),
    }


def _events(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/events", headers=headers, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_retry_with_the_same_idempotency_key_replays_and_writes_nothing(client: TestClient, session: Session) -> None:
    # given
    _, headers, product, area = _setup(session)
    key, body = {"Idempotency-Key": "may-can-01/lan-1"}, _harvest_body(product, area)
    first = client.post(f"{API}/events/harvest", headers={**headers, **key}, json=body)
    assert first.status_code == 201, first.text
    before = snapshot(session)
    # when the client retries (a lost answer on a weak mobile network)
    retry = client.post(f"{API}/events/harvest", headers={**headers, **key}, json=body)
    # then
    assert retry.status_code == 201, retry.text
    assert retry.json()["replayed"] is True and first.json()["replayed"] is False
    assert retry.json() == {**first.json(), "replayed": True}
    assert snapshot(session) == before


def test_replayed_commission_gives_back_the_same_serials(client: TestClient, session: Session) -> None:
    _, headers, product, area = _setup(session)
    lot_id = client.post(f"{API}/events/harvest", headers=headers, json=_harvest_body(product, area)).json()["lot_ids"][
        0
    ]
    key, body = {"Idempotency-Key": "in-tem-7"}, {"lot_id": lot_id, "count": 4, "event_time": iso(f.when(0.5))}
    first = client.post(f"{API}/events/commission", headers={**headers, **key}, json=body)
    units = count(session, Unit)
    retry = client.post(f"{API}/events/commission", headers={**headers, **key}, json=body)
    assert retry.json()["replayed"] is True and count(session, Unit) == units
    assert retry.json()["serials"] == first.json()["serials"] and len(first.json()["serials"]) == 4


def test_same_key_with_other_content_is_a_conflict(client: TestClient, session: Session) -> None:
    _, headers, product, area = _setup(session)
    key, body = {"Idempotency-Key": "k-1"}, _harvest_body(product, area)
    assert client.post(f"{API}/events/harvest", headers={**headers, **key}, json=body).status_code == 201
    before = snapshot(session)
    other = client.post(f"{API}/events/harvest", headers={**headers, **key}, json={**body, "quantity": "11"})
    assert_problem(other, 409, "idempotency_key_reused")
    too_long = client.post(
        f"{API}/events/harvest",
        headers={**headers, "Idempotency-Key": "k" * 101},
        json=_harvest_body(product, area, code="IDEM-2"),
    )
    assert_problem(too_long, 422, "validation_error")
    assert snapshot(session) == before


def test_a_refused_capture_does_not_burn_its_idempotency_key(client: TestClient, session: Session) -> None:
    _, headers, product, area = _setup(session)
    key, body = {"Idempotency-Key": "k-2"}, _harvest_body(product, area)
    bad = client.post(f"{API}/events/harvest", headers={**headers, **key}, json={**body, "location_id": 987654})
    assert_problem(bad, 422, "not_your_location")
    assert count(session, IdempotencyRecord) == 0
    good = client.post(f"{API}/events/harvest", headers={**headers, **key}, json=body)
    assert good.status_code == 201 and good.json()["replayed"] is False


def test_batch_stores_every_event_in_one_go(client: TestClient, session: Session) -> None:
    _, headers, product, area = _setup(session)
    before = count(session, Event)
    items = [{"type": "harvest", "data": _harvest_body(product, area, code=f"B-{i}")} for i in range(3)]
    response = client.post(f"{API}/events/batch", headers=headers, json={"events": items})
    assert response.status_code == 201, response.text
    assert len(response.json()["events"]) == 3 and len(response.json()["lot_ids"]) == 3
    assert count(session, Event) == before + 3


def _batch_refusal(
    client: TestClient,
    session: Session,
    headers: dict[str, str],
    items: list[dict[str, Any]],
    index: int,
    status: int,
    code: str,
) -> None:
    events_before, snap = len(_events(client, headers)), snapshot(session)
    response = client.post(f"{API}/events/batch", headers=headers, json={"events": items})
    body = assert_problem(response, status, code)
    assert body["index"] == index and f"Event {index}" in body["detail"], body
    assert len(_events(client, headers)) == events_before
    assert snapshot(session) == snap


def test_batch_with_a_broken_rule_at_index_k_writes_nothing(client: TestClient, session: Session) -> None:
    coop, headers, product, area = _setup(session)
    lot = f.harvest(session, coop, "10", prod=product, loc=area)
    session.commit()
    items = [
        {"type": "harvest", "data": _harvest_body(product, area, code="OK-1")},
        {"type": "sell", "data": {"lot_id": lot.lot_ids[0], "quantity": "4"}},
        {"type": "sell", "data": {"lot_id": lot.lot_ids[0], "quantity": "7"}},
    ]  # only 6 left
    _batch_refusal(client, session, headers, items, 2, 422, "exceeds_holding")
    duplicate = [{"type": "harvest", "data": _harvest_body(product, area, code="SAME")}] * 2
    _batch_refusal(client, session, headers, duplicate, 1, 409, "lot_exists")


def test_batch_with_invalid_input_at_index_k_writes_nothing(client: TestClient, session: Session) -> None:
    _, headers, product, area = _setup(session)
    good = {"type": "harvest", "data": _harvest_body(product, area, code="OK-2")}
    missing = {"type": "harvest", "data": {"product_id": product.id}}
    bad_code = {"type": "harvest", "data": _harvest_body(product, area, code="LÔ 1")}
    _batch_refusal(client, session, headers, [good, missing], 1, 422, "validation_error")
    # the answer says which fields are wanted, not a dump of the validator's text
    body = client.post(f"{API}/events/batch", headers=headers, json={"events": [good, missing]}).json()
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("lot_code",), ("quantity",)}
    assert body["detail"].startswith("Event 1: ") and "\n" not in body["detail"]
    _batch_refusal(
        client,
        session,
        headers,
        [good, good | {"data": _harvest_body(product, area, "OK-3")}, bad_code],
        2,
        422,
        "lot_code_charset",
    )


def test_batch_shape_is_validated(client: TestClient, session: Session) -> None:
    _, headers, _, _ = _setup(session)
    assert_problem(client.post(f"{API}/events/batch", headers=headers, json={"events": []}), 422, "validation_error")
    assert_problem(
        client.post(f"{API}/events/batch", headers=headers, json={"events": [{"type": "teleport", "data": {}}]}),
        422,
        "validation_error",
    )


def test_query_filters(client: TestClient, session: Session) -> None:
    # given a harvest (5 days ago), a shipment (4) and its receipt (3), plus another lot's harvest
    coop, headers = party(session)
    proc, proc_headers = party(session, "processor")
    product, other_product = f.product(session, coop), f.product(session, coop)
    lot_id = f.harvest(session, coop, "100", prod=product).lot_ids[0]
    f.harvest(session, coop, "5", prod=other_product, days_ago=6)
    shipment = f.ship(session, coop, lot_id, proc, "30").shipment_id
    f.receive(session, proc, shipment)  # type: ignore[arg-type]
    session.commit()
    # then
    mine = _events(client, headers)
    assert [e["type"] for e in mine] == ["receive", "ship", "harvest", "harvest"]  # newest first; the receipt names us
    assert {e["type"] for e in _events(client, headers, eventType="harvest")} == {"harvest"}
    assert len(_events(client, headers, eventType="harvest")) == 2
    for step in ("shipping", "https://ref.gs1.org/cbv/BizStep-shipping", "urn:epcglobal:cbv:bizstep:shipping"):
        assert [e["type"] for e in _events(client, headers, EQ_bizStep=step)] == ["ship"], step
    assert [e["type"] for e in _events(client, headers, lot_id=lot_id)] == ["receive", "ship", "harvest"]
    assert [e["type"] for e in _events(client, headers, product_id=other_product.id)] == ["harvest"]
    window = _events(client, headers, GE_eventTime=iso(f.when(4.5)), LT_eventTime=iso(f.when(3.5)))
    assert [e["type"] for e in window] == ["ship"]
    assert [e["type"] for e in _events(client, headers, offset=1, limit=2)] == ["ship", "harvest"]
    # the processor sees the lot's whole history by lot, but only its own (and addressed) events otherwise
    assert [e["type"] for e in _events(client, proc_headers)] == ["receive", "ship"]
    assert len(_events(client, proc_headers, lot_id=lot_id)) == 3
    assert_problem(client.get(f"{API}/events", headers=headers, params={"limit": 501}), 422, "validation_error")
    assert_problem(
        client.get(f"{API}/events", headers=headers, params={"eventType": "teleport"}), 422, "validation_error"
    )
    assert_problem(
        client.get(f"{API}/events", headers=headers, params={"GE_eventTime": "yesterday"}), 422, "validation_error"
    )


def test_one_event_by_id(client: TestClient, session: Session) -> None:
    coop, headers = party(session)
    result = f.harvest(session, coop)
    session.commit()
    event_id = result.events[0].id
    response = client.get(f"{API}/events/{event_id}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == event_id and len(body["hash"]) == 64 and body["lots"][0]["role"] == "output"
    lot = session.get(Lot, result.lot_ids[0])
    assert lot is not None and body["lot_id"] == lot.id
    assert count(session, EventLot) >= 1
    assert_problem(client.get(f"{API}/events/00000000-0000-0000-0000-000000000000", headers=headers), 404, "not_found")


def test_prefer_return_minimal_answers_with_ids_only(client: TestClient, session: Session) -> None:
    # given a batch sent with RFC 7240's Prefer: return=minimal
    _, headers, product, area = _setup(session)
    items = [{"type": "harvest", "data": _harvest_body(product, area, code=f"M-{i}")} for i in range(3)]
    response = client.post(
        f"{API}/events/batch", headers={**headers, "Prefer": "return=minimal"}, json={"events": items}
    )
    # then the answer names the events without repeating them
    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == "return=minimal"
    body = response.json()
    assert body["events"] == [] and len(body["event_ids"]) == 3 and len(body["lot_ids"]) == 3
    # and those ids are the recorded events, in order
    stored = {e["id"]: e for e in _events(client, headers, eventType="harvest")}
    assert [stored[i]["payload"]["lot_code"] for i in body["event_ids"]] == ["M-0", "M-1", "M-2"]
    # and without the preference the full events come back, ids alike
    full = client.post(
        f"{API}/events/batch",
        headers=headers,
        json={"events": [{"type": "harvest", "data": _harvest_body(product, area, code="M-9")}]},
    ).json()
    assert [e["id"] for e in full["events"]] == full["event_ids"]
