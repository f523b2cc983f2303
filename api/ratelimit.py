"""Per-client rate limits: public requests per address, login attempts per address, and requests
with a credential that verifies per user or API key.

A token bucket per key, in process. A flood gets 429 with Retry-After at once, instead of slowing
everyone else down. Only a credential that verifies lifts the public limit (to the authenticated
one): any ``Authorization`` header at all, empty, ``Basic``, forged or expired, used to skip it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import anyio.to_thread
from sqlmodel import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem
from trace.auth import actor_from_token
from trace.errors import Unauthenticated

log = logging.getLogger(__name__)
MAX_CLIENTS = 50_000  # buckets kept; the least recently seen are dropped first
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")  # probes: never limited (see api/routes/health.py)
CREDENTIAL_SECONDS = 60.0  # how long a verified (or refused) credential is remembered
CREDENTIALS_KEPT = 10_000  # credentials remembered, each way; the least recently seen are dropped first
MAX_TOKEN = 4096  # longer is no credential of ours: refused without a look
# Credentials not yet remembered that one address may have verified (a database read each) per minute:
# a flood of made-up keys from one place costs at most this many reads, and past it counts as public.
VERIFICATIONS_PER_MINUTE = 60
SessionFactory = Callable[[], AbstractContextManager[Session]]
# Set in the scope by whatever took the request's public token before this middleware (api/express.py).
ADMITTED = "hytrace.admitted"


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


# GCRA, the token bucket above kept as one "theoretical arrival time" per key, in Redis's own clock so
# that every API process (and host) agrees: atomic, one round trip, the key expires once it is full again.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - burst
if wait > 0 then return wait end
redis.call('SET', KEYS[1], next_tat, 'PX', math.max(1, next_tat - now))
return 0
"""


class SharedBuckets:
    """The same limits as :class:`TokenBuckets`, kept in Redis for every API process at once.

    Two uvicorn workers (docker-compose runs two) or two hosts behind a balancer would otherwise each
    give a client the whole limit. If Redis cannot answer, this process's own buckets decide (a client
    gets at most the limit per process) rather than refusing everyone or letting everyone through."""

    def __init__(self, url: str, rate: int, per: float = 60.0, *, prefix: str = "hytrace:ratelimit:") -> None:
        import redis.asyncio

        self.local = TokenBuckets(rate, per)
        self.interval_ms = per * 1000 / rate
        self.burst_ms = self.interval_ms * rate  # a full bucket: ``rate`` requests at once
        self.prefix = prefix
        self._client = redis.asyncio.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
        self._script = self._client.register_script(_GCRA)
        self._warned = 0.0

    async def take(self, key: str) -> float:
        """Spend one token; 0 if allowed, else the seconds until one is available."""
        try:
            wait_ms = await self._script(keys=[self.prefix + key], args=[self.interval_ms, self.burst_ms])
        except Exception:
            now = time.monotonic()
            if now - self._warned > 60:
                self._warned = now
                log.warning("rate limit: Redis did not answer; this process's own buckets decide", exc_info=True)
            return self.local.take(key)
        return max(0.0, float(wait_ms) / 1000)


class _Local:
    """:class:`TokenBuckets` behind the same awaitable ``take`` as :class:`SharedBuckets`."""

    def __init__(self, rate: int) -> None:
        self.buckets = TokenBuckets(rate)

    async def take(self, key: str) -> float:
        return self.buckets.take(key)


LimitBuckets = SharedBuckets | _Local


def buckets(rate: int, *, redis_url: str, prefix: str, kind: str) -> LimitBuckets | None:
    """A limit of ``rate`` per minute (None when 0): shared through Redis when there is one, else in process."""
    if rate <= 0:
        return None
    if redis_url:
        return SharedBuckets(redis_url, rate, prefix=f"{prefix}{kind}:")
    return _Local(rate)


def credential_key(*, session: Session, token: str) -> str | None:
    """Whose credential this is (``user:7``, ``key:3``) when it verifies, else None.

    It asks exactly what an endpoint asks (:func:`trace.auth.actor_from_token`: signature, expiry and
    token version of a JWT, or an API key that exists and is not revoked), so whatever makes a token
    invalid there makes it count as the public here."""
    try:
        actor = actor_from_token(session=session, token=token)
    except Unauthenticated:
        return None
    return f"key:{actor.api_key_id}" if actor.api_key_id is not None else f"user:{actor.user_id}"


