"""The workspace's door: signing in and out with a session cookie, forms that only our own pages can
send, one's own password, and the start page showing only one's own organisation's lots."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from trace.access import Role
from trace.platform.config import get_settings

PASSWORD = "correct horse battery"
VI = {"accept-language": "vi"}


def form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form token"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, next_path: str = "/app") -> object:
    page = client.get(f"/login?next={next_path}", headers=VI)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf": form_token(page.text), "next": next_path},
        headers=VI,
        follow_redirects=False,
    )


@pytest.fixture
def member(session: Session) -> tuple[object, object]:
    org = f.org(session, name="HTX Nhãn Tiên Lữ (thử nghiệm)")
    user, _ = f.user(session, org, Role.MEMBER, password=PASSWORD)
    session.commit()
    return org, user


def test_a_page_of_the_workspace_sends_a_visitor_without_a_session_to_sign_in_and_back(
    client: TestClient, member: tuple[object, object]
) -> None:
    away = client.get("/app?x=1", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/login?next=%2Fapp%3Fx%3D1"
    _, user = member
    answer = sign_in(client, user.email, next_path="/app")  # type: ignore[attr-defined]
    assert answer.status_code == 303 and answer.headers["location"] == "/app"  # type: ignore[attr-defined]
    cookie = answer.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "hytrace_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert client.get("/app", headers=VI).status_code == 200


def test_a_wrong_password_is_told_in_vietnamese_and_opens_no_session(
    client: TestClient, member: tuple[object, object]
) -> None:
    _, user = member
    answer = sign_in(client, user.email, password="not the password")  # type: ignore[attr-defined]
    assert answer.status_code == 401 and "Sai email hoặc mật khẩu." in answer.text  # type: ignore[attr-defined]
    assert "hytrace_session" not in client.cookies
    assert client.get("/app", follow_redirects=False).status_code == 303


def test_wrong_passwords_in_a_row_pause_sign_in_and_the_form_says_so_in_vietnamese(
    client: TestClient, member: tuple[object, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYTRACE_SIGN_IN_FAILURES_ALLOWED", "2")
    get_settings.cache_clear()
    _, user = member
    for _ in range(2):
        assert sign_in(client, user.email, password="not the password").status_code == 401  # type: ignore[attr-defined]
    answer = sign_in(client, user.email)  # type: ignore[attr-defined]
    assert answer.status_code == 429 and "đăng nhập tạm dừng" in answer.text  # type: ignore[attr-defined]
    assert "hytrace_session" not in client.cookies


def test_a_sign_in_form_from_another_site_is_refused(client: TestClient, member: tuple[object, object]) -> None:
    _, user = member
    client.get("/login")
    forged = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf": "0" * 64},  # type: ignore[attr-defined]
        headers=VI,
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "Biểu mẫu đã hết hạn" in forged.text
    assert "hytrace_session" not in client.cookies


def test_sign_out_needs_the_pages_own_token_and_ends_the_session_for_good(
    client: TestClient, member: tuple[object, object]
) -> None:
    _, user = member
    sign_in(client, user.email)  # type: ignore[attr-defined]
    old = client.cookies["hytrace_session"]
    forged = client.post("/logout", data={"csrf": "forged"}, headers=VI, follow_redirects=False)
    assert forged.status_code == 403 and "Bị từ chối" in forged.text
    assert client.get("/app", follow_redirects=False).status_code == 200  # still signed in
    token = form_token(client.get("/app").text)
    out = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    # the old cookie, replayed, opens nothing
    client.cookies.set("hytrace_session", old)
    assert client.get("/app", follow_redirects=False).status_code == 303


def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(
    client: TestClient, member: tuple[object, object]
) -> None:
    _, user = member
    sign_in(client, user.email)  # type: ignore[attr-defined]
    elsewhere = client.cookies["hytrace_session"]
    client.cookies.clear()  # a second device
    sign_in(client, user.email)  # type: ignore[attr-defined]
    assert client.cookies["hytrace_session"] != elsewhere
    token = form_token(client.get("/account/password").text)
    wrong = client.post(
        "/account/password",
        data={"csrf": token, "current_password": "nope nope nope", "new_password": "a new longer password"},
        headers=VI,
    )
    assert wrong.status_code == 422 and "Mật khẩu hiện tại không đúng." in wrong.text
    short = client.post(
        "/account/password", data={"csrf": token, "current_password": PASSWORD, "new_password": "short"}, headers=VI
    )
    assert short.status_code == 422 and "quá ngắn" in short.text
    done = client.post(
        "/account/password",
        data={"csrf": token, "current_password": PASSWORD, "new_password": "a new longer password"},
        headers=VI,
    )
    assert done.status_code == 200 and "Đã đổi mật khẩu" in done.text
    assert client.get("/app", follow_redirects=False).status_code == 200
    client.cookies.set("hytrace_session", elsewhere)
    assert client.get("/app", follow_redirects=False).status_code == 303


def test_the_start_page_lists_only_the_organisations_own_lots(
    client: TestClient, session: Session, member: tuple[object, object]
) -> None:
    org, user = member
    mine = f.harvest(session, org, lot_code="L-MINE-1").lot_ids  # type: ignore[arg-type]
    f.harvest(session, f.org(session), lot_code="L-THEIRS-1")
    session.commit()
    assert mine
    sign_in(client, user.email)  # type: ignore[attr-defined]
    page = client.get("/app", headers=VI).text
    assert "L-MINE-1" in page and "L-THEIRS-1" not in page and "đang lưu thông" in page
    assert "Lô hàng của tổ chức bạn" in page


def test_sign_in_never_sends_the_visitor_to_another_site(client: TestClient, member: tuple[object, object]) -> None:
    _, user = member
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client.cookies.clear()
        answer = sign_in(client, user.email, next_path=target)  # type: ignore[attr-defined]
        assert answer.headers["location"] == "/app", target  # type: ignore[attr-defined]


def test_cookies_are_secure_when_the_site_is_served_over_https(
    client: TestClient, member: tuple[object, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://truyxuat.hungyen.example")
    get_settings.cache_clear()
    _, user = member
    answer = sign_in(client, user.email)  # type: ignore[attr-defined]
    assert "Secure" in answer.headers["set-cookie"]  # type: ignore[attr-defined]


def test_a_typed_code_leads_to_its_labels_page_or_to_an_honest_refusal(client: TestClient, session: Session) -> None:
    from tests.trace.test_origin import build_chain
    from trace.units import display_code

    chain = build_chain(session)
    session.commit()
    typed = display_code(chain.unit.code).lower().replace("-", " ")
    found = client.get(f"/check?code={typed}", follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"].endswith(f"/21/{chain.unit.serial}")
    missing = client.get("/check?code=AAAA-BBBB-C", headers=VI)
    assert missing.status_code == 404 and "Mã này không do hệ thống cấp" in missing.text
    assert "Kiểm tra mã in trên nhãn" in client.get("/", headers=VI).text


def test_the_icon_browsers_ask_for_is_there_and_cached(client: TestClient) -> None:
    from PIL import Image

    answer = client.get("/favicon.ico")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/x-icon"
    assert "max-age" in answer.headers["cache-control"]
    assert Image.open(BytesIO(answer.content)).size == (32, 32)


@pytest.mark.parametrize(
    ("kind", "role", "keeps_registry"),
    [("authority", Role.ORG_ADMIN, True), ("authority", Role.MEMBER, False), ("cooperative", Role.ORG_ADMIN, False)],
)
def test_the_menu_leads_the_registrars_and_only_them_to_the_designation_registry(
    client: TestClient, session: Session, kind: str, role: Role, keeps_registry: bool
) -> None:
    user, _ = f.user(session, f.org(session, kind), role, password=PASSWORD)
    session.commit()
    sign_in(client, user.email)
    start = client.get("/app", headers=VI).text
    assert ('href="/app/admin/designations"' in start) is keeps_registry
    # the menu follows the rule trace/ keeps: the registry answers those it leads there, and only them
    assert client.get("/app/admin/designations").status_code == (200 if keeps_registry else 403)
