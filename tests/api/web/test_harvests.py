"""Recording a harvest with farming inputs and a designation claim, once; its mistakes beside their fields
and the domain's refusals in Vietnamese."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests import factories as f
from tests.api.web.farm import LAC_DAO, Farm, harvest_form, lots_coded, signed_in
from tests.api.web.helpers import VI
from trace.designations.models import RightToUse
from trace.events.models import Event, EventType


def test_a_member_records_a_harvest_with_inputs_and_a_gi_claim_once_and_sees_the_new_lot(
    client: TestClient, session: Session, farm: Farm
) -> None:
    signed_in(client, farm)
    data = harvest_form(
        client,
        farm,
        input1_kind="fertiliser",
        input1_name="NPK 16-16-8",
        input1_dose="2 kg/cây",
        input1_applied_on=(date.today() - timedelta(days=30)).isoformat(),
        input1_pre_harvest_interval_days="7",
    )
    first = client.post("/app/harvest", data=data, headers=VI, follow_redirects=False)
    assert first.status_code == 303
    second = client.post("/app/harvest", data=data, headers=VI, follow_redirects=False)  # a retry after a timeout
    assert second.status_code == 303 and second.headers["location"] == first.headers["location"]
    made = lots_coded(session, "NL-2026-001")
    assert len(made) == 1 and made[0].quantity == Decimal("1234.5")
    assert first.headers["location"] == f"/app/farm/lots/{made[0].id}"
    event = session.exec(select(Event).where(Event.lot_id == made[0].id, Event.type == EventType.HARVEST)).one()
    assert event.payload["inputs_used"][0]["name"] == "NPK 16-16-8"
    page = client.get(first.headers["location"], headers=VI)
    assert page.status_code == 200
    assert "NL-2026-001" in page.text and "1.234,5 kg" in page.text
    assert "CDĐL Nhãn lồng Hưng Yên · số 00055" in page.text and "Được chấp nhận khi thu hoạch." in page.text


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"location": LAC_DAO}, "Vùng trồng này nằm ngoài vùng được bảo hộ của Nhãn lồng Hưng Yên."),
        ({"right": False}, "Tổ chức của bạn không có quyền sử dụng Nhãn lồng Hưng Yên."),
        ({"category": "chicken_live"}, "Nhãn lồng Hưng Yên không áp dụng cho loại sản phẩm này."),
    ],
)
def test_a_refused_designation_claim_is_explained_in_vietnamese_and_records_nothing(
    client: TestClient, session: Session, farm: Farm, change: dict[str, Any], words: str
) -> None:
    over: dict[str, Any] = {}
    if "location" in change:
        over["location_id"] = f.location(session, farm.coop, name="Vườn Lạc Đạo", commune_code=change["location"]).id
    if "right" in change:
        session.delete(session.exec(select(RightToUse).where(RightToUse.organisation_id == farm.coop.id)).one())
    if "category" in change:
        over["product_id"] = f.product(session, farm.coop, name_vi="Gà Đông Tảo", category=change["category"]).id
    session.commit()
    signed_in(client, farm)
    refused = client.post("/app/harvest", data=harvest_form(client, farm, **over), headers=VI)
    assert refused.status_code == 422
    assert words in refused.text and 'role="alert"' in refused.text
    assert lots_coded(session, "NL-2026-001") == []


def test_harvest_mistakes_are_shown_beside_their_fields_in_vietnamese(
    client: TestClient, session: Session, farm: Farm
) -> None:
    signed_in(client, farm)
    typed = client.post(
        "/app/harvest", data=harvest_form(client, farm, quantity="1.5", input2_name="Thuốc trừ sâu"), headers=VI
    )
    assert typed.status_code == 422
    assert 'id="e-quantity">Không phải số.' in typed.text  # "1.5" is not a Vietnamese number
    assert 'id="e-input2_kind">Bắt buộc.' in typed.text and 'id="e-input2_applied_on">Bắt buộc.' in typed.text
    assert 'value="Thuốc trừ sâu"' in typed.text  # what was typed stays
    too_soon = (date.today() - timedelta(days=2)).isoformat()
    interval = client.post(
        "/app/harvest",
        data=harvest_form(
            client,
            farm,
            input1_kind="pesticide",
            input1_name="Abamectin",
            input1_applied_on=too_soon,
            input1_pre_harvest_interval_days="14",
        ),
        headers=VI,
    )
    assert interval.status_code == 422 and "thời gian cách ly trước thu hoạch chưa đủ" in interval.text
    assert lots_coded(session, "NL-2026-001") == []
