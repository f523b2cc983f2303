"""verify-log on a large log: how long the chains and the derived tables take, and how much memory it needs.

The log is filled with bench/capture.py's workload (harvests, ships, receives, transformations from
several organisation pairs), then ``python -m trace.cli verify-log`` runs as a process of its own at each
checkpoint (e.g. 100,000 and 1,000,000 events), so its peak memory (max RSS) is its own: bounded memory
shows as the same peak at ten times the events. Run from the repository root::

    .venv/bin/python -m bench.verify_log [--db sqlite|postgres|both] [--events 1000000] [--checkpoints 100000]
    .venv/bin/python -m bench.verify_log --url sqlite:///data/big.db   # an existing database, verified only
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from typing import Any

from bench import capture
from bench.common import ROOT, base_parser, emit, fresh_database, kinds, table
from trace.events.ledger import INPUT_OF
from trace.events.models import EventType
from trace.platform.db import make_engine, session_scope


def verify(url: str) -> dict[str, Any]:
    """One verify-log process: its seconds, its own peak memory (from wait4), its verdict."""
    with tempfile.TemporaryFile("w+") as out:
        began = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "trace.cli", "--database-url", url, "verify-log"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - began
        out.seek(0)
        lines = out.read().strip().splitlines()
    return {
        "seconds": round(seconds, 1),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "ok": proc.returncode == 0,
        "output": lines[-1] if lines else "",
    }


def fill(engine: Any, flows: list[capture.Flow], events: int) -> None:
    """Record ``events`` more events of bench/capture.py's workload, a batch per transaction."""
    done = 0
    while done < events:
        for flow in flows:
            if done >= events:
                break
            side, items = flow.next(events - done)
            with session_scope(engine) as session:
                data = [(EventType(k), INPUT_OF[EventType(k)].model_validate(d)) for k, d in items]
                result = capture.capture(session=session, actor=flow.party.actor(side), items=data)
                ships = capture.shipments_of(session, [e.id for e in result.events if e.type == EventType.SHIP])
            flow.done(side, result.lot_ids if side == "coop" else [], ships)
            done += len(items)


def run(kind: str, events: int, checkpoints: list[int], seed: int) -> list[dict[str, Any]]:
    results = []
    with fresh_database(kind) as url:
        engine = make_engine(url, pool_size=2)
        t0 = datetime.now(capture.VN)
        flows = [capture.Flow(p, 500, random.Random(seed + p.index), t0) for p in capture.setup(engine, 4)]
        filled = 0
        for target in sorted({*(c for c in checkpoints if c < events), events}):
            began = time.perf_counter()
            fill(engine, flows, target - filled)
            print(f"{kind}: {target:,} events recorded ({time.perf_counter() - began:,.0f} s)", flush=True)
            filled = target
            # What the workers do every few seconds, all at once here: the sequencer's own throughput.
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "trace.cli", "--database-url", url, "tlog-tick"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            appended = time.perf_counter() - began
            print(f"{kind}: the public log appended and signed up to {target:,} events ({appended:,.1f} s)", flush=True)
            found = verify(url)
            found["tlog_tick_seconds"] = round(appended, 1)
            results.append({"db": kind, "events": target, **found})
            print(f"{kind}: verify-log {found}", flush=True)
        engine.dispose()
    return results


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])  # type: ignore[union-attr]
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1,000,000)")
    parser.add_argument(
        "--checkpoints", default="100000", help="comma-separated event counts verified on the way (default 100000)"
    )
    parser.add_argument("--url", help="verify this existing database only (nothing is recorded)")
    args = parser.parse_args()
    if args.url:
        results = [{"db": args.url.split(":")[0], "events": None, **verify(args.url)}]
    else:
        points = [int(p) for p in args.checkpoints.split(",") if p]
        results = [r for kind in kinds(args.db) for r in run(kind, args.events, points, args.seed)]
    print(
        table(
            ["db", "events", "verify s", "max RSS MB", "ok"],
            [[r["db"], r["events"], r["seconds"], r["max_rss_mb"], r["ok"]] for r in results],
        )
    )
    emit("verify_log", {"results": results})
    if not all(r["ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
