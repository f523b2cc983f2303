"""An organisation's places: a growing area with today's and the former commune, and editing it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests import factories as f
from tests.api.web.farm import LAC_DAO, Farm, idem, signed_in
from tests.api.web.helpers import VI, form_token
from tests.factories import DONG_TAO, HOAN_LONG
from trace import admin_units
from trace.locations import Location


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
