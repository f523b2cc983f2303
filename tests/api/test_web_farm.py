"""Workspace pages of a cooperative: its growing areas, recording a harvest with a designation claim,
shipping part of a lot and seeing where its lots went; refusals in Vietnamese, forged forms refused,
double taps recorded once, and another organisation's pages out of reach."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests import factories as f
from tests.api.test_web_auth import PASSWORD, VI, form_token, sign_in
from tests.factories import DONG_TAO, HOAN_LONG
from trace import admin_units
from trace.access import Role
from trace.designations.models import Designation, RightToUse
from trace.events.models import Event, EventType
from trace.locations import Location
from trace.lots import Lot, Shipment
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone
from trace.products import Product
from trace.users import User

LAC_DAO = "11992"  # today's Xã Lạc Đạo lies wholly outside the longan GI's area


@dataclass
class Farm:
    coop: Organisation
    user: User
    fresh: Product
    area: Location
    gi: Designation
    buyer: Organisation


@pytest.fixture
def farm(session: Session) -> Farm:
    grows = f.gi_grower(
        session, f.org(session, name="HTX Nhãn lồng Khoái Châu (thử nghiệm)"), name="Vườn Đông Tảo", code="VN-HY-DT-001"
    )
    coop, fresh, area, gi = grows.grower, grows.fresh, grows.area, grows.gi
    user, _ = f.user(session, coop, Role.MEMBER, password=PASSWORD)
    buyer = f.org(session, "processor", name="Công ty Chế biến Hưng Yên (thử nghiệm)")
    session.commit()
    return Farm(coop, user, fresh, area, gi, buyer)


def idem(page: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', page)
    assert found, "the form has no once-only key"
    return found.group(1)


def signed_in(client: TestClient, farm: Farm) -> None:
    assert sign_in(client, farm.user.email).status_code == 303  # type: ignore[attr-defined]


def an_hour_ago() -> str:
    return (datetime.now(local_zone()) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")


def harvest_form(client: TestClient, farm: Farm, **over: Any) -> dict[str, Any]:
    page = client.get("/app/harvest", headers=VI)
    assert page.status_code == 200
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "product_id": farm.fresh.id,
        "location_id": farm.area.id,
        "quantity": "1.234,5",
        "event_time": an_hour_ago(),
        "lot_code": "NL-2026-001",
        "designation_ids": [farm.gi.id],
        **over,
    }


def lots_coded(session: Session, code: str) -> list[Lot]:
    session.expire_all()
    return list(session.exec(select(Lot).where(Lot.lot_code == code)))


# --------------------------------------------------------------------------- growing areas


def test_a_member_adds_a_growing_area_with_todays_and_the_former_commune_then_edits_it(
    client: TestClient, session: Session, farm: Farm
) -> None:
    f.location(session, farm.coop, "warehouse", name="Kho lạnh")
    session.commit()
    signed_in(client, farm)
    form = client.get("/app/areas/new", headers=VI)
    assert form.status_code == 200 and "Xã Hoàn Long" in form.text  # today's communes, in Vietnamese
    data = {
        "csrf": form_token(form.text),
        "idem": idem(form.text),
        "name": "Vườn nhãn bờ sông",
        "kind": "growing_area",
        "code": "VN-HY-KC-077",
        "commune_code": HOAN_LONG,
        "former_commune_code": DONG_TAO,
        "latitude": "20,8461",
        "longitude": "106.0511",
    }
    saved = client.post("/app/areas/new", data=data, headers=VI, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/app/areas?saved=1"
    again = client.post("/app/areas/new", data=data, headers=VI, follow_redirects=False)  # a double tap
    assert again.status_code == 303
    # the same code from another form (another once-only key) is somebody's mistake, not a double tap
    other = client.get("/app/areas/new", headers=VI).text
    taken = client.post("/app/areas/new", data={**data, "idem": idem(other)}, headers=VI, follow_redirects=False)
    assert taken.status_code == 422 and "Mã này đã được đăng ký." in taken.text
    session.expire_all()
    found = list(session.exec(select(Location).where(Location.code == "VN-HY-KC-077")))
    assert len(found) == 1 and found[0].organisation_id == farm.coop.id
    assert (found[0].latitude, found[0].longitude) == (pytest.approx(20.8461), pytest.approx(106.0511))
    listing = client.get(saved.headers["location"], headers=VI).text
    assert (
        "Vườn nhãn bờ sông" in listing and "VN-HY-KC-077" in listing and "Đông Tảo" in listing and "Đã lưu." in listing
    )
    assert listing.index("Vườn nhãn bờ sông") < listing.index("Kho lạnh")  # growing areas first

    edit = client.get(f"/app/areas/{found[0].id}/edit", headers=VI)
    assert edit.status_code == 200 and 'value="Vườn nhãn bờ sông"' in edit.text
    # the former-commune picker offers only the old communes that became part of today's commune
    offered = set(
        re.findall(r'<option value="(\d{5})"', edit.text.split('name="former_commune_code"')[1].split("</select>")[0])
    )
    assert offered == {c.code for c in admin_units.formers_for_current(HOAN_LONG)}
    changed = client.post(
        f"/app/areas/{found[0].id}/edit",
        data={**data, "csrf": form_token(edit.text), "name": "Vườn nhãn số 2", "latitude": ""},
        headers=VI,
        follow_redirects=False,
    )
    assert changed.status_code == 303
    session.refresh(found[0])
    assert (found[0].name, found[0].version, found[0].latitude) == ("Vườn nhãn số 2", 2, None)


def test_a_former_commune_that_did_not_become_part_of_the_chosen_one_is_refused_in_vietnamese(
    client: TestClient, session: Session, farm: Farm
) -> None:
    signed_in(client, farm)
    token = form_token(client.get("/app/areas/new", headers=VI).text)
    refused = client.post(
        "/app/areas/new",
        data={
            "csrf": token,
            "name": "Vườn sai xã",
            "kind": "growing_area",
            "code": "VN-HY-KC-078",
            "commune_code": LAC_DAO,
            "former_commune_code": DONG_TAO,
        },
        headers=VI,
    )
    assert refused.status_code == 422
    assert "Xã cũ này không thuộc về xã đã chọn." in refused.text and 'role="alert"' in refused.text
    no_code = client.post(
        "/app/areas/new",
        data={"csrf": token, "name": "Vườn không mã", "kind": "growing_area", "commune_code": LAC_DAO},
        headers=VI,
    )
    assert no_code.status_code == 422 and "Vùng trồng cần có mã số vùng trồng." in no_code.text
    session.expire_all()
    assert session.exec(select(Location).where(Location.name.in_(["Vườn sai xã", "Vườn không mã"]))).first() is None  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- harvest


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


# --------------------------------------------------------------------------- shipping


def test_a_member_ships_part_of_a_lot_once_and_sees_it_in_transit_then_received(
    client: TestClient, session: Session, farm: Farm
) -> None:
    lot_id = f.harvest(session, farm.coop, "100", prod=farm.fresh, loc=farm.area, lot_code="NL-SHIP-1").lot_ids[0]
    session.commit()
    signed_in(client, farm)
    form = client.get(f"/app/lots/{lot_id}/ship", headers=VI)
    assert form.status_code == 200 and farm.buyer.name in form.text
    assert f'<option value="{farm.coop.id}">' not in form.text  # not one's own organisation
    data = {
        "csrf": form_token(form.text),
        "idem": idem(form.text),
        "destination_organisation_id": farm.buyer.id,
        "quantity": "40,5",
        "event_time": an_hour_ago(),
    }
    sent = client.post(f"/app/lots/{lot_id}/ship", data=data, headers=VI, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/app/shipments?saved=1"
    assert client.post(f"/app/lots/{lot_id}/ship", data=data, headers=VI, follow_redirects=False).status_code == 303
    session.expire_all()
    shipped = list(session.exec(select(Shipment).where(Shipment.lot_id == lot_id)))
    assert len(shipped) == 1 and shipped[0].quantity == Decimal("40.5")
    listing = client.get(sent.headers["location"], headers=VI).text
    row = listing.split("NL-SHIP-1")[1].split("</tr>")[0]
    assert farm.buyer.name in row and "40,5 kg" in row and "đang vận chuyển" in row
    f.receive(session, farm.buyer, shipped[0].id, days_ago=0)  # type: ignore[arg-type]
    session.commit()
    row = client.get("/app/shipments", headers=VI).text.split("NL-SHIP-1")[1].split("</tr>")[0]
    assert "đã nhận" in row and "đang vận chuyển" not in row


def test_shipping_more_than_the_organisation_holds_is_refused_in_vietnamese(
    client: TestClient, session: Session, farm: Farm
) -> None:
    lot_id = f.harvest(session, farm.coop, "100", prod=farm.fresh, loc=farm.area).lot_ids[0]
    session.commit()
    signed_in(client, farm)
    form = client.get(f"/app/lots/{lot_id}/ship", headers=VI).text
    refused = client.post(
        f"/app/lots/{lot_id}/ship",
        data={
            "csrf": form_token(form),
            "idem": idem(form),
            "destination_organisation_id": farm.buyer.id,
            "quantity": "1.000",
            "event_time": an_hour_ago(),
        },
        headers=VI,
    )
    assert refused.status_code == 422
    # the one wording of exceeds_holding, with the lot's unit and code the page adds
    assert (
        "Tổ chức của bạn chỉ giữ 100 kg của lô" in refused.text and "không đủ 1.000 kg" in refused.text
    )  # 1.000 typed the Vietnamese way
    session.expire_all()
    assert session.exec(select(Shipment).where(Shipment.lot_id == lot_id)).first() is None


# --------------------------------------------------------------------------- forms and access


def test_forms_forged_on_another_site_are_refused_and_record_nothing(
    client: TestClient, session: Session, farm: Farm
) -> None:
    lot_id = f.harvest(session, farm.coop, "100", prod=farm.fresh, loc=farm.area).lot_ids[0]
    session.commit()
    signed_in(client, farm)
    good = harvest_form(client, farm)
    posts = {
        "/app/harvest": good,
        f"/app/lots/{lot_id}/ship": {
            "idem": "x1",
            "destination_organisation_id": farm.buyer.id,
            "quantity": "10",
            "event_time": an_hour_ago(),
        },
        "/app/areas/new": {
            "name": "Vườn giả",
            "kind": "growing_area",
            "code": "VN-FORGED-1",
            "commune_code": HOAN_LONG,
        },
        f"/app/areas/{farm.area.id}/edit": {"name": "Đổi tên giả", "code": "VN-HY-DT-001", "commune_code": HOAN_LONG},
    }
    for url, data in posts.items():
        forged = client.post(url, data={**data, "csrf": "0" * 64}, headers=VI, follow_redirects=False)
        assert forged.status_code == 403 and "Bị từ chối" in forged.text, url
    session.expire_all()
    assert lots_coded(session, "NL-2026-001") == []
    assert session.exec(select(Shipment)).first() is None
    assert session.exec(select(Location).where(Location.code == "VN-FORGED-1")).first() is None
    assert session.get(Location, farm.area.id).name == "Vườn Đông Tảo"  # type: ignore[union-attr]


def test_another_organisations_pages_are_out_of_reach_by_direct_url(
    client: TestClient, session: Session, farm: Farm
) -> None:
    other = f.org(session, name="HTX khác (thử nghiệm)")
    their_area = f.location(session, other, name="Vườn của HTX khác")
    their_lot = f.harvest(session, other, "80", loc=their_area, lot_code="THEIRS-1").lot_ids[0]
    f.ship(session, other, their_lot, farm.buyer, "10")
    session.commit()
    signed_in(client, farm)
    assert client.get(f"/app/areas/{their_area.id}/edit", headers=VI).status_code == 403
    token = form_token(client.get("/app/areas", headers=VI).text)
    edit = client.post(
        f"/app/areas/{their_area.id}/edit",
        data={"csrf": token, "name": "Chiếm đoạt", "code": their_area.code, "commune_code": HOAN_LONG},
        headers=VI,
    )
    assert edit.status_code == 403 and "Vườn của HTX khác" not in edit.text
    for url in (
        f"/app/farm/lots/{their_lot}",
        f"/app/lots/{their_lot}/ship",
        "/app/farm/lots/999999",
        "/app/areas/999999/edit",
    ):
        page = client.get(url, headers=VI)
        assert page.status_code == 404 and "THEIRS-1" not in page.text and "Không tìm thấy" in page.text, url
    ship = client.post(
        f"/app/lots/{their_lot}/ship",
        data={
            "csrf": token,
            "idem": "k1",
            "destination_organisation_id": farm.buyer.id,
            "quantity": "5",
            "event_time": an_hour_ago(),
        },
        headers=VI,
    )
    assert ship.status_code == 404
    assert "THEIRS-1" not in client.get("/app/shipments", headers=VI).text
    assert "Vườn của HTX khác" not in client.get("/app/areas", headers=VI).text
    session.expire_all()
    assert session.get(Location, their_area.id).name == "Vườn của HTX khác"  # type: ignore[union-attr]
    assert len(list(session.exec(select(Shipment).where(Shipment.lot_id == their_lot)))) == 1


def test_an_account_that_records_for_no_organisation_gets_403_and_a_visitor_is_sent_to_sign_in(
    client: TestClient, session: Session, farm: Farm
) -> None:
    assert client.get("/app/harvest", follow_redirects=False).headers["location"] == "/login?next=%2Fapp%2Fharvest"
    inspector, _ = f.user(session, f.org(session, "authority"), Role.INSPECTOR, password=PASSWORD)
    session.commit()
    sign_in(client, inspector.email)
    for url in ("/app/areas", "/app/areas/new", "/app/harvest", "/app/shipments"):
        page = client.get(url, headers=VI)
        assert page.status_code == 403 and "Không được phép" in page.text, url
