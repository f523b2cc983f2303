"""Signing in and out, and one's own password: refusals in Vietnamese, forged forms refused, no open redirect."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.web.helpers import PASSWORD, VI, form_token, sign_in
from trace.platform.config import get_settings


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
