"""Rights to use a designation: granting with scope and quota, suspending, reinstating and revoking, each
once, refusals in Vietnamese; and the JSON API taking the same once-only keys."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests.api.helpers import assert_problem, bearer
from tests.api.web.helpers import VI, form_token
from tests.api.web.registry import REUSED, Registry, a_right, as_user, count, idem, post, rights_of
from trace import auth
from trace.designations.models import RightStatus
from trace.events.models import Event, EventType
from trace.users import User


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


def test_a_forged_form_changes_no_right(client: TestClient, session: Session, reg: Registry) -> None:
    right = a_right(session, reg)
    as_user(client, reg.holder_user)
    data = grant_form(client, reg, csrf="forged")
    assert client.post(f"/app/designations/{reg.gi.id}/rights/new", data=data, headers=VI).status_code == 403
    forged = client.post(f"/app/rights/{right.id}/revoke", data={"csrf": "0" * 64, "reason": "Giả mạo"}, headers=VI)
    assert forged.status_code == 403 and "Biểu mẫu" in forged.text
    assert [r.status for r in rights_of(session, reg.gi)] == [RightStatus.ACTIVE]


API = "/api/v1"


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
