"""Login, the current user, password change, one-time links and API keys, over HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, bearer
from trace.access import Role
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow

PASSWORD = "correct horse battery"
API = "/api/v1"


def _login(client: TestClient, email: str, password: str) -> httpx.Response:
    return client.post(f"{API}/auth/token", data={"username": email, "password": password})


def test_login_gives_a_token_that_identifies_the_user(client: TestClient, session: Session) -> None:
    # given
    coop = f.org(session)
    user, _ = f.user(session, coop, password=PASSWORD)
    session.commit()
    # when
    login = _login(client, user.email.upper(), PASSWORD)  # emails compare case-insensitively
    # then
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    me = client.get(f"{API}/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user.id and me.json()["organisation_id"] == coop.id
    assert me.json()["has_password"] is True and "password_hash" not in me.json()


def test_wrong_password_and_unknown_email_are_the_same_401(client: TestClient, session: Session) -> None:
    user, _ = f.user(session, f.org(session), password=PASSWORD)
    session.commit()
    for email, password in ((user.email, "not the password"), ("nobody@example.test", PASSWORD)):
        response = _login(client, email, password)
        assert_problem(response, 401, "bad_credentials")
        assert response.headers["www-authenticate"] == "Bearer"


def test_login_form_without_password_is_a_validation_problem(client: TestClient) -> None:
    response = client.post(f"{API}/auth/token", data={"username": "a@example.test"})
    assert_problem(response, 422, "validation_error")


def test_no_token_bad_token_and_expired_token_are_401(client: TestClient, session: Session) -> None:
    user, _ = f.user(session, f.org(session))
    session.commit()
    expired = jwt.encode(
        {
            "sub": str(user.id),
            "tv": user.token_version,
            "iat": utcnow() - timedelta(hours=9),
            "exp": utcnow() - timedelta(hours=1),
        },
        get_settings().secret_key,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": str(user.id), "tv": user.token_version, "exp": utcnow() + timedelta(hours=1)},
        "a-secret-that-is-not-the-instance-secret",
        algorithm="HS256",
    )
    assert_problem(client.get(f"{API}/auth/me"), 401, "no_credentials")
    for token in ("garbage", expired, forged):
        response = client.get(f"{API}/auth/me", headers=bearer(token))
        assert_problem(response, 401, "bad_token")
        assert response.headers["www-authenticate"] == "Bearer"


def test_password_change_signs_out_old_tokens(client: TestClient, session: Session) -> None:
    # given
    user, old_token = f.user(session, f.org(session), password=PASSWORD)
    session.commit()
    # when
    changed = client.post(
        f"{API}/auth/password",
        headers=bearer(old_token),
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    # then
    assert changed.status_code == 204, changed.text
    assert_problem(client.get(f"{API}/auth/me", headers=bearer(old_token)), 401, "bad_token")
    assert_problem(_login(client, user.email, PASSWORD), 401, "bad_credentials")
    new = _login(client, user.email, "a brand new passphrase").json()["access_token"]
    assert client.get(f"{API}/auth/me", headers=bearer(new)).status_code == 200


def test_password_change_needs_the_current_password_and_a_real_new_one(client: TestClient, session: Session) -> None:
    user, token = f.user(session, f.org(session), password=PASSWORD)
    session.commit()
    wrong = client.post(
        f"{API}/auth/password",
        headers=bearer(token),
        json={"current_password": "guess", "new_password": "a brand new passphrase"},
    )
    assert_problem(wrong, 401, "bad_credentials")
    for weak in ("short", "aaaaaaaaaaaa", "abababababab"):
        response = client.post(
            f"{API}/auth/password", headers=bearer(token), json={"current_password": PASSWORD, "new_password": weak}
        )
        assert_problem(response, 422, "validation_error")
    # nothing changed: the token still works and the old password still logs in
    assert client.get(f"{API}/auth/me", headers=bearer(token)).status_code == 200
    assert _login(client, user.email, PASSWORD).status_code == 200


def test_invitation_link_sets_a_password_once(client: TestClient, session: Session) -> None:
    # given an organisation administrator invites a member
    coop = f.org(session)
    _, admin_token = f.user(session, coop, Role.ORG_ADMIN)
    session.commit()
    invite = client.post(
        f"{API}/organisations/{coop.id}/members",
        headers=bearer(admin_token),
        json={"email": "Moi.Vao@Example.com", "full_name": "Thành viên mới"},
    )
    assert invite.status_code == 201, invite.text
    invitation = invite.json()
    assert invitation["user"]["has_password"] is False and invitation["user"]["role"] == "member"
    # an invited user cannot log in before setting a password
    assert_problem(_login(client, "moi.vao@example.com", "anything at all"), 401, "bad_credentials")
    # when
    used = client.post(f"{API}/auth/set-password", json={"token": invitation["token"], "password": "my own passphrase"})
    # then
    assert used.status_code == 200, used.text
    assert used.json()["has_password"] is True
    token = _login(client, "moi.vao@example.com", "my own passphrase").json()["access_token"]
    assert client.get(f"{API}/auth/me", headers=bearer(token)).json()["organisation_id"] == coop.id
    again = client.post(
        f"{API}/auth/set-password", json={"token": invitation["token"], "password": "someone else's pw"}
    )
    assert_problem(again, 422, "link_invalid")
    assert _login(client, "moi.vao@example.com", "my own passphrase").status_code == 200


def test_a_made_up_link_is_refused(client: TestClient) -> None:
    response = client.post(f"{API}/auth/set-password", json={"token": "x" * 43, "password": "my own passphrase"})
    assert_problem(response, 422, "link_invalid")


def test_password_reset_signs_out_the_member_and_issues_a_link(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    _, admin_token = f.user(session, coop, Role.ORG_ADMIN)
    member, member_token = f.user(session, coop, password=PASSWORD)
    session.commit()
    reset = client.post(
        f"{API}/organisations/{coop.id}/members/{member.id}/reset-password", headers=bearer(admin_token)
    )
    assert reset.status_code == 200, reset.text
    assert_problem(client.get(f"{API}/auth/me", headers=bearer(member_token)), 401, "bad_token")
    assert_problem(_login(client, member.email, PASSWORD), 401, "bad_credentials")
    assert (
        client.post(
            f"{API}/auth/set-password", json={"token": reset.json()["token"], "password": "after the reset"}
        ).status_code
        == 200
    )
    assert _login(client, member.email, "after the reset").status_code == 200


def test_api_key_works_as_a_bearer_token_until_revoked(client: TestClient, session: Session) -> None:
    # given
    coop = f.org(session)
    _, admin_token = f.user(session, coop, Role.ORG_ADMIN)
    product, place = f.product(session, coop), f.location(session, coop)
    session.commit()
    issued = client.post(
        f"{API}/organisations/{coop.id}/api-keys", headers=bearer(admin_token), json={"name": "cân điện tử"}
    )
    assert issued.status_code == 201, issued.text
    key = issued.json()["key"]
    assert key.startswith("hyk_") and issued.json()["prefix"] == key[:12]
    # when a machine records a harvest with it
    harvest = client.post(
        f"{API}/events/harvest",
        headers=bearer(key),
        json={"product_id": product.id, "lot_code": "KEY-1", "quantity": "12.5", "location_id": place.id},
    )
    # then
    assert harvest.status_code == 201, harvest.text
    assert harvest.json()["events"][0]["organisation_id"] == coop.id
    assert harvest.json()["events"][0]["actor_user_id"] is None
    listed = client.get(f"{API}/organisations/{coop.id}/api-keys", headers=bearer(admin_token)).json()
    assert [k["name"] for k in listed] == ["cân điện tử"] and "key" not in listed[0] and "key_hash" not in listed[0]
    # a key is not a person: it cannot change a password or ask who it is
    assert_problem(client.get(f"{API}/auth/me", headers=bearer(key)), 403, "user_only")
    # when revoked
    revoked = client.delete(
        f"{API}/organisations/{coop.id}/api-keys/{issued.json()['id']}", headers=bearer(admin_token)
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    # then
    response = client.get(f"{API}/lots", headers=bearer(key))
    assert_problem(response, 401, "bad_api_key")
    assert response.headers["www-authenticate"] == "Bearer"
    assert_problem(client.get(f"{API}/lots", headers=bearer("hyk_" + "0" * 43)), 401, "bad_api_key")


def test_only_organisation_administrators_issue_api_keys(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    _, member_token = f.user(session, coop)
    session.commit()
    response = client.post(f"{API}/organisations/{coop.id}/api-keys", headers=bearer(member_token), json={"name": "k"})
    assert_problem(response, 403, "org_admin_only")
    assert_problem(
        client.get(f"{API}/organisations/{coop.id}/api-keys", headers=bearer(member_token)), 403, "org_admin_only"
    )


def test_removed_member_is_signed_out(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    admin, admin_token = f.user(session, coop, Role.ORG_ADMIN)
    member, member_token = f.user(session, coop, password=PASSWORD)
    session.commit()
    removed = client.delete(f"{API}/organisations/{coop.id}/members/{member.id}", headers=bearer(admin_token))
    assert removed.status_code == 200 and removed.json()["active"] is False
    assert_problem(client.get(f"{API}/auth/me", headers=bearer(member_token)), 401, "bad_token")
    assert_problem(_login(client, member.email, PASSWORD), 401, "bad_credentials")
    itself = client.delete(f"{API}/organisations/{coop.id}/members/{admin.id}", headers=bearer(admin_token))
    assert_problem(itself, 422, "cannot_remove_self")


def test_wrong_passwords_from_anywhere_pause_the_accounts_sign_in_with_429(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYTRACE_SIGN_IN_FAILURES_ALLOWED", "3")
    get_settings.cache_clear()
    user, token = f.user(session, f.org(session), password=PASSWORD)
    session.commit()
    # given three wrong passwords, each a request of its own (the count survives the refusal): two at
    # login, one as the "current password" of a password change with a stolen token
    for _ in range(2):
        assert_problem(_login(client, user.email, "not the password"), 401, "bad_credentials")
    assert_problem(
        client.post(
            f"{API}/auth/password",
            headers=bearer(token),
            json={"current_password": "a guess", "new_password": "a brand new passphrase"},
        ),
        401,
        "bad_credentials",
    )
    # then even the right password gets 429, saying when to come back
    paused = _login(client, user.email, PASSWORD)
    assert_problem(paused, 429, "too_many_attempts")
    assert 14 * 60 < int(paused.headers["retry-after"]) <= 15 * 60
    # and an unknown address's answer is unchanged (the same 401 as ever)
    assert_problem(_login(client, "nobody@example.test", PASSWORD), 401, "bad_credentials")
