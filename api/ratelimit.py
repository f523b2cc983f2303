"""Per-client rate limits for public (unauthenticated) requests and for login attempts.

A token bucket per client address, in process. A flood gets 429 with Retry-After at once,
instead of slowing everyone else down.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_CLIENTS = 50_000  # buckets kept; the least recently seen are dropped first


class TokenBuckets:
    """``rate`` requests per ``per`` seconds per key, bursting up to ``rate``."""

    def __init__(self, rate: int, per: float = 60.0) -> None:
        self.capacity, self.refill = float(rate), rate / per
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.refill
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
            return wait


class RateLimit:
    """ASGI middleware: limits requests without credentials, and every login attempt."""

    def __init__(self, app: ASGIApp, *, public_per_minute: int, login_per_minute: int) -> None:
        self.app = app
        self.public = TokenBuckets(public_per_minute) if public_per_minute > 0 else None
        self.login = TokenBuckets(login_per_minute) if login_per_minute > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = dict(scope.get("headers") or [])
        client = (scope.get("client") or ("unknown", 0))[0]
        buckets = None
        if path == "/api/v1/auth/token" or (path == "/login" and scope["method"] == "POST"):
            buckets = self.login
        elif b"authorization" not in headers and path not in ("/healthz", "/livez", "/readyz"):
            buckets = self.public
        wait = buckets.take(client) if buckets is not None else 0.0
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        body: dict[str, Any] = {
            "type": "https://hytrace.vn/problems/rate_limited", "title": "Too many requests", "status": 429,
            "detail": "Too many requests from your address; retry after the given seconds", "code": "rate_limited",
            "instance": path,
        }
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/problem+json"), (b"retry-after", str(math.ceil(wait)).encode())]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})
