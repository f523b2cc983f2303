"""Cross-organisation attacks through the API: cooperative A tries to write, change or read what
belongs to cooperative B. Every attempt is its own test case; each must be refused with a
problem document AND leave every table exactly as it was. Then the positive side: a processor
involved with B's lot reads its trace with B's private fields redacted, an inspector in full."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, snapshot
from trace import auth
from trace.access import Role
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import CommissionIn, HarvestIn, InputUsed
from trace.users import UserCreate, invite_member

API = "/api/v1"
B_KEY = "b-harvest-0001"


@dataclass
class World:
    """Cooperatives A and B, processor P, an inspector; B's lot, units, shipments and secrets."""

    a: Any
    a_headers: dict[str, dict[str, str]]  # by role: member, org_admin
    a_area: Any
    a_shed: Any
    a_product: Any
    a_lot: int
    b: Any
    b_headers: dict[str, str]
    b_area: Any
    b_shed: Any
    b_product: Any
    b_lot: int
    b_harvest_event: str
    b_harvest_body: dict[str, Any]
    b_ship_event: str
    b_serials: list[str]
    b_member_id: int
    b_key_id: int
    to_p: int  # B → P, open
    to_b: int  # P → B, open
    p: Any
    p_headers: dict[str, str]
    inspector: dict[str, str]


def _world(session: Session) -> World:
    a, b, p = f.org(session), f.org(session), f.org(session, "processor")
    a_headers = {role: headers_for(session, a, Role(role)) for role in ("member", "org_admin")}
    b_headers, p_headers = headers_for(session, b), headers_for(session, p)
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    a_area, a_shed, a_product = f.location(session, a), f.location(session, a, "warehouse"), f.product(session, a)
    a_lot = f.harvest(session, a, "50", prod=a_product, loc=a_area).lot_ids[0]
    b_area, b_shed, b_product = f.location(session, b), f.location(session, b, "warehouse"), f.product(session, b)
    b_actor = f.member(b)
    # B's harvest carries private data: farming inputs, an invoice, extra KDEs
    sprayed = InputUsed(
        kind="pesticide",
        name="Abamectin bí mật",
        applied_on=date.today() - timedelta(days=40),
        pre_harvest_interval_days=7,
    )
    body = HarvestIn(
        product_id=b_product.id,
        lot_code="B-SECRET-1",
        quantity=Decimal("500"),
        location_id=b_area.id,  # type: ignore[arg-type]
        event_time=f.when(5),
        inputs_used=[sprayed],
        biz_transactions=[{"type": "inv", "id": "HD-B-1"}],  # type: ignore[list-item]
        kde={"brix": 22},
    )
    harvest = capture(session=session, actor=b_actor, items=[(EventType.HARVEST, body)], idempotency_key=B_KEY)
    b_lot = harvest.lot_ids[0]
    serials = capture(
        session=session,
        actor=b_actor,
        items=[(EventType.COMMISSION, CommissionIn(lot_id=b_lot, count=3, event_time=f.when(4.9)))],
    ).serials
    first = f.ship(session, b, b_lot, p, "200", days_ago=4)
    f.receive(session, p, first.shipment_id, days_ago=3.5)  # type: ignore[arg-type]
    to_b = f.ship(session, p, b_lot, b, "50", days_ago=3).shipment_id
    to_p = f.ship(session, b, b_lot, p, "100", days_ago=2).shipment_id
    b_member = invite_member(
        session=session,
        actor=f.ADMIN,
        organisation_id=b.id,  # type: ignore[arg-type]
        data=UserCreate(email="b.member@example.com", full_name="Thành viên B"),
    ).user.id
    b_key = auth.create_api_key(
        session=session, actor=f.ADMIN, organisation_id=b.id, data=auth.ApiKeyCreate(name="cân B")
    ).id  # type: ignore[arg-type]
    session.commit()
    return World(
        a,
        a_headers,
        a_area,
        a_shed,
        a_product,
        a_lot,
        b,
        b_headers,
        b_area,
        b_shed,
        b_product,
        b_lot,
        harvest.events[0].id,
        body.model_dump(mode="json"),
        first.events[0].id,
        serials,
        b_member,
        b_key,
        to_p,
        to_b,
        p,
        p_headers,
        inspector,
    )  # type: ignore[arg-type]