def bearer_token(header: bytes | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (as the API reads it), else None."""
    if not header or len(header) > MAX_TOKEN + 7:
        return None
    scheme, _, token = header.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return None
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        return None


class Credentials:
    """Verifies the credentials requests carry, remembering the answer for a minute.

    A verified credential is remembered apart from refused ones, so a flood of made-up keys (one hash
    and one indexed read each, in a worker thread) never pushes a good key out; a good key seen again
    costs nothing. What is remembered only decides a rate limit: every endpoint verifies again."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self._good: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._bad: OrderedDict[bytes, float] = OrderedDict()

    def _verify(self, token: str) -> str | None:
        with self.sessions() as session:
            return credential_key(session=session, token=token)

    async def key_of(
        self, header: bytes | None, now: float | None = None, may_verify: Callable[[], bool] | None = None
    ) -> str | None:
        """The verified credential's key (``user:7``, ``key:3``), or None for anything else.

        A credential not remembered either way is verified only if ``may_verify()`` allows it (the
        caller's budget of database reads); refused unverified, it is not remembered as bad."""
        token = bearer_token(header)
        if token is None:
            return None
        now = time.monotonic() if now is None else now
        digest = hashlib.sha256(token.encode()).digest()
        good = self._good.get(digest)
        if good is not None and good[1] > now:
            self._good.move_to_end(digest)
            return good[0]
        bad = self._bad.get(digest)
        if bad is not None and bad > now:
            return None
        if may_verify is not None and not may_verify():
            return None
        try:
            # In a worker thread: a key is a database read (the thread pool is sized to the DB pool).
            key = await anyio.to_thread.run_sync(self._verify, token)
        except Exception:  # the database is away: no higher limit, and the endpoint answers for itself
            log.warning("a credential could not be verified for the rate limit", exc_info=True)
            return None
        until = now + CREDENTIAL_SECONDS
        if key is not None:
            _remember(self._good, digest, (key, until))
        else:
            self._good.pop(digest, None)
            _remember(self._bad, digest, until)
        return key


def _remember(kept: OrderedDict[bytes, Any], digest: bytes, value: Any) -> None:
    kept.pop(digest, None)
    kept[digest] = value
    if len(kept) > CREDENTIALS_KEPT:
        kept.popitem(last=False)


class RateLimit:
    """ASGI middleware: limits requests without a verified credential per address, every login attempt
    per address, and requests with a verified credential per user or API key (a higher limit).

    Credentials are verified by ``app.state.credentials`` (a :class:`Credentials`), set by create_app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_per_minute: int,
        login_per_minute: int,
        authenticated_per_minute: int = 0,
        redis_url: str = "",
        prefix: str = "hytrace:ratelimit:",
        public: LimitBuckets | None = None,
    ) -> None:
        """``public``: the public limit's buckets when they are shared with another part (api/express.py)."""
        self.app = app
        shared = {"redis_url": redis_url, "prefix": prefix}
        self.public = public if public is not None else buckets(public_per_minute, kind="public", **shared)
        self.login = buckets(login_per_minute, kind="login", **shared)
        self.authenticated = buckets(authenticated_per_minute, kind="authenticated", **shared)
        # A budget of this process's database reads, not a client's allowance: kept in process.
        self.verifying = TokenBuckets(VERIFICATIONS_PER_MINUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(ADMITTED):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        client = (scope.get("client") or ("unknown", 0))[0]
        buckets, key = None, client
        if path == "/api/v1/auth/token" or (path == "/login" and scope["method"] == "POST"):
            buckets = self.login
        elif path not in HEALTH_PATHS and (self.public is not None or self.authenticated is not None):
            header = next((value for name, value in scope.get("headers") or [] if name == b"authorization"), None)
            credentials: Credentials | None = getattr(getattr(scope.get("app"), "state", None), "credentials", None)
            verified = (
                await credentials.key_of(header, may_verify=lambda: self.verifying.take(client) <= 0)
                if header is not None and credentials is not None
                else None
            )
            buckets, key = (self.authenticated, verified) if verified is not None else (self.public, client)
        wait = await buckets.take(key) if buckets is not None else 0.0
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        whose = "with this credential" if buckets is self.authenticated else "from your address"
        limited = problem(
            429,
            f"Too many requests {whose}; retry after the given seconds",
            "rate_limited",
            path,
        )
        limited.headers["Retry-After"] = str(math.ceil(wait))  # the header only: the body stays as it was
        await limited(scope, receive, send)
