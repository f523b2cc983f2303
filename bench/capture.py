"""Capture throughput: events/s through the domain layer and through POST /api/v1/events/batch.

Run from the repository root::

    .venv/bin/python -m bench.capture [--db sqlite|postgres|both] [--events N] [--path domain|api|both]
    .venv/bin/python -m bench.capture --db sqlite --profile 10000    # cProfile of the domain path
    .venv/bin/python -m bench.capture --db sqlite --path api --events 1000000   # the rate at 0 and at 1 M

The rate is also measured per window of ``--window`` events (default 100,000) as the log grows: the first
window's rate (into an empty log), the last one's, and their ratio say whether capture slows as the log grows.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import col

from bench.common import (
    ADMIN,
    COMMUNE,
    ROOT,
    base_parser,
    emit,
    free_port,
    fresh_database,
    kinds,
    percentiles,
    server_version,
    table,
)
from trace import locations, organisations, products, users
from trace.access import Actor, Role
from trace.events import chain
from trace.events.ledger import INPUT_OF, capture
from trace.events.models import EventType
from trace.lots import Shipment
from trace.platform.db import make_engine, session_scope

PASSWORD = "bench-password-Ab3!"
ADMIN_EMAIL, ADMIN_PASSWORD = "bench-admin@hytrace.test", "bench-admin-password-Xy9!"
VN = timezone(timedelta(hours=7))


@dataclass
class Party:
    """One concurrent client's world: a cooperative and the processor it sells to (two chains of its own)."""

    index: int
    coop_id: int
    proc_id: int
    area_id: int
    plant_id: int
    fresh_id: int
    dried_id: int
    coop_email: str
    proc_email: str

    def actor(self, side: str) -> Actor:
        """The member acting for one side (domain path)."""
        return Actor(role=Role.MEMBER, organisation_id=self.coop_id if side == "coop" else self.proc_id, name=side)


def setup(engine: Engine, count: int) -> list[Party]:
    """Organisations, users, locations and products through the domain layer (rules apply)."""
    parties = []
    with session_scope(engine) as s:
        for k in range(count):
            orgs = [
                organisations.create_organisation(
                    session=s,
                    actor=ADMIN,
                    data=organisations.OrganisationCreate(
                        kind=kind, name=f"{label} bench {k}", tax_code=f"{9100000000 + 2 * k + i}", commune_code=COMMUNE
                    ),
                )  # type: ignore[arg-type]
                for i, (kind, label) in enumerate((("cooperative", "HTX"), ("processor", "Cơ sở sấy")))
            ]
            coop, proc = orgs
            member = {o.id: Actor(role=Role.MEMBER, organisation_id=o.id) for o in orgs}
            area = locations.create_location(
                session=s,
                actor=member[coop.id],
                data=locations.LocationCreate(
                    kind="growing_area", name=f"Vùng trồng {k}", code=f"VN-HY-BENCH-{k:03d}", commune_code=COMMUNE
                ),
            )  # type: ignore[arg-type]
            plant = locations.create_location(
                session=s,
                actor=member[proc.id],
                data=locations.LocationCreate(kind="packing_facility", name=f"Xưởng sấy {k}", commune_code=COMMUNE),
            )  # type: ignore[arg-type]
            fresh = products.create_product(
                session=s,
                actor=member[coop.id],
                data=products.ProductCreate(name_vi="Nhãn lồng tươi", category="longan_fresh", unit="kg"),
            )
            dried = products.create_product(
                session=s,
                actor=member[proc.id],
                data=products.ProductCreate(name_vi="Long nhãn sấy", category="longan_dried", unit="kg"),
            )
            emails = [f"bench{k}-{side}@hytrace.test" for side in ("coop", "proc")]
            for email, o in zip(emails, orgs, strict=True):
                users.create_user(
                    session=s,
                    email=email,
                    full_name="Người đo",
                    role=Role.MEMBER,
                    organisation_id=o.id,
                    password=PASSWORD,
                )
            parties.append(Party(k, coop.id, proc.id, area.id, plant.id, fresh.id, dried.id, *emails))  # type: ignore[arg-type]
    return parties


