"""What the workspace page tests share: signing in through the page's own form, and its form token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

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