Attempt = Callable[[World], tuple[str, str, dict[str, Any] | None]]
# name → (the request A makes, the status and problem code that must come back)
ATTACKS: dict[str, tuple[Attempt, int, str]] = {
    "ship B's lot": (
        lambda w: (
            "POST",
            "/events/ship",
            {"lot_id": w.b_lot, "quantity": "10", "destination_organisation_id": w.a.id},
        ),
        403,
        "not_holder",
    ),
    "transform B's lot": (
        lambda w: (
            "POST",
            "/events/transform",
            {
                "inputs": [{"lot_id": w.b_lot, "quantity": "10"}],
                "outputs": [{"product_id": w.a_product.id, "lot_code": "STOLEN-1", "quantity": "10"}],
            },
        ),
        403,
        "not_holder",
    ),
    "commission B's lot": (
        lambda w: ("POST", "/events/commission", {"lot_id": w.b_lot, "count": 5}),
        403,
        "not_holder",
    ),
    "pack B's units": (
        lambda w: (
            "POST",
            "/events/pack",
            {"parent_id": "carton-A", "children": [{"lot_id": w.b_lot, "serial": s} for s in w.b_serials]},
        ),
        403,
        "not_holder",
    ),
    "sell B's lot": (lambda w: ("POST", "/events/sell", {"lot_id": w.b_lot, "quantity": "1"}), 403, "not_holder"),
    "store B's lot at A's warehouse": (
        lambda w: ("POST", "/events/store", {"lot_id": w.b_lot, "location_id": w.a_shed.id}),
        403,
        "not_holder",
    ),
    "store B's lot at B's warehouse": (
        lambda w: ("POST", "/events/store", {"lot_id": w.b_lot, "location_id": w.b_shed.id}),
        403,
        "not_holder",
    ),
    "write off B's lot": (
        lambda w: ("POST", "/events/loss", {"lot_id": w.b_lot, "quantity": "1", "reason": "spoilage"}),
        403,
        "not_holder",
    ),
    "inspect B's lot without being an inspector": (
        lambda w: ("POST", "/events/inspect", {"lot_id": w.b_lot, "result": "fail"}),
        403,
        "not_holder",
    ),
    "receive B's shipment to P": (
        lambda w: ("POST", "/events/receive", {"shipment_id": w.to_p}),
        422,
        "no_matching_shipment",
    ),
    "receive P's shipment to B": (
        lambda w: ("POST", "/events/receive", {"shipment_id": w.to_b}),
        422,
        "no_matching_shipment",
    ),
    "correct B's harvest": (
        lambda w: ("POST", "/events/correction", {"event_id": w.b_harvest_event, "reason": "did_not_occur"}),
        404,
        "not_found",
    ),
    "correct B's shipment": (
        lambda w: ("POST", "/events/correction", {"event_id": w.b_ship_event, "reason": "incorrect_data"}),
        404,
        "not_found",
    ),
    "batch: a valid event then a sale of B's lot": (
        lambda w: (
            "POST",
            "/events/batch",
            {
                "events": [
                    {"type": "sell", "data": {"lot_id": w.a_lot, "quantity": "1"}},
                    {"type": "sell", "data": {"lot_id": w.b_lot, "quantity": "1"}},
                ]
            },
        ),
        403,
        "not_holder",
    ),
    "harvest at B's growing area": (
        lambda w: (
            "POST",
            "/events/harvest",
            {"product_id": w.a_product.id, "lot_code": "A-AT-B", "quantity": "5", "location_id": w.b_area.id},
        ),
        422,
        "not_your_location",
    ),
    "harvest under B's product": (
        lambda w: (
            "POST",
            "/events/harvest",
            {"product_id": w.b_product.id, "lot_code": "A-AS-B", "quantity": "5", "location_id": w.a_area.id},
        ),
        403,
        "not_your_product",
    ),
    "transform into B's product": (
        lambda w: (
            "POST",
            "/events/transform",
            {
                "inputs": [{"lot_id": w.a_lot, "quantity": "1"}],
                "outputs": [{"product_id": w.b_product.id, "lot_code": "A-AS-B", "quantity": "1"}],
            },
        ),
        403,
        "not_your_product",
    ),
    "ship own lot from B's warehouse": (
        lambda w: (
            "POST",
            "/events/ship",
            {"lot_id": w.a_lot, "quantity": "1", "destination_organisation_id": w.p.id, "location_id": w.b_shed.id},
        ),
        422,
        "not_your_location",
    ),
    "replay B's idempotency key": (lambda w: ("POST", "/events/harvest", w.b_harvest_body), 422, "not_your_location"),
    "create a location for B": (
        lambda w: (
            "POST",
            "/locations",
            {"organisation_id": w.b.id, "kind": "warehouse", "name": "Kho giả", "commune_code": f.COMMUNE},
        ),
        403,
        "not_your_organisation",
    ),
    "create a product for B": (
        lambda w: ("POST", "/products", {"organisation_id": w.b.id, "name_vi": "Nhãn giả", "category": "longan_fresh"}),
        403,
        "not_your_organisation",
    ),
    "issue an API key for B": (
        lambda w: ("POST", f"/organisations/{w.b.id}/api-keys", {"name": "stolen"}),
        403,
        "org_admin_only",
    ),
    "invite a member to B": (
        lambda w: ("POST", f"/organisations/{w.b.id}/members", {"email": "spy@example.com", "full_name": "Gián điệp"}),
        403,
        "org_admin_only",
    ),
    "appoint B's administrator": (
        lambda w: (
            "POST",
            f"/organisations/{w.b.id}/administrators",
            {"email": "spy@example.com", "full_name": "Gián điệp"},
        ),
        403,
        "admin_only",
    ),
    "edit B's organisation": (
        lambda w: ("PATCH", f"/organisations/{w.b.id}", {"name": "HTX bị chiếm"}),
        403,
        "org_admin_only",
    ),
    "edit B's location": (
        lambda w: ("PATCH", f"/locations/{w.b_area.id}", {"active": False}),
        403,
        "not_your_organisation",
    ),
    "edit B's product": (
        lambda w: ("PATCH", f"/products/{w.b_product.id}", {"name_vi": "Hàng giả"}),
        403,
        "not_your_organisation",
    ),
    "revoke B's API key": (
        lambda w: ("DELETE", f"/organisations/{w.b.id}/api-keys/{w.b_key_id}", None),
        403,
        "org_admin_only",
    ),
    "remove B's member": (
        lambda w: ("DELETE", f"/organisations/{w.b.id}/members/{w.b_member_id}", None),
        403,
        "org_admin_only",
    ),
    "reset B's member's password": (
        lambda w: ("POST", f"/organisations/{w.b.id}/members/{w.b_member_id}/reset-password", None),
        403,
        "org_admin_only",
    ),
    "read B's lot": (lambda w: ("GET", f"/lots/{w.b_lot}", None), 404, "not_found"),
    "read B's backward trace": (lambda w: ("GET", f"/lots/{w.b_lot}/trace?direction=backward", None), 404, "not_found"),
    "read B's forward trace": (lambda w: ("GET", f"/lots/{w.b_lot}/trace?direction=forward", None), 404, "not_found"),
    "read B's trace.csv": (lambda w: ("GET", f"/lots/{w.b_lot}/trace.csv", None), 404, "not_found"),
    "read B's events by lot": (lambda w: ("GET", f"/events?lot_id={w.b_lot}", None), 404, "not_found"),
    "read B's harvest event": (lambda w: ("GET", f"/events/{w.b_harvest_event}", None), 404, "not_found"),
    "read B's shipment event": (lambda w: ("GET", f"/events/{w.b_ship_event}", None), 404, "not_found"),
    "read B's members": (lambda w: ("GET", f"/organisations/{w.b.id}/members", None), 403, "org_admin_only"),
    "read B's API keys": (lambda w: ("GET", f"/organisations/{w.b.id}/api-keys", None), 403, "org_admin_only"),
    "read B's version history": (lambda w: ("GET", f"/organisations/{w.b.id}/versions", None), 403, "private"),
}


