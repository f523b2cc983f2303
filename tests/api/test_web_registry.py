"""Workspace pages of designation holders and the province: granting, suspending, reinstating and revoking
rights to use with quotas, the usage view with its yield flags; organisations, their users with a one-time
link shown once, and the designation registry. Refusals in Vietnamese, forged forms refused, double taps
recorded once, and another holder's or organisation's pages out of reach."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests import factories as f
from tests.api.test_web_auth import PASSWORD, VI, form_token, sign_in
from trace import admin_units
from trace.access import Role
from trace.designations.models import (
    ClaimSource,
    Designation,
    DesignationKind,
    LotClaim,
    RightStatus,
    RightToUse,
)
from trace.events.models import Event, EventType
from trace.lots import Lot
from trace.organisations import Organisation
from trace.printing import runs
from trace.printing.models import PrintKind
from trace.printing.runs import PrintRunCreate
from trace.products import Product
from trace.users import User

DONG_TAO = "12208"  # a former commune of Khoái Châu, inside the test designation's protected area
OUTSIDE = "12019"  # a Hưng Yên commune outside it


@dataclass
class Registry:
    holder: Organisation
    holder_user: User
    gi: Designation
    grower: Organisation
    fresh: Product
    dried: Product
    area: Any
    other_holder_user: User
    other_gi: Designation
    admin: User


@pytest.fixture
def reg(session: Session) -> Registry:
    return make_registry(session)


def make_registry(session: Session) -> Registry:
    """Two holders with a designation each, a grower with products and an area, the province admin."""
    holder = f.org(session, "designation_holder", name="Hội Nhãn lồng (thử nghiệm)")
    holder_user, _ = f.user(session, holder, Role.MEMBER, password=PASSWORD)
    gi = Designation(
        kind=DesignationKind.GEOGRAPHICAL_INDICATION,
        name_vi="Nhãn lồng Hưng Yên (thử)",
        holder_organisation_id=holder.id,
        categories=["longan_fresh"],  # type: ignore[arg-type]
        area_communes=[f.COMMUNE],
    )
    grower = f.org(session, name="HTX Nhãn Đông Tảo (thử nghiệm)")
    fresh = f.product(session, grower, name_vi="Nhãn lồng tươi hộp 10 kg", package_size=Decimal(10))
    dried = f.product(session, grower, name_vi="Mật ong hoa nhãn", category="honey")
    area = f.location(session, grower, name="Vườn bờ sông", area_ha=0.01)
    other = f.org(session, "designation_holder", name="Hội Gà Đông Tảo (thử nghiệm)")
    other_user, _ = f.user(session, other, Role.ORG_ADMIN, password=PASSWORD)
    other_gi = Designation(
        kind=DesignationKind.COLLECTIVE_TRADEMARK,
        name_vi="Gà Đông Tảo (thử)",
        holder_organisation_id=other.id,
        categories=["chicken_live"],
    )  # type: ignore[arg-type]
    session.add_all([gi, other_gi])
    admin, _ = f.user(session, None, Role.ADMIN, password=PASSWORD)
    session.commit()
    return Registry(holder, holder_user, gi, grower, fresh, dried, area, other_user, other_gi, admin)


def as_user(client: TestClient, user: User) -> None:
    assert sign_in(client, user.email).status_code == 303  # type: ignore[attr-defined]


def idem(page: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', page)
    assert found, "the form has no once-only key"
    return found.group(1)


def rights_of(session: Session, designation: Designation) -> list[RightToUse]:
    session.expire_all()
    return list(session.exec(select(RightToUse).where(RightToUse.designation_id == designation.id)))


def a_right(session: Session, reg: Registry, **extra: Any) -> RightToUse:
    right = RightToUse(
        designation_id=reg.gi.id,
        organisation_id=reg.grower.id,
        decision_number="7/QĐ-HNL",  # type: ignore[arg-type]
        valid_from=date.today() - timedelta(days=400),
        **extra,
    )
    session.add(right)
    session.commit()
    return right


def grant_form(client: TestClient, reg: Registry, **over: Any) -> dict[str, Any]:
    page = client.get(f"/app/designations/{reg.gi.id}/rights/new?organisation_id={reg.grower.id}", headers=VI)
    assert page.status_code == 200
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "organisation_id": reg.grower.id,
        "decision_number": "15/QĐ-HNL",
        "valid_from": date.today().isoformat(),
        "valid_to": (date.today() + timedelta(days=730)).isoformat(),
        "annual_label_quota": "12.000",
        "product_ids": [reg.fresh.id],
        "location_ids": [reg.area.id],
        **over,
    }


# --------------------------------------------------------------------------- the holder's rights to use


def test_a_holder_grants_a_right_with_its_scope_and_quota_and_sees_it_listed(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.holder_user)
    mine = client.get("/app/designations", headers=VI)
    assert mine.status_code == 200 and reg.gi.name_vi in mine.text and reg.other_gi.name_vi not in mine.text

    # the producer is chosen first; then its products of a covered kind and its growing areas are offered
    page = client.get(f"/app/designations/{reg.gi.id}/rights/new?organisation_id={reg.grower.id}", headers=VI)
    assert reg.fresh.name_vi in page.text and reg.dried.name_vi not in page.text and "Vườn bờ sông" in page.text
    data = grant_form(client, reg)
    saved = client.post(f"/app/designations/{reg.gi.id}/rights/new", data=data, headers=VI, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/app/designations/{reg.gi.id}?saved=1"

    [right] = rights_of(session, reg.gi)
    assert (right.organisation_id, right.decision_number, right.annual_label_quota) == (
        reg.grower.id,
        "15/QĐ-HNL",
        12000,
    )
    assert (right.product_ids, right.location_ids, right.status) == ([reg.fresh.id], [reg.area.id], RightStatus.ACTIVE)
    assert right.valid_to == date.today() + timedelta(days=730)
    listing = client.get(saved.headers["location"], headers=VI).text
    assert "Đã lưu." in listing and reg.grower.name in listing and "15/QĐ-HNL" in listing
    assert "12.000" in listing and "Đang hiệu lực" in listing  # the quota the Vietnamese way, the status in words
    granted = session.exec(select(Event).where(Event.type == EventType.RIGHT)).all()
    assert len(granted) == 1 and granted[0].payload["action"] == "grant"


def test_a_double_tap_on_grant_records_one_right(client: TestClient, session: Session, reg: Registry) -> None:
    as_user(client, reg.holder_user)
    data = grant_form(client, reg)
    first = client.post(f"/app/designations/{reg.gi.id}/rights/new", data=data, headers=VI, follow_redirects=False)
    again = client.post(f"/app/designations/{reg.gi.id}/rights/new", data=data, headers=VI, follow_redirects=False)
    assert first.status_code == again.status_code == 303 and again.headers["location"] == first.headers["location"]
    assert len(rights_of(session, reg.gi)) == 1
    # the same decision number for another validity is not a double tap: it is refused, in Vietnamese
    other = client.post(
        f"/app/designations/{reg.gi.id}/rights/new", headers=VI, data={**grant_form(client, reg), "valid_to": ""}
    )
    assert other.status_code == 422 and "Số quyết định này đã cấp một quyền sử dụng" in other.text
    assert len(rights_of(session, reg.gi)) == 1


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"valid_to": (date.today() - timedelta(days=1)).isoformat()}, "Ngày hết hiệu lực trước ngày bắt đầu."),
        ({"product_ids": []}, None),  # control: the same form without the faults is accepted
    ],
)
def test_a_grant_the_domain_refuses_is_explained_in_vietnamese(
    client: TestClient, session: Session, reg: Registry, over: dict[str, Any], words: str | None
) -> None:
    as_user(client, reg.holder_user)
    answer = client.post(
        f"/app/designations/{reg.gi.id}/rights/new",
        data=grant_form(client, reg, **over),
        headers=VI,
        follow_redirects=False,
    )
    if words is None:
        assert answer.status_code == 303 and len(rights_of(session, reg.gi)) == 1
        return
    assert answer.status_code == 422 and words in answer.text and 'role="alert"' in answer.text
    assert rights_of(session, reg.gi) == []


def test_a_product_of_a_kind_the_designation_does_not_cover_and_a_bad_quota_are_refused(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.holder_user)
    honey = client.post(
        f"/app/designations/{reg.gi.id}/rights/new",
        data=grant_form(client, reg, product_ids=[reg.dried.id]),
        headers=VI,
    )
    assert honey.status_code == 422 and "không áp dụng cho loại sản phẩm này" in honey.text
    half = client.post(
        f"/app/designations/{reg.gi.id}/rights/new", data=grant_form(client, reg, annual_label_quota="1,5"), headers=VI
    )
    assert half.status_code == 422 and 'id="e-annual_label_quota"' in half.text and "Không phải số nguyên." in half.text
    assert rights_of(session, reg.gi) == []


def test_a_holder_suspends_reinstates_and_revokes_a_right_each_once_and_revocation_is_final(
    client: TestClient, session: Session, reg: Registry
) -> None:
    right = a_right(session, reg, annual_label_quota=500)
    as_user(client, reg.holder_user)
    page = client.get(f"/app/rights/{right.id}", headers=VI)
    assert page.status_code == 200 and f'action="/app/rights/{right.id}/suspend"' in page.text
    assert f'action="/app/rights/{right.id}/reinstate"' not in page.text  # only what the status allows

    too_short = client.post(
        f"/app/rights/{right.id}/suspend",
        data={"csrf": form_token(page.text), "idem": idem(page.text), "reason": "x"},
        headers=VI,
    )
    assert too_short.status_code == 422 and 'id="e-reason-suspend"' in too_short.text
    form = {"csrf": form_token(page.text), "idem": idem(page.text), "reason": "Vi phạm quy chế đóng gói"}
    done = client.post(f"/app/rights/{right.id}/suspend", data=form, headers=VI, follow_redirects=False)
    again = client.post(f"/app/rights/{right.id}/suspend", data=form, headers=VI, follow_redirects=False)  # double tap
    assert (
        done.status_code == again.status_code == 303 and done.headers["location"] == f"/app/rights/{right.id}?saved=1"
    )
    session.refresh(right)
    assert (right.status, right.status_reason) == (RightStatus.SUSPENDED, "Vi phạm quy chế đóng gói")
    shown = client.get(done.headers["location"], headers=VI).text
    assert "Tạm đình chỉ" in shown and "Vi phạm quy chế đóng gói" in shown

    for action in ("reinstate", "revoke"):
        page = client.get(f"/app/rights/{right.id}", headers=VI)
        answer = client.post(
            f"/app/rights/{right.id}/{action}",
            headers=VI,
            follow_redirects=False,
            data={"csrf": form_token(page.text), "idem": idem(page.text), "reason": f"Lý do {action}"},
        )
        assert answer.status_code == 303
    session.refresh(right)
    assert right.status == RightStatus.REVOKED
    actions = [e.payload["action"] for e in session.exec(select(Event).where(Event.type == EventType.RIGHT))]
    assert sorted(actions) == ["reinstate", "revoke", "suspend"]  # the double tap changed nothing

    revoked = client.get(f"/app/rights/{right.id}", headers=VI).text
    assert "/suspend" not in revoked and "/reinstate" not in revoked
    late = client.post(
        f"/app/rights/{right.id}/reinstate", headers=VI, data={"csrf": form_token(revoked), "reason": "Xin cấp lại"}
    )
    assert late.status_code == 422 and "đã bị thu hồi: việc thu hồi là cuối cùng." in late.text


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


def test_another_holders_designation_and_rights_are_out_of_reach_by_direct_url(
    client: TestClient, session: Session, reg: Registry
) -> None:
    right = a_right(session, reg)
    as_user(client, reg.other_holder_user)
    assert reg.gi.name_vi not in client.get("/app/designations", headers=VI).text
    for url in (
        f"/app/designations/{reg.gi.id}",
        f"/app/designations/{reg.gi.id}/usage",
        f"/app/designations/{reg.gi.id}/rights/new",
        f"/app/rights/{right.id}",
    ):
        answer = client.get(url, headers=VI)
        assert answer.status_code == 403, url
        assert "7/QĐ-HNL" not in answer.text
    token = form_token(client.get("/app/designations", headers=VI).text)
    grant = client.post(
        f"/app/designations/{reg.gi.id}/rights/new",
        headers=VI,
        data={
            "csrf": token,
            "organisation_id": reg.grower.id,
            "decision_number": "99/QĐ",
            "valid_from": date.today().isoformat(),
        },
    )
    suspend = client.post(
        f"/app/rights/{right.id}/suspend", data={"csrf": token, "reason": "Không phải của tôi"}, headers=VI
    )
    assert grant.status_code == suspend.status_code == 403
    assert "Chỉ chủ sở hữu" in grant.text
    assert [r.status for r in rights_of(session, reg.gi)] == [RightStatus.ACTIVE]
    assert client.get("/app/designations/999999", headers=VI).status_code == 404
    assert client.get("/app/rights/999999", headers=VI).status_code == 404


def test_a_forged_form_changes_no_right(client: TestClient, session: Session, reg: Registry) -> None:
    right = a_right(session, reg)
    as_user(client, reg.holder_user)
    data = grant_form(client, reg, csrf="forged")
    assert client.post(f"/app/designations/{reg.gi.id}/rights/new", data=data, headers=VI).status_code == 403
    forged = client.post(f"/app/rights/{right.id}/revoke", data={"csrf": "0" * 64, "reason": "Giả mạo"}, headers=VI)
    assert forged.status_code == 403 and "Biểu mẫu" in forged.text
    assert [r.status for r in rights_of(session, reg.gi)] == [RightStatus.ACTIVE]


# --------------------------------------------------------------------------- the province: organisations and users


def org_form(client: TestClient, **over: Any) -> dict[str, Any]:
    page = client.get("/app/admin/organisations/new", headers=VI)
    assert page.status_code == 200
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "kind": "processor",
        "name": "Công ty Nhãn sấy Phố Hiến (thử)",
        "tax_code": "0901234567",
        "commune_code": f.COMMUNE,
        "address": "Số 1 đường Nguyễn Văn Linh",
        **over,
    }


def test_the_province_admin_onboards_an_organisation_once_and_finds_it_by_kind_and_commune(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    data = org_form(client)
    made = client.post("/app/admin/organisations/new", data=data, headers=VI, follow_redirects=False)
    again = client.post("/app/admin/organisations/new", data=data, headers=VI, follow_redirects=False)  # double tap
    [org] = session.exec(select(Organisation).where(Organisation.tax_code == "0901234567")).all()
    assert made.status_code == again.status_code == 303
    assert made.headers["location"] == f"/app/admin/organisations/{org.id}/users?created=1"
    assert (org.kind.value, org.commune_code, org.address) == ("processor", f.COMMUNE, "Số 1 đường Nguyễn Văn Linh")
    assert "mời quản trị viên đầu tiên" in client.get(made.headers["location"], headers=VI).text

    processors = client.get("/app/admin/organisations?kind=processor", headers=VI).text
    assert org.name in processors and reg.grower.name not in processors
    elsewhere = client.get(f"/app/admin/organisations?commune={OUTSIDE}", headers=VI).text
    assert org.name not in elsewhere and "Không có tổ chức nào phù hợp." in elsewhere


def test_a_taken_tax_code_and_a_malformed_one_are_refused_in_vietnamese(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    taken = client.post("/app/admin/organisations/new", data=org_form(client, tax_code=reg.grower.tax_code), headers=VI)
    assert (
        taken.status_code == 422 and "Đã có tổ chức với mã số thuế này." in taken.text and 'role="alert"' in taken.text
    )
    bad = client.post("/app/admin/organisations/new", data=org_form(client, tax_code="12345"), headers=VI)
    assert bad.status_code == 422 and 'id="e-tax_code"' in bad.text
    assert session.exec(select(Organisation).where(Organisation.name == "Công ty Nhãn sấy Phố Hiến (thử)")).all() == []


def test_an_invitation_link_is_shown_once_and_lets_the_person_set_a_password_and_sign_in(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    page = client.get(f"/app/admin/organisations/{reg.grower.id}/users", headers=VI)
    data = {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "email": "Chu.Tich@htxdongtao.vn",
        "full_name": "Nguyễn Văn An",
        "role": "org_admin",
    }
    sent = client.post(f"/app/admin/organisations/{reg.grower.id}/users", data=data, headers=VI, follow_redirects=False)
    again = client.post(
        f"/app/admin/organisations/{reg.grower.id}/users", data=data, headers=VI, follow_redirects=False
    )
    assert sent.status_code == again.status_code == 303
    assert len(session.exec(select(User).where(User.email == "chu.tich@htxdongtao.vn")).all()) == 1  # invited once

    shown = client.get(sent.headers["location"], headers=VI).text
    link = re.search(r'id="one-time-link">([^<]+)<', shown)
    assert link and "Nguyễn Văn An" in shown and "chỉ hiện lúc này" in shown
    assert 'id="one-time-link"' not in client.get(sent.headers["location"], headers=VI).text  # shown once

    path = "/welcome?" + link.group(1).split("?", 1)[1]
    fresh = TestClient(client.app)  # the invited person's own browser
    welcome = fresh.get(path, headers=VI)
    assert welcome.status_code == 200
    short = fresh.post(
        "/welcome",
        data={"csrf": form_token(welcome.text), "token": path.split("token=")[1], "password": "short"},
        headers=VI,
    )
    assert short.status_code == 422 and "Quá ngắn" in short.text
    done = fresh.post(
        "/welcome",
        data={"csrf": form_token(welcome.text), "token": path.split("token=")[1], "password": "nhãn lồng ngon nhất"},
        headers=VI,
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert sign_in(fresh, "chu.tich@htxdongtao.vn", password="nhãn lồng ngon nhất").status_code == 303  # type: ignore[attr-defined]
    other = TestClient(client.app)  # the link, used again from elsewhere, sets nothing
    reused = other.post(
        "/welcome",
        data={
            "csrf": form_token(other.get(path).text),
            "token": path.split("token=")[1],
            "password": "một mật khẩu khác",
        },
        headers=VI,
    )
    assert reused.status_code == 422 and "Liên kết này không hợp lệ" in reused.text


def test_an_organisation_admin_may_not_appoint_an_inspector_and_is_told_in_vietnamese(
    client: TestClient, session: Session, reg: Registry
) -> None:
    boss, _ = f.user(session, reg.grower, Role.ORG_ADMIN, password=PASSWORD)
    session.commit()
    as_user(client, boss)
    page = client.get(f"/app/admin/organisations/{reg.grower.id}/users", headers=VI)
    assert page.status_code == 200
    refused = client.post(
        f"/app/admin/organisations/{reg.grower.id}/users",
        headers=VI,
        data={
            "csrf": form_token(page.text),
            "idem": idem(page.text),
            "email": "thanh.tra@htxdongtao.vn",
            "full_name": "Trần Thị Bình",
            "role": "inspector",
        },
    )
    assert refused.status_code == 422 and "Tài khoản của bạn không được cấp vai trò này." in refused.text
    bad_email = client.post(
        f"/app/admin/organisations/{reg.grower.id}/users",
        headers=VI,
        data={
            "csrf": form_token(page.text),
            "email": "không-phải-email",
            "full_name": "Trần Thị Bình",
            "role": "member",
        },
    )
    assert bad_email.status_code == 422 and "Không phải địa chỉ email." in bad_email.text
    assert session.exec(select(User).where(User.full_name == "Trần Thị Bình")).all() == []


def test_another_organisations_users_and_the_province_pages_are_out_of_reach(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.other_holder_user)  # an administrator of another organisation
    assert client.get(f"/app/admin/organisations/{reg.grower.id}/users", headers=VI).status_code == 403
    for url in (
        "/app/admin/organisations",
        "/app/admin/organisations/new",
        "/app/admin/designations",
        "/app/admin/designations/new",
    ):
        assert client.get(url, headers=VI).status_code == 403, url
    token = form_token(client.get("/app/designations", headers=VI).text)
    invite = client.post(
        f"/app/admin/organisations/{reg.grower.id}/users",
        headers=VI,
        data={"csrf": token, "email": "ke.la@htxdongtao.vn", "full_name": "Kẻ lạ", "role": "member"},
    )
    made = client.post(
        "/app/admin/organisations/new",
        headers=VI,
        data={"csrf": token, "kind": "farm", "name": "Trại lạ", "tax_code": "0907654321"},
    )
    assert invite.status_code == made.status_code == 403
    assert "Chỉ quản trị viên tỉnh" in made.text
    assert session.exec(select(User).where(User.email == "ke.la@htxdongtao.vn")).all() == []
    assert session.exec(select(Organisation).where(Organisation.tax_code == "0907654321")).all() == []
    forged = client.post(
        f"/app/admin/organisations/{reg.grower.id}/users",
        headers=VI,
        data={"csrf": "forged", "email": "ke.la@htxdongtao.vn", "full_name": "Kẻ lạ", "role": "member"},
    )
    assert forged.status_code == 403 and "Biểu mẫu" in forged.text


# --------------------------------------------------------------------------- the province: the designation registry


def designation_form(client: TestClient, reg: Registry, **over: Any) -> dict[str, Any]:
    page = client.get("/app/admin/designations/new", headers=VI)
    assert page.status_code == 200 and "Huyện Khoái Châu" in page.text
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "kind": "geographical_indication",
        "name_vi": "Nhãn lồng Khoái Châu (thử)",
        "name_en": "Khoai Chau longan",
        "registration_number": "00999",
        "decision_number": "186/QĐ-SHTT",
        "decision_date": "2007-08-14",
        "holder_organisation_id": reg.holder.id,
        "categories": "longan_fresh, longan_dried",
        "districts": ["Huyện Khoái Châu", "Huyện Tiên Lữ"],
        **over,
    }


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
