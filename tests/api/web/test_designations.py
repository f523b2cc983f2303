"""Designations: the usage view with its yield flags, and the registry the province keeps (register over
former districts, correct a record), each once."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests import factories as f
from tests.api.web.helpers import VI, form_token
from tests.api.web.registry import REUSED, Registry, a_right, as_user, count, designation_form, post
from trace import admin_units
from trace.designations.models import ClaimSource, Designation, DesignationKind, LotClaim
from trace.lots import Lot
from trace.printing import runs
from trace.printing.models import PrintKind
from trace.printing.runs import PrintRunCreate

DONG_TAO = "12208"  # a former commune of Khoái Châu, inside the test designation's protected area


def test_the_usage_page_shows_who_labelled_what_and_flags_labelling_beyond_a_plausible_yield(
    client: TestClient, session: Session, reg: Registry
) -> None:
    # given a grower with 0.01 ha in the area (at most 220 kg: 22 boxes of 10 kg) that labels 23 boxes
    right = a_right(session, reg, annual_label_quota=30)
    lot = session.get(Lot, f.harvest(session, reg.grower, "500", prod=reg.fresh, loc=reg.area).lot_ids[0])
    assert lot is not None
    session.add(
        LotClaim(
            lot_id=lot.id,
            designation_id=reg.gi.id,
            right_id=right.id,  # type: ignore[arg-type]
            source=ClaimSource.HARVEST,
            event_id=lot.created_event_id,
        )
    )
    session.flush()
    runs.create_run(
        session=session,
        actor=f.member(reg.grower),
        lot_id=lot.id,  # type: ignore[arg-type]
        data=PrintRunCreate(quantity=23, kind=PrintKind.UNIT),
    )
    session.commit()
    as_user(client, reg.holder_user)

    page = client.get(f"/app/designations/{reg.gi.id}/usage", headers=VI)
    assert page.status_code == 200
    flags = page.text.split("Gắn nhãn vượt sản lượng hợp lý")[1].split("</section>")[0]
    assert reg.grower.name in flags and "230 kg" in flags and "220 kg" in flags
    labelled = page.text.split("Ai đã gắn nhãn những gì")[1].split("</section>")[0]
    assert reg.grower.name in labelled and reg.fresh.name_vi in labelled and "230 kg" in labelled
    rights_page = client.get(f"/app/designations/{reg.gi.id}", headers=VI).text
    row = rights_page.split("7/QĐ-HNL")[1].split("</tr>")[0]
    assert ">30<" in row and ">23<" in row  # the quota and the labels counted against it this year
    right_page = client.get(f"/app/rights/{right.id}", headers=VI).text
    assert "còn 7" in right_page


def test_the_province_admin_registers_a_designation_over_former_districts_once(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    data = designation_form(client, reg)
    made = client.post("/app/admin/designations/new", data=data, headers=VI, follow_redirects=False)
    again = client.post("/app/admin/designations/new", data=data, headers=VI, follow_redirects=False)
    assert (
        made.status_code == again.status_code == 303 and made.headers["location"] == "/app/admin/designations?saved=1"
    )
    [found] = session.exec(select(Designation).where(Designation.name_vi == "Nhãn lồng Khoái Châu (thử)")).all()
    assert (found.holder_organisation_id, found.categories, found.decision_date) == (
        reg.holder.id,
        ["longan_fresh", "longan_dried"],
        date(2007, 8, 14),
    )
    formers = {
        c.code for d in ("Huyện Khoái Châu", "Huyện Tiên Lữ") for c in admin_units.former_communes_in_district(d)
    }
    assert set(found.area_former_communes) == formers and DONG_TAO in formers and found.area_communes
    listing = client.get(made.headers["location"], headers=VI).text
    assert "Nhãn lồng Khoái Châu (thử)" in listing and "00999" in listing and "14/08/2007" in listing
    # the holder now finds it among its own designations
    client.cookies.clear()
    as_user(client, reg.holder_user)
    assert "Nhãn lồng Khoái Châu (thử)" in client.get("/app/designations", headers=VI).text


def test_a_geographical_indication_without_a_protected_area_is_refused_in_vietnamese(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    refused = client.post("/app/admin/designations/new", data=designation_form(client, reg, districts=[]), headers=VI)
    assert refused.status_code == 422 and "Chỉ dẫn địa lý phải có khu vực bảo hộ" in refused.text
    assert 'value="Nhãn lồng Khoái Châu (thử)"' in refused.text  # what was typed is kept
    assert session.exec(select(Designation).where(Designation.name_vi == "Nhãn lồng Khoái Châu (thử)")).all() == []


def edit_form(client: TestClient, designation: Designation, **over: Any) -> dict[str, Any]:
    page = client.get(f"/app/admin/designations/{designation.id}/edit", headers=VI)
    assert page.status_code == 200
    values = {
        name: value
        for name, value in re.findall(r'<input id="f-([a-z_]+)" name="\1" type="\w+" value="([^"]*)"', page.text)
    }
    holder = re.search(r'name="holder_organisation_id".*?<option value="(\d+)" selected', page.text, re.S)
    kind = re.search(r'name="kind".*?<option value="(\w+)" selected', page.text, re.S)
    assert holder and kind
    data = {
        **values,
        "csrf": form_token(page.text),
        "kind": kind.group(1),
        "holder_organisation_id": holder.group(1),
        "districts": re.findall(r'name="districts" value="([^"]+)" checked', page.text),
    }
    if 'name="active" value="1" checked' in page.text:
        data["active"] = "1"
    return {**data, **over}


def test_a_registrar_edits_a_designation_from_the_registry_and_its_area_stays_unless_ticked_anew(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    listing = client.get("/app/admin/designations", headers=VI).text
    assert f'href="/app/admin/designations/{reg.gi.id}/edit"' in listing
    data = edit_form(
        client,
        reg.gi,
        name_en="Hung Yen longan",
        registration_number="00055",
        decision_date="2017-01-23",
        categories="longan_fresh, longan_dried",
    )
    assert data["name_vi"] == reg.gi.name_vi and data["active"] == "1"  # the form shows the record as it is
    saved = post(client, f"/app/admin/designations/{reg.gi.id}/edit", data)
    assert saved.status_code == 303 and saved.headers["location"] == "/app/admin/designations?saved=1"
    session.expire_all()
    found = session.get(Designation, reg.gi.id)
    assert found is not None
    assert (found.name_en, found.registration_number, found.decision_date) == (
        "Hung Yen longan",
        "00055",
        date(2017, 1, 23),
    )
    assert found.categories == ["longan_fresh", "longan_dried"] and found.area_communes == [f.COMMUNE] and found.active
    # unticking "in force" and ticking a former district: the area is given anew, mapped to today's communes
    again = post(
        client,
        f"/app/admin/designations/{reg.gi.id}/edit",
        {**edit_form(client, reg.gi, districts=["Huyện Khoái Châu"]), "active": ""},
    )
    assert again.status_code == 303
    session.expire_all()
    found = session.get(Designation, reg.gi.id)
    assert found is not None and not found.active and found.area_former_districts == ["Huyện Khoái Châu"]
    formers = admin_units.former_communes_in_district("Huyện Khoái Châu")
    assert set(found.area_former_communes) == {c.code for c in formers}
    assert set(found.area_communes) == {code for c in formers for code in c.current_codes}
    shown = client.get("/app/admin/designations", headers=VI).text
    assert "Hung Yen longan" in shown and "Huyện Khoái Châu" in shown and "không còn hiệu lực" in shown


def test_an_edit_the_registry_refuses_is_told_in_vietnamese_and_changes_nothing(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    url = f"/app/admin/designations/{reg.gi.id}/edit"
    taken = post(
        client,
        url,
        edit_form(client, reg.gi, kind=DesignationKind.COLLECTIVE_TRADEMARK.value, name_vi=reg.other_gi.name_vi),
    )
    assert taken.status_code == 422 and "Đã đăng ký một chỉ dẫn cùng loại với tên này." in taken.text
    assert 'role="alert"' in taken.text and f'value="{reg.other_gi.name_vi}"' in taken.text  # what was typed is kept
    empty = post(client, url, edit_form(client, reg.gi, categories=" , "))
    assert empty.status_code == 422 and "Chỉ dẫn phải bảo hộ ít nhất một loại sản phẩm." in empty.text
    short = post(client, url, edit_form(client, reg.gi, name_vi="x"))
    assert short.status_code == 422 and 'id="e-name_vi"' in short.text
    session.expire_all()
    found = session.get(Designation, reg.gi.id)
    assert found is not None and (found.kind, found.name_vi, found.categories) == (
        DesignationKind.GEOGRAPHICAL_INDICATION,
        "Nhãn lồng Hưng Yên (thử)",
        ["longan_fresh"],
    )


def test_only_a_registrar_edits_and_a_forged_edit_writes_nothing(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    forged = post(
        client,
        f"/app/admin/designations/{reg.gi.id}/edit",
        edit_form(client, reg.gi, csrf="forged", name_vi="Giả mạo (thử)"),
    )
    assert forged.status_code == 403 and "Biểu mẫu" in forged.text
    assert client.get("/app/admin/designations/999999/edit", headers=VI).status_code == 404
    client.cookies.clear()
    as_user(client, reg.holder_user)  # the holder of the designation keeps no registry
    assert client.get(f"/app/admin/designations/{reg.gi.id}/edit", headers=VI).status_code == 403
    token = form_token(client.get("/app/designations", headers=VI).text)
    refused = post(
        client,
        f"/app/admin/designations/{reg.gi.id}/edit",
        {
            "csrf": token,
            "kind": "geographical_indication",
            "name_vi": "Đổi tên (thử)",
            "categories": "longan_fresh",
            "holder_organisation_id": reg.holder.id,
        },
    )
    assert refused.status_code == 403 and "Chỉ quản trị viên tỉnh hoặc cơ quan quản lý" in refused.text
    assert count(session, Designation, Designation.name_vi.in_(["Giả mạo (thử)", "Đổi tên (thử)"])) == 0  # type: ignore[attr-defined]


def test_a_designation_sent_twice_is_registered_once_and_its_key_with_other_values_is_refused(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    data = designation_form(client, reg)
    first, again = post(client, "/app/admin/designations/new", data), post(client, "/app/admin/designations/new", data)
    assert first.status_code == again.status_code == 303
    other = client.post("/app/admin/designations/new", headers=VI, data={**data, "name_vi": "Nhãn khác (thử)"})
    assert other.status_code == 422 and REUSED in other.text
    assert count(session, Designation, Designation.request_key == data["idem"]) == 1
    assert count(session, Designation, Designation.name_vi == "Nhãn khác (thử)") == 0
