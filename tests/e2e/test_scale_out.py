"""Two API processes on one database, as docker-compose runs them (two uvicorn workers) or two hosts
behind a balancer: a client's rate limit is one limit across both, kept in Redis; without Redis, each
process keeps its own (the embedded default runs one process)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import require
from tests.e2e.live import (
    Server,
    _serving,
    another_process,
    demo_server,
    demo_unit,
    free_port,
    load_demo,
    redis_up,
    server_env,
)
from trace.platform.db import make_engine

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


def test_pages_read_from_the_replica_and_their_scans_go_to_the_primary(tmp_path: Path) -> None:
    # given a primary with the demo, and a "replica" (a copy) on which the product was renamed since
    primary_file, replica_file = tmp_path / "primary.db", tmp_path / "replica.db"
    primary, replica = f"sqlite:///{primary_file}", f"sqlite:///{replica_file}"
    port = free_port()
    log = tmp_path / "server.log"
    env = server_env(primary, port)
    load_demo(env, log)
    shutil.copyfile(primary_file, replica_file)
    replica_engine = make_engine(replica, pool_size=1)
    primary_engine = make_engine(primary, pool_size=1)
    try:
        unit = demo_unit(primary_engine)
        with replica_engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE product SET name_vi = 'TÊN TỪ BẢN SAO'"
                    " WHERE id = (SELECT product_id FROM lot WHERE id = :l)"
                ),
                {"l": unit.lot_id},
            )
        # when a server with the replica configured serves the unit's page
        env["HYTRACE_DATABASE_READ_URL"] = replica
        with _serving(primary, primary_engine, env, port, log) as server:
            page = httpx.get(server.unit_url(unit), headers={"accept": "text/html"}, timeout=10)
            assert page.status_code == 200
            # then the page tells the replica's facts ...
            assert "TÊN TỪ BẢN SAO" in page.text
        # ... and its scan was written to the primary (stopping the server wrote the buffer)
        with primary_engine.connect() as conn:
            scans = conn.execute(text("SELECT count(*) FROM scan WHERE unit_id = :u"), {"u": unit.unit_id}).scalar()
        with replica_engine.connect() as conn:
            copied = conn.execute(text("SELECT count(*) FROM scan WHERE unit_id = :u"), {"u": unit.unit_id}).scalar()
        assert scans == 1 and copied == 0
    finally:
        replica_engine.dispose()
        primary_engine.dispose()
