"""Public endpoints and login are rate-limited per client: a flood gets 429, others are unaffected."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.ratelimit import TokenBuckets
from trace.config import get_settings


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
        assert limited.json()["code"] == "rate_limited"
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
