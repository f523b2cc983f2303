"""Scale as a province loads it (issue 17): one lot growing to 1,000,000 units, pages over 20,000 units.

Run from the repository root::

    .venv/bin/python -m bench.scale [--db sqlite|postgres|both] [--units 1000000] [--run 100000]
                                    [--distinct 20000] [--seconds 10] [--connections 64]

On a fresh database per kind, with the project's own bulk path (``trace.printing.runs.create_run``,
one commission event and ``--run`` units per call, as a processor asks for a print run):

1. **registration**: one lot grows to ``--units`` units, ``--run`` at a time; the seconds of each call
   (goal: flat up to 1,000,000, PostgreSQL ≤ 2× SQLite).
2. **pages**: one ``uvicorn bench.public_app:app`` worker serves the product plus ``GET /bare`` (a
   constant); ``wrk`` at ``--connections`` over ``--distinct`` different units of that lot (far more
   than the ``MAX_ENTRIES`` pages a process keeps: nearly every request is a cache miss), as HTML and
   as JSON, then over 8 units (cached), each next to the bare endpoint in the same server run. When
   ``nginx`` is on PATH, it serves the bytes of one cached page on the same machine for comparison.
   Goals: uncached ≥ 25 % of bare and p99 ≤ 50 ms; cached ≥ 75 % of bare, ≥ 10 % of nginx, p99 ≤ 25 ms.

With ``--all``, then the other scale figures of issue 17, each by its own script on its own database
(run one after the other, their tables printed as they go): ``bench.scans`` (scan figures up to
``--scans`` scans of one unit), ``bench.dashboard`` (the province dashboard and list paging at
1,000,000 lots, events and units), ``bench.labels --roll 100000`` (a roll PDF's peak memory) and
``bench.capture --path api`` (``--events`` through the API). A summary table closes the run.

Prints a table per database and a last line ``BENCH_JSON {...}``.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bench.common import (
    JSON_PREFIX,
    ROOT,
    base_parser,
    emit,
    free_port,
    fresh_database,
    kinds,
    machine,
    server_version,
)
from bench.common import table as text_table
from bench.print_runs import _lot as print_runs_lot
from bench.public_page import FORMS, start_server, stop_server, wrk_load
from trace import digital_link
from trace.access import Actor
from trace.lots import Lot
from trace.platform.db import make_engine, session_scope
from trace.printing import runs
from trace.units import Unit

GOALS = {"uncached_share": 0.25, "uncached_p99_ms": 50.0, "cached_share": 0.75, "cached_p99_ms": 25.0, "nginx": 0.10}


def _processor_lot(engine: Engine, units: int) -> tuple[Actor, int, str, str]:
    """bench.print_runs' cooperative and lot, with room for ``units`` packages; (actor, lot id, GTIN, lot code)."""
    actor, lot_id = print_runs_lot(engine, units)
    with Session(engine) as s:
        lot = s.get(Lot, lot_id)
        assert lot is not None
        return actor, lot_id, lot.gtin, lot.lot_code


def registration(engine: Engine, actor: Actor, lot_id: int, units: int, per_run: int) -> list[dict[str, Any]]:
    """``create_run`` of ``per_run`` codes until the lot has ``units``; seconds per call."""
    out = []
    done = 0
    while done < units:
        size = min(per_run, units - done)
        started = time.perf_counter()
        with session_scope(engine) as s:
            runs.create_run(session=s, actor=actor, lot_id=lot_id, data=runs.PrintRunCreate(quantity=size))
        seconds = time.perf_counter() - started
        done += size
        out.append({"units_after": done, "codes": size, "seconds": round(seconds, 2)})
        print(f"  registered {size:,} → {done:,} units in {seconds:.2f} s", flush=True)
    return out


