"""The public origin page under load: one API worker, 64 connections, next to a bare endpoint on the same server.

Run from the repository root::

    .venv/bin/python -m bench.public_page [--db sqlite|postgres|both] [--seconds 10] [--warmup 2]
                                          [--connections 64] [--units 8] [--client auto|wrk|asyncio]

On a fresh database per kind, migrated, the demo is loaded (``python -m trace.cli demo``) and
``--units`` active units of the showcase lot (GTIN 09520002000019, lot LN260715) are picked. One
``uvicorn bench.public_app:app`` process serves the product's application plus ``GET /bare`` (a
constant, matched before the product's routes), with scan recording on (in-process buffer, no Redis) and the public
rate limit above the load. In that one server run: a probe of each form, a warm-up of each endpoint, then ``--seconds``
each of the bare endpoint, the unit page as HTML and as JSON (``Accept: application/json``),
rotating over the units. The load comes from ``wrk`` when it is on PATH (a Lua script rotates the
URLs and counts statuses), otherwise from a bounded asyncio client (raw streams, keep-alive).
``uvloop`` + ``httptools`` are measured too when both are installed.

Then the server is stopped with SIGTERM (its shutdown writes the buffered scans) and the scans of
those units are counted: they must equal the unit pages the server answered (counted by a
middleware of bench/public_app.py) and the page requests the load generator completed (wrk may
miss a few answers on the connections it cuts at the end of a run).

Goal (issue #5): the unit page ≥ 35 % of the bare endpoint's requests/s at 64 connections, p99 ≤ 25 ms.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from bench.common import (
    ROOT,
    base_parser,
    emit,
    free_port,
    fresh_database,
    kinds,
    server_version,
    table,
)
from bench.public_app import SERVED_FILE_ENV, read_served
from trace import digital_link
from trace.lots import Lot
from trace.platform.db import make_engine
from trace.scans.models import Scan
from trace.units import Unit, UnitStatus

GTIN, LOT = "09520002000019", "LN260715"  # the demo's showcase lot
SECRET = "bench-secret-key-that-is-long-enough-0123456789"
GOAL_SHARE, GOAL_P99_MS = 0.35, 25.0
FORMS = {"bare": None, "page HTML": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "page JSON": "application/json"}


@dataclass
class Load:
    """One load run's figures."""

    tool: str
    requests: int  # completed (a full answer read)
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    errors: dict[str, int] = field(default_factory=dict)  # socket errors and timeouts

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self) -> int:
        """Answers whose status is not 2xx."""
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def ok(self) -> int:
        """2xx answers."""
        return self.requests - self.non_2xx


# ---------------------------------------------------------------------------------------------- wrk

_LUA = """
local paths = %(paths)s
local accept = %(accept)s
local reqs = {}
local threads = {}
local n = 0
statuses = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local headers = {}
  if accept ~= "" then headers["Accept"] = accept end
  for i, path in ipairs(paths) do reqs[i] = wrk.format("GET", path, headers) end
  n = math.random(#reqs)
end

function request()
  n = n %% #reqs + 1
  return reqs[n]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + count end
  end
  local parts = {}
  for status, count in pairs(total) do parts[#parts + 1] = string.format('"%%d": %%d', status, count) end
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}, "statuses": {%%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
"""