@dataclass
class Flow:
    """One party's event stream in a cycle of four batches: harvests; harvests; harvests + ships to the
    processor; the processor's receives + transforms (merge 2–5 received lots into 1–3 dried lots)."""

    party: Party
    batch: int
    rng: random.Random
    t0: datetime
    stage: int = 0
    seq: int = 0
    unshipped: list[int] = field(default_factory=list)
    in_transit: list[tuple[int, int]] = field(default_factory=list)  # (shipment id, lot id)

    def _t(self, days: float) -> str:
        return (self.t0 - timedelta(days=days, seconds=self.rng.randrange(3600))).isoformat()

    def _harvest(self) -> tuple[str, dict[str, Any]]:
        self.seq += 1
        applied = (self.t0 - timedelta(days=40)).date().isoformat()
        return "harvest", {
            "product_id": self.party.fresh_id,
            "lot_code": f"B{self.party.index}H{self.seq:07d}",
            "quantity": "100.000",
            "location_id": self.party.area_id,
            "event_time": self._t(3),
            "expiry_date": (self.t0 + timedelta(days=20)).date().isoformat(),
            "inputs_used": [
                {"kind": "fertiliser", "name": "NPK 16-16-8", "applied_on": applied, "pre_harvest_interval_days": 14}
            ],
        }

    def next(self, limit: int) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """The next batch (side, items), at most ``limit`` items."""
        if self.stage == 3 and not self.in_transit:
            self.stage = 0
        if self.stage in (0, 1):
            return "coop", [self._harvest() for _ in range(min(limit, self.batch))]
        if self.stage == 2:
            ships = min(self.batch // 2, len(self.unshipped))
            items = [self._harvest() for _ in range(self.batch - ships)]
            for n in range(ships):
                items.append(
                    (
                        "ship",
                        {
                            "lot_id": self.unshipped.pop(0),
                            "quantity": "60.000",
                            "event_time": self._t(2),
                            "destination_organisation_id": self.party.proc_id,
                            "biz_transactions": [{"type": "desadv", "id": f"PGH-{self.party.index}-{self.seq}-{n}"}],
                        },
                    )
                )
            return "coop", items[:limit]
        items = [
            ("receive", {"shipment_id": sid, "location_id": self.party.plant_id, "event_time": self._t(1)})
            for sid, _ in self.in_transit
        ]
        lots = [lot for _, lot in self.in_transit]
        while lots:
            size = self.rng.randint(2, 5)
            take, lots = lots[:size], lots[size:]
            outputs = self.rng.randint(1, 3)
            share = (Decimal(60 * len(take)) * Decimal("0.2") / outputs).quantize(Decimal("0.001"))
            outs = []
            for _ in range(outputs):
                self.seq += 1
                outs.append(
                    {
                        "product_id": self.party.dried_id,
                        "lot_code": f"B{self.party.index}T{self.seq:07d}",
                        "quantity": str(share),
                    }
                )
            items.append(
                (
                    "transform",
                    {
                        "inputs": [{"lot_id": lot, "quantity": "60.000"} for lot in take],
                        "outputs": outs,
                        "location_id": self.party.plant_id,
                        "event_time": self._t(0.5),
                    },
                )
            )
        return "proc", items[:limit]

    def done(self, side: str, lot_ids: list[int], shipments: list[tuple[int, int]]) -> None:
        """Take the answer of the batch just captured and move to the next stage."""
        if side == "coop":
            self.unshipped.extend(lot_ids)  # harvest outputs, in order
            self.in_transit.extend(shipments)
        else:
            self.in_transit.clear()
        self.stage = (self.stage + 1) % 4


def shipments_of(session: Any, ship_event_ids: list[str]) -> list[tuple[int, int]]:
    """(shipment id, lot id) of ship events; a batch answer carries only the last shipment id."""
    if not ship_event_ids:
        return []
    rows = session.execute(
        select(col(Shipment.id), col(Shipment.lot_id)).where(col(Shipment.event_id).in_(ship_event_ids))
    )
    return [(r[0], r[1]) for r in rows]


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) a process has used so far: this one's, or the server's (Linux /proc)."""
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Marks:
    """When each batch was answered, how many events it held and the CPU time the capturing process had used
    by then (any client thread): the rate per window, and the CPU per event (what 2 shared cores blur least)."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid
        self.reset()
        self._marks: list[tuple[float, int, float]] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        """The clock starts now."""
        self.start, self.cpu = time.perf_counter(), cpu_seconds(self.pid)

    def add(self, events: int) -> None:
        with self._lock:
            self._marks.append((time.perf_counter(), events, cpu_seconds(self.pid)))

    def windows(self, size: int) -> list[dict[str, Any]]:
        """Events/s and CPU µs/event in each window of about ``size`` events, in the order the log grew (a last
        window of fewer than half as many is left out: too short to say much)."""
        out: list[dict[str, Any]] = []
        begun, cpu, count, at = self.start, self.cpu, 0, 0

        def close(when: float, used: float) -> None:
            out.append(
                {
                    "from": at,
                    "to": count,
                    "events_per_s": round((count - at) / (when - begun), 1),
                    "cpu_us_per_event": round((used - cpu) / (count - at) * 1e6, 1),
                }
            )

        when = used = 0.0
        for when, n, used in sorted(self._marks):
            count += n
            if count - at >= size:
                close(when, used)
                begun, cpu, at = when, used, count
        if count - at >= size / 2 or (not out and count):
            close(when, used)
        return out