@pytest.mark.parametrize("role", ["member", "org_admin"])
@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_cannot_touch_b(client: TestClient, session: Session, name: str, role: str) -> None:
    # given
    world = _world(session)
    attempt, status, code = ATTACKS[name]
    method, path, body = attempt(world)
    headers = dict(world.a_headers[role])
    if name == "replay B's idempotency key":
        headers["Idempotency-Key"] = B_KEY
    before = snapshot(session)
    # when
    response = client.request(method, API + path, headers=headers, json=body)
    # then
    assert_problem(response, status, code)
    assert snapshot(session) == before, f"{name}: the refused request changed the database"


def test_listings_never_show_b_to_a(client: TestClient, session: Session) -> None:
    w = _world(session)
    a = w.a_headers["member"]
    assert w.b_lot not in [x["id"] for x in client.get(f"{API}/lots", headers=a, params={"limit": 500}).json()]
    for params in ({"organisation_id": w.b.id}, {"product_id": w.b_product.id}, {"eventType": "harvest"}):
        events = client.get(f"{API}/events", headers=a, params={**params, "limit": 500}).json()
        assert all(e["organisation_id"] == w.a.id for e in events), params


def _b_harvest(trace: dict[str, Any], event_id: str) -> dict[str, Any]:
    return next(e for e in trace["events"] if e["id"] == event_id)


