"""Lots, their holders and their traces (JSON and the FSMA 204 spreadsheet), over HTTP."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, party
from trace.identifiers import gtin_display

API = "/api/v1"


@dataclass
class Flow:
    """Longan harvested by a cooperative, part shipped to a processor who dries it."""

    coop_h: dict[str, str]
    proc_h: dict[str, str]
    other_h: dict[str, str]
    coop: Any
    proc: Any
    raw: int
    raw_gtin: str
    raw_code: str
    dried: int
    spare: int


def _flow(session: Session) -> Flow:
    coop, coop_h = party(session)
    proc, proc_h = party(session, "processor")
    _, other_h = party(session)
    raw = f.harvest(session, coop, "500", lot_code="NL-RAW-1")
    raw_id = raw.lot_ids[0]
    spare = f.harvest(session, coop, "20").lot_ids[0]
    shipment = f.ship(session, coop, raw_id, proc, "200").shipment_id
    f.receive(session, proc, shipment)  # type: ignore[arg-type]
    dried_product = f.product(session, proc, category="longan_dried")
    dried = f.transform(session, proc, [(raw_id, "200")], [(dried_product, "40")]).lot_ids[0]
    session.commit()
    gtin = raw.events[0].payload["gtin"]
    return Flow(coop_h, proc_h, other_h, coop, proc, raw_id, gtin, "NL-RAW-1", dried, spare)


def _ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [x["id"] for x in response.json()]


def test_lot_list_shows_only_lots_the_organisation_produced_or_holds(client: TestClient, session: Session) -> None:
    flow = _flow(session)
    assert set(_ids(client.get(f"{API}/lots", headers=flow.coop_h))) == {flow.raw, flow.spare}
    assert set(_ids(client.get(f"{API}/lots", headers=flow.proc_h))) == {flow.raw, flow.dried}
    assert _ids(client.get(f"{API}/lots", headers=flow.other_h)) == []
    # the processor used up what it received: it holds only the dried lot now
    assert _ids(client.get(f"{API}/lots", headers=flow.proc_h, params={"held": "true"})) == [flow.dried]


def test_lot_list_filters(client: TestClient, session: Session) -> None:
    flow = _flow(session)
    by_gtin = client.get(f"{API}/lots", headers=flow.coop_h, params={"gtin": gtin_display(flow.raw_gtin)})
    assert _ids(by_gtin) == [flow.raw]
    consumed = client.get(f"{API}/lots", headers=flow.proc_h, params={"status": "consumed"})
    assert _ids(consumed) == []  # the coop still holds 300 of the raw lot, so it is active
    assert_problem(client.get(f"{API}/lots", headers=flow.coop_h, params={"status": "eaten"}), 422, "validation_error")
    assert_problem(client.get(f"{API}/lots", headers=flow.coop_h, params={"gtin": "1" * 15}), 422, "validation_error")
    assert_problem(
        client.get(f"{API}/lots", headers=flow.coop_h, params={"gtin": "9520000000001"}), 422, "gtin_check_digit"
    )


def test_one_lot_with_its_holders(client: TestClient, session: Session) -> None:
    flow = _flow(session)
    response = client.get(f"{API}/lots/{flow.raw}", headers=flow.coop_h)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["lot_code"] == flow.raw_code and float(body["held"]) == 300
    assert {(h["organisation_id"], float(h["quantity"])) for h in body["holders"]} == {(flow.coop.id, 300)}
    assert_problem(client.get(f"{API}/lots/987654", headers=flow.coop_h), 404, "not_found")
    assert_problem(client.get(f"{API}/lots/{flow.raw}", headers=flow.other_h), 404, "not_found")


def test_backward_trace_reaches_the_growing_area(client: TestClient, session: Session) -> None:
    flow = _flow(session)
    response = client.get(f"{API}/lots/{flow.dried}/trace", headers=flow.proc_h, params={"direction": "backward"})
    assert response.status_code == 200, response.text
    trace = response.json()
    assert trace["root_lot_id"] == flow.dried and trace["direction"] == "backward"
    assert {x["id"] for x in trace["lots"]} == {flow.raw, flow.dried}
    assert [(e["parent_lot_id"], e["child_lot_id"]) for e in trace["edges"]] == [(flow.raw, flow.dried)]
    raw = next(x for x in trace["lots"] if x["id"] == flow.raw)
    assert raw["planting_area_code"] and raw["commune_code"] == f.COMMUNE
    assert [e["type"] for e in trace["events"]] == ["harvest", "ship", "receive", "transform"]


def test_forward_trace_reaches_every_descendant_and_holder(client: TestClient, session: Session) -> None:
    flow = _flow(session)
    trace = client.get(f"{API}/lots/{flow.raw}/trace", headers=flow.coop_h, params={"direction": "forward"}).json()
    assert {x["id"] for x in trace["lots"]} == {flow.raw, flow.dried}
    dried = next(x for x in trace["lots"] if x["id"] == flow.dried)
    assert [h["organisation_id"] for h in dried["holders"]] == [flow.proc.id]
    assert_problem(
        client.get(f"{API}/lots/{flow.raw}/trace", headers=flow.coop_h, params={"direction": "sideways"}),
        422,
        "validation_error",
    )
    assert_problem(client.get(f"{API}/lots/{flow.raw}/trace", headers=flow.other_h), 404, "not_found")


def test_trace_csv_is_an_fsma_204_spreadsheet(client: TestClient, session: Session) -> None:
    flow = _flow(session)
    response = client.get(f"{API}/lots/{flow.dried}/trace.csv", headers=flow.proc_h)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    header = response.text.splitlines()[0].split(",")
    # the FSMA 204 key data elements of each critical tracking event
    for column in (
        "traceability_lot_code",
        "product_description",
        "critical_tracking_event",
        "event_date",
        "quantity",
        "unit_of_measure",
        "location_identifier",
        "traceability_lot_code_source",
        "ship_from",
        "ship_to",
        "input_traceability_lot_codes",
        "reference_document_type",
        "reference_document_number",
    ):
        assert column in header, column
    raw_tlc = f"(01){flow.raw_gtin}(10){flow.raw_code}"
    assert {r["critical_tracking_event"] for r in rows} == {"Harvesting", "Shipping", "Receiving", "Transformation"}
    harvest = next(r for r in rows if r["critical_tracking_event"] == "Harvesting")
    assert harvest["traceability_lot_code"] == raw_tlc and float(harvest["quantity"]) == 500
    made = next(
        r for r in rows if r["critical_tracking_event"] == "Transformation" and r["traceability_lot_code"] != raw_tlc
    )
    assert made["input_traceability_lot_codes"] == raw_tlc
    shipped = next(r for r in rows if r["critical_tracking_event"] == "Shipping")
    assert shipped["ship_from"] and shipped["ship_to"] and shipped["ship_from"] != shipped["ship_to"]
    assert_problem(client.get(f"{API}/lots/{flow.dried}/trace.csv", headers=flow.other_h), 404, "not_found")


def test_an_id_beyond_the_database_integer_range_is_a_4xx_not_a_500(client: TestClient, session: Session) -> None:
    _, headers = party(session)
    session.commit()
    for path in ("/api/v1/lots/2147483648", "/api/v1/lots/2147483648/trace", "/api/v1/lots/2147483648/trace.csv"):
        answer = client.get(path, headers=headers)
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