def wrk_load(
    base: str, paths: list[str], accept: str | None, seconds: float, connections: int, threads: int, workdir: Path
) -> Load:
    """``wrk`` for ``seconds`` at ``connections``, rotating over ``paths``."""
    script = workdir / "rotate.lua"
    lua_list = "{" + ", ".join(json.dumps(p) for p in paths) + "}"
    script.write_text(_LUA % {"paths": lua_list, "accept": json.dumps(accept or "")})
    wrk = shutil.which("wrk")
    assert wrk is not None
    out = subprocess.run(
        [
            wrk,
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base + paths[0],
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    return Load(
        tool="wrk",
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        statuses={int(k): v for k, v in data["statuses"].items()},
        errors={k: v for k, v in data["errors"].items() if v},
    )


# -------------------------------------------------------------------------------- asyncio fallback


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    start: int,
    deadline: float,
    latencies: list[float],
    statuses: Counter[int],
    errors: Counter[str],
) -> None:
    """One keep-alive connection sending requests back to back until ``deadline`` (its last one finishes)."""
    writer: asyncio.StreamWriter | None = None
    index = start
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            sent = time.perf_counter()
            writer.write(requests[index % len(requests)])
            index += 1
            head = await reader.readuntil(b"\r\n\r\n")
            fields = head.lower()
            marker = fields.find(b"\r\ncontent-length:")
            if marker >= 0:
                await reader.readexactly(int(fields[marker + 17 : fields.index(b"\r\n", marker + 2)]))
            elif b"transfer-encoding: chunked" in fields:
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            latencies.append(time.perf_counter() - sent)
            statuses[int(head[9:12])] += 1
            if b"\r\nconnection: close" in fields:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            errors[type(error).__name__] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def asyncio_load(base: str, paths: list[str], accept: str | None, seconds: float, connections: int) -> Load:
    """A bounded asyncio client: ``connections`` keep-alive connections for ``seconds``."""
    host, port = base.split("://", 1)[1].rsplit(":", 1)
    extra = f"Accept: {accept}\r\n" if accept else ""
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for p in paths]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()

    async def run() -> float:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(
                _connection(host, int(port), requests, k, deadline, latencies, statuses, errors)
                for k in range(connections)
            )
        )
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")

    return Load(
        tool="asyncio",
        requests=len(ordered),
        seconds=elapsed,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        statuses=dict(statuses),
        errors=dict(errors),
    )


# ------------------------------------------------------------------------------------------- server


def _env(url: str, base: str, served: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HYTRACE_DATABASE_URL": url,
        "HYTRACE_REDIS_URL": "",
        "HYTRACE_ENVIRONMENT": "test",
        "HYTRACE_SECRET_KEY": SECRET,
        "HYTRACE_PUBLIC_BASE_URL": base,
        "HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE": "100000000",
        SERVED_FILE_ENV: str(served),
        "FORWARDED_ALLOW_IPS": "",
    }  # as the product runs: no proxy's X-Forwarded-For believed


def start_server(url: str, port: int, served: Path, log: Path, stack: str) -> subprocess.Popen[bytes]:
    """One uvicorn worker serving bench.public_app on ``port``; returns once it answers."""
    base = f"http://127.0.0.1:{port}"
    loop, http = ("uvloop", "httptools") if stack == "uvloop+httptools" else ("asyncio", "h11")
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.public_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                loop,
                "--http",
                http,
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=_env(url, base, served),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/bare", timeout=2) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"uvicorn did not answer within 60 s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen[bytes], log: Path) -> float:
    """SIGTERM (a clean shutdown writes the buffered scans) and wait; seconds it took."""
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"uvicorn did not stop within 60 s of SIGTERM:\n{log.read_text()[-3000:]}") from None
    return time.perf_counter() - started