def test_involved_processor_sees_the_trace_without_b_private_fields(client: TestClient, session: Session) -> None:
    w = _world(session)
    response = client.get(f"{API}/lots/{w.b_lot}/trace", headers=w.p_headers)
    assert response.status_code == 200, response.text
    harvest = _b_harvest(response.json(), w.b_harvest_event)
    assert harvest["redacted"] is True and harvest["biz_transactions"] is None
    assert "inputs_used" not in harvest["payload"] and "kde" not in harvest["payload"]
    assert harvest["payload"]["lot_code"] == "B-SECRET-1"  # what the chain needs stays
    single = client.get(f"{API}/events/{w.b_harvest_event}", headers=w.p_headers).json()
    assert single["redacted"] is True and "inputs_used" not in single["payload"]
    sheet = client.get(f"{API}/lots/{w.b_lot}/trace.csv", headers=w.p_headers).text
    assert "HD-B-1" not in sheet and "Abamectin" not in sheet


def test_inspector_and_b_itself_see_b_private_fields(client: TestClient, session: Session) -> None:
    w = _world(session)
    for headers in (w.inspector, w.b_headers):
        response = client.get(f"{API}/lots/{w.b_lot}/trace", headers=headers)
        assert response.status_code == 200, response.text
        harvest = _b_harvest(response.json(), w.b_harvest_event)
        assert harvest["redacted"] is False
        assert harvest["biz_transactions"] == [{"type": "inv", "id": "HD-B-1"}]
        assert harvest["payload"]["inputs_used"][0]["name"] == "Abamectin bí mật" and harvest["payload"]["kde"] == {
            "brix": 22
        }
    assert "HD-B-1" in client.get(f"{API}/lots/{w.b_lot}/trace.csv", headers=w.inspector).text
