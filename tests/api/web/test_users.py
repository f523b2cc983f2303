"""An organisation's users: an invitation link shown once, roles within the rules, removing a member (their
sessions end), a new sign-in link shown once and working once, each form recording once."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests import factories as f
from tests.api.web.helpers import PASSWORD, VI, form_token, sign_in
from tests.api.web.registry import REUSED, Registry, as_user, count, idem, members_of, post
from trace.access import Role
from trace.users import User


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


def browser(client: TestClient, user: User) -> TestClient:
    """Another person's own browser, signed in."""
    other = TestClient(client.app)
    assert sign_in(other, user.email).status_code == 303  # type: ignore[attr-defined]
    return other


def shown_link(page: str) -> str | None:
    found = re.search(r'id="one-time-link">[^<]*token=([^<"]+)<', page)
    return found.group(1) if found else None


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
