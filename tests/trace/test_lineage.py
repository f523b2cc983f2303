"""Lineage: multi-level traces with merges, splits and diamonds; unit-changing transformations;
the FSMA 204 spreadsheet and what it hides from other organisations."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlmodel import Session, col, select

from tests import factories as f
from trace.access import Actor, Role
from trace.errors import RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import (
    BizTransaction,
    Conversion,
    ShipIn,
    TransformIn,
    TransformInput,
    TransformOutput,
)
from trace.lineage import Direction, fsma_csv, lot_ids, trace
from trace.lots import Lot
from trace.organisations import Organisation

D = Decimal
INSPECTOR = Actor(role=Role.INSPECTOR, organisation_id=None, name="QLTT")


@dataclass
class Graph:
    coop1: Organisation
    coop2: Organisation
    proc: Organisation
    shop: Organisation
    lots: dict[str, int]


def build(session: Session) -> Graph:
    """Two farms' harvests merged (M), split (S1, S2), packed (P), and a diamond S2→X, S2→Y, X+Y→Z.

    U is an unrelated lot of the first farm; P is partly shipped on to a shop.
    """
    coop1, coop2, proc, shop = f.org(session), f.org(session), f.org(session, "processor"), f.org(session, "retailer")
    h1 = f.harvest(session, coop1, "500", days_ago=6).lot_ids[0]
    h2 = f.harvest(session, coop2, "300", days_ago=6).lot_ids[0]
    u = f.harvest(session, coop1, "50", days_ago=6).lot_ids[0]
    docs = [BizTransaction(type="desadv", id="PX-0001")]
    for farm, lot_id, qty in ((coop1, h1, "400"), (coop2, h2, "300")):
        store = f.location(session, farm, "warehouse", name=f"Kho {farm.name}")
        ship = ShipIn(lot_id=lot_id, quantity=D(qty), destination_organisation_id=proc.id, event_time=f.when(5),  # type: ignore[arg-type]
                      biz_transactions=docs, location_id=store.id)
        shipment = capture(session=session, actor=f.member(farm), items=[(EventType.SHIP, ship)]).shipment_id
        f.receive(session, proc, shipment, days_ago=4.5)  # type: ignore[arg-type]
    p = {name: f.product(session, proc, category=name) for name in ("dried", "grade_a", "grade_b", "packed", "paste", "jam", "mix")}
    m = f.transform(session, proc, [(h1, "400"), (h2, "300")], [(p["dried"], "140")], days_ago=4).lot_ids[0]
    s1, s2 = f.transform(session, proc, [(m, "140")], [(p["grade_a"], "90"), (p["grade_b"], "50")], days_ago=3.5).lot_ids
    pk = f.transform(session, proc, [(s1, "90")], [(p["packed"], "90")], days_ago=3).lot_ids[0]
    x = f.transform(session, proc, [(s2, "20")], [(p["paste"], "20")], days_ago=2.5).lot_ids[0]
    y = f.transform(session, proc, [(s2, "30")], [(p["jam"], "30")], days_ago=2.4).lot_ids[0]
    z = f.transform(session, proc, [(x, "20"), (y, "30")], [(p["mix"], "50")], days_ago=2).lot_ids[0]
    f.receive(session, shop, f.ship(session, proc, pk, shop, "25", days_ago=1).shipment_id, days_ago=0.5)  # type: ignore[arg-type]
    return Graph(coop1, coop2, proc, shop, {"H1": h1, "H2": h2, "U": u, "M": m, "S1": s1, "S2": s2, "P": pk, "X": x, "Y": y, "Z": z})


def names(g: Graph, ids: list[int]) -> list[str]:
    by_id = {v: k for k, v in g.lots.items()}
    return sorted(by_id[i] for i in ids)


@pytest.mark.parametrize(("root", "direction", "expected"), [
    ("P", Direction.BACKWARD, ["H1", "H2", "M", "P", "S1"]),
    ("Z", Direction.BACKWARD, ["H1", "H2", "M", "S2", "X", "Y", "Z"]),
    ("S2", Direction.BACKWARD, ["H1", "H2", "M", "S2"]),
    ("H1", Direction.FORWARD, ["H1", "M", "P", "S1", "S2", "X", "Y", "Z"]),
    ("S2", Direction.FORWARD, ["S2", "X", "Y", "Z"]),
    ("U", Direction.FORWARD, ["U"]),
    ("U", Direction.BACKWARD, ["U"]),
])
def test_traces_reach_every_relative_once_and_no_unrelated_lot(session: Session, root: str, direction: Direction, expected: list[str]) -> None:
    g = build(session)
    ids = lot_ids(session=session, lot_id=g.lots[root], direction=direction)
    # each lot once, even where the diamond offers two paths
    assert len(ids) == len(set(ids))
    assert names(g, ids) == expected


def test_a_backward_trace_through_a_diamond_lists_lots_edges_and_events_once(session: Session) -> None:
    g = build(session)
    result = trace(session=session, actor=f.member(g.proc), lot_id=g.lots["Z"], direction=Direction.BACKWARD)
    assert names(g, [lot.id for lot in result.lots]) == ["H1", "H2", "M", "S2", "X", "Y", "Z"]
    edges = {(e.parent_lot_id, e.child_lot_id) for e in result.edges}
    L = g.lots  # noqa: N806 - reads like the diagram
    assert edges == {(L["H1"], L["M"]), (L["H2"], L["M"]), (L["M"], L["S2"]), (L["S2"], L["X"]), (L["S2"], L["Y"]),
                     (L["X"], L["Z"]), (L["Y"], L["Z"])}
    assert len(result.edges) == len(edges)
    event_ids = [e.id for e in result.events]
    assert len(event_ids) == len(set(event_ids))
    # the growing areas at the root are reported
    harvested = {lot.id: lot for lot in result.lots}[L["H1"]]
    assert harvested.planting_area_code and harvested.commune_code == f.COMMUNE


def test_a_forward_trace_reports_who_holds_each_descendant(session: Session) -> None:
    g = build(session)
    result = trace(session=session, actor=f.member(g.coop1), lot_id=g.lots["H1"], direction=Direction.FORWARD)
    holders = {lot.id: {h["organisation_id"]: h["quantity"] for h in lot.holders} for lot in result.lots}
    L = g.lots  # noqa: N806 - reads like the diagram
    assert holders[L["P"]] == {g.proc.id: D("65"), g.shop.id: D("25")}
    assert holders[L["Z"]] == {g.proc.id: D("50")}
    assert holders[L["H1"]] == {g.coop1.id: D("100")}
    assert holders[L["M"]] == {} and holders[L["S2"]] == {}  # used up entirely
    assert L["H2"] not in holders and L["U"] not in holders


def test_the_fsma_spreadsheet_has_one_row_per_lot_per_event_with_the_kdes(session: Session) -> None:
    g = build(session)
    text = fsma_csv(session=session, actor=INSPECTOR, lot_id=g.lots["P"], direction=Direction.BACKWARD)
    rows = list(csv.DictReader(io.StringIO(text)))
    lots = {lot.id: lot for lot in session.exec(select(Lot))}
    # one row per (event, lot) pair recorded on the lots of the trace, and no other
    traced = lot_ids(session=session, lot_id=g.lots["P"], direction=Direction.BACKWARD)
    events = select(EventLot.event_id).where(col(EventLot.lot_id).in_(traced))
    pairs = session.exec(select(EventLot.event_id, EventLot.lot_id).where(col(EventLot.event_id).in_(events))).all()
    expected = sorted((e, f"(01){lots[lot].gtin}(10){lots[lot].lot_code}") for e, lot in pairs)
    assert sorted((r["event_id"], r["traceability_lot_code"]) for r in rows) == expected
    by_kind: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        assert row["critical_tracking_event"] and row["event_date"] and row["quantity"] and row["unit_of_measure"] == "kg"
        assert row["traceability_lot_code"] == f"(01){row['gtin']}(10){row['lot_code']}"
        by_kind.setdefault(row["critical_tracking_event"], []).append(row)
    assert set(by_kind) == {"Harvesting", "Shipping", "Receiving", "Transformation"}
    for row in by_kind["Harvesting"]:
        assert row["location_identifier"].startswith("VN-HY-") and row["commune_code"] == f.COMMUNE
        assert row["traceability_lot_code_source"] == row["location_identifier"]
    tlc = {k: f"(01){lots[v].gtin}(10){lots[v].lot_code}" for k, v in g.lots.items()}
    moves = by_kind["Shipping"] + by_kind["Receiving"]
    from_farms = [r for r in moves if r["traceability_lot_code"] in (tlc["H1"], tlc["H2"])]
    assert len(from_farms) == 4
    assert all(r["ship_from"] in (g.coop1.name, g.coop2.name) and r["ship_to"] == g.proc.name for r in from_farms)
    # where the event recorded its place, the spreadsheet names it
    assert {r["location_description"] for r in from_farms if r["critical_tracking_event"] == "Shipping"} == \
        {f"Kho {g.coop1.name}", f"Kho {g.coop2.name}"}
    onward = [r for r in moves if r["traceability_lot_code"] == tlc["P"]]
    assert {(r["ship_from"], r["ship_to"], r["quantity"]) for r in onward} == {(g.proc.name, g.shop.name, "25.000")}
    # a transformation's output rows list its inputs' lot codes; input rows do not
    merge = {r["traceability_lot_code"]: r for r in by_kind["Transformation"] if r["event_id"] == lots[g.lots["M"]].created_event_id}
    assert set(merge) == {tlc["M"], tlc["H1"], tlc["H2"]}
    assert set(merge[tlc["M"]]["input_traceability_lot_codes"].split()) == {tlc["H1"], tlc["H2"]}
    assert merge[tlc["H1"]]["input_traceability_lot_codes"] == merge[tlc["H2"]]["input_traceability_lot_codes"] == ""
    assert (merge[tlc["M"]]["quantity"], merge[tlc["H1"]]["quantity"]) == ("140.000", "400.000")
    # the inspector sees the farms' delivery notes
    assert {r["reference_document_number"] for r in from_farms if r["critical_tracking_event"] == "Shipping"} == {"PX-0001"}


def test_the_fsma_spreadsheet_hides_other_organisations_business_documents(session: Session) -> None:
    g = build(session)
    rows = list(csv.DictReader(io.StringIO(fsma_csv(session=session, actor=f.member(g.proc), lot_id=g.lots["P"], direction=Direction.BACKWARD))))
    farm_ships = [r for r in rows if r["critical_tracking_event"] == "Shipping" and r["recorded_by"] != g.proc.name]
    assert farm_ships and all(r["reference_document_number"] == r["reference_document_type"] == "" for r in farm_ships)
    # while the farm sees its own
    own = list(csv.DictReader(io.StringIO(fsma_csv(session=session, actor=f.member(g.coop1), lot_id=g.lots["H1"], direction=Direction.FORWARD))))
    mine = [r for r in own if r["critical_tracking_event"] == "Shipping" and r["recorded_by"] == g.coop1.name]
    assert mine and {(r["reference_document_type"], r["reference_document_number"]) for r in mine} == {("desadv", "PX-0001")}


def _chicken(session: Session) -> tuple[Organisation, int, int]:
    farm = f.org(session, "farm")
    chicken = f.product(session, farm, unit="head", category="chicken_live", name_vi="Gà Đông Tảo")
    meat = f.product(session, farm, unit="kg", category="chicken_meat", name_vi="Thịt gà Đông Tảo")
    lot_id = f.harvest(session, farm, "50", prod=chicken, loc=f.location(session, farm, "farm")).lot_ids[0]
    return farm, lot_id, meat.id  # type: ignore[return-value]


def _slaughter(lot_id: int, meat_id: int, conversion: Conversion | None) -> TransformIn:
    return TransformIn(inputs=[TransformInput(lot_id=lot_id, quantity=D(20))], conversion=conversion, event_time=f.when(1),
                       outputs=[TransformOutput(product_id=meat_id, lot_code="MEAT1", quantity=D("36.5"))])  # type: ignore[arg-type]


def test_a_transformation_from_heads_to_kilograms_records_its_conversion(session: Session) -> None:
    farm, lot_id, meat_id = _chicken(session)
    data = _slaughter(lot_id, meat_id, Conversion(input_unit="head", output_unit="kg", factor=D("1.825")))
    result = capture(session=session, actor=f.member(farm), items=[(EventType.TRANSFORM, data)])
    event = session.get(Event, result.events[0].id)
    assert event is not None and event.payload["conversion"] == {"input_unit": "head", "output_unit": "kg", "factor": "1.825"}
    rows = {row.role: (row.quantity, row.unit) for row in result.events[0].lots}
    assert rows == {"input": (D("20"), "head"), "output": (D("36.5"), "kg")}
    assert set(lot_ids(session=session, lot_id=result.lot_ids[0], direction=Direction.BACKWARD)) == {result.lot_ids[0], lot_id}


@pytest.mark.parametrize(("input_unit", "output_unit"), [("kg", "kg"), ("head", "head"), ("piece", "kg")])
def test_a_conversion_whose_units_do_not_match_the_lots_is_refused(session: Session, input_unit: str, output_unit: str) -> None:
    farm, lot_id, meat_id = _chicken(session)
    data = _slaughter(lot_id, meat_id, Conversion(input_unit=input_unit, output_unit=output_unit, factor=D(2)))
    with pytest.raises(RuleViolation) as info:
        capture(session=session, actor=f.member(farm), items=[(EventType.TRANSFORM, data)])
    assert info.value.code == "conversion_units"
    assert session.exec(select(Lot).where(Lot.lot_code == "MEAT1")).first() is None
