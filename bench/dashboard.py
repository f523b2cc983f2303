"""The province dashboard and key paging at scale: 1,000,000 units, 1,000,000 events (each a harvest that
made a lot, so 1,000,000 lots), 10,000,000 scans, designations with quotas; the dashboard's time per part,
and the lots and events lists at their first page and at the ~900,000th row, by offset and by cursor.

The rows are bulk-loaded behind the domain's back, so the figures kept as they are written are made after
the load as an upgrade's backfill makes them: ``lot_bucket`` and ``code_bucket`` by
:func:`trace.reports.tally_check.rebuild` (timed, and checked as verify-log does, timed), and the scans'
quarter hours (``scan_bucket``, all the dashboard reads of scans) for ``--scans`` scans spread over the two
years; ``--scan-rows`` scan rows themselves are loaded too (the dashboard never reads them).

Run from the repository root::

    .venv/bin/python -m bench.dashboard [--db sqlite|postgres|both] [--units 1000000] [--events 1000000]
                                        [--scans 10000000] [--scan-rows 100000] [--runs 3]
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text
from sqlmodel import Session, col

from bench.common import ADMIN, COMMUNE, base_parser, emit, fresh_database, kinds, percentiles, server_version, table
from trace import locations, organisations, products
from trace.access import Actor, Role
from trace.designations.models import Designation, DesignationKind, LotClaim, RightToUse
from trace.designations.usage import designation_usage
from trace.events.models import Event
from trace.events.query import EVENT_ORDER, list_events
from trace.lots import LOT_ORDER, Holding, Lot, list_lots
from trace.platform.db import make_engine, session_scope
from trace.platform.timeutil import quarter_hour as bucket_of
from trace.printing.models import PrintRun
from trace.reports import dashboard, tally_check
from trace.reports.models import Indicator
from trace.reports.periods import make_period
from trace.scans.models import Scan, ScanBucket
from trace.units import Unit

CHUNK = 50_000
UNITS_PER_LOT = 100_000
GROWERS = 20
CLAIMED_SHARE = 0.3  # of lots claim one of the two designations
SPAN_DAYS = 730  # rows spread over the last two years
PAGE = 50


def master_data(engine: Engine) -> dict[str, Any]:
    """Growers with a product and a growing area, a designation holder with two designations, a right
    with a yearly quota per grower and designation: through the domain layer, like the API makes them."""
    growers = []
    with session_scope(engine) as s:
        holder = organisations.create_organisation(
            session=s,
            actor=ADMIN,
            data=organisations.OrganisationCreate(
                kind="designation_holder", name="Sở KH&CN (bench)", tax_code="9300000000", commune_code=COMMUNE
            ),
        )  # type: ignore[arg-type]
        marks = []
        for k in range(2):
            mark = Designation(
                kind=DesignationKind.GEOGRAPHICAL_INDICATION,
                name_vi=f"Nhãn lồng Hưng Yên bench {k}",
                holder_organisation_id=holder.id,  # type: ignore[arg-type]
                categories=["longan_fresh"],
            )
            s.add(mark)
            s.flush()
            marks.append(mark.id)
        for k in range(GROWERS):
            org = organisations.create_organisation(
                session=s,
                actor=ADMIN,
                data=organisations.OrganisationCreate(
                    kind="cooperative", name=f"HTX dashboard {k}", tax_code=f"{9300000001 + k}", commune_code=COMMUNE
                ),
            )  # type: ignore[arg-type]
            member = Actor(role=Role.MEMBER, organisation_id=org.id)
            area = locations.create_location(
                session=s,
                actor=member,
                data=locations.LocationCreate(
                    kind="growing_area", name=f"Vùng {k}", code=f"VN-HY-DSH-{k:03d}", commune_code=COMMUNE
                ),
            )  # type: ignore[arg-type]
            prod = products.create_product(
                session=s,
                actor=member,
                data=products.ProductCreate(name_vi=f"Nhãn lồng {k}", category="longan_fresh", unit="kg"),
            )
            for mark in marks:
                s.add(
                    RightToUse(
                        designation_id=mark,
                        organisation_id=org.id,  # type: ignore[arg-type]
                        decision_number=f"{k}/QĐ-bench",
                        valid_from=date.today() - timedelta(days=SPAN_DAYS + 30),
                        annual_label_quota=200_000,
                    )
                )
            growers.append((org.id, prod.id, area.id, prod.gtin))
    return {"growers": growers, "designations": marks}


def _made(i: int, n: int) -> datetime:
    # Spread evenly over the last two years, newest last (ids grow with time, as they do in the field).
    return datetime.now(UTC) - timedelta(days=SPAN_DAYS) + timedelta(seconds=SPAN_DAYS * 86_400 * i / n)


def _lot_rows(n: int, growers: list[tuple[int, int, int, str]]) -> Iterator[dict[str, Any]]:
    for lot_id in range(1, n + 1):
        org, prod, area, gtin = growers[lot_id % len(growers)]
        made = _made(lot_id, n)
        yield {
            "id": lot_id,
            "product_id": prod,
            "gtin": gtin,
            "lot_code": f"L{lot_id:08d}",
            "quantity": Decimal("100.000"),
            "unit": "kg",
            "producer_organisation_id": org,
            "origin_location_id": area,
            "production_date": made.date(),
            "expiry_date": date(2028, 6, 1),
            "status": "active",
            "created_event_id": f"bench-h-{lot_id}",
            "created_at": made,
            "product_version": 1,
        }


def _event_rows(n: int, growers: list[tuple[int, int, int, str]]) -> Iterator[dict[str, Any]]:
    for lot_id in range(1, n + 1):
        org, _, area, _ = growers[lot_id % len(growers)]
        made = _made(lot_id, n)
        yield {
            "id": f"bench-h-{lot_id}",
            "organisation_id": org,
            "seq": lot_id,  # unique per organisation: lot ids are
            "type": "harvest",
            "epcis_type": "ObjectEvent",
            "action": "ADD",
            "biz_step": "harvesting",
            "event_time": made,
            "event_tz_offset": "+07:00",
            "record_time": made,
            "location_id": area,
            "lot_id": lot_id,
            "biz_transactions": [],
            "payload": {},
            "prev_hash": "0" * 64,
            "hash": f"{lot_id:064x}",
        }


def _holding_rows(n: int, growers: list[tuple[int, int, int, str]]) -> Iterator[dict[str, Any]]:
    for lot_id in range(1, n + 1):
        yield {"lot_id": lot_id, "organisation_id": growers[lot_id % len(growers)][0], "quantity": Decimal("100")}


def _claim_rows(n: int, marks: list[int], rng: random.Random) -> Iterator[dict[str, Any]]:
    for lot_id in range(1, n + 1):
        if rng.random() < CLAIMED_SHARE:
            yield {
                "lot_id": lot_id,
                "designation_id": marks[lot_id % len(marks)],
                "source": "harvest",
                "event_id": f"bench-h-{lot_id}",
                "created_at": _made(lot_id, n),
            }


def _run_rows(lots: int, units: int, growers: list[tuple[int, int, int, str]]) -> Iterator[dict[str, Any]]:
    # One unit run per big lot (the newest lots, spread over the last months), and a lot-label run on
    # every 500th lot.
    big = max(1, units // UNITS_PER_LOT)
    for k in range(big):
        lot_id = lots - k * (lots // (big + 1))
        yield _run(k + 1, lot_id, growers, "unit", min(UNITS_PER_LOT, units - k * UNITS_PER_LOT), lots)
    for k, lot_id in enumerate(range(500, lots + 1, 500)):
        yield _run(big + k + 1, lot_id, growers, "lot", 20, lots)


def _run(run_id: int, lot_id: int, growers: list[Any], kind: str, quantity: int, lots: int) -> dict[str, Any]:
    made = _made(lot_id, lots) + timedelta(days=1)
    return {
        "id": run_id,
        "kind": kind,
        "format": "a4-4x10",
        "quantity": quantity,
        "organisation_id": growers[lot_id % len(growers)][0],
        "lot_id": lot_id,
        "status": "done",
        "done": quantity,
        "base_url": "https://id.hytrace.vn",
        "created_at": min(made, datetime.now(UTC)),
        "attempts": 1,
    }


def _unit_rows(runs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    unit_id = 0
    for run in runs:
        if run["kind"] != "unit":
            continue
        for k in range(run["quantity"]):
            unit_id += 1
            yield {
                "id": unit_id,
                "lot_id": run["lot_id"],
                "serial": f"S{k:09d}",
                "code": f"U{unit_id:08d}",
                "level": "unit",
                "print_run_id": run["id"],
                "status": "void" if k % 100 == 0 else "active",
                "created_event_id": f"bench-c-{run['id']}",
                "created_at": run["created_at"] + timedelta(seconds=k % 3600),
            }


def _scan_rows(n: int, lots: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for k in range(1, n + 1):
        yield {
            "id": k,
            "uid": f"{k:032x}",
            "lot_id": rng.randint(1, lots),
            "scanned_at": _made(k, n),
            "network": f"{k % 5000:016x}",
            "agent": "bot" if k % 10 == 0 else "mobile",
            "lang": "vi",
            "kind": "page",
        }


def _bucket_rows(scans: int) -> Iterator[dict[str, Any]]:
    # ``scans`` scans spread evenly over the quarter hours of the span, one in ten by a bot.
    first = bucket_of(_made(0, 1))
    quarters = SPAN_DAYS * 96
    for k in range(quarters):
        n = scans * (k + 1) // quarters - scans * k // quarters
        if n:
            yield {"starts_at": first + timedelta(minutes=15 * k), "people": n - n // 10, "bots": n // 10}


def load(engine: Engine, setup: dict[str, Any], lots: int, units: int, scans: int, scan_rows: int, seed: int) -> float:
    """Bulk-insert everything (Core executemany on SQLite, COPY on PostgreSQL), then ANALYZE."""
    began = time.perf_counter()
    rng = random.Random(seed)
    growers, marks = setup["growers"], setup["designations"]
    runs = list(_run_rows(lots, units, growers))
    tables: list[tuple[Any, Iterator[dict[str, Any]]]] = [
        (Lot, _lot_rows(lots, growers)),
        (Event, _event_rows(lots, growers)),
        (Holding, _holding_rows(lots, growers)),
        (LotClaim, _claim_rows(lots, marks, rng)),
        (PrintRun, iter(runs)),
        (Unit, _unit_rows(runs)),
        (Scan, _scan_rows(scan_rows, lots, rng)),
        (ScanBucket, _bucket_rows(scans)),
    ]
    with engine.begin() as conn:
        for model, rows in tables:
            name = model.__table__.name  # type: ignore[attr-defined]
            if engine.dialect.name == "postgresql":
                _copy(conn, name, rows)
            else:
                for chunk in _chunks(rows):
                    conn.execute(insert(model.__table__), chunk)  # type: ignore[attr-defined]
        if engine.dialect.name == "postgresql":
            for name in ("lot", "print_run", "unit", "scan"):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
                )
    analyze(engine)
    return time.perf_counter() - began


def analyze(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def buckets(engine: Engine) -> tuple[float, float, dict[str, int]]:
    """The lots' and codes' buckets made from the rows (as migration 0020's backfill), then checked as
    verify-log checks them: (seconds to build, seconds to check, rows compared per table)."""
    began = time.perf_counter()
    with engine.begin() as conn:
        tally_check.rebuild(connection=conn)
    built = time.perf_counter() - began
    analyze(engine)
    began = time.perf_counter()
    with engine.connect() as conn:
        rows = {name: check(conn, lambda _: None) for name, check in tally_check.CHECKS.items()}
    return built, time.perf_counter() - began, rows


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _copy(conn: Connection, name: str, rows: Iterator[dict[str, Any]]) -> None:
    first = next(rows, None)
    if first is None:
        return
    columns = list(first)
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write_row(_copied(first))
        for row in rows:
            copy.write_row(_copied(row))


def _copied(row: dict[str, Any]) -> list[Any]:
    return [json.dumps(v) if isinstance(v, list | dict) else v for v in row.values()]


def timed(engine: Engine, work: Callable[[Session], Any], runs: int) -> dict[str, float]:
    """p50/p95/max of ``work`` over ``runs`` runs, each in a session of its own (after one warm-up)."""
    samples = []
    for k in range(runs + 1):
        with session_scope(engine) as s:
            began = time.perf_counter()
            work(s)
            if k:
                samples.append(time.perf_counter() - began)
    return percentiles(samples)


def measure(engine: Engine, setup: dict[str, Any], deep: int, runs: int) -> list[dict[str, Any]]:
    """Each timed figure as a row: what, p50, p95, max, rows returned."""
    today_ = date.today()
    period = make_period(today_.replace(year=today_.year - 1), today_)
    member = Actor(role=Role.MEMBER, organisation_id=setup["growers"][0][0])
    out: list[dict[str, Any]] = []

    def row(what: str, work: Callable[[Session], Any], n: int = runs) -> None:
        found = timed(engine, work, n)
        out.append({"what": what, **found})
        print(f"  {what}: p50 {found['p50_ms']:,.1f} ms", flush=True)

    row(
        "dashboard (province, 12 months)", lambda s: dashboard.province_dashboard(session=s, actor=ADMIN, period=period)
    )
    row(
        "  organisations, products",
        lambda s: (
            dashboard.by_kind(session=s, period=period),
            dashboard.by_commune(session=s, period=period),
            dashboard.products_at(session=s, end=period.end_utc),
        ),
    )
    row("  monthly series (all)", lambda s: dashboard.monthly(session=s, period=period))
    row("    of which scans per month", lambda s: dashboard.scan_months(session=s, months=period.months()))
    row("  designation_years (grouped)", lambda s: dashboard.designation_years(session=s, actor=ADMIN, period=period))
    row("  growth", lambda s: dashboard.growth(session=s, period=period))
    years = dashboard.growth_years(session=Session(engine), period=period)
    row(
        "    of which scans per year",
        lambda s: [dashboard.actual(session=s, indicator=Indicator.SCANS, year=y) for y in years],
    )

    def usage_loop(s: Session) -> None:
        # What designation_years did before: the usage view once per designation and year.
        for mark in setup["designations"]:
            for year in period.years:
                designation_usage(session=s, actor=ADMIN, designation_id=mark, year=year)

    row("  before: usage view per designation and year", usage_loop, 1)

    with session_scope(engine) as s:
        deep_lot = s.execute(select(Lot.id).order_by(col(Lot.id).desc()).offset(deep - 1).limit(1)).scalar_one()
        deep_event = s.execute(
            select(Event.event_time, Event.id).order_by(*EVENT_ORDER.order_by()).offset(deep - 1).limit(1)
        ).one()
    lot_cursor = LOT_ORDER.encode((deep_lot,))
    event_cursor = EVENT_ORDER.encode(tuple(deep_event))
    member_deep = deep // GROWERS
    with session_scope(engine) as s:
        member_lot = s.execute(
            select(Lot.id)
            .where(Lot.producer_organisation_id == member.organisation_id)
            .order_by(col(Lot.id).desc())
            .offset(member_deep - 1)
            .limit(1)
        ).scalar_one()
    member_cursor = LOT_ORDER.encode((member_lot,))
    for who, actor, depth, cursor in (
        ("admin", ADMIN, deep, lot_cursor),
        ("member", member, member_deep, member_cursor),
    ):
        row(f"lots ({who}), first page", lambda s, a=actor: list_lots(session=s, actor=a, limit=PAGE))
        row(
            f"lots ({who}), offset {depth:,}",
            lambda s, a=actor, d=depth: list_lots(session=s, actor=a, offset=d, limit=PAGE),
        )
        row(
            f"lots ({who}), cursor at row {depth:,}",
            lambda s, a=actor, c=cursor: list_lots(session=s, actor=a, cursor=c, limit=PAGE),
        )
    row("events (admin), first page", lambda s: list_events(session=s, actor=ADMIN, limit=PAGE))
    row(f"events (admin), offset {deep:,}", lambda s: list_events(session=s, actor=ADMIN, offset=deep, limit=PAGE))
    row(
        f"events (admin), cursor at row {deep:,}",
        lambda s: list_events(session=s, actor=ADMIN, cursor=event_cursor, limit=PAGE),
    )
    return out


def run(
    kind: str, units: int, events: int, scans: int, scan_rows: int, deep: int, runs: int, seed: int
) -> dict[str, Any]:
    with fresh_database(kind) as url:
        engine = make_engine(url, pool_size=2)
        version = server_version(engine)
        setup = master_data(engine)
        loaded = load(engine, setup, events, units, scans, scan_rows, seed)
        print(
            f"{kind}: {events:,} lots and events, {units:,} units, {scans:,} scans ({scan_rows:,} scan rows)"
            f" loaded in {loaded:,.0f} s",
            flush=True,
        )
        built, checked, compared = buckets(engine)
        print(f"  lot and code buckets built in {built:,.1f} s, checked in {checked:,.1f} s: {compared}", flush=True)
        figures = measure(engine, setup, deep, runs)
        engine.dispose()
    return {
        "db": kind,
        "server": version,
        "load_s": round(loaded, 1),
        "buckets_built_s": round(built, 1),
        "buckets_checked_s": round(checked, 1),
        "bucket_rows": compared,
        "figures": figures,
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])  # type: ignore[union-attr]
    parser.add_argument("--units", type=int, default=1_000_000, help="package codes (lots of 100,000)")
    parser.add_argument("--events", type=int, default=1_000_000, help="harvest events, each making a lot")
    parser.add_argument("--scans", type=int, default=10_000_000, help="scans, as their quarter hours")
    parser.add_argument("--scan-rows", type=int, default=100_000, help="scan rows loaded (never read)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (after a warm-up)")
    parser.add_argument("--deep", type=int, default=900_000, help="the row the deep pages start at")
    args = parser.parse_args()
    if args.events <= args.deep:
        parser.error("--events must exceed --deep")
    results = [
        run(k, args.units, args.events, args.scans, args.scan_rows, args.deep, args.runs, args.seed)
        for k in kinds(args.db)
    ]
    for r in results:
        print(f"\n{r['server']} (load {r['load_s']} s, buckets built {r['buckets_built_s']} s)")
        print(
            table(
                ["what", "p50 ms", "p95 ms", "max ms", "runs"],
                [[f["what"], f["p50_ms"], f["p95_ms"], f["max_ms"], f["n"]] for f in r["figures"]],
            )
        )
    emit(
        "dashboard",
        {
            "results": results,
            "units": args.units,
            "events": args.events,
            "scans": args.scans,
            "scan_rows": args.scan_rows,
            "deep": args.deep,
        },
    )


if __name__ == "__main__":
    main()
