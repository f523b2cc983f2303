"""Bearer tokens end: each carries exp, iat and jti, and POST /auth/logout signs out the token it is sent
with (in the database: every process, and the next one after a restart, refuses it)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, bearer
from tests.conftest import ROOT, migrate
from trace import auth
from trace.access import Role
from trace.errors import Unauthenticated
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow

API = "/api/v1"


def _signed(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, get_settings().secret_key, algorithm="HS256")


def _claims(user_id: int | None, **changes: Any) -> dict[str, Any]:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "tv": 0,
        "iat": now,
        "exp": now + timedelta(hours=1),
        "jti": "hand-made-1",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _revoked_rows(session: Session) -> int:
    return session.execute(select(func.count()).select_from(auth.RevokedToken)).scalar_one()


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub"])
def test_a_token_without_a_required_claim_is_refused(client: TestClient, session: Session, missing: str) -> None:
    # given a token signed with the instance's own secret, complete but for one claim
    user, _ = f.user(session, f.org(session))
    session.commit()
    complete = _claims(user.id, tv=user.token_version)
    assert client.get(f"{API}/auth/me", headers=bearer(_signed(complete))).status_code == 200
    # then without it the token is refused (without exp it would be good forever)
    token = _signed({name: value for name, value in complete.items() if name != missing})
    response = client.get(f"{API}/auth/me", headers=bearer(token))
    assert_problem(response, 401, "bad_token")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("iat_ahead", "status"), [(timedelta(seconds=10), 200), (timedelta(minutes=5), 401)])
def test_a_token_issued_in_the_future_is_refused_beyond_a_small_clock_leeway(
    client: TestClient, session: Session, iat_ahead: timedelta, status: int
) -> None:
    user, _ = f.user(session, f.org(session))
    session.commit()
    token = _signed(_claims(user.id, tv=user.token_version, iat=utcnow() + iat_ahead))
    assert client.get(f"{API}/auth/me", headers=bearer(token)).status_code == status


@pytest.mark.parametrize(
    "claims",
    [
        {"jti": 12345},
        {"jti": ""},
        {"jti": "x" * 65},
        {"exp": "tomorrow"},
        {"iat": "now"},
        {"sub": "not-a-number"},
    ],
)
def test_a_token_with_a_malformed_claim_is_401_not_500(
    client: TestClient, session: Session, claims: dict[str, Any]
) -> None:
    user, _ = f.user(session, f.org(session))
    session.commit()
    token = _signed(_claims(user.id, tv=user.token_version, **claims))
    assert_problem(client.get(f"{API}/auth/me", headers=bearer(token)), 401, "bad_token")
    assert_problem(client.post(f"{API}/auth/logout", headers=bearer(token)), 401, "bad_token")


def test_every_issued_token_names_itself_and_says_when_it_ends(session: Session) -> None:
    user, _ = f.user(session, f.org(session))
    first, second = (
        jwt.decode(auth.issue_token(user).access_token, options={"verify_signature": False}) for _ in range(2)
    )
    assert {"sub", "iat", "exp", "jti"} <= first.keys()
    assert first["exp"] - first["iat"] == get_settings().token_ttl_minutes * 60
    assert first["jti"] != second["jti"]


def test_logout_ends_the_token_it_is_sent_with_and_no_other(client: TestClient, session: Session) -> None:
    # given a user signed in twice (say a phone and a laptop)
    user, phone = f.user(session, f.org(session))
    laptop = auth.issue_token(user).access_token
    session.commit()
    # when the phone signs out (naming the laptop's token in the body changes nothing: only the bearer counts)
    out = client.post(f"{API}/auth/logout", headers=bearer(phone), json={"token": laptop, "access_token": laptop})
    # then the phone's token is refused before its expiry and the laptop's still works
    assert out.status_code == 204, out.text
    assert_problem(client.get(f"{API}/auth/me", headers=bearer(phone)), 401, "bad_token")
    assert client.get(f"{API}/auth/me", headers=bearer(laptop)).json()["id"] == user.id
    # and signing in again gives a working token
    fresh = auth.issue_token(user).access_token
    assert client.get(f"{API}/auth/me", headers=bearer(fresh)).status_code == 200


def test_logout_twice_is_the_same_sign_out(client: TestClient, session: Session) -> None:
    _, token = f.user(session, f.org(session))
    session.commit()
    before = _revoked_rows(session)
    assert client.post(f"{API}/auth/logout", headers=bearer(token)).status_code == 204
    assert client.post(f"{API}/auth/logout", headers=bearer(token)).status_code == 204
    assert _revoked_rows(session) == before + 1
    assert_problem(client.get(f"{API}/auth/me", headers=bearer(token)), 401, "bad_token")


def test_logout_needs_a_user_token_of_its_own(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    user, admin_token = f.user(session, coop, Role.ORG_ADMIN)
    session.commit()
    key = client.post(f"{API}/organisations/{coop.id}/api-keys", headers=bearer(admin_token), json={"name": "cân"})
    assert key.status_code == 201, key.text
    assert_problem(client.post(f"{API}/auth/logout"), 401, "no_credentials")
    assert_problem(client.post(f"{API}/auth/logout", headers=bearer("garbage")), 401, "bad_token")
    expired = _signed(
        _claims(
            user.id,
            tv=user.token_version,
            iat=utcnow() - timedelta(hours=9),
            exp=utcnow() - timedelta(hours=1),
        )
    )
    assert_problem(client.post(f"{API}/auth/logout", headers=bearer(expired)), 401, "bad_token")
    forged = jwt.encode(_claims(user.id, tv=user.token_version), "not-the-instance-secret-" * 2, algorithm="HS256")
    assert_problem(client.post(f"{API}/auth/logout", headers=bearer(forged)), 401, "bad_token")
    # an API key is revoked by its administrator, not signed out, and it keeps working
    assert_problem(client.post(f"{API}/auth/logout", headers=bearer(key.json()["key"])), 403, "user_only")
    assert client.get(f"{API}/organisations/{coop.id}/api-keys", headers=bearer(admin_token)).status_code == 200
    assert _revoked_rows(session) == 0


def test_logout_everywhere_ends_every_token_of_the_user_only(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    user, phone = f.user(session, coop)
    laptop = auth.issue_token(user).access_token
    _, colleague = f.user(session, coop)
    session.commit()
    assert client.post(f"{API}/auth/logout-everywhere", headers=bearer(phone)).status_code == 204
    for token in (phone, laptop):
        assert_problem(client.get(f"{API}/auth/me", headers=bearer(token)), 401, "bad_token")
    assert client.get(f"{API}/auth/me", headers=bearer(colleague)).status_code == 200
    assert client.get(f"{API}/auth/me", headers=bearer(auth.issue_token(user).access_token)).status_code == 200


def test_a_sign_out_prunes_the_rows_of_tokens_that_have_expired_anyway(session: Session) -> None:
    # given rows of tokens signed out long ago, past their expiry, and one still running
    user, token = f.user(session, f.org(session))
    long_ago = utcnow() - timedelta(days=2)
    session.add_all(
        [
            auth.RevokedToken(
                jti=f"old-{i}",
                user_id=user.id,
                expires_at=long_ago + timedelta(minutes=i),  # type: ignore[arg-type]
                revoked_at=long_ago,
            )
            for i in range(3)
        ]
    )
    session.add(auth.RevokedToken(jti="still-running", user_id=user.id, expires_at=utcnow() + timedelta(hours=1)))  # type: ignore[arg-type]
    session.flush()
    # when the user signs out a token
    auth.sign_out(session=session, token=token)
    session.flush()
    # then the expired rows are gone; the running one and the new one stay
    left = set(session.execute(select(auth.RevokedToken.jti)).scalars())  # type: ignore[call-overload]
    assert "still-running" in left and not any(jti.startswith("old-") for jti in left)
    assert len(left) == 2


def test_a_sign_out_survives_a_restart_and_is_seen_by_another_process(
    fresh: tuple[str, Engine],
) -> None:
    # given a user signed in twice, one token signed out and committed
    url, engine = fresh
    migrate(url)
    with Session(engine) as s:
        user, gone = f.user(s, f.org(s))
        kept = auth.issue_token(user).access_token
        s.commit()
        auth.sign_out(session=s, token=gone)
        s.commit()
        user_id = user.id
    # when a new process (a restarted server, another worker) checks both tokens
    probe = (
        "import sys\nfrom sqlmodel import Session\nfrom trace import auth\nfrom trace.platform.db import make_engine\n"
        "from trace.errors import Unauthenticated\n"
        "with Session(make_engine(sys.argv[1], pool_size=1)) as s:\n"
        "    for token in sys.argv[2:]:\n"
        "        try:\n            print(auth.actor_from_token(session=s, token=token).user_id)\n"
        "        except Unauthenticated as error:\n            print(error.code)\n"
    )
    env = {**os.environ, "HYTRACE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-c", probe, url, gone, kept],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # then the signed-out one is refused there too and the other is not
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["bad_token", str(user_id)]


def test_the_same_token_signed_out_many_times_at_once_is_signed_out_once(
    postgres_engine: Engine,
) -> None:
    # given a token and 24 sign-outs of it in flight at once, each on its own connection, while other
    # sign-outs sweep the same expired rows
    engine = postgres_engine
    with Session(engine) as setup:
        user, token = f.user(setup, f.org(setup))
        others = [auth.issue_token(user).access_token for _ in range(4)]
        setup.add_all(
            [
                auth.RevokedToken(
                    jti=f"old-{i}",
                    user_id=user.id,  # type: ignore[arg-type]
                    expires_at=utcnow() - timedelta(days=1),
                )
                for i in range(150)
            ]
        )
        setup.commit()
        user_id = user.id
    tokens = [token] * 20 + others
    start, errors = threading.Barrier(len(tokens)), []

    def sign_out(presented: str) -> None:
        try:
            with Session(engine) as s:
                s.connection()
                start.wait()
                auth.sign_out(session=s, token=presented)
                s.commit()
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=sign_out, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then every sign-out succeeded, each token has one row, and the old rows are gone
    assert errors == []
    with Session(engine) as after:
        rows = list(after.execute(select(auth.RevokedToken)).scalars())
        assert len(rows) == 5 and {r.user_id for r in rows} == {user_id}
        for presented in (token, *others):
            with pytest.raises(Unauthenticated):
                auth.actor_from_token(session=after, token=presented)
