"""Designation claims over HTTP: a harvest claiming a designation (refused naming the condition, or
accepted and shown on the lot and on a code check), inheritance reported by a transformation,
the label quota refusing a print run, and the badge on the printed sheet."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pypdfium2 as pdfium
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

import labels
from tests import factories as f
from tests.api.helpers import assert_problem, jobs_sent, party, snapshot
from trace import admin_units
from trace.designations.models import Designation, DesignationKind, InheritRule, RightToUse
from trace.printing import jobs
from trace.units import Unit

API = "/api/v1"
GI_NAME = "Nhãn lồng Hưng Yên"
DISTRICTS = ["Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"]
HOAN_LONG, DONG_TAO, DONG_THAN = "12070", "12208", "12061"  # today's Hoàn Long; old Đông Tảo (in), Đồng Than (out)


def _today() -> date:
    return datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


@dataclass
class Farm:
    """The longan GI, a cooperative granted its right (quota 10 labels a year), two growing areas in
    today's Hoàn Long (one on the old Đông Tảo, one on the old Đồng Than) and bagged fresh longan."""

    gi: Designation
    coop: Any
    coop_h: dict[str, str]
    inside: Any
    outside: Any
    fresh: Any


def _farm(client: TestClient, session: Session) -> Farm:
    holder = f.org(session, "designation_holder")
    formers = [c for d in DISTRICTS for c in admin_units.former_communes_in_district(d)]
    gi = Designation(
        kind=DesignationKind.GEOGRAPHICAL_INDICATION,
        name_vi=GI_NAME,
        registration_number="00055",
        decision_number="186/QĐ-SHTT",
        holder_organisation_id=holder.id,  # type: ignore[arg-type]
        categories=["longan_fresh"],
        derived_categories=["longan_dried"],
        inherit_rule=InheritRule.ALL_INPUTS,
        area_former_districts=DISTRICTS,
        area_former_communes=sorted(c.code for c in formers),
        area_communes=sorted({code for c in formers for code in c.current_codes}),
    )
    session.add(gi)
    session.flush()
    coop, coop_h = party(session)
    session.add(
        RightToUse(
            designation_id=gi.id,
            organisation_id=coop.id,
            decision_number="07/QĐ-HNL",  # type: ignore[arg-type]
            valid_from=_today() - timedelta(days=300),
            valid_to=_today() + timedelta(days=300),
            annual_label_quota=10,
        )
    )
    farm = Farm(
        gi,
        coop,
        coop_h,
        f.location(session, coop, commune_code=HOAN_LONG, former_commune_code=DONG_TAO),
        f.location(session, coop, commune_code=HOAN_LONG, former_commune_code=DONG_THAN),
        f.product(session, coop, name_vi="Nhãn lồng tươi", package_size=Decimal("0.5")),
    )
    session.commit()
    jobs_sent(client, "print_run")  # no broker: the test renders the run itself
    return farm


def _harvest_body(farm: Farm, location: Any, **extra: Any) -> dict[str, Any]:
    return {
        "product_id": farm.fresh.id,
        "lot_code": f"NL{f.tax_code()[-8:]}",
        "quantity": "100",
        "location_id": location.id,
        "event_time": f.when(5).isoformat(),
        "designation_ids": [farm.gi.id],
        **extra,
    }


def _harvest(client: TestClient, farm: Farm) -> dict[str, Any]:
    response = client.post(f"{API}/events/harvest", headers=farm.coop_h, json=_harvest_body(farm, farm.inside))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_claim_from_outside_the_protected_area_is_refused_naming_the_condition(
    client: TestClient, session: Session
) -> None:
    farm = _farm(client, session)
    before = snapshot(session)
    response = client.post(f"{API}/events/harvest", headers=farm.coop_h, json=_harvest_body(farm, farm.outside))
    body = assert_problem(response, 422, "area_outside")
    assert body["designation_id"] == farm.gi.id and body["designation"] == GI_NAME and GI_NAME in body["detail"]
    assert snapshot(session) == before, "a refused harvest wrote something"
    too_many = _harvest_body(farm, farm.inside, designation_ids=[farm.gi.id] * 6)
    assert_problem(client.post(f"{API}/events/harvest", headers=farm.coop_h, json=too_many), 422, "validation_error")