def _paths(engine: Engine, lot_id: int, gtin: str, lot_code: str, count: int, seed: int) -> list[str]:
    with engine.connect() as conn:
        serials = list(conn.execute(select(col(Unit.serial)).where(col(Unit.lot_id) == lot_id)).scalars())
    chosen = random.Random(seed).sample(serials, min(count, len(serials)))
    return [
        digital_link.unit_uri(base_url="http://h", gtin=gtin, lot=lot_code, serial=s).removeprefix("http://h")
        for s in chosen
    ]


def _nginx(body: bytes, media: str, seconds: float, connections: int, workdir: Path) -> dict[str, Any] | None:
    """nginx serving ``body`` as a static file: what the same bytes cost without any application."""
    nginx = shutil.which("nginx")
    if nginx is None:
        return None
    root = workdir / "nginx"
    (root / "html").mkdir(parents=True, exist_ok=True)
    (root / "html" / "page.html").write_bytes(body)
    port = free_port()
    (root / "nginx.conf").write_text(
        f"""worker_processes 1; daemon off; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; types {{ }} default_type "{media}";
  server {{ listen 127.0.0.1:{port}; root {root}/html; location / {{ try_files /page.html =404; }} }} }}
"""
    )
    proc = subprocess.Popen([nginx, "-p", str(root), "-c", str(root / "nginx.conf")], stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                urllib.request.urlopen(base + "/page", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        load = wrk_load(base, ["/page"], None, seconds, connections, 1, workdir)
        return {"rps": load.rps, "p99_ms": load.p99_ms, "bytes": len(body)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def pages(url: str, distinct: list[str], cached: list[str], args: Any, workdir: Path, stack: str) -> dict[str, Any]:
    """One server: bare, then uncached HTML/JSON over ``distinct``, then cached over ``cached``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = workdir / f"uvicorn-{stack}.log"
    proc = start_server(url, port, workdir / "served.txt", log, stack)
    out: dict[str, Any] = {"stack": stack}
    try:

        def load(name: str, targets: list[str], accept: str | None) -> None:
            wrk_load(base, targets, accept, args.warmup, args.connections, 1, workdir)
            result = wrk_load(base, targets, accept, args.seconds, args.connections, 1, workdir)
            errors = sum(result.errors.values())
            out[name] = {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": errors}
            out[name]["non_2xx"] = result.non_2xx
            print(
                f"  [{stack}] {name}: {result.rps:,.0f} req/s, p99 {result.p99_ms:.1f} ms, {errors} errors", flush=True
            )

        load("bare", ["/bare"], None)
        load("uncached HTML", distinct, FORMS["page HTML"])
        load("uncached JSON", distinct, FORMS["page JSON"])
        load("cached HTML", cached, FORMS["page HTML"])
        load("cached JSON", cached, FORMS["page JSON"])
        request = urllib.request.Request(base + cached[0], headers={"Accept": FORMS["page HTML"] or ""})
        with urllib.request.urlopen(request, timeout=10) as answer:
            body, media = answer.read(), answer.headers.get("content-type", "text/html")
    finally:
        stop_server(proc, log)
    out["nginx"] = _nginx(body, media, args.seconds, args.connections, workdir)
    return out


def run(kind: str, args: Any) -> dict[str, Any]:
    """Fresh database: registration, then pages."""
    with fresh_database(kind) as url, tempfile.TemporaryDirectory(prefix="hytrace_scale_") as tmp:
        engine = make_engine(url, pool_size=2)
        try:
            actor, lot_id, gtin, lot_code = _processor_lot(engine, args.units)
            print(f"[{kind}] registering {args.units:,} units in one lot, {args.run:,} per run", flush=True)
            registered = registration(engine, actor, lot_id, args.units, args.run)
            distinct = _paths(engine, lot_id, gtin, lot_code, args.distinct, args.seed)
            served = [pages(url, distinct, distinct[:8], args, Path(tmp), stack) for stack in args.stacks]
            return {"db": kind, "database": server_version(engine), "registration": registered, "pages": served}
        finally:
            engine.dispose()


def _share(page: dict[str, Any], name: str) -> float:
    return page[name]["rps"] / page["bare"]["rps"] if page["bare"]["rps"] else 0.0


def report(results: list[dict[str, Any]]) -> None:
    """The table."""
    for result in results:
        times = [r["seconds"] for r in result["registration"]]
        print(f"\n{result['db']} ({result['database']}): registration per {result['registration'][0]['codes']:,} codes")
        print(f"  s: {', '.join(f'{t:.2f}' for t in times)} (first {times[0]:.2f}, last {times[-1]:.2f})")
        rows: list[list[str]] = []
        for page in result["pages"]:
            for name in ("bare", "uncached HTML", "uncached JSON", "cached HTML", "cached JSON"):
                share = "—" if name == "bare" else f"{_share(page, name):.0%}"
                rows.append([page["stack"], name, f"{page[name]['rps']:,.0f}", share, f"{page[name]['p99_ms']:.1f}"])
            if page["nginx"]:
                nginx = page["nginx"]
                rows.append([page["stack"], "nginx, same bytes", f"{nginx['rps']:,.0f}", "—", f"{nginx['p99_ms']:.1f}"])
                share = page["cached HTML"]["rps"] / nginx["rps"]
                rows.append([page["stack"], "cached HTML ÷ nginx", f"{share:.0%}", "", ""])
        print(text_table(["stack", "load", "req/s", "÷ bare", "p99 ms"], rows))


def _script(module: str, *argv: str) -> dict[str, Any] | None:
    """Run ``python -m module argv``, its output shown as it goes; its BENCH_JSON, or None if it failed."""
    print(f"\n== python -m {module} {' '.join(argv)}", flush=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *argv], cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    found = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(JSON_PREFIX):
            found = json.loads(line.removeprefix(JSON_PREFIX))
        else:
            print(line, end="", flush=True)
    return found if proc.wait() == 0 else None


def others(args: Any) -> dict[str, Any]:
    """The rest of the scale figures, from their own scripts (see the module's docstring)."""
    db = ["--db", args.db]
    return {
        "scans": _script("bench.scans", *db, "--scans", str(args.scans)),
        "dashboard": _script("bench.dashboard", *db, "--units", str(args.units), "--scans", str(args.dashboard_scans)),
        "roll": _script("bench.labels", "--roll", "100000"),
        "capture": _script("bench.capture", *db, "--path", "api", "--events", str(args.events)),
    }


def main() -> None:
    """Parse arguments, run, print."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000, help="units of the one lot (default 1,000,000)")
    parser.add_argument("--run", type=int, default=100_000, help="codes per print run (default 100,000)")
    parser.add_argument("--distinct", type=int, default=20_000, help="different units requested (default 20,000)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--stacks",
        default="uvloop+httptools",
        help="comma-separated: uvloop+httptools, asyncio+h11 (default: the first)",
    )
    parser.add_argument("--all", action="store_true", help="then bench.scans, bench.dashboard, a roll PDF, capture")
    parser.add_argument("--scans", type=int, default=10_000_000, help="with --all: scans of one unit (bench.scans)")
    parser.add_argument("--dashboard-scans", type=int, default=1_000_000, help="with --all: scans for bench.dashboard")
    parser.add_argument("--events", type=int, default=1_000_000, help="with --all: events captured (bench.capture)")
    args = parser.parse_args()
    args.stacks = [] if args.stacks == "none" else args.stacks.split(",")  # none: registration only
    if shutil.which("wrk") is None:
        raise SystemExit("bench.scale needs wrk (apt-get install wrk)")
    results = [run(kind, args) for kind in kinds(args.db)]
    report(results)
    rest = others(args) if args.all else {}
    if rest:
        print("\nthe other scripts' figures: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in rest.items()))
    emit("scale", {"machine": machine(), "goals": GOALS, "results": results, "others": rest})


if __name__ == "__main__":
    main()
