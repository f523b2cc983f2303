"""Print runs while the broker (Redis) is down: how long the answer takes, and how soon the run is
rendered once the broker is back.

Run from the repository root (needs ``redis-server`` on PATH; the machine's own Redis is left alone)::

    .venv/bin/python -m bench.broker_down [--requests 20] [--sweep 10]

On a fresh SQLite database: (1) ``workers.jobs.send`` with nothing listening on the broker's port; (2)
``POST /api/v1/lots/{id}/print-runs`` through the whole app (in this process) with the broker down, the
answer timed; (3) a Redis of the bench's own and a Celery worker beside it: the worker renders a run,
Redis is stopped, a run is asked for (its send fails), Redis is started again, and the time from Redis
answering to the run being done is measured (the worker kept running: its sweep sends the run).
Goals: the answer well under a second with the broker down; the run rendered within one sweep
(``HYTRACE_JOB_SWEEP_SECONDS``) plus its rendering once the broker is back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, emit, free_port, migrate, percentiles, table

CELERY = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--pool", "solo", "--loglevel", "WARNING"]
BROKER_PORT = free_port()
os.environ["HYTRACE_REDIS_URL"] = f"redis://127.0.0.1:{BROKER_PORT}/0"  # before workers.app builds the app
os.environ["HYTRACE_CELERY_QUEUE"] = f"hytrace-bench-{os.getpid()}"


def _redis(port: int, log: Path) -> subprocess.Popen[bytes]:
    import redis

    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return process
        except redis.RedisError:
            time.sleep(0.02)
    process.kill()
    sys.exit("redis-server did not answer within 30 s")


def _until(what: str, check: object, timeout: float = 300) -> float:
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    parser = __import__("argparse").ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--sweep", type=int, default=10, help="HYTRACE_JOB_SWEEP_SECONDS for the worker")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hytrace_bench_") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        os.environ["HYTRACE_DATABASE_URL"] = url
        os.environ["HYTRACE_JOB_SWEEP_SECONDS"] = str(args.sweep)
        migrate(url)
        from fastapi.testclient import TestClient
        from sqlmodel import Session

        import workers.labels  # noqa: F401  (registers the print-run kind)
        from api.main import create_app
        from tests import factories as f
        from trace.platform.db import make_engine
        from trace.printing.models import PrintRun, PrintStatus
        from workers import jobs

        engine = make_engine(url, pool_size=2)
        with Session(engine) as session:
            coop = f.org(session)
            lot_id = f.harvest(session, coop, "100000").lot_ids[0]
            _, token = f.user(session, coop, password="")
            session.commit()

        # (1) the send alone, nothing listening
        sends = []
        for _ in range(50):
            started = time.perf_counter()
            assert not jobs.send("print_run", 1)
            sends.append(time.perf_counter() - started)

        # (2) the whole request, the broker down
        app = create_app(testing=True)
        app.state.engine = engine
        answers, run_ids = [], []
        with TestClient(app) as client:
            for _ in range(args.requests):
                started = time.perf_counter()
                asked = client.post(
                    f"/api/v1/lots/{lot_id}/print-runs",
                    json={"quantity": 2},
                    headers={"Authorization": f"Bearer {token}"},
                )
                answers.append(time.perf_counter() - started)
                assert asked.status_code == 202, asked.text
                run_ids.append(asked.json()["id"])

        def status(run_id: int) -> PrintStatus:
            with Session(engine) as session:
                run = session.get(PrintRun, run_id)
                assert run is not None
                return run.status

        # (3) the broker back under a running worker
        log = Path(tmp) / "services.log"
        env = {**os.environ}
        redis_process = _redis(BROKER_PORT, log)
        worker = subprocess.Popen(
            [*CELERY, "-Q", os.environ["HYTRACE_CELERY_QUEUE"], "-n", f"bench-{os.getpid()}@%h"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            # the worker sends itself the runs asked for above when it starts, and renders them
            _until("the worker's first runs", lambda: all(status(r) == PrintStatus.DONE for r in run_ids))
            redis_process.terminate()
            redis_process.wait(timeout=20)
            with TestClient(app) as client:
                asked = client.post(
                    f"/api/v1/lots/{lot_id}/print-runs",
                    json={"quantity": 2},
                    headers={"Authorization": f"Bearer {token}"},
                )
            late = asked.json()["id"]
            time.sleep(2)  # the broker stays down a while
            redis_process = _redis(BROKER_PORT, log)
            back = _until("the run asked for while the broker was down", lambda: status(late) == PrintStatus.DONE)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            redis_process.terminate()
            redis_process.wait(timeout=20)
            engine.dispose()

    send_p, answer_p = percentiles(sends), percentiles(answers)
    print(
        table(
            ["what (broker down)", "n", "p50 ms", "p95 ms", "max ms"],
            [
                ["workers.jobs.send", send_p["n"], send_p["p50_ms"], send_p["p95_ms"], send_p["max_ms"]],
                [
                    "POST print run (whole app)",
                    answer_p["n"],
                    answer_p["p50_ms"],
                    answer_p["p95_ms"],
                    answer_p["max_ms"],
                ],
            ],
        )
    )
    print(f"\nbroker back -> run rendered by the running worker: {back:.1f} s (sweep every {args.sweep} s)")
    emit("broker_down", {"send": send_p, "answer": answer_p, "rendered_after_broker_back_s": round(back, 2)})


if __name__ == "__main__":
    main()
