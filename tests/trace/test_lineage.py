"""Lineage: multi-level traces with merges, splits and diamonds; unit-changing transformations;
the FSMA 204 spreadsheet and what it hides from other organisations."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlmodel import Session, col, func, select

from tests import factories as f
from trace import lineage
from trace.access import Actor, Role
from trace.errors import NotFound, RuleViolation
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
from trace.locations import Location
from trace.lots import Holding, Lot
from trace.organisations import Organisation
from trace.products import Product
from trace.units import Unit, register_units

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
        ship = ShipIn(
            lot_id=lot_id,
            quantity=D(qty),
            destination_organisation_id=proc.id,
            event_time=f.when(5),  # type: ignore[arg-type]
            biz_transactions=docs,
            location_id=store.id,
        )
        shipment = capture(session=session, actor=f.member(farm), items=[(EventType.SHIP, ship)]).shipment_id
        f.receive(session, proc, shipment, days_ago=4.5)  # type: ignore[arg-type]
    p = {
        name: f.product(session, proc, category=name)
        for name in ("dried", "grade_a", "grade_b", "packed", "paste", "jam", "mix")
    }
    m = f.transform(session, proc, [(h1, "400"), (h2, "300")], [(p["dried"], "140")], days_ago=4).lot_ids[0]
    s1, s2 = f.transform(
        session, proc, [(m, "140")], [(p["grade_a"], "90"), (p["grade_b"], "50")], days_ago=3.5
    ).lot_ids
    pk = f.transform(session, proc, [(s1, "90")], [(p["packed"], "90")], days_ago=3).lot_ids[0]
    x = f.transform(session, proc, [(s2, "20")], [(p["paste"], "20")], days_ago=2.5).lot_ids[0]
    y = f.transform(session, proc, [(s2, "30")], [(p["jam"], "30")], days_ago=2.4).lot_ids[0]
    z = f.transform(session, proc, [(x, "20"), (y, "30")], [(p["mix"], "50")], days_ago=2).lot_ids[0]
    f.receive(session, shop, f.ship(session, proc, pk, shop, "25", days_ago=1).shipment_id, days_ago=0.5)  # type: ignore[arg-type]
    return Graph(
        coop1,
        coop2,
        proc,
        shop,
        {"H1": h1, "H2": h2, "U": u, "M": m, "S1": s1, "S2": s2, "P": pk, "X": x, "Y": y, "Z": z},
    )


def names(g: Graph, ids: list[int]) -> list[str]:
    by_id = {v: k for k, v in g.lots.items()}
    return sorted(by_id[i] for i in ids)


@pytest.mark.parametrize(
    ("root", "direction", "expected"),
    [
        ("P", Direction.BACKWARD, ["H1", "H2", "M", "P", "S1"]),
        ("Z", Direction.BACKWARD, ["H1", "H2", "M", "S2", "X", "Y", "Z"]),
        ("S2", Direction.BACKWARD, ["H1", "H2", "M", "S2"]),
        ("H1", Direction.FORWARD, ["H1", "M", "P", "S1", "S2", "X", "Y", "Z"]),
        ("S2", Direction.FORWARD, ["S2", "X", "Y", "Z"]),
        ("U", Direction.FORWARD, ["U"]),
        ("U", Direction.BACKWARD, ["U"]),
    ],
)
def test_traces_reach_every_relative_once_and_no_unrelated_lot(
    session: Session, root: str, direction: Direction, expected: list[str]
) -> None:
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
    assert edges == {
        (L["H1"], L["M"]),
        (L["H2"], L["M"]),
        (L["M"], L["S2"]),
        (L["S2"], L["X"]),
        (L["S2"], L["Y"]),
        (L["X"], L["Z"]),
        (L["Y"], L["Z"]),
    }
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


def _exact(value: object) -> object:
    """A value with its type, all the way down: Decimal('90') is not Decimal('90.000'), nor a date its text."""
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_exact(item) for item in value]
    return type(value), str(value)


def _read_by_the_orm(session: Session, lot_id: int, forward: bool) -> dict[str, object]:
    lot = session.get(Lot, lot_id)
    assert lot is not None
    product, producer = session.get(Product, lot.product_id), session.get(Organisation, lot.producer_organisation_id)
    origin = session.get(Location, lot.origin_location_id) if lot.origin_location_id else None
    assert product is not None and producer is not None
    held = session.exec(select(Holding).where(Holding.lot_id == lot_id, col(Holding.quantity) > 0)).all()
    units = session.exec(select(Unit.id).where(Unit.lot_id == lot_id)).all()
    return {
        "id": lot.id,
        "gtin": lot.gtin,
        "lot_code": lot.lot_code,
        "product_name": product.name_vi,
        "quantity": lot.quantity,
        "unit": lot.unit,
        "status": lot.status,
        "production_date": lot.production_date,
        "expiry_date": lot.expiry_date,
        "producer_organisation_id": lot.producer_organisation_id,
        "producer_name": producer.name,
        "origin_location_id": lot.origin_location_id,
        "origin_location_name": origin.name if origin else None,
        "planting_area_code": origin.code if origin else None,
        "commune_code": origin.commune_code if origin else None,
        # holders and unit counts are part of a forward trace only
        "holders": sorted(
            ({"organisation_id": h.organisation_id, "quantity": h.quantity} for h in held),
            key=lambda h: h["organisation_id"],
        )
        if forward
        else [],  # type: ignore[arg-type, return-value]
        "units": len(units) if forward else 0,
    }


@pytest.mark.parametrize(
    ("root", "direction"), [("H1", Direction.FORWARD), ("Z", Direction.BACKWARD), ("S2", Direction.FORWARD)]
)
def test_each_lot_of_a_trace_carries_exactly_what_the_orm_reads_from_the_database(
    session: Session, root: str, direction: Direction
) -> None:
    # given the diamond, with a fraction of Z sold on, labelled units on X and a harvest with an expiry date
    g = build(session)
    f.receive(
        session,
        g.shop,
        f.ship(session, g.proc, g.lots["Z"], g.shop, "0.125", days_ago=1).shipment_id,  # type: ignore[arg-type]
        days_ago=0.5,
    )
    register_units(session=session, lot_id=g.lots["X"], count=3, event_id="test")
    dated = f.harvest(session, g.coop1, "12.5", expiry_date=f.today() + timedelta(days=30)).lot_ids[0]
    f.transform(session, g.coop1, [(dated, "12.5")], [(f.product(session, g.coop1), "12.5")])
    session.flush()
    # when it is traced
    result = trace(session=session, actor=INSPECTOR, lot_id=g.lots[root], direction=direction)
    # then every lot is there once, by id, with each field as the ORM loads it (values and types)
    session.expire_all()  # what the ORM reads back from the database, not the objects the test made
    assert [lot.id for lot in result.lots] == sorted(lot_ids(session=session, lot_id=g.lots[root], direction=direction))
    forward = direction is Direction.FORWARD
    assert [_exact(lot.model_dump()) for lot in result.lots] == [
        _exact(_read_by_the_orm(session, lot.id, forward)) for lot in result.lots
    ]
    if forward and root == "H1":
        z = next(lot for lot in result.lots if lot.id == g.lots["Z"])
        assert _exact(z.holders) == _exact(
            [
                {"organisation_id": h, "quantity": q}
                for h, q in sorted([(g.proc.id, D("49.875")), (g.shop.id, D("0.125"))])
            ]
        )
        assert next(lot for lot in result.lots if lot.id == g.lots["X"]).units == 3
    # and so does the harvest with its expiry date, traced from its product
    made = lot_ids(session=session, lot_id=dated, direction=Direction.FORWARD)
    back = trace(session=session, actor=INSPECTOR, lot_id=max(made), direction=Direction.BACKWARD)
    assert [_exact(lot.model_dump()) for lot in back.lots] == [
        _exact(_read_by_the_orm(session, i, False)) for i in sorted(made)
    ]
    assert back.lots[0].expiry_date == f.today() + timedelta(days=30)


@pytest.mark.parametrize("who", ["province admin", "inspector", "member"])
@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("which", ["past the last", "past 32 bits", "past 64 bits"])
def test_a_lot_that_does_not_exist_is_not_found_by_anyone(
    session: Session, who: str, direction: Direction, which: str
) -> None:
    actor = {"province admin": f.ADMIN, "inspector": INSPECTOR, "member": f.member(f.org(session))}[who]
    last = session.exec(select(func.max(Lot.id))).one() or 0
    missing = {"past the last": last + 1000, "past 32 bits": 2**31, "past 64 bits": 2**64}[which]
    with pytest.raises(NotFound):
        trace(session=session, actor=actor, lot_id=missing, direction=direction)


def test_a_database_error_in_a_trace_comes_out_as_sqlalchemys_error(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a lot, and a lots statement the database refuses (as it would a locked database)
    coop = f.org(session)
    root = f.harvest(session, coop).lot_ids[0]
    monkeypatch.setattr(lineage, "_statements", lambda *_: ("", "SELECT id FROM no_such_table", ""))
    # when it is traced, then the error is SQLAlchemy's wrapping of the driver's, as from the ORM
    with pytest.raises(DBAPIError) as raised:
        trace(session=session, actor=f.ADMIN, lot_id=root, direction=Direction.FORWARD)
    assert isinstance(raised.value.orig, session.connection().dialect.loaded_dbapi.Error)
    assert isinstance(raised.value, OperationalError | ProgrammingError) and not raised.value.connection_invalidated


def test_a_trace_is_shown_to_those_involved_with_the_lot_and_to_no_one_else(session: Session) -> None:
    g = build(session)
    L = g.lots  # noqa: N806 - reads like the diagram
    # the shop holds part of P: it sees where P came from
    seen = trace(session=session, actor=f.member(g.shop), lot_id=L["P"], direction=Direction.BACKWARD)
    assert names(g, [lot.id for lot in seen.lots]) == ["H1", "H2", "M", "P", "S1"]
    # the second farm grew part of P, but neither made, holds nor was sent P: to it, P does not exist
    for direction in Direction:
        with pytest.raises(NotFound) as refused:
            trace(session=session, actor=f.member(g.coop2), lot_id=L["P"], direction=direction)
        assert str(refused.value) == f"Lot {L['P']} not found"


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
        assert (
            row["critical_tracking_event"] and row["event_date"] and row["quantity"] and row["unit_of_measure"] == "kg"
        )
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
    assert {r["location_description"] for r in from_farms if r["critical_tracking_event"] == "Shipping"} == {
        f"Kho {g.coop1.name}",
        f"Kho {g.coop2.name}",
    }
    onward = [r for r in moves if r["traceability_lot_code"] == tlc["P"]]
    assert {(r["ship_from"], r["ship_to"], r["quantity"]) for r in onward} == {(g.proc.name, g.shop.name, "25.000")}
    # a transformation's output rows list its inputs' lot codes; input rows do not
    merge = {
        r["traceability_lot_code"]: r
        for r in by_kind["Transformation"]
        if r["event_id"] == lots[g.lots["M"]].created_event_id
    }
    assert set(merge) == {tlc["M"], tlc["H1"], tlc["H2"]}
    assert set(merge[tlc["M"]]["input_traceability_lot_codes"].split()) == {tlc["H1"], tlc["H2"]}
    assert merge[tlc["H1"]]["input_traceability_lot_codes"] == merge[tlc["H2"]]["input_traceability_lot_codes"] == ""
    assert (merge[tlc["M"]]["quantity"], merge[tlc["H1"]]["quantity"]) == ("140.000", "400.000")
    # the inspector sees the farms' delivery notes
    assert {r["reference_document_number"] for r in from_farms if r["critical_tracking_event"] == "Shipping"} == {
        "PX-0001"
    }


def test_the_fsma_spreadsheet_hides_other_organisations_business_documents(session: Session) -> None:
    g = build(session)
    rows = list(
        csv.DictReader(
            io.StringIO(
                fsma_csv(session=session, actor=f.member(g.proc), lot_id=g.lots["P"], direction=Direction.BACKWARD)
            )
        )
    )
    farm_ships = [r for r in rows if r["critical_tracking_event"] == "Shipping" and r["recorded_by"] != g.proc.name]
    assert farm_ships and all(r["reference_document_number"] == r["reference_document_type"] == "" for r in farm_ships)
    # while the farm sees its own
    own = list(
        csv.DictReader(
            io.StringIO(
                fsma_csv(session=session, actor=f.member(g.coop1), lot_id=g.lots["H1"], direction=Direction.FORWARD)
            )
        )
    )
    mine = [r for r in own if r["critical_tracking_event"] == "Shipping" and r["recorded_by"] == g.coop1.name]
    assert mine and {(r["reference_document_type"], r["reference_document_number"]) for r in mine} == {
        ("desadv", "PX-0001")
    }


def _chicken(session: Session) -> tuple[Organisation, int, int]:
    farm = f.org(session, "farm")
    chicken = f.product(session, farm, unit="head", category="chicken_live", name_vi="Gà Đông Tảo")
    meat = f.product(session, farm, unit="kg", category="chicken_meat", name_vi="Thịt gà Đông Tảo")
    lot_id = f.harvest(session, farm, "50", prod=chicken, loc=f.location(session, farm, "farm")).lot_ids[0]
    return farm, lot_id, meat.id  # type: ignore[return-value]


def _slaughter(lot_id: int, meat_id: int, conversion: Conversion | None) -> TransformIn:
    return TransformIn(
        inputs=[TransformInput(lot_id=lot_id, quantity=D(20))],
        conversion=conversion,
        event_time=f.when(1),
        outputs=[TransformOutput(product_id=meat_id, lot_code="MEAT1", quantity=D("36.5"))],
    )  # type: ignore[arg-type]


def test_a_transformation_from_heads_to_kilograms_records_its_conversion(session: Session) -> None:
    farm, lot_id, meat_id = _chicken(session)
    data = _slaughter(lot_id, meat_id, Conversion(input_unit="head", output_unit="kg", factor=D("1.825")))
    result = capture(session=session, actor=f.member(farm), items=[(EventType.TRANSFORM, data)])
    event = session.get(Event, result.events[0].id)
    assert event is not None and event.payload["conversion"] == {
        "input_unit": "head",
        "output_unit": "kg",
        "factor": "1.825",
    }
    rows = {row.role: (row.quantity, row.unit) for row in result.events[0].lots}
    assert rows == {"input": (D("20"), "head"), "output": (D("36.5"), "kg")}
    assert set(lot_ids(session=session, lot_id=result.lot_ids[0], direction=Direction.BACKWARD)) == {
        result.lot_ids[0],
        lot_id,
    }


@pytest.mark.parametrize(("input_unit", "output_unit"), [("kg", "kg"), ("head", "head"), ("piece", "kg")])
def test_a_conversion_whose_units_do_not_match_the_lots_is_refused(
    session: Session, input_unit: str, output_unit: str
) -> None:
    farm, lot_id, meat_id = _chicken(session)
    data = _slaughter(lot_id, meat_id, Conversion(input_unit=input_unit, output_unit=output_unit, factor=D(2)))
    with pytest.raises(RuleViolation) as info:
        capture(session=session, actor=f.member(farm), items=[(EventType.TRANSFORM, data)])
    assert info.value.code == "conversion_units"
    assert session.exec(select(Lot).where(Lot.lot_code == "MEAT1")).first() is None