def _probe(base: str, path: str, accept: str | None) -> tuple[int, str, int]:
    request = urllib.request.Request(base + path, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, answer.headers.get("content-type", ""), len(answer.read())


# -------------------------------------------------------------------------------------------- a run


def load_demo(url: str, base: str, workdir: Path) -> None:
    """``python -m trace.cli demo`` on the bench database (migrated by bench.common.fresh_database)."""
    env = _env(url, base, workdir / "unused")
    subprocess.run(
        [sys.executable, "-m", "trace.cli", "demo"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )


def pick_units(engine: Engine, count: int) -> list[tuple[int, str]]:
    """(id, serial) of ``count`` active units of the showcase lot."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(col(Unit.id), col(Unit.serial))
            .join(Lot, col(Lot.id) == col(Unit.lot_id))
            .where(col(Lot.gtin) == GTIN, col(Lot.lot_code) == LOT, col(Unit.status) == UnitStatus.ACTIVE)
            .order_by(col(Unit.id))
            .limit(count)
        ).all()
    if not rows:
        raise RuntimeError(f"the demo has no active unit in lot {LOT} of GTIN {GTIN}")
    return [(int(unit_id), str(serial)) for unit_id, serial in rows if unit_id is not None]


def count_scans(engine: Engine, unit_ids: list[int]) -> tuple[int, int]:
    """Scans of those units, and scans of anything."""
    with engine.connect() as conn:
        ours = conn.execute(select(func.count()).select_from(Scan).where(col(Scan.unit_id).in_(unit_ids))).scalar_one()
        every = conn.execute(select(func.count()).select_from(Scan)).scalar_one()
    return int(ours), int(every)


def serve_and_load(
    url: str, engine: Engine, paths: list[str], unit_ids: list[int], stack: str, args: Any, workdir: Path
) -> dict[str, Any]:
    """One server run: probe, warm-up, then each endpoint under load; stop; count the scans."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    served_file, log = workdir / f"served-{stack}.txt", workdir / f"uvicorn-{stack}.log"
    served_file.unlink(missing_ok=True)
    before, _ = count_scans(engine, unit_ids)
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)

    def load(form: str, seconds: float) -> Load:
        targets = ["/bare"] if form == "bare" else paths
        if use_wrk:
            return wrk_load(base, targets, FORMS[form], seconds, args.connections, args.threads, workdir)
        return asyncio_load(base, targets, FORMS[form], seconds, args.connections)

    proc = start_server(url, port, served_file, log, stack)
    page_requests = 0  # completed by the load generator (and the probes), 2xx
    results: dict[str, Load] = {}
    try:
        probes = {}
        for form in ("page HTML", "page JSON"):
            status, media, size = _probe(base, paths[0], FORMS[form])
            probes[form] = {"status": status, "content_type": media, "bytes": size}
            page_requests += status == 200
            if status != 200:
                raise RuntimeError(f"{form} of {paths[0]} answered {status}")
        for form in FORMS:
            warm = load(form, args.warmup)
            if form != "bare":
                page_requests += warm.ok
        for form in FORMS:
            results[form] = load(form, args.seconds)
            if form != "bare":
                page_requests += results[form].ok
            print(f"  [{stack}] {form}: {results[form].rps:,.0f} req/s, p99 {results[form].p99_ms:.1f} ms", flush=True)
    finally:
        stop_s = stop_server(proc, log)
    after, every = count_scans(engine, unit_ids)
    served = read_served(served_file) if served_file.exists() else None
    served_ok = sum(n for status, n in served.items() if 200 <= status < 300) if served is not None else None
    return {
        "stack": stack,
        "tool": next(iter(results.values())).tool,
        "probes": probes,
        "loads": {form: {**asdict(r), "rps": r.rps, "non_2xx": r.non_2xx} for form, r in results.items()},
        "page_requests_completed": page_requests,
        "page_requests_served": served_ok,
        "served_by_status": served,
        "scans": after - before,
        "scans_of_anything": every,
        "stop_s": stop_s,
        "server_log": log.read_text()[-2000:],
    }


def run(kind: str, args: Any, stacks: list[str]) -> dict[str, Any]:
    """Fresh database, demo, one server run per stack."""
    with fresh_database(kind) as url, tempfile.TemporaryDirectory(prefix="hytrace_public_") as tmp:
        workdir = Path(tmp)
        load_demo(url, "http://127.0.0.1:8000", workdir)
        engine = make_engine(url, pool_size=2)
        try:
            units = pick_units(engine, args.units)
            paths = [
                digital_link.unit_uri(base_url="http://h", gtin=GTIN, lot=LOT, serial=serial).removeprefix("http://h")
                for _, serial in units
            ]
            unit_ids = [unit_id for unit_id, _ in units]
            print(f"[{kind}] demo loaded; {len(paths)} units of lot {LOT}, e.g. {paths[0]}", flush=True)
            runs = [serve_and_load(url, engine, paths, unit_ids, stack, args, workdir) for stack in stacks]
            return {"db": kind, "database": server_version(engine), "units": len(paths), "runs": runs}
        finally:
            engine.dispose()


def _verdicts(result: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    lines: list[str] = []
    checks: dict[str, Any] = {}
    for r in result["runs"]:
        where = f"{result['db']}, {r['stack']}"
        bare = r["loads"]["bare"]["rps"]
        for form in ("page HTML", "page JSON"):
            load = r["loads"][form]
            share = load["rps"] / bare if bare else 0.0
            share_ok, p99_ok = share >= GOAL_SHARE, load["p99_ms"] <= GOAL_P99_MS
            lines.append(
                f"{'PASS' if share_ok else 'FAIL'}  {where}: {form} {share:.0%} of bare (goal ≥ {GOAL_SHARE:.0%})"
            )
            lines.append(
                f"{'PASS' if p99_ok else 'FAIL'}  {where}: {form} p99 {load['p99_ms']:.1f} ms "
                f"(goal ≤ {GOAL_P99_MS:.0f} ms)"
            )
            checks[f"{where}: {form}"] = {"share_of_bare": share, "share_ok": share_ok, "p99_ok": p99_ok}
        scans, served, completed = r["scans"], r["page_requests_served"], r["page_requests_completed"]
        if served is None:
            lines.append(f"FAIL  {where}: the server wrote no count of the pages it served (see its log)")
            lost_ok = False
        else:
            lost_ok = scans == served
            verdict = "no scan lost" if lost_ok else f"{served - scans:+,} scan(s) missing"
            lines.append(
                f"{'PASS' if lost_ok else 'FAIL'}  {where}: {scans:,} scans recorded; {served:,} unit pages "
                f"served (server count); {completed:,} completed by {r['tool']} and the probes — {verdict}"
            )
            if completed != served:
                lines.append(
                    f"      ({served - completed:+,} served but not counted by {r['tool']}: answers on "
                    "connections cut at the end of a run)"
                )
        checks[f"{where}: scans"] = {"scans": scans, "served": served, "completed": completed, "ok": lost_ok}
    return lines, checks


def main() -> None:
    """Measure, print a table, the goal checks and the BENCH_JSON line."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per endpoint (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per endpoint (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: the cores are shared)")
    parser.add_argument("--units", type=int, default=8, help="units of the showcase lot to rotate over (default 8)")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "asyncio"),
        default="auto",
        help="load generator: wrk when on PATH (auto), or the asyncio client",
    )
    args = parser.parse_args()
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (Debian: apt-get install wrk)")
    stacks = ["asyncio+h11"]
    if importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools"):
        stacks.append("uvloop+httptools")
    else:
        print("uvloop/httptools not installed: measuring uvicorn's asyncio loop and h11 only", flush=True)

    load_before = os.getloadavg()[0]
    results = [run(kind, args, stacks) for kind in kinds(args.db)]
    load_after = os.getloadavg()[0]
    rows: list[list[Any]] = []
    for result in results:
        for r in result["runs"]:
            bare = r["loads"]["bare"]["rps"]
            for form, load in r["loads"].items():
                share = f"{load['rps'] / bare:.0%}" if form != "bare" and bare else ""
                rows.append(
                    [
                        result["db"],
                        r["stack"],
                        form,
                        round(load["rps"]),
                        round(load["p50_ms"], 2),
                        round(load["p99_ms"], 2),
                        load["non_2xx"],
                        sum(load["errors"].values()),
                        share,
                    ]
                )
    print()
    print(
        f"{args.connections} connections, {args.seconds:g} s per endpoint, one uvicorn worker, "
        f"load from {results[0]['runs'][0]['tool']}, {os.cpu_count()} CPUs shared with the server; "
        f"load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print(table(["db", "server", "endpoint", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors", "% of bare"], rows))
    print()
    checks: dict[str, Any] = {}
    for result in results:
        lines, found = _verdicts(result)
        checks.update(found)
        print("\n".join(lines))
    for r in (r for result in results for r in result["runs"]):
        if not r["server_log"].strip():
            del r["server_log"]
    emit(
        "public_page",
        {
            "connections": args.connections,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "goal_share": GOAL_SHARE,
            "goal_p99_ms": GOAL_P99_MS,
            "loadavg": [load_before, load_after],
            "results": results,
            "checks": checks,
        },
    )


if __name__ == "__main__":
    main()
