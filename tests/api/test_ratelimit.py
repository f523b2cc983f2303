"""Public endpoints and login are rate-limited per client: a flood gets 429, others are unaffected."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from api import ratelimit
from api.ratelimit import Credentials, TokenBuckets
from tests import factories as f
from tests.api.helpers import assert_problem, bearer
from tests.conftest import app_sharing
from trace import auth
from trace.platform.config import get_settings


def test_bucket_refills_over_time() -> None:
    # given a bucket of 2 per minute, spent
    buckets = TokenBuckets(2, per=60)
    assert buckets.take("a", now=0) == 0 and buckets.take("a", now=0) == 0
    # then the third waits ~30 s, and another client is unaffected
    assert buckets.take("a", now=0) == pytest.approx(30)
    assert buckets.take("b", now=0) == 0
    # and after 30 s one token is back
    assert buckets.take("a", now=30.5) == 0


def test_public_flood_gets_429_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE", "5")
    get_settings.cache_clear()
    from api.main import create_app

    with TestClient(create_app(testing=True)) as client:
        codes = [client.get("/api/v1/communes").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5
        assert codes[5:] == [429] * 3
        limited = client.get("/api/v1/communes")
        assert limited.headers["content-type"] == "application/problem+json"
        body = assert_problem(limited, 429, "rate_limited")
        assert body == {
            "type": "https://hytrace.vn/problems/rate_limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "Too many requests from your address; retry after the given seconds",
            "code": "rate_limited",
            "instance": "/api/v1/communes",
        }
        assert int(limited.headers["retry-after"]) >= 1
        # health checks are never limited
        assert client.get("/healthz").status_code == 200


def test_login_attempts_are_limited(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_RATE_LIMIT_LOGIN_PER_MINUTE", "3")
    get_settings.cache_clear()
    from api.main import create_app

    app = create_app(testing=True)
    app.state.engine = engine  # the test database: the configured one has no tables (a 500 now, not a 503)
    with TestClient(app) as client:
        form = {"username": "nobody@example.test", "password": "wrong-password"}
        codes = [client.post("/api/v1/auth/token", data=form).status_code for _ in range(5)]
        assert 429 not in codes[:3]
        assert codes[3:] == [429, 429]


# -- only a credential that verifies lifts the public limit ----------------------------------------


@pytest.fixture
def limited(monkeypatch: pytest.MonkeyPatch, session: Session) -> Iterator[Callable[..., TestClient]]:
    """An app with low limits, sharing the test's transaction (its requests and its rate limit's checks)."""
    made: list[TestClient] = []

    def make(public: int = 5, authenticated: int = 0) -> TestClient:
        monkeypatch.setenv("HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE", str(public))
        monkeypatch.setenv("HYTRACE_RATE_LIMIT_AUTHENTICATED_PER_MINUTE", str(authenticated))
        get_settings.cache_clear()
        client = TestClient(app_sharing(session))
        made.append(client.__enter__())
        return client

    yield make
    for client in made:
        client.__exit__(None, None, None)


def _forged(**claims: Any) -> str:
    return jwt.encode(
        {"sub": "1", "tv": 0, "iat": datetime.now(UTC), "exp": datetime.now(UTC) + timedelta(hours=1), **claims},
        "another-secret-that-is-long-enough-to-sign-1234",
        algorithm="HS256",
    )


def _expired(session: Session) -> str:
    member, _ = f.user(session, f.org(session), password="")
    now = datetime.now(UTC)
    return jwt.encode(
        {
            "sub": str(member.id),
            "tv": member.token_version,
            "iat": now - timedelta(hours=2),
            "exp": now - timedelta(hours=1),
        },
        get_settings().secret_key,
        algorithm="HS256",
    )


UNVERIFIED: dict[str, Callable[[Session], str]] = {
    "a bare word": lambda _: "x",
    "empty": lambda _: "",
    "Basic": lambda _: "Basic " + base64.b64encode(b"admin:admin").decode(),
    "Bearer garbage": lambda _: "Bearer garbage",
    "Bearer nothing": lambda _: "Bearer ",
    "a forged JWT": lambda _: "Bearer " + _forged(),
    "an expired JWT": lambda s: "Bearer " + _expired(s),
    "a bogus API key": lambda _: "Bearer hyk_" + "A" * 43,
    "a JWT in another scheme": lambda s: "Token " + f.user(s, f.org(s), password="")[1],
}


@pytest.mark.parametrize("kind", list(UNVERIFIED))
def test_an_authorization_header_that_does_not_verify_counts_against_the_public_limit(
    limited: Callable[..., TestClient], session: Session, kind: str
) -> None:
    # given an address that has spent its public allowance
    client = limited(public=5, authenticated=1000)
    header = UNVERIFIED[kind](session)
    assert [client.get("/api/v1/communes").status_code for _ in range(5)] == [200] * 5
    # when it sends a credential that does not verify, then it is still the public: 429
    answers = [client.get("/api/v1/communes", headers={"Authorization": header}) for _ in range(20)]
    assert [a.status_code for a in answers] == [429] * 20, kind
    assert answers[0].json()["code"] == "rate_limited" and int(answers[0].headers["retry-after"]) >= 1


def test_a_verified_token_or_key_passes_the_public_limit_and_meets_its_own(
    limited: Callable[..., TestClient], session: Session
) -> None:
    # given an address that has spent its public allowance, a user's token and an organisation's API key
    coop = f.org(session)
    _, token = f.user(session, coop, password="")
    _, other_token = f.user(session, coop, password="")
    key = auth.create_api_key(
        session=session,
        actor=f.ADMIN,
        organisation_id=coop.id,  # type: ignore[arg-type]
        data=auth.ApiKeyCreate(name="cân"),
    ).key
    client = limited(public=5, authenticated=8)
    assert [client.get("/api/v1/communes").status_code for _ in range(6)] == [200] * 5 + [429]
    # then each verified credential passes, up to its own limit, per credential not per address
    for credential in (token, key, other_token):
        codes = [client.get("/api/v1/communes", headers=bearer(credential)).status_code for _ in range(10)]
        assert codes == [200] * 8 + [429] * 2, credential[:8]
    limited_answer = client.get("/api/v1/auth/me", headers=bearer(token))
    assert limited_answer.status_code == 429 and "credential" in limited_answer.json()["detail"]
    # and the anonymous stay limited
    assert client.get("/api/v1/communes").status_code == 429


def test_a_revoked_key_or_a_deactivated_user_counts_as_the_public_once_remembered_no_more(
    limited: Callable[..., TestClient], session: Session
) -> None:
    # given a key revoked before it is first used, and a user no longer active
    coop = f.org(session)
    issued = auth.create_api_key(
        session=session,
        actor=f.ADMIN,
        organisation_id=coop.id,  # type: ignore[arg-type]
        data=auth.ApiKeyCreate(name="cũ"),
    )
    auth.revoke_api_key(session=session, actor=f.ADMIN, organisation_id=coop.id, key_id=issued.id)  # type: ignore[arg-type]
    gone, token = f.user(session, coop, password="")
    gone.active = False
    session.add(gone)
    session.flush()
    client = limited(public=2, authenticated=100)
    assert [client.get("/api/v1/communes").status_code for _ in range(2)] == [200] * 2
    for credential in (issued.key, token):
        assert client.get("/api/v1/communes", headers=bearer(credential)).status_code == 429


def test_made_up_keys_from_one_address_cost_a_bounded_number_of_database_reads(
    limited: Callable[..., TestClient], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an app that counts the credentials its rate limit verifies (a database read each for a key)
    verified: list[str] = []
    real = ratelimit.credential_key

    def counting(*, session: Session, token: str) -> str | None:
        verified.append(token)
        return real(session=session, token=token)

    monkeypatch.setattr(ratelimit, "credential_key", counting)
    client = limited(public=1_000_000, authenticated=1_000_000)
    coop = f.org(session)
    issued = auth.create_api_key(
        session=session,
        actor=f.ADMIN,
        organisation_id=coop.id,  # type: ignore[arg-type]
        data=auth.ApiKeyCreate(name="ERP"),
    )
    # when one address sends three times the budget of made-up keys, each a new one
    flood = ratelimit.VERIFICATIONS_PER_MINUTE * 3
    started = time.monotonic()
    codes = {client.get("/api/v1/communes", headers=bearer(f"hyk_made-up-{n}")).status_code for n in range(flood)}
    took = time.monotonic() - started
    # then only the budget was looked up (the rest counted as public requests, answered as usual), plus
    # what the budget refilled while the flood ran (one a second: a busy machine takes a few seconds)
    refilled = math.ceil(took * ratelimit.VERIFICATIONS_PER_MINUTE / 60)
    assert codes == {200}
    assert ratelimit.VERIFICATIONS_PER_MINUTE <= len(verified) <= ratelimit.VERIFICATIONS_PER_MINUTE + refilled
    # and a good key from a fresh address is still verified and lifted to the authenticated limit
    other = TestClient(client.app, client=("203.0.113.9", 50000))
    assert other.get("/api/v1/communes", headers=bearer(issued.key)).status_code == 200
    assert verified[-1] == issued.key


def test_credentials_are_verified_once_a_minute_and_made_up_ones_never_push_out_good_ones(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a verifier that counts its database reads (remembering 200 of each kind)
    monkeypatch.setattr(ratelimit, "CREDENTIALS_KEPT", 200)
    coop = f.org(session)
    _, token = f.user(session, coop, password="")
    reads: list[int] = []

    def sessions() -> Any:
        reads.append(1)
        return nullcontext(session)

    credentials = Credentials(sessions)
    good, bad = f"Bearer {token}".encode(), b"Bearer hyk_made-up"

    async def run() -> None:
        # when a good and a bad credential come again and again
        first = await credentials.key_of(good, now=0)
        assert first is not None and first.startswith("user:")
        assert [await credentials.key_of(good, now=t) for t in (1, 30, 59)] == [first] * 3
        assert [await credentials.key_of(bad, now=t) for t in (0, 1, 59)] == [None] * 3
        # then each was read once; and again once a minute has passed
        assert len(reads) == 2
        assert await credentials.key_of(good, now=61) == first and len(reads) == 3
        # a flood of made-up keys (more than are remembered) reads once each, and never forgets the good one
        for n in range(ratelimit.CREDENTIALS_KEPT + 50):
            assert await credentials.key_of(f"Bearer hyk_{n}".encode(), now=62) is None
        assert len(reads) == 3 + ratelimit.CREDENTIALS_KEPT + 50
        assert await credentials.key_of(good, now=63) == first and len(reads) == 3 + ratelimit.CREDENTIALS_KEPT + 50
        # and what is no credential at all is never read
        for header in (b"", b"x", b"Basic abc", b"Bearer ", b"Bearer " + b"a" * 5000, "Bearer ă".encode()):
            assert await credentials.key_of(header, now=64) is None
        assert len(reads) == 3 + ratelimit.CREDENTIALS_KEPT + 50

    anyio.run(run)


def test_the_public_log_is_rate_limited_like_every_public_path(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a low public limit; when one address asks the log's endpoints again and again
    monkeypatch.setenv("HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE", "4")
    get_settings.cache_clear()
    from tests.conftest import app_sharing

    paths = ["/api/v1/log/key", "/api/v1/log/checkpoint", "/api/v1/log/tile/0/000", "/api/v1/log/entries?start=0&end=1"]
    with TestClient(app_sharing(session)) as client:
        codes = [client.get(path).status_code for path in paths * 2]
    # then the fifth request and after are refused, whichever log endpoint it asks
    assert 429 not in codes[:4] and codes[4:] == [429] * 4


def test_with_redis_away_the_shared_limit_falls_back_to_this_processs_buckets() -> None:
    import asyncio

    from api.ratelimit import SharedBuckets

    # given a shared limit of 2 a minute whose Redis does not answer (nothing listens on port 9)
    shared = SharedBuckets("redis://127.0.0.1:9/0", 2)

    async def three() -> list[float]:
        return [await shared.take("client") for _ in range(3)]

    # then this process's own bucket decides: two allowed, the third told to wait
    first, second, third = asyncio.run(three())
    assert first == second == 0 and third > 0
