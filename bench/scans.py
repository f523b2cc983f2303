"""Scan figures at 0 to 10,000,000 scans of one unit: the page's ``stats()``/``tally()`` and the dashboard's.

One unit's code is scanned up to ``--scans`` times (one scan in twenty of 99 other units of its lot, one
in twenty by a bot, one in ten sharing a place, from 1,000 networks over a year), bulk-loaded a chunk at
a time (COPY on PostgreSQL, executemany on SQLite) with the figures kept by the same code the scan
buffer's writes use (:func:`trace.scans.tallies.add`, once per chunk). At each size (0, 10k, 100k, 1M,
10M, up to ``--scans``) it times, each in a session of its own as a page does: ``stats()`` of the unit,
``tally()`` with eight pending scans, ``stats()`` of the lot, the dashboard's scans per month of the
year (``dashboard.scan_months``; and ``dashboard.monthly``, every series) and the year's scans
(``dashboard.actual``). After loading (up to 2,000,000) verify-log's check recounts the figures.
Run from the repository root::

    .venv/bin/python -m bench.scans [--db sqlite|postgres|both] [--scans 10000000] [--samples 300]
"""

from __future__ import annotations

import io
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, col

from bench.common import ADMIN, COMMUNE, base_parser, emit, fresh_database, kinds, server_version, table
from trace import locations, organisations, products
from trace.access import Actor, Role
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import CommissionIn, HarvestIn
from trace.platform.db import make_engine, session_scope
from trace.reports import dashboard
from trace.reports.models import Indicator
from trace.reports.periods import year_period
from trace.scans import check, tallies
from trace.scans.models import Scan
from trace.scans.record import FIELDS, ScanIn, new_scan, stats, tally
from trace.units import Unit

RECOUNT_UP_TO = 2_000_000  # verify-log's recount of the figures, run after loading up to this many
SIZES = (0, 10_000, 100_000, 1_000_000, 10_000_000)
CHUNK = 50_000
NULL = "\\N"  # COPY's NULL
NETWORKS = 1_000
YEAR = 2026
START = datetime(YEAR, 1, 1, tzinfo=UTC)
STEP = timedelta(days=364) / SIZES[-1]  # the largest size spans the year; smaller ones its first part


def build(engine: Engine) -> tuple[int, list[int]]:
    """A cooperative's lot with 100 unit codes: (lot id, unit ids)."""
    with session_scope(engine) as s:
        org = organisations.create_organisation(
            session=s,
            actor=ADMIN,
            data=organisations.OrganisationCreate(
                kind=organisations.OrgKind.COOPERATIVE,
                name="HTX đo lượt quét",
                tax_code="9400000002",
                commune_code=COMMUNE,
            ),
        )  # type: ignore[arg-type]
        coop = Actor(role=Role.MEMBER, organisation_id=org.id, name="bench coop")
        area = locations.create_location(
            session=s,
            actor=coop,
            data=locations.LocationCreate(
                kind=locations.LocationKind.GROWING_AREA,
                name="Vùng trồng đo lượt quét",
                code="VN-HY-BENCH-SCAN",
                commune_code=COMMUNE,
            ),
        )  # type: ignore[arg-type]
        fresh = products.create_product(
            session=s,
            actor=coop,
            data=products.ProductCreate(name_vi="Nhãn lồng tươi", category="longan_fresh", unit="kg"),
        )
        lot = capture(
            session=s,
            actor=coop,
            items=[
                (
                    EventType.HARVEST,
                    HarvestIn(
                        product_id=fresh.id,  # type: ignore[arg-type]
                        lot_code="NL-SCAN-01",
                        quantity=Decimal(100),
                        location_id=area.id,  # type: ignore[arg-type]
                        event_time=START - timedelta(days=2),
                    ),
                )
            ],
        ).lot_ids[0]
        capture(session=s, actor=coop, items=[(EventType.COMMISSION, CommissionIn(lot_id=lot, count=100))])
        units = list(s.execute(select(col(Unit.id)).where(col(Unit.lot_id) == lot).order_by(col(Unit.id))).scalars())
    return lot, units


def _scans(lot: int, units: list[int], first: int, count: int, rng: random.Random) -> list[ScanIn]:
    """Scans number ``first`` to ``first + count - 1``, in time order."""
    out = []
    for k in range(first, first + count):
        unit = units[0] if k % 20 else units[1 + rng.randrange(len(units) - 1)]
        out.append(
            ScanIn(
                uid=uuid.UUID(int=rng.getrandbits(128)).hex,
                lot_id=lot,
                unit_id=unit,
                scanned_at=START + STEP * k,
                network=f"{rng.randrange(NETWORKS):016x}",
                place=f"{20 + rng.randrange(10) / 10:.1f},106.0" if k % 10 == 0 else None,
                agent="bot" if k % 20 == 7 else "mobile",
                lang="vi",
                kind="page",
            )
        )
    return out


