"""Security headers on every response (api/security.py): JSON, problems, the rate limiter's 429s, files,
pages, the API docs, streamed answers and the server's own 500; HSTS only over https."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from api import pages
from api.security import DOCS_ASSETS
from trace.platform.config import get_settings


def _app() -> FastAPI:
    from api.main import create_app

    app = create_app(testing=True)

    @app.get("/test/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a,b\n", b"1,2\n"]), media_type="text/csv")

    @app.get("/test/fail")
    def fail() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
def bare() -> Iterator[TestClient]:
    """The whole application on no database (the requests below need none), 500s answered, not raised."""
    with TestClient(_app(), raise_server_exceptions=False) as client:
        yield client


def _limited(monkeypatch: pytest.MonkeyPatch) -> httpx.Response:
    monkeypatch.setenv("HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE", "1")
    get_settings.cache_clear()
    with TestClient(_app()) as client:
        client.get("/api/v1/communes")
        return client.get("/api/v1/communes")


REQUESTS = {
    "json": lambda c: c.get("/api/v1/communes"),
    "openapi": lambda c: c.get("/openapi.json"),
    "problem 404": lambda c: c.get("/api/v1/nothing-here"),
    "problem 401": lambda c: c.get("/api/v1/lots"),
    "page": lambda c: c.get("/login"),
    "missing page": lambda c: c.get("/nothing-here", headers={"Accept": "text/html"}),
    "file": lambda c: c.get("/favicon.ico"),
    "docs": lambda c: c.get("/docs"),
    "redoc": lambda c: c.get("/redoc"),
    "streamed": lambda c: c.get("/test/stream"),
    "500": lambda c: c.get("/test/fail"),
    "413": lambda c: c.post("/api/v1/events/harvest", content=b" " * (8 * 1024 * 1024)),
}


@pytest.mark.parametrize("name", [*REQUESTS, "429"])
def test_every_response_carries_the_security_headers(
    name: str, bare: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = _limited(monkeypatch) if name == "429" else REQUESTS[name](bare)
    expected_status = {
        "problem 404": 404,
        "problem 401": 401,
        "missing page": 404,
        "500": 500,
        "413": 413,
    }
    assert response.status_code == expected_status.get(name, 429 if name == "429" else 200), response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in ("no-referrer", "same-origin")
    assert response.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in response.headers  # plain http
    media_type = response.headers.get("content-type", "").split(";")[0]
    if media_type.startswith("application/") and media_type.endswith("json"):
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    if media_type == "text/html":
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_a_page_keeps_its_own_stricter_headers(bare: TestClient) -> None:
    page = bare.get("/login")
    assert page.headers["content-security-policy"] == pages.CSP
    assert page.headers["referrer-policy"] == "same-origin"  # the workspace's own, not replaced
    assert page.headers.get_list("content-security-policy") == [pages.CSP]  # not added twice


def _origin(url: str) -> str:
    """The CSP source a URL needs: 'self' for one of ours (a path), else its origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"


def _directive(policy: str, name: str) -> list[str]:
    for directive in policy.split(";"):
        words = directive.split()
        if words and words[0] == name:
            return words[1:]
    raise AssertionError(f"{name} missing from {policy}")


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_docs_policy_allows_exactly_what_the_docs_page_loads(bare: TestClient, path: str) -> None:
    page = bare.get(path)
    policy = page.headers["content-security-policy"]
    html = page.text
    scripts = _directive(policy, "script-src")
    for src in re.findall(r'<script src="([^"]+)"', html):
        assert _origin(src) in scripts, src
    for inline in re.findall(r"<script>(.*?)</script>", html, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    for href in re.findall(r'<link[^>]*type="text/css"[^>]*href="([^"]+)"', html):
        assert _origin(href) in _directive(policy, "style-src"), href
    for href in re.findall(r'rel="shortcut icon" href="([^"]+)"', html):
        assert _origin(href) in _directive(policy, "img-src"), href
    assert _directive(policy, "connect-src") == ["'self'"]  # the schema, and "Try it out" on this API
    assert _directive(policy, "default-src") == ["'none'"]
    # nothing comes from another origin: the docs' files are ours, so they work offline
    assert not re.findall(r'(?:src|href)="https?://', html)
    assert not [s for s in policy.split() if s.startswith("http")]
    for src in re.findall(r'<script src="([^"]+)"', html):
        assert src.startswith(DOCS_ASSETS + "/"), src


def test_a_docs_page_with_its_own_policy_keeps_it() -> None:
    from api.security import SecurityHeaders

    async def own(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html"),
                    (b"content-security-policy", b"default-src 'self'"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"<script>1</script>"})

    client = TestClient(SecurityHeaders(own))  # type: ignore[arg-type]  (no lifespan: not entered)
    assert client.get("/docs").headers.get_list("content-security-policy") == ["default-src 'self'"]


def test_hsts_over_https_only() -> None:
    app = _app()
    with TestClient(app, base_url="https://hytrace.example") as secure:
        for path in ("/api/v1/communes", "/login", "/docs"):
            assert secure.get(path).headers["strict-transport-security"] == "max-age=31536000"
    with TestClient(app) as plain:
        # a forwarded scheme is only believed through uvicorn's trusted proxies (tests/e2e/test_proxy.py)
        answer = plain.get("/api/v1/communes", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in answer.headers
