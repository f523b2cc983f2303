"""Liveness and readiness, for an orchestrator's health checks (by HTTP status) and for operators.

``/livez`` says the process serves requests and touches nothing else: a failing database is no
reason to restart the API. ``/readyz`` says whether this process can do its work: 503 (with
Retry-After) while the database cannot be reached within a short timeout. A broker (Redis) that is
down does not make the API unready: reads, event capture and sign-in need only the database; print
runs, reports and webhooks wait until the broker returns (the sweepers send what was not
enqueued), so it is reported as ``"broker": "unavailable"`` with 200 and ``"status": "degraded"``.
``/healthz`` is the former name of ``/readyz``, kept for existing probes.
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from api.problems import problem
from trace.platform.config import get_settings
from trace.platform.db import get_engine

router = APIRouter(tags=["operations"])

TIMEOUT_SECONDS = 2  # for the database's connect and statement, and the broker's ping
RETRY_AFTER_SECONDS = 5
# The probe opens a connection of its own and the paths are not rate limited: answers are shared
# for a second, so a flood of probes costs the database at most one connection a second per process.
CACHE_SECONDS = 1.0
_cache: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}


@cache
def _probe_engine(url: str) -> Engine:
    # Not the request pool: a probe must neither wait for a pooled connection nor for the pool's
    # 30 s timeout, and its connect and statement are bounded by TIMEOUT_SECONDS.
    if url.startswith("sqlite"):
        args: dict[str, Any] = {"timeout": TIMEOUT_SECONDS}
    else:
        args = {"connect_timeout": TIMEOUT_SECONDS, "options": f"-c statement_timeout={TIMEOUT_SECONDS * 1000}"}
    return create_engine(url, poolclass=NullPool, connect_args=args)


def _database(engine: Engine) -> str:
    try:
        with _probe_engine(engine.url.render_as_string(hide_password=False)).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return "unavailable"
    return "ok"


def _broker(url: str) -> str:
    if not url:
        return "embedded"  # SQLite files beside the database: there when the database is
    try:
        import redis

        redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS).ping()
    except Exception:
        return "unavailable"
    return "ok"


def readiness(engine: Engine, broker_url: str) -> dict[str, str]:
    """The database's and the broker's state, checked at most once a second."""
    key = (str(engine.url), broker_url)
    checked = _cache.get(key)
    if checked is not None and time.monotonic() - checked[0] < CACHE_SECONDS:
        return checked[1]
    lock = _locks.setdefault(key, threading.Lock())
    # While one probe checks (up to a few seconds against a database or broker that never answers)
    # the others answer with the last result at once rather than hold a request thread each.
    if not lock.acquire(blocking=checked is None):
        return checked[1]  # type: ignore[index]  # not None: only the very first probes wait
    try:
        checked = _cache.get(key)  # what a probe we waited for found
        if checked is None or time.monotonic() - checked[0] >= CACHE_SECONDS:
            state = {"database": _database(engine), "broker": _broker(broker_url)}
            checked = _cache[key] = (time.monotonic(), state)
    finally:
        lock.release()
    return checked[1]


@router.get("/livez")
def livez() -> dict[str, str]:
    """200 while the process serves requests; checks nothing else."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Any:
    """200 when the database answers (a broker down is reported, not fatal); else 503 with Retry-After."""
    engine = request.app.state.engine if hasattr(request.app.state, "engine") else get_engine()
    state = readiness(engine, get_settings().redis_url)
    if state["database"] != "ok":
        return problem(
            503,
            "The database cannot be reached",
            "database_unavailable",
            request.url.path,
            retry_after=RETRY_AFTER_SECONDS,
            retryable=True,
            **state,
        )
    return {"status": "ok" if state["broker"] != "unavailable" else "degraded", **state}


@router.get("/healthz", deprecated=True)
def healthz(request: Request) -> Any:
    """The former name of /readyz."""
    return readyz(request)