def load(engine: Engine, lot: int, units: list[int], first: int, count: int, rng: random.Random) -> float:
    """Bulk-load ``count`` more scans and their figures; seconds taken."""
    began = time.perf_counter()
    done = 0
    with engine.connect() as conn:
        next_id = int(conn.execute(select(func.coalesce(func.max(col(Scan.id)), 0))).scalar_one() or 0) + 1
    while done < count:
        n = min(CHUNK, count - done)
        batch = _scans(lot, units, first + done, n, rng)
        ids = range(next_id, next_id + n)
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                raw = conn.connection.driver_connection
                columns = ", ".join(("id", *FIELDS))
                with raw.cursor().copy(f"COPY scan ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
                    buffer = io.StringIO()
                    for scan_id, s in zip(ids, batch, strict=True):
                        buffer.write(
                            f"{scan_id}\t{s.uid}\t{s.lot_id}\t{s.unit_id}\t{s.scanned_at.isoformat()}\t{s.network}\t"
                            f"{s.place or NULL}\t{s.agent}\t{s.lang}\t{s.kind}\n"
                        )
                    copy.write(buffer.getvalue())
            else:
                conn.exec_driver_sql(
                    f"INSERT INTO scan (id, {', '.join(FIELDS)}) VALUES ({', '.join(['?'] * (len(FIELDS) + 1))})",
                    [
                        (
                            scan_id,
                            s.uid,
                            s.lot_id,
                            s.unit_id,
                            s.scanned_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                            s.network,
                            s.place,
                            s.agent,
                            s.lang,
                            s.kind,
                        )
                        for scan_id, s in zip(ids, batch, strict=True)
                    ],
                )
            tallies.add(connection=conn, written=zip(ids, batch, strict=True))
        next_id += n
        done += n
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT setval('scan_id_seq', (SELECT max(id) FROM scan))"))
            conn.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE scan"))
    return time.perf_counter() - began


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 3)


def timed(engine: Engine, samples: int, call: Callable[[Session], Any]) -> dict[str, float]:
    """p50 / p99 / max (ms) of ``call`` in a session of its own, ``samples`` times (after one warm-up)."""
    with Session(engine) as s:
        call(s)
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        with Session(engine) as s:
            call(s)
        times.append(time.perf_counter() - began)
    return {"p50_ms": round(statistics.median(times) * 1000, 3), "p99_ms": _p(times, 0.99), "max_ms": _p(times, 1.0)}


def run(kind: str, target: int, samples: int, seed: int) -> dict[str, Any]:
    """Load to each size up to ``target`` and time the reads there."""
    rng = random.Random(seed)
    sizes = [size for size in SIZES if size < target] + [target]
    results: list[dict[str, Any]] = []
    with fresh_database(kind) as url:
        engine = make_engine(url, pool_size=4)
        try:
            lot, units = build(engine)
            pending = [
                new_scan(
                    lot_id=lot, unit_id=units[0], client_ip=f"198.51.{i}.1", user_agent=None, lang=None, kind="page"
                )
                for i in range(8)
            ]
            period = year_period(YEAR)
            months = period.months()
            loaded = 0
            for size in sizes:
                total = size * 20 // 19 if size else 0  # all scans of the lot, the unit's being 19 in 20
                seconds = load(engine, lot, units, loaded, total - loaded, rng) if total > loaded else 0.0
                loaded = max(loaded, total)
                with Session(engine) as s:
                    found = stats(session=s, unit_id=units[0])
                heavy = samples if size < SIZES[-1] else max(samples // 3, 30)
                row: dict[str, Any] = {
                    "db": kind,
                    "unit_scans": found.count,
                    "lot_scans": loaded,
                    "load_s": round(seconds, 1),
                    "networks": found.networks,
                    "stats": timed(engine, samples, lambda s: stats(session=s, unit_id=units[0])),
                    "tally_pending": timed(
                        engine, samples, lambda s: tally(session=s, unit_id=units[0], pending=pending)
                    ),
                    "stats_lot": timed(engine, samples, lambda s: stats(session=s, lot_id=lot)),
                    "scan_months": timed(engine, heavy, lambda s: dashboard.scan_months(session=s, months=months)),
                    "monthly": timed(engine, heavy, lambda s: dashboard.monthly(session=s, period=period)),
                    "actual": timed(
                        engine, heavy, lambda s: dashboard.actual(session=s, indicator=Indicator.SCANS, year=YEAR)
                    ),
                }
                results.append(row)
                print(
                    f"{kind}: {found.count:,} scans of the unit ({loaded:,} of the lot), loaded in {seconds:.1f} s; "
                    f"stats p99 {row['stats']['p99_ms']} ms, scan months p99 {row['scan_months']['p99_ms']} ms",
                    flush=True,
                )
            ok = recount(engine) if loaded <= RECOUNT_UP_TO else None
            version = server_version(engine)
        finally:
            engine.dispose()
    return {"db": kind, "server": version, "sizes": results, "recount_ok": ok, "day": date.today().isoformat()}


def recount(engine: Engine) -> bool:
    """The figures the bulk load kept equal what the scans make (verify-log's check)."""
    with Session(engine) as s:
        try:
            for run_check in check.CHECKS.values():
                run_check(s.connection(), lambda _: None)
        except check.Differs as found:
            print(f"DIFFERS: {found}")
            return False
    return True


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=SIZES[-1], help="scans of the unit at the last size")
    parser.add_argument("--samples", type=int, default=300, help="timed calls per figure and size")
    args = parser.parse_args()
    runs = [run(kind, args.scans, args.samples, args.seed) for kind in kinds(args.db)]
    rows = [
        [
            r["db"],
            s["unit_scans"],
            s["load_s"],
            s["stats"]["p50_ms"],
            s["stats"]["p99_ms"],
            s["tally_pending"]["p99_ms"],
            s["stats_lot"]["p99_ms"],
            s["scan_months"]["p50_ms"],
            s["scan_months"]["p99_ms"],
            s["monthly"]["p99_ms"],
            s["actual"]["p99_ms"],
        ]
        for r in runs
        for s in r["sizes"]
    ]
    print()
    print(
        table(
            [
                "db",
                "unit scans",
                "load s",
                "stats p50 ms",
                "stats p99",
                "tally+8 p99",
                "lot stats p99",
                "scan months p50",
                "scan months p99",
                "monthly (all) p99",
                "actual p99",
            ],
            rows,
        )
    )
    for r in runs:
        print(f"{r['server']}: figures equal a recount: {r['recount_ok']}")
    emit("scans", {"runs": runs})


if __name__ == "__main__":
    main()
