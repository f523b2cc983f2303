"""Two API processes on one database, as docker-compose runs them (two uvicorn workers) or two hosts
behind a balancer: a client's rate limit is one limit across both, kept in Redis; without Redis, each
process keeps its own (the embedded default runs one process)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require
from tests.e2e.live import Server, another_process, demo_server, redis_up

PUBLIC_PER_MINUTE = 12


@pytest.fixture(scope="module")
def pair(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:  # type: ignore[no-untyped-def]
    require(redis_up(), "no Redis server on 127.0.0.1:6379")
    logs: Path = tmp_path_factory.mktemp("scale-out")
    with demo_server(
        databases.new(),
        logs,
        HYTRACE_REDIS_URL="redis://127.0.0.1:6379/0",
        HYTRACE_CELERY_QUEUE=f"scale-out-{uuid.uuid4().hex[:8]}",
        HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE=str(PUBLIC_PER_MINUTE),
        HYTRACE_RATE_LIMIT_REDIS_PREFIX=f"hytrace-test:{uuid.uuid4().hex}:",
    ) as first:
        with another_process(first, logs) as second:
            yield first, second


def test_a_clients_public_limit_is_one_limit_across_two_api_processes(pair: tuple[Server, Server]) -> None:
    # given two API processes sharing Redis; when one client alternates between them, well past its limit
    first, second = pair
    statuses = []
    with httpx.Client(timeout=10) as client:
        for n in range(3 * PUBLIC_PER_MINUTE):
            server = first if n % 2 == 0 else second
            statuses.append(client.get(f"{server.base}{first.unit_url().removeprefix(first.base)}").status_code)
    # then both together let its limit through (a full bucket, and not a second one), and refuse the rest
    allowed = statuses.count(200)
    assert PUBLIC_PER_MINUTE <= allowed <= PUBLIC_PER_MINUTE + 1, statuses  # + one token refilled meanwhile
    assert statuses.count(429) == len(statuses) - allowed
    assert statuses[:PUBLIC_PER_MINUTE] == [200] * PUBLIC_PER_MINUTE
