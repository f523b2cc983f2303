"""More of the registry area's pages: editing a designation; an organisation's members (remove, which ends
their sessions; change of role; a new sign-in link shown once and working once); and the once-only keys of
the forms that create (a grant, a right's change, an organisation, an invitation, a designation): sent twice
they record once and answer the same, their key sent with other values is refused in words."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from tests import factories as f
from tests.api.helpers import assert_problem, bearer
from tests.api.test_web_auth import PASSWORD, VI, form_token, sign_in
from tests.api.test_web_registry import (
    Registry,
    a_right,
    as_user,
    designation_form,
    grant_form,
    idem,
    make_registry,
    org_form,
    rights_of,
)
from trace import admin_units, auth
from trace.access import Role
from trace.designations.models import Designation, DesignationKind, RightStatus
from trace.events.models import Event, EventType
from trace.organisations import Organisation
from trace.users import User


@pytest.fixture
def reg(session: Session) -> Registry:
    return make_registry(session)


API = "/api/v1"
REUSED = "Biểu mẫu này đã được gửi với nội dung khác: hãy tải lại trang và điền lại."


def count(session: Session, model: type[SQLModel], *where: Any) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def post(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data=data, headers=VI, follow_redirects=False)


def browser(client: TestClient, user: User) -> TestClient:
    """Another person's own browser, signed in."""
    other = TestClient(client.app)
    assert sign_in(other, user.email).status_code == 303  # type: ignore[attr-defined]
    return other


def shown_link(page: str) -> str | None:
    found = re.search(r'id="one-time-link">[^<]*token=([^<"]+)<', page)
    return found.group(1) if found else None


# --------------------------------------------------------------------------- editing a designation


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


# --------------------------------------------------------------------------- an organisation's members


def members_of(client: TestClient, org: Organisation) -> str:
    page = client.get(f"/app/admin/organisations/{org.id}/users", headers=VI)
    assert page.status_code == 200
    return page.text