def test_an_accepted_claim_shows_on_the_event_the_lot_and_a_code_check(client: TestClient, session: Session) -> None:
    farm = _farm(client, session)
    result = _harvest(client, farm)
    assert result["events"][0]["payload"]["designations"] == [{"id": farm.gi.id, "name": GI_NAME}]
    lot = client.get(f"{API}/lots/{result['lot_ids'][0]}", headers=farm.coop_h).json()
    [claim] = lot["claims"]
    assert (claim["designation_id"], claim["name"], claim["kind"], claim["number"], claim["source"]) == (
        farm.gi.id,
        GI_NAME,
        "geographical_indication",
        "00055",
        "harvest",
    )
    assert (claim["valid_at_harvest"], claim["valid_today"], claim["problem"]) == (True, True, None)
    run = client.post(f"{API}/lots/{lot['id']}/print-runs", headers=farm.coop_h, json={"quantity": 2})
    assert run.status_code == 202, run.text
    code = session.execute(select(col(Unit.code)).where(Unit.print_run_id == run.json()["id"])).scalars().first()
    checked = client.get(f"{API}/codes/check", params={"code": code}).json()  # public: no credentials
    assert [(c["designation_id"], c["valid_today"]) for c in checked["claims"]] == [(farm.gi.id, True)]


def test_a_print_run_beyond_the_quota_is_refused_with_what_is_left(client: TestClient, session: Session) -> None:
    farm = _farm(client, session)
    lot_id = _harvest(client, farm)["lot_ids"][0]
    assert client.post(f"{API}/lots/{lot_id}/print-runs", headers=farm.coop_h, json={"quantity": 7}).status_code == 202
    before = snapshot(session)
    response = client.post(f"{API}/lots/{lot_id}/print-runs", headers=farm.coop_h, json={"quantity": 4, "kind": "lot"})
    body = assert_problem(response, 422, "quota_exceeded")
    assert (body["quota"], body["used"], body["left"]) == (10, 7, 3)
    assert snapshot(session) == before


def test_a_transformation_by_an_organisation_without_a_right_records_why_nothing_was_inherited(
    client: TestClient, session: Session
) -> None:
    farm = _farm(client, session)
    lot_id = _harvest(client, farm)["lot_ids"][0]
    proc, proc_h = party(session, "processor")
    dried = f.product(session, proc, name_vi="Long nhãn sấy", category="longan_dried")
    shipment = f.ship(session, farm.coop, lot_id, proc, "100").shipment_id
    f.receive(session, proc, shipment)  # type: ignore[arg-type]
    session.commit()
    response = client.post(
        f"{API}/events/transform",
        headers=proc_h,
        json={
            "inputs": [{"lot_id": lot_id, "quantity": "100"}],
            "event_time": f.when(2).isoformat(),
            "outputs": [{"product_id": dried.id, "lot_code": "LNS-01", "quantity": "25"}],
        },
    )
    assert response.status_code == 201, response.text
    payload = response.json()["events"][0]["payload"]
    assert payload["designations_not_inherited"] == [
        {"id": farm.gi.id, "name": GI_NAME, "lot_code": "LNS-01", "reason": "no_right"}
    ]
    out = client.get(f"{API}/lots/{response.json()['lot_ids'][0]}", headers=proc_h).json()
    assert out["claims"] == []


def test_the_printed_sheet_carries_the_badge(client: TestClient, session: Session) -> None:
    farm = _farm(client, session)
    lot_id = _harvest(client, farm)["lot_ids"][0]
    run_id = client.post(
        f"{API}/lots/{lot_id}/print-runs", headers=farm.coop_h, json={"quantity": 1, "format": "a4-3x8"}
    ).json()["id"]
    run = jobs.claim(session=session, run_id=run_id, token=jobs.new_token(), lease_seconds=60)
    assert run is not None
    data = [labels.LabelData(**asdict(x)) for x in jobs.labels_for(session=session, run=run)]
    pdf = labels.render(data, format="a4-3x8")
    document = pdfium.PdfDocument(pdf)
    try:
        text = " ".join(document[0].get_textpage().get_text_range().split())
    finally:
        document.close()
    assert "CDĐL Nhãn lồng Hưng Yên · số 00055" in text
