"""Every capture endpoint over HTTP: the happy path and a refusal each, and nothing written on refusal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

from api.routes.events import RECORDED
from tests import factories as f
from tests.api.helpers import assert_problem, count, headers_for, iso, party, snapshot
from trace.access import Role
from trace.events.ledger import INPUT_OF
from trace.events.models import Event
from trace.lots import Holding, Lot, held_by
from trace.products import Product

API = "/api/v1"


@dataclass
class Chain:
    """A cooperative with a growing area, a warehouse and a product; a processor with a warehouse."""

    coop: Any
    coop_h: dict[str, str]
    area: Any
    coop_shed: Any
    longan: Product
    proc: Any
    proc_h: dict[str, str]
    proc_shed: Any


def _chain(session: Session) -> Chain:
    coop, coop_h = party(session)
    proc, proc_h = party(session, "processor")
    chain = Chain(
        coop,
        coop_h,
        f.location(session, coop),
        f.location(session, coop, "warehouse"),
        f.product(session, coop),
        proc,
        proc_h,
        f.location(session, proc, "warehouse"),
    )
    session.commit()
    return chain


def _post(client: TestClient, kind: str, headers: dict[str, str], body: dict[str, Any], **extra: Any) -> Any:
    return client.post(f"{API}/events/{kind}", headers=headers, json=body, **extra)


def _harvest(client: TestClient, c: Chain, qty: str = "500", **extra: Any) -> dict[str, Any]:
    body = {
        "product_id": c.longan.id,
        "lot_code": extra.pop("lot_code", f"H{f.tax_code()[-8:]}"),
        "quantity": qty,
        "location_id": c.area.id,
        **extra,
    }
    response = _post(client, "harvest", c.coop_h, body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _refused(session: Session, response: Any, status: int, code: str, before: dict[str, Any]) -> None:
    assert_problem(response, status, code)
    assert snapshot(session) == before, "a refused capture wrote something"


def test_harvest_creates_a_lot_with_its_inputs(client: TestClient, session: Session) -> None:
    c = _chain(session)
    sprayed = {
        "kind": "pesticide",
        "name": "Abamectin 3.6EC",
        "dose": "0.5 l/ha",
        "applied_on": (date.today() - timedelta(days=30)).isoformat(),
        "pre_harvest_interval_days": 7,
    }
    result = _harvest(
        client,
        c,
        "1250.5",
        lot_code="NL-2025-001",
        inputs_used=[sprayed],
        biz_transactions=[{"type": "inv", "id": "HD-0001"}],
        kde={"brix": 21},
    )
    event = result["events"][0]
    assert event["type"] == "harvest" and event["biz_step"] == "commissioning" and event["epcis_type"] == "ObjectEvent"
    assert event["payload"]["inputs_used"][0]["name"] == "Abamectin 3.6EC" and event["redacted"] is False
    lot = session.get(Lot, result["lot_ids"][0])
    assert lot is not None and lot.lot_code == "NL-2025-001" and lot.quantity == Decimal("1250.500")
    assert held_by(session=session, lot_id=lot.id, organisation_id=c.coop.id) == Decimal("1250.500")  # type: ignore[arg-type]


def test_harvest_refusals(client: TestClient, session: Session) -> None:
    c = _chain(session)
    _harvest(client, c, lot_code="DUP-1")
    before = snapshot(session)
    base = {"product_id": c.longan.id, "lot_code": "NEW-1", "quantity": "10", "location_id": c.area.id}
    too_soon = {
        "kind": "pesticide",
        "name": "Cypermethrin",
        "applied_on": (date.today() - timedelta(days=2)).isoformat(),
        "pre_harvest_interval_days": 14,
    }
    for body, status, code in [
        ({**base, "inputs_used": [too_soon]}, 422, "pre_harvest_interval"),
        ({**base, "lot_code": "DUP-1"}, 409, "lot_exists"),
        ({**base, "location_id": c.coop_shed.id}, 422, "wrong_location_kind"),
        ({**base, "location_id": None}, 422, "location_required"),
        ({**base, "event_time": iso(f.when(-1))}, 422, "event_in_future"),
        ({**base, "product_id": 987654}, 422, "unknown_product"),
        ({**base, "quantity": "0"}, 422, "validation_error"),
    ]:
        _refused(session, _post(client, "harvest", c.coop_h, body), status, code, before)


def test_ship_and_receive_move_custody(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c, "300")["lot_ids"][0]
    shipped = _post(
        client,
        "ship",
        c.coop_h,
        {
            "lot_id": lot_id,
            "quantity": "120",
            "destination_organisation_id": c.proc.id,
            "destination_location_id": c.proc_shed.id,
        },
    )
    assert shipped.status_code == 201, shipped.text
    shipment = shipped.json()["shipment_id"]
    assert shipped.json()["events"][0]["destination_organisation_id"] == c.proc.id
    assert held_by(session=session, lot_id=lot_id, organisation_id=c.coop.id) == Decimal("180")
    part = _post(
        client, "receive", c.proc_h, {"shipment_id": shipment, "quantity": "20", "location_id": c.proc_shed.id}
    )
    rest = _post(client, "receive", c.proc_h, {"shipment_id": shipment})
    assert part.status_code == rest.status_code == 201, rest.text
    assert rest.json()["events"][0]["payload"]["quantity"] == "100.000"
    assert held_by(session=session, lot_id=lot_id, organisation_id=c.proc.id) == Decimal("120")
    before = snapshot(session)
    _refused(session, _post(client, "receive", c.proc_h, {"shipment_id": shipment}), 422, "shipment_closed", before)


def test_ship_refusals(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c, "50")["lot_ids"][0]
    before = snapshot(session)
    base = {"lot_id": lot_id, "quantity": "10", "destination_organisation_id": c.proc.id}
    for body, status, code in [
        ({**base, "quantity": "50.001"}, 422, "exceeds_holding"),
        ({**base, "destination_organisation_id": c.coop.id}, 422, "ship_to_self"),
        ({**base, "destination_organisation_id": 987654}, 422, "unknown_destination"),
        ({**base, "destination_location_id": c.coop_shed.id}, 422, "not_your_location"),
        ({**base, "lot_id": 987654}, 422, "unknown_lot"),
    ]:
        _refused(session, _post(client, "ship", c.coop_h, body), status, code, before)
    _refused(session, _post(client, "ship", c.proc_h, base), 403, "not_holder", before)


def test_receive_refusals(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c, "50")["lot_ids"][0]
    shipment = _post(
        client, "ship", c.coop_h, {"lot_id": lot_id, "quantity": "10", "destination_organisation_id": c.proc.id}
    ).json()["shipment_id"]
    before = snapshot(session)
    _refused(
        session,
        _post(client, "receive", c.proc_h, {"shipment_id": shipment, "quantity": "11"}),
        422,
        "exceeds_shipment",
        before,
    )
    _refused(
        session,
        _post(client, "receive", c.proc_h, {"shipment_id": shipment, "event_time": iso(f.when(30))}),
        422,
        "receive_before_ship",
        before,
    )
    _refused(
        session, _post(client, "receive", c.coop_h, {"shipment_id": shipment}), 422, "no_matching_shipment", before
    )


def test_transform_makes_output_lots_linked_to_inputs(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c, "200")["lot_ids"][0]
    dried = f.product(session, c.coop, category="longan_dried")
    session.commit()
    body = {
        "inputs": [{"lot_id": lot_id, "quantity": "200"}],
        "outputs": [{"product_id": dried.id, "lot_code": "SAY-01", "quantity": "40"}],
        "conversion": {"input_unit": "kg", "output_unit": "kg", "factor": "0.2"},
    }
    response = _post(client, "transform", c.coop_h, body)
    assert response.status_code == 201, response.text
    out = response.json()["lot_ids"][0]
    roles = {(x["lot_id"], x["role"]) for x in response.json()["events"][0]["lots"]}
    assert roles == {(lot_id, "input"), (out, "output")}
    trace = client.get(f"{API}/lots/{out}/trace", headers=c.coop_h).json()
    assert {x["id"] for x in trace["lots"]} == {lot_id, out}
    assert session.get(Lot, lot_id).status == "consumed"  # type: ignore[union-attr]


def test_transform_refusals(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c, "200")["lot_ids"][0]
    before = snapshot(session)
    out = {"product_id": c.longan.id, "lot_code": "T-1", "quantity": "1"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"inputs": [{"lot_id": lot_id, "quantity": "1"}] * 2, "outputs": [out]}, 422, "validation_error"),
        ({"inputs": [{"lot_id": lot_id, "quantity": "201"}], "outputs": [out]}, 422, "exceeds_holding"),
        (
            {
                "inputs": [{"lot_id": lot_id, "quantity": "1"}],
                "outputs": [out],
                "conversion": {"input_unit": "head", "output_unit": "kg", "factor": "1"},
            },
            422,
            "conversion_units",
        ),
        ({"inputs": [], "outputs": [out]}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        _refused(session, _post(client, "transform", c.coop_h, body), status, code, before)


def test_commission_and_pack_units(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c, "20")["lot_ids"][0]
    commissioned = _post(client, "commission", c.coop_h, {"lot_id": lot_id, "count": 3})
    assert commissioned.status_code == 201, commissioned.text
    serials = commissioned.json()["serials"]
    assert len(set(serials)) == 3 and all(len(s) == 10 for s in serials)
    packed = _post(
        client,
        "pack",
        c.coop_h,
        {"parent_id": "(00)395212340000000017", "children": [{"lot_id": lot_id, "serial": s} for s in serials[:2]]},
    )
    assert packed.status_code == 201, packed.text
    assert packed.json()["events"][0]["epcis_type"] == "AggregationEvent"
    before = snapshot(session)
    again = {"parent_id": "carton-2", "children": [{"lot_id": lot_id, "serial": serials[0]}]}
    _refused(session, _post(client, "pack", c.coop_h, again), 422, "already_packed", before)
    made_up = {"parent_id": "carton-2", "children": [{"lot_id": lot_id, "serial": "0000000000"}]}
    _refused(session, _post(client, "pack", c.coop_h, made_up), 422, "unknown_unit", before)
    _refused(
        session, _post(client, "commission", c.coop_h, {"lot_id": lot_id, "count": 0}), 422, "validation_error", before
    )
    _refused(session, _post(client, "commission", c.proc_h, {"lot_id": lot_id, "count": 1}), 403, "not_holder", before)


def test_sell_and_loss_write_off_quantity(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c, "100")["lot_ids"][0]
    sold = _post(client, "sell", c.coop_h, {"lot_id": lot_id, "quantity": "30"})
    lost = _post(client, "loss", c.coop_h, {"lot_id": lot_id, "quantity": "0.5", "reason": "sample"})
    assert sold.status_code == lost.status_code == 201, lost.text
    assert sold.json()["events"][0]["biz_step"] == "retail_selling"
    assert (lost.json()["events"][0]["biz_step"], lost.json()["events"][0]["disposition"]) == (
        "sampling",
        "non_sellable_other",
    )
    assert held_by(session=session, lot_id=lot_id, organisation_id=c.coop.id) == Decimal("69.5")
    before = snapshot(session)
    _refused(
        session, _post(client, "sell", c.coop_h, {"lot_id": lot_id, "quantity": "70"}), 422, "exceeds_holding", before
    )
    _refused(
        session,
        _post(client, "loss", c.coop_h, {"lot_id": lot_id, "quantity": "1", "reason": "theft"}),
        422,
        "validation_error",
        before,
    )


def test_store_at_own_warehouse_only(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c)["lot_ids"][0]
    stored = _post(client, "store", c.coop_h, {"lot_id": lot_id, "location_id": c.coop_shed.id})
    assert stored.status_code == 201, stored.text
    assert stored.json()["events"][0]["location_id"] == c.coop_shed.id
    before = snapshot(session)
    _refused(
        session,
        _post(client, "store", c.coop_h, {"lot_id": lot_id, "location_id": c.proc_shed.id}),
        422,
        "not_your_location",
        before,
    )
    _refused(session, _post(client, "store", c.coop_h, {"lot_id": lot_id}), 422, "validation_error", before)


def test_inspection_by_holder_and_by_market_inspector(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c)["lot_ids"][0]
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    session.commit()
    own = _post(client, "inspect", c.coop_h, {"lot_id": lot_id, "result": "pass"})
    failed = _post(client, "inspect", inspector, {"lot_id": lot_id, "result": "fail", "photos": ["p1.jpg"]})
    assert own.status_code == failed.status_code == 201, failed.text
    assert own.json()["events"][0]["disposition"] == "conformant"
    assert failed.json()["events"][0]["disposition"] == "non_conformant"
    before = snapshot(session)
    _refused(
        session, _post(client, "inspect", c.proc_h, {"lot_id": lot_id, "result": "pass"}), 403, "not_holder", before
    )
    _refused(
        session,
        _post(client, "inspect", c.coop_h, {"lot_id": lot_id, "result": "maybe"}),
        422,
        "validation_error",
        before,
    )
    # inspectors inspect; they do not trade
    _refused(
        session, _post(client, "sell", inspector, {"lot_id": lot_id, "quantity": "1"}), 403, "not_a_writer", before
    )


def test_only_an_inspector_or_a_holder_with_stock_records_an_inspection(client: TestClient, session: Session) -> None:
    # given a lot harvested by a cooperative, 10 kg of it shipped to a shop that sold all of it
    coop, coop_h = party(session)
    shop, shop_h = party(session, "retailer")
    _, other_h = party(session, "retailer")
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    f.receive(session, shop, f.ship(session, coop, lot_id, shop, "10").shipment_id)  # type: ignore[arg-type]
    session.commit()
    assert (
        _post(client, "inspect", shop_h, {"lot_id": lot_id, "result": "pass"}).status_code == 201
    )  # while it has stock
    assert _post(client, "sell", shop_h, {"lot_id": lot_id, "quantity": "10"}).status_code == 201
    assert held_by(session=session, lot_id=lot_id, organisation_id=shop.id) == 0  # type: ignore[arg-type]
    before = snapshot(session)
    # then the former holder may no longer inspect it (the request: 201, on the public timeline)
    refused = _post(client, "inspect", shop_h, {"lot_id": lot_id, "result": "fail"})
    _refused(session, refused, 403, "not_holder", before)
    assert "holds none of lot" in refused.json()["detail"]
    # nor may an organisation that never held it, whatever it sends
    _refused(
        session, _post(client, "inspect", other_h, {"lot_id": lot_id, "result": "fail"}), 403, "not_holder", before
    )
    for hostile in (0, -1, 2_147_483_648, 10**20, "3", None, [lot_id]):
        answer = _post(client, "inspect", other_h, {"lot_id": hostile, "result": "fail"})
        assert 400 <= answer.status_code < 500, (hostile, answer.status_code, answer.text)
    assert snapshot(session) == before
    # while the holder with stock and a market inspector may
    assert _post(client, "inspect", coop_h, {"lot_id": lot_id, "result": "pass"}).status_code == 201
    assert _post(client, "inspect", inspector, {"lot_id": lot_id, "result": "fail"}).status_code == 201
    # and a holding changed straight in the database is what counts
    session.execute(
        update(Holding).where(col(Holding.lot_id) == lot_id, col(Holding.organisation_id) == coop.id).values(quantity=0)
    )
    session.commit()
    assert_problem(_post(client, "inspect", coop_h, {"lot_id": lot_id, "result": "pass"}), 403, "not_holder")


def test_correction_reverses_a_shipment_once(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_id = _harvest(client, c, "100")["lot_ids"][0]
    shipped = _post(
        client, "ship", c.coop_h, {"lot_id": lot_id, "quantity": "40", "destination_organisation_id": c.proc.id}
    )
    ship_id = shipped.json()["events"][0]["id"]
    corrected = _post(client, "correction", c.coop_h, {"event_id": ship_id, "reason": "did_not_occur"})
    assert corrected.status_code == 201, corrected.text
    correction = corrected.json()["events"][0]
    assert correction["corrects_event_id"] == ship_id
    assert held_by(session=session, lot_id=lot_id, organisation_id=c.coop.id) == Decimal("100")
    assert client.get(f"{API}/events/{ship_id}", headers=c.coop_h).json()["corrected_by_event_id"] == correction["id"]
    before = snapshot(session)
    again = {"event_id": ship_id, "reason": "did_not_occur"}
    _refused(session, _post(client, "correction", c.coop_h, again), 409, "already_corrected", before)
    _refused(
        session,
        _post(client, "correction", c.coop_h, {"event_id": correction["id"], "reason": "incorrect_data"}),
        422,
        "correct_correction",
        before,
    )
    _refused(
        session,
        _post(client, "correction", c.coop_h, {"event_id": "no-such-event", "reason": "did_not_occur"}),
        404,
        "not_found",
        before,
    )
    # the receiver cannot receive a cancelled shipment
    _refused(
        session,
        _post(client, "receive", c.proc_h, {"shipment_id": shipped.json()["shipment_id"]}),
        422,
        "shipment_closed",
        before,
    )


def test_every_capture_endpoint_needs_credentials(client: TestClient, session: Session) -> None:
    before = count(session, Event)
    for kind in (
        "harvest",
        "ship",
        "receive",
        "transform",
        "commission",
        "pack",
        "sell",
        "store",
        "inspect",
        "loss",
        "correction",
        "batch",
    ):
        assert_problem(client.post(f"{API}/events/{kind}", json={}), 401, "no_credentials")
    assert count(session, Event) == before


def test_a_batch_cannot_record_kinds_that_have_their_own_endpoints(client: TestClient, session: Session) -> None:
    # given a member, and events of kinds with their own rules (rights, holds, recalls)
    _, headers = party(session)
    session.commit()  # a refused request rolls back to here
    before = snapshot(session)
    for kind in ("right", "hold", "release", "recall"):
        # when one is sent in a batch
        answer = client.post(
            f"{API}/events/batch", headers=headers, json={"events": [{"type": kind, "data": {"lot_id": 1}}]}
        )
        # then it is refused with the reason and the index, and nothing is written
        body = assert_problem(answer, 422, "not_capturable")
        assert body["index"] == 0
    assert snapshot(session) == before


def test_every_kind_the_domain_records_has_its_own_documented_endpoint(client: TestClient) -> None:
    # The routes are declared in a table (api/routes/events.py RECORDED); a kind added to the domain's
    # INPUT_OF without a row there would have no endpoint.
    assert [path for path, _, _ in RECORDED] == [f"/{kind.value}" for kind in INPUT_OF]
    paths = client.get("/openapi.json").json()["paths"]
    for kind, model in INPUT_OF.items():
        operation = paths[f"{API}/events/{kind.value}"]["post"]
        assert operation["operationId"] == f"record_{kind.value}_api_v1_events_{kind.value}_post"
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model.__name__}"}
        assert "201" in operation["responses"]