def test_a_removed_member_is_signed_out_at_once_and_an_administrator_cannot_remove_themselves(
    client: TestClient, session: Session, reg: Registry
) -> None:
    boss, _ = f.user(session, reg.grower, Role.ORG_ADMIN, password=PASSWORD)
    member, _ = f.user(session, reg.grower, password=PASSWORD)
    session.commit()
    theirs = browser(client, member)
    assert theirs.get("/app", headers=VI, follow_redirects=False).status_code == 200
    as_user(client, boss)
    page = members_of(client, reg.grower)
    assert f"/users/{member.id}/remove" in page and f"/users/{boss.id}/remove" not in page  # not oneself

    unsure = post(
        client, f"/app/admin/organisations/{reg.grower.id}/users/{member.id}/remove", {"csrf": form_token(page)}
    )  # the confirming box left unticked
    assert unsure.status_code == 422 and "Hãy đánh dấu ô xác nhận" in unsure.text
    assert theirs.get("/app", headers=VI, follow_redirects=False).status_code == 200
    removed = post(
        client,
        f"/app/admin/organisations/{reg.grower.id}/users/{member.id}/remove",
        {"csrf": form_token(page), "sure": "1"},
    )
    assert removed.status_code == 303 and removed.headers["location"].endswith("?removed=1")
    assert "Đã gỡ người dùng" in client.get(removed.headers["location"], headers=VI).text
    # the member's open session ends: their next page is the sign-in page
    after = theirs.get("/app", headers=VI, follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    assert sign_in(TestClient(client.app), member.email).status_code != 303  # type: ignore[attr-defined]

    itself = post(
        client,
        f"/app/admin/organisations/{reg.grower.id}/users/{boss.id}/remove",
        {"csrf": form_token(page), "sure": "1"},
    )
    assert itself.status_code == 422 and "Bạn không thể tự gỡ chính mình." in itself.text
    session.expire_all()
    assert [u.active for u in (session.get(User, member.id), session.get(User, boss.id))] == [False, True]  # type: ignore[union-attr]


def test_an_administrator_changes_a_members_role_within_the_rules_told_in_vietnamese(
    client: TestClient, session: Session, reg: Registry
) -> None:
    boss, _ = f.user(session, reg.grower, Role.ORG_ADMIN, password=PASSWORD)
    member, _ = f.user(session, reg.grower, password=PASSWORD)
    session.commit()
    as_user(client, boss)
    url = f"/app/admin/organisations/{reg.grower.id}/users/{member.id}/role"
    token = form_token(members_of(client, reg.grower))
    made = post(client, url, {"csrf": token, "role": "org_admin"})
    assert made.status_code == 303 and "Đã đổi vai trò." in client.get(made.headers["location"], headers=VI).text
    inspector = post(client, url, {"csrf": token, "role": "inspector"})
    assert inspector.status_code == 422 and "Tài khoản của bạn không được cấp vai trò này." in inspector.text
    nonsense = post(client, url, {"csrf": token, "role": "chief"})
    assert nonsense.status_code == 422 and "Hãy chọn một vai trò trong danh sách." in nonsense.text
    session.expire_all()
    assert session.get(User, member.id).role == Role.ORG_ADMIN  # type: ignore[union-attr]
    # the province may not leave the organisation without an administrator: demoting both is refused at the last
    client.cookies.clear()
    as_user(client, reg.admin)
    token = form_token(members_of(client, reg.grower))
    first = post(
        client, f"/app/admin/organisations/{reg.grower.id}/users/{boss.id}/role", {"csrf": token, "role": "member"}
    )
    last = post(client, url, {"csrf": token, "role": "member"})
    assert first.status_code == 303 and last.status_code == 422
    assert "Tổ chức phải còn ít nhất một quản trị viên" in last.text
    assert count(session, User, User.organisation_id == reg.grower.id, User.role == Role.ORG_ADMIN) == 1


def test_a_new_sign_in_link_is_shown_once_ends_the_old_password_and_works_once(
    client: TestClient, session: Session, reg: Registry
) -> None:
    boss, _ = f.user(session, reg.grower, Role.ORG_ADMIN, password=PASSWORD)
    member, _ = f.user(session, reg.grower, password=PASSWORD)
    session.commit()
    theirs = browser(client, member)
    as_user(client, boss)
    page = members_of(client, reg.grower)
    made = post(client, f"/app/admin/organisations/{reg.grower.id}/users/{member.id}/link", {"csrf": form_token(page)})
    assert made.status_code == 303 and made.headers["location"].endswith("?linked=1")
    assert "token" not in made.headers["location"]  # never in a URL the browser keeps
    shown = client.get(made.headers["location"], headers=VI).text
    token = shown_link(shown)
    assert token and "Liên kết đăng nhập mới cho" in shown and member.email in shown
    assert shown_link(client.get(made.headers["location"], headers=VI).text) is None  # shown once
    # the old password and the member's open session no longer work
    assert theirs.get("/app", headers=VI, follow_redirects=False).status_code == 303
    assert sign_in(TestClient(client.app), member.email).status_code != 303  # type: ignore[attr-defined]

    fresh = TestClient(client.app)
    welcome = fresh.get(f"/welcome?token={token}", headers=VI)
    done = post(fresh, "/welcome", {"csrf": form_token(welcome.text), "token": token, "password": "mùa nhãn mới 2026"})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert sign_in(fresh, member.email, password="mùa nhãn mới 2026").status_code == 303  # type: ignore[attr-defined]
    other = TestClient(client.app)
    again = post(
        other,
        "/welcome",
        {
            "csrf": form_token(other.get(f"/welcome?token={token}").text),
            "token": token,
            "password": "một mật khẩu khác nữa",
        },
    )
    assert again.status_code == 422 and "Liên kết này không hợp lệ" in again.text
    # and one's own link is refused in words (it would end the session that is to show it)
    own = post(client, f"/app/admin/organisations/{reg.grower.id}/users/{boss.id}/link", {"csrf": form_token(page)})
    assert own.status_code == 422 and "Hãy đổi mật khẩu của chính bạn ở trang tài khoản." in own.text


def test_an_organisation_admin_cannot_manage_another_organisations_members_by_direct_url(
    client: TestClient, session: Session, reg: Registry
) -> None:
    member, _ = f.user(session, reg.grower, password=PASSWORD)
    session.commit()
    as_user(client, reg.other_holder_user)  # an administrator of another organisation
    token = form_token(client.get("/app/designations", headers=VI).text)
    for action, extra in (("remove", {"sure": "1"}), ("role", {"role": "org_admin"}), ("link", {})):
        answer = post(
            client, f"/app/admin/organisations/{reg.grower.id}/users/{member.id}/{action}", {"csrf": token, **extra}
        )
        assert answer.status_code == 403, action
        assert "hytrace_link" not in answer.headers.get("set-cookie", "")
        # naming their own organisation does not reach the other's member either
        own = post(
            client,
            f"/app/admin/organisations/{reg.other_holder_user.organisation_id}/users/{member.id}/{action}",
            {"csrf": token, **extra},
        )
        assert own.status_code == 404, action
    session.expire_all()
    found = session.get(User, member.id)
    assert found is not None and (found.active, found.role, found.token_version) == (True, Role.MEMBER, 0)
    # and a forged form of the organisation's own administrator changes nothing either
    boss, _ = f.user(session, reg.grower, Role.ORG_ADMIN, password=PASSWORD)
    session.commit()
    client.cookies.clear()
    as_user(client, boss)
    forged = post(
        client, f"/app/admin/organisations/{reg.grower.id}/users/{member.id}/remove", {"csrf": "forged", "sure": "1"}
    )
    assert forged.status_code == 403 and "Biểu mẫu" in forged.text
    session.expire_all()
    assert session.get(User, member.id).active  # type: ignore[union-attr]


# --------------------------------------------------------------------------- once-only keys


def test_a_grant_sent_twice_grants_once_and_its_key_with_other_values_is_refused(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.holder_user)
    url = f"/app/designations/{reg.gi.id}/rights/new"
    data = grant_form(client, reg)
    first, again = post(client, url, data), post(client, url, data)
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    [right] = rights_of(session, reg.gi)
    assert right.request_key == data["idem"]
    other = client.post(url, headers=VI, data={**data, "decision_number": "16/QĐ-HNL"})
    assert other.status_code == 422 and REUSED in other.text
    assert len(rights_of(session, reg.gi)) == 1
    assert count(session, Event, Event.type == EventType.RIGHT) == 1


def test_a_change_sent_twice_changes_once_and_its_key_with_another_reason_is_refused(
    client: TestClient, session: Session, reg: Registry
) -> None:
    right = a_right(session, reg)
    as_user(client, reg.holder_user)
    page = client.get(f"/app/rights/{right.id}", headers=VI).text
    form = {"csrf": form_token(page), "idem": idem(page), "reason": "Vi phạm quy chế đóng gói"}
    first, again = (
        post(client, f"/app/rights/{right.id}/suspend", form),
        post(client, f"/app/rights/{right.id}/suspend", form),
    )
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    other = client.post(f"/app/rights/{right.id}/revoke", headers=VI, data={**form, "reason": "Thu hồi luôn"})
    assert other.status_code == 422 and REUSED in other.text
    session.expire_all()
    [found] = rights_of(session, reg.gi)
    assert (found.status, found.status_reason) == (RightStatus.SUSPENDED, "Vi phạm quy chế đóng gói")
    assert count(session, Event, Event.type == EventType.RIGHT) == 1


def test_an_organisation_sent_twice_is_registered_once_and_its_key_with_other_values_is_refused(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    data = org_form(client)
    first, again = (
        post(client, "/app/admin/organisations/new", data),
        post(client, "/app/admin/organisations/new", data),
    )
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    other = client.post("/app/admin/organisations/new", headers=VI, data={**data, "tax_code": "0907777777"})
    assert other.status_code == 422 and REUSED in other.text
    assert count(session, Organisation, Organisation.request_key == data["idem"]) == 1
    assert count(session, Organisation, Organisation.tax_code == "0907777777") == 0


def test_an_invitation_sent_twice_invites_once_and_the_link_shown_works(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    page = members_of(client, reg.grower)
    data = {
        "csrf": form_token(page),
        "idem": idem(page),
        "email": "ke.toan@htxdongtao.vn",
        "full_name": "Lê Thị Hoa",
        "role": "member",
    }
    url = f"/app/admin/organisations/{reg.grower.id}/users"
    first, again = post(client, url, data), post(client, url, data)
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    assert count(session, User, User.email == "ke.toan@htxdongtao.vn") == 1
    token = shown_link(client.get(again.headers["location"], headers=VI).text)  # the answer the browser keeps
    assert token
    fresh = TestClient(client.app)
    welcome = fresh.get(f"/welcome?token={token}", headers=VI)
    assert (
        post(
            fresh, "/welcome", {"csrf": form_token(welcome.text), "token": token, "password": "sổ sách gọn gàng"}
        ).status_code
        == 303
    )
    other = client.post(url, headers=VI, data={**data, "role": "org_admin"})
    assert other.status_code == 422 and REUSED in other.text
    assert count(session, User, User.email == "ke.toan@htxdongtao.vn", User.role == Role.MEMBER) == 1


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


def test_forged_once_only_forms_write_nothing(client: TestClient, session: Session, reg: Registry) -> None:
    as_user(client, reg.admin)
    made = [
        post(client, "/app/admin/organisations/new", org_form(client, csrf="forged")),
        post(client, "/app/admin/designations/new", designation_form(client, reg, csrf="forged")),
    ]
    page = members_of(client, reg.grower)
    made.append(
        post(
            client,
            f"/app/admin/organisations/{reg.grower.id}/users",
            {
                "csrf": "forged",
                "idem": idem(page),
                "email": "gia.mao@htxdongtao.vn",
                "full_name": "Giả Mạo",
                "role": "member",
            },
        )
    )
    assert [m.status_code for m in made] == [403, 403, 403]
    assert count(session, Organisation, Organisation.tax_code == "0901234567") == 0
    assert count(session, Designation, Designation.name_vi == "Nhãn lồng Khoái Châu (thử)") == 0
    assert count(session, User, User.email == "gia.mao@htxdongtao.vn") == 0


def test_a_holder_cannot_grant_on_another_holders_designation_even_with_a_key(
    client: TestClient, session: Session, reg: Registry
) -> None:
    # given the holder's own grant made under a key
    as_user(client, reg.holder_user)
    data = grant_form(client, reg)
    assert post(client, f"/app/designations/{reg.gi.id}/rights/new", data).status_code == 303
    client.cookies.clear()
    # when another holder sends the same form and key to it, or its own key to the other designation
    as_user(client, reg.other_holder_user)
    token = form_token(client.get("/app/designations", headers=VI).text)
    replay = post(client, f"/app/designations/{reg.gi.id}/rights/new", {**data, "csrf": token})
    theirs = post(
        client,
        f"/app/designations/{reg.gi.id}/rights/new",
        {
            **data,
            "csrf": token,
            "idem": "their-own",
            "decision_number": "99/QĐ",
            "valid_from": (date.today() + timedelta(days=1)).isoformat(),
        },
    )
    # then both are refused and the grant stays the holder's one
    assert replay.status_code == theirs.status_code == 403
    assert [r.decision_number for r in rights_of(session, reg.gi)] == ["15/QĐ-HNL"]


# --------------------------------------------------------------------------- the JSON API takes the same keys


def test_the_json_api_grants_suspends_and_invites_once_per_idempotency_key(
    client: TestClient, session: Session, reg: Registry
) -> None:
    token = auth.issue_token(reg.holder_user).access_token
    grant = {"organisation_id": reg.grower.id, "decision_number": "21/QĐ-HNL", "valid_from": date.today().isoformat()}
    url = f"{API}/designations/{reg.gi.id}/rights"
    first = client.post(url, json=grant, headers={**bearer(token), "Idempotency-Key": "api-grant-1"})
    again = client.post(url, json=grant, headers={**bearer(token), "Idempotency-Key": "api-grant-1"})
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert_problem(
        client.post(
            url,
            json={**grant, "decision_number": "22/QĐ-HNL"},
            headers={**bearer(token), "Idempotency-Key": "api-grant-1"},
        ),
        409,
        "idempotency_key_reused",
    )
    assert len(rights_of(session, reg.gi)) == 1
    suspend = f"{API}/rights/{first.json()['id']}/suspend"
    answers = [
        client.post(
            suspend, json={"reason": "Kiểm tra đột xuất"}, headers={**bearer(token), "Idempotency-Key": "api-s"}
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200] and answers[1].json()["status"] == "suspended"
    assert count(session, Event, Event.type == EventType.RIGHT) == 2  # the grant and one suspension

    admin = auth.issue_token(reg.admin).access_token
    invite = {"email": "api.moi@htxdongtao.vn", "full_name": "Phạm Văn Nam"}
    sent = [
        client.post(
            f"{API}/organisations/{reg.grower.id}/members",
            json=invite,
            headers={**bearer(admin), "Idempotency-Key": "api-inv"},
        )
        for _ in range(2)
    ]
    assert [s.status_code for s in sent] == [201, 201] and sent[0].json()["user"]["id"] == sent[1].json()["user"]["id"]
    assert count(session, User, User.email == "api.moi@htxdongtao.vn") == 1