def growth(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rate of the first window (an empty log), of the last, and their ratio."""
    if len(windows) < 2:
        return {}
    first, last = windows[0], windows[-1]
    return {
        "rate_at_0": first["events_per_s"],
        "rate_at_end": last["events_per_s"],
        "end_over_0": round(last["events_per_s"] / first["events_per_s"], 3),
        "cpu_us_at_0": first["cpu_us_per_event"],
        "cpu_us_at_end": last["cpu_us_per_event"],
    }


def run_domain(url: str, parties: list[Party], events: int, batch: int, seed: int, window: int) -> dict[str, Any]:
    """Capture through trace.events.ledger.capture, one transaction per batch, one thread."""
    engine = make_engine(url, pool_size=2)
    t0 = datetime.now(VN)
    flows = [Flow(p, batch, random.Random(seed + p.index), t0) for p in parties]
    done, mix, latencies = 0, Counter[str](), []
    marks = Marks()
    start = marks.start
    while done < events:
        for flow in flows:
            if done >= events:
                break
            side, items = flow.next(events - done)
            began = time.perf_counter()
            with session_scope(engine) as session:
                data = [(EventType(k), INPUT_OF[EventType(k)].model_validate(d)) for k, d in items]
                result = capture(session=session, actor=flow.party.actor(side), items=data)
                ships = shipments_of(session, [e.id for e in result.events if e.type == EventType.SHIP])
            latencies.append(time.perf_counter() - began)
            marks.add(len(items))
            flow.done(side, result.lot_ids if side == "coop" else [], ships)
            done += len(items)
            mix.update(k for k, _ in items)
    seconds = time.perf_counter() - start
    windows = marks.windows(window)
    out = _summary(engine, "domain", done, seconds, latencies, mix, windows=windows, **growth(windows))
    engine.dispose()
    return out


def _summary(
    engine: Engine, path: str, done: int, seconds: float, latencies: list[float], mix: Counter[str], **extra: Any
) -> dict[str, Any]:
    with session_scope(engine, write=False) as session:
        report = chain.verify(session=session)
    return {
        "path": path,
        "events": done,
        "seconds": round(seconds, 2),
        "events_per_s": round(done / seconds, 1),
        "batch": percentiles(latencies),
        "mix": dict(mix),
        "chain_ok": report.ok,
        "events_in_db": report.events,
        "database": server_version(engine),
        **extra,
    }


def start_server(url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """uvicorn on a free loopback port, with the bench database and a bootstrap admin."""
    port = free_port()
    env = {
        **os.environ,
        "HYTRACE_DATABASE_URL": url,
        "HYTRACE_ENVIRONMENT": "development",
        "HYTRACE_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "HYTRACE_ADMIN_EMAIL": ADMIN_EMAIL,
        "HYTRACE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "HYTRACE_REDIS_URL": "",
        "FORWARDED_ALLOW_IPS": "",
    }  # as the product runs: no proxy's X-Forwarded-For believed
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"uvicorn did not answer within 60 s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill if it lingers."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def _token(client: httpx.Client, email: str, password: str) -> str:
    answer = client.post("/api/v1/auth/token", data={"username": email, "password": password})
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def run_api(url: str, parties: list[Party], events: int, batch: int, seed: int, window: int) -> dict[str, Any]:
    """Capture through POST /api/v1/events/batch on a real uvicorn, one client thread per party."""
    engine = make_engine(url, pool_size=len(parties) + 1)
    with tempfile.TemporaryDirectory(prefix="hytrace_bench_log_") as tmp:
        server, base = start_server(url, Path(tmp) / "uvicorn.log")
        try:
            with httpx.Client(base_url=base, timeout=300) as client:
                _token(client, ADMIN_EMAIL, ADMIN_PASSWORD)  # the bootstrap admin exists and can log in
            share = [events // len(parties) + (1 if i < events % len(parties) else 0) for i in range(len(parties))]
            results: list[dict[str, Any]] = [{} for _ in parties]
            gate = threading.Barrier(len(parties) + 1)
            marks = Marks(server.pid)
            threads = [
                threading.Thread(target=_client, args=(base, engine, p, n, batch, seed, gate, marks, results[i]))
                for i, (p, n) in enumerate(zip(parties, share, strict=True))
            ]
            for thread in threads:
                thread.start()
            try:
                gate.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass  # a client failed before the start; its error is reported below
            marks.reset()
            start = marks.start
            for thread in threads:
                thread.join(timeout=3600)
            seconds = time.perf_counter() - start
            errors = [r["error"] for r in results if "error" in r]
            if errors or any(t.is_alive() for t in threads):
                raise RuntimeError(f"API clients failed: {errors or 'timeout'}")
        finally:
            stop_server(server)
    mix = sum((r["mix"] for r in results), Counter[str]())
    latencies = [x for r in results for x in r["latencies"]]
    windows = marks.windows(window)
    out = _summary(
        engine,
        "api",
        sum(r["done"] for r in results),
        seconds,
        latencies,
        mix,
        clients=len(parties),
        retries=sum(r["retries"] for r in results),
        windows=windows,
        **growth(windows),
    )
    engine.dispose()
    return out


def _client(
    base: str,
    engine: Engine,
    party: Party,
    events: int,
    batch: int,
    seed: int,
    gate: threading.Barrier,
    marks: Marks,
    out: dict[str, Any],
) -> None:
    out.update(done=0, retries=0, latencies=[], mix=Counter[str]())
    try:
        with httpx.Client(base_url=base, timeout=300) as client:
            # A bulk client wants ids back, not its 500 events echoed (RFC 7240 Prefer: return=minimal).
            auth = {
                side: {"Authorization": f"Bearer {_token(client, email, PASSWORD)}", "Prefer": "return=minimal"}
                for side, email in (("coop", party.coop_email), ("proc", party.proc_email))
            }
            flow = Flow(party, batch, random.Random(seed + party.index), datetime.now(VN))
            gate.wait(timeout=120)
            while out["done"] < events:
                side, items = flow.next(events - out["done"])
                body = {"events": [{"type": k, "data": d} for k, d in items]}
                for attempt in range(6):
                    began = time.perf_counter()
                    answer = client.post("/api/v1/events/batch", json=body, headers=auth[side])
                    # write_conflict (409) and database_unavailable (503) carry Retry-After: send again
                    if answer.status_code not in (409, 503) or "retry-after" not in answer.headers or attempt == 5:
                        break
                    out["retries"] += 1
                    time.sleep(0.2)
                if answer.status_code != 201:
                    raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:500]}")
                out["latencies"].append(time.perf_counter() - began)
                marks.add(len(items))
                result = answer.json()
                with session_scope(engine, write=False) as session:
                    # return=minimal: no events in the answer, but their ids in the items' order
                    shipped = [e for e, (k, _) in zip(result["event_ids"], items, strict=True) if k == "ship"]
                    ships = shipments_of(session, shipped)
                flow.done(side, result["lot_ids"] if side == "coop" else [], ships)
                out["done"] += len(items)
                out["mix"].update(k for k, _ in items)
    except Exception as error:
        out["error"] = f"{type(error).__name__}: {error}"
        gate.abort()  # nobody waits for a client that will never arrive


def profile(events: int, batch: int, seed: int, kind: str, top: int = 30, dump: str | None = None) -> None:
    """cProfile the domain path on a fresh database; print the hot spots (and dump them for pstats)."""
    with fresh_database(kind) as url:
        engine = make_engine(url, pool_size=2)
        parties = setup(engine, 1)
        engine.dispose()
        profiler = cProfile.Profile()
        profiler.enable()
        result = run_domain(url, parties, events, batch, seed, events)
        profiler.disable()
    if dump:
        profiler.dump_stats(f"{dump}.{kind}")
    print(
        f"\nProfile of the domain path: {result['events']} events on {kind}, {result['events_per_s']} events/s "
        f"under cProfile (slower than unprofiled)\n"
    )
    for order, where in (("tottime", ""), ("cumulative", ""), ("cumulative", r"/trace/")):
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats(order).print_stats(where, top) if where else stats.sort_stats(order).print_stats(top)
        print(f"--- top {top} by {order}{' in ' + where if where else ''} ---")
        print("\n".join(line.replace(str(ROOT) + "/", "") for line in buffer.getvalue().splitlines()[6:]))


def main() -> None:
    """Parse the options, run each path on each database, print the figures."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per path and database (default 100,000)")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction / request (default 500)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent API clients, one organisation pair each")
    parser.add_argument("--path", choices=("domain", "api", "both"), default="both")
    parser.add_argument(
        "--window", type=int, default=100_000, help="events per window of the rate as the log grows (default 100,000)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="EVENTS",
        default=0,
        help="instead: cProfile the domain path for EVENTS events and print the hot spots",
    )
    parser.add_argument("--profile-out", metavar="FILE", help="also dump the profile to FILE.<db> (pstats format)")
    args = parser.parse_args()
    if args.profile:
        for kind in kinds(args.db):
            profile(args.profile, args.batch, args.seed, kind, dump=args.profile_out)
        return
    rows, results = [], []
    for kind in kinds(args.db):
        for path in ("domain", "api") if args.path == "both" else (args.path,):
            with fresh_database(kind) as url:
                engine = make_engine(url, pool_size=2)
                parties = setup(engine, args.clients if path == "api" else 4)
                engine.dispose()
                print(f"[{kind}/{path}] capturing {args.events:,} events in batches of {args.batch} ...", flush=True)
                runner = run_api if path == "api" else run_domain
                result = {"db": kind, **runner(url, parties, args.events, args.batch, args.seed, args.window)}
            results.append(result)
            b = result["batch"]
            rows.append(
                [
                    kind,
                    path,
                    result["events"],
                    result["seconds"],
                    result["events_per_s"],
                    b["p50_ms"],
                    b["p95_ms"],
                    b["max_ms"],
                    result.get("rate_at_0", "-"),
                    result.get("rate_at_end", "-"),
                    result.get("end_over_0", "-"),
                    result.get("cpu_us_at_0", "-"),
                    result.get("cpu_us_at_end", "-"),
                    "ok" if result["chain_ok"] else "BROKEN",
                ]
            )
            if len(result["windows"]) > 1:
                print(
                    f"[{kind}/{path}] events/s per {args.window:,} events: "
                    + ", ".join(f"{w['events_per_s']:,.0f}" for w in result["windows"])
                    + "; CPU µs/event: "
                    + ", ".join(f"{w['cpu_us_per_event']:,.0f}" for w in result["windows"]),
                    flush=True,
                )
    print()
    headers = ["db", "path", "events", "s", "events/s", "batch p50 ms", "p95 ms", "max ms"]
    print(table([*headers, "at 0", "at end", "end/0", "cpu µs/ev at 0", "at end", "chain"], rows))
    if results:
        mix = results[0]["mix"]
        print("mix: " + ", ".join(f"{k} {v:,}" for k, v in sorted(mix.items(), key=lambda kv: -kv[1])))
    print(
        f"at 0 / at end: events/s of the first and the last {args.window:,} events (the log empty, then full); "
        "cpu µs/ev: CPU time of the capturing process (the API server, or the domain run) per event\n"
        "goal: >= 2,000 events/s through the API on SQLite from an empty log to 1,000,000 events, the rate at "
        "1 M within 15 % of the rate at 0 (noisy: 2 cores shared with other work)"
    )
    emit("capture", {"batch": args.batch, "clients": args.clients, "results": results})


if __name__ == "__main__":
    main()
