"""Recall at scale: recalling a lot whose forward trace reaches 100,000 units, and its report.

Run from the repository root::

    .venv/bin/python -m bench.recall [--db sqlite|postgres|both] [--units 100000] [--lots 100]
                                     [--holders 3] [--samples 5]

On a fresh database per kind, through the domain layer: a cooperative harvests one lot, splits it
into ``--lots / 10`` dried lots, each split again into 10 boxed lots (``--lots`` in all, two levels
of transformation); each boxed lot is shipped in part to ``--holders`` retailers (the last one's
shipments left in transit) and carries ``--units / --lots`` unit codes registered in bulk with
``trace.units.register_units``. Then, timed:

- ``recall``: ``trace.recalls.recall.recall`` of the harvest lot by its producer, committed (the
  forward walk, every reached lot marked, the event, Recall and RecallLot rows, the unit count);
- ``recall again``: the same call a second time (idempotent: answered by the first recall);
- ``report csv`` / ``report xlsx``: ``trace.recalls.report.rows`` then ``to_csv`` / ``to_xlsx``, as
  the API runs them, ``--samples`` times each.

Goal: the recall and each report under 5 s on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bench.common import (
    ADMIN,
    COMMUNE,
    base_parser,
    emit,
    fresh_database,
    kinds,
    percentiles,
    server_version,
    table,
)
from trace import locations, organisations, products
from trace.access import Actor, Role
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import (
    HarvestIn,
    ReceiveIn,
    ShipIn,
    TransformIn,
    TransformInput,
    TransformOutput,
)
from trace.lots import Lot, LotStatus, Shipment
from trace.platform.db import make_engine, session_scope
from trace.recalls import recall, report
from trace.recalls.models import ReasonIn
from trace.units import register_units

FAN = 10  # boxed lots made from each dried lot
BOX_KG = Decimal(1000)
SHIP_KG = Decimal(100)
GOAL_S = 5.0


def _org(s: Session, kind: str, name: str, n: int) -> tuple[int, Actor]:
    org = organisations.create_organisation(
        session=s,
        actor=ADMIN,
        data=organisations.OrganisationCreate(
            kind=kind,
            name=name,
            tax_code=f"{9300000000 + n}",
            commune_code=COMMUNE,
            address=f"{n} Phố Hiến, Hưng Yên",  # type: ignore[arg-type]
            phone=f"0221 386 {n:04d}",
            email=f"bench{n}@example.vn",
        ),
    )
    assert org.id is not None
    return org.id, Actor(role=Role.MEMBER, organisation_id=org.id, name=f"bench {name}")


def build(engine: Engine, lots: int, units: int, holders: int) -> tuple[Actor, int]:
    """The supply chain above, made through the domain layer; returns the producer and the harvest lot."""
    dried_lots = math.ceil(lots / FAN)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        _, coop = _org(s, "cooperative", "HTX đo thu hồi", 0)
        shops = [_org(s, "retailer", f"Cửa hàng {k + 1}", k + 1) for k in range(holders)]
        area = locations.create_location(
            session=s,
            actor=coop,
            data=locations.LocationCreate(
                kind="growing_area", name="Vùng trồng đo", code="VN-HY-BENCH-RECALL", commune_code=COMMUNE
            ),
        )  # type: ignore[arg-type]
        made = [
            products.create_product(
                session=s, actor=coop, data=products.ProductCreate(name_vi=name, category=category, unit="kg")
            )
            for name, category in (
                ("Nhãn lồng tươi", "longan_fresh"),
                ("Long nhãn sấy", "longan_dried"),
                ("Long nhãn hộp", "longan_dried"),
            )
        ]
        fresh, dried, boxed = (p.id for p in made)
        harvest = capture(
            session=s,
            actor=coop,
            items=[
                (
                    EventType.HARVEST,
                    HarvestIn(
                        product_id=fresh,
                        lot_code="NL-THUHOI-01",
                        quantity=BOX_KG * FAN * dried_lots,
                        location_id=area.id,  # type: ignore[arg-type]
                        event_time=now - timedelta(days=10),
                    ),
                )
            ],
        ).lot_ids[0]
        middle = capture(
            session=s,
            actor=coop,
            items=[
                (
                    EventType.TRANSFORM,
                    TransformIn(
                        inputs=[TransformInput(lot_id=harvest, quantity=BOX_KG * FAN * dried_lots)],
                        outputs=[
                            TransformOutput(product_id=dried, lot_code=f"LN-{k:04d}", quantity=BOX_KG * FAN)  # type: ignore[arg-type]
                            for k in range(dried_lots)
                        ],
                        event_time=now - timedelta(days=9),
                    ),
                )
            ],
        ).lot_ids
        boxes: list[int] = []
        for k, parent in enumerate(middle):
            wanted = min(FAN, lots - len(boxes))
            boxes += capture(
                session=s,
                actor=coop,
                items=[
                    (
                        EventType.TRANSFORM,
                        TransformIn(
                            inputs=[TransformInput(lot_id=parent, quantity=BOX_KG * FAN)],
                            outputs=[
                                TransformOutput(product_id=boxed, lot_code=f"HOP-{k:04d}-{j:02d}", quantity=BOX_KG)  # type: ignore[arg-type]
                                for j in range(wanted)
                            ],
                            event_time=now - timedelta(days=8),
                        ),
                    )
                ],
            ).lot_ids
        for k, lot_id in enumerate(boxes):
            count = units // lots + (1 if k < units % lots else 0)
            register_units(session=s, lot_id=lot_id, count=count, event_id=f"bench-commission-{lot_id}")
        for shop_id, _ in shops:
            ships = [
                (
                    EventType.SHIP,
                    ShipIn(
                        lot_id=lot_id,
                        quantity=SHIP_KG,
                        destination_organisation_id=shop_id,
                        event_time=now - timedelta(days=7),
                    ),
                )
                for lot_id in boxes
            ]
            for i in range(0, len(ships), 500):
                capture(session=s, actor=coop, items=ships[i : i + 500])  # type: ignore[arg-type]
        s.flush()
        for shop_id, shop in shops[:-1]:  # the last shop's goods are still on the road
            open_ids = s.execute(select(Shipment.id).where(Shipment.to_organisation_id == shop_id)).scalars().all()  # type: ignore[arg-type]
            receipts = [
                (EventType.RECEIVE, ReceiveIn(shipment_id=i, event_time=now - timedelta(days=6))) for i in open_ids
            ]
            for i in range(0, len(receipts), 500):
                capture(session=s, actor=shop, items=receipts[i : i + 500])  # type: ignore[arg-type]
    return coop, harvest


def _timed(engine: Engine, work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    with session_scope(engine) as s:
        out = work(s)
    return time.perf_counter() - started, out


def run(kind: str, lots: int, units: int, holders: int, samples: int) -> dict[str, Any]:
    """Build, recall and report on one fresh database."""
    with fresh_database(kind) as url:
        engine = make_engine(url, pool_size=2)
        try:
            began = time.perf_counter()
            coop, harvest = build(engine, lots, units, holders)
            print(
                f"[{kind}] built {lots:,} boxed lots, {units:,} units, {holders} holders in "
                f"{time.perf_counter() - began:.1f} s; recalling ...",
                flush=True,
            )
            why = ReasonIn(reason="Bench: dư lượng vượt ngưỡng")
            recall_s, made = _timed(engine, lambda s: recall.recall(session=s, actor=coop, lot_id=harvest, data=why))
            again_s, again = _timed(engine, lambda s: recall.recall(session=s, actor=coop, lot_id=harvest, data=why))
            assert again.id == made.id and made.units_affected == units, (again.id, made.id, made.units_affected)
            with Session(engine) as s:
                recalled = s.execute(
                    select(func.count()).select_from(Lot).where(Lot.status == LotStatus.RECALLED)
                ).scalar_one()  # type: ignore[arg-type]
            assert recalled == made.lots_affected == 1 + math.ceil(lots / FAN) + lots, recalled
            timings: dict[str, list[float]] = {"report csv": [], "report xlsx": []}
            sizes: dict[str, int] = {}
            for _ in range(samples):
                for name, render in (
                    ("report csv", lambda r: report.to_csv(r).encode()),
                    ("report xlsx", lambda r: report.to_xlsx(r, title="recall")),
                ):
                    seconds, body = _timed(
                        engine,
                        lambda s, render=render: render(report.rows(session=s, actor=coop, recall_id=made.id)[1]),
                    )
                    timings[name].append(seconds)
                    sizes[name] = len(body)
            with session_scope(engine) as s:
                rows = len(report.rows(session=s, actor=coop, recall_id=made.id)[1])
            return {
                "db": kind,
                "database": server_version(engine),
                "lots_affected": made.lots_affected,
                "units_affected": made.units_affected,
                "report_rows": rows,
                "recall_s": recall_s,
                "recall_again_s": again_s,
                "bytes": sizes,
                **{k: percentiles(v) for k, v in timings.items()},
            }
        finally:
            engine.dispose()


def main() -> None:
    """Measure, print a table and the BENCH_JSON line."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000, help="units on the recalled lot's descendants")
    parser.add_argument("--lots", type=int, default=100, help="boxed lots carrying the units (≤ 1,000)")
    parser.add_argument("--holders", type=int, default=3, help="retailers each boxed lot was shipped to")
    parser.add_argument("--samples", type=int, default=5, help="report runs timed per format")
    args = parser.parse_args()
    if not 1 <= args.lots <= 100 * FAN:
        parser.error("--lots must be between 1 and 1,000 (one transformation makes at most 100 lots)")
    results = [run(kind, args.lots, args.units, args.holders, args.samples) for kind in kinds(args.db)]
    rows: list[list[Any]] = []
    for r in results:
        what = f"{r['lots_affected']:,} lots, {r['units_affected']:,} units"
        rows.append([r["db"], "recall (committed)", what, round(r["recall_s"] * 1000, 1), ""])
        rows.append([r["db"], "recall again (idempotent)", what, round(r["recall_again_s"] * 1000, 1), ""])
        for name in ("report csv", "report xlsx"):
            rows.append(
                [
                    r["db"],
                    f"{name} (p50 of {r[name]['n']})",
                    f"{r['report_rows']:,} rows",
                    r[name]["p50_ms"],
                    f"{r['bytes'][name] / 1e3:,.0f} kB",
                ]
            )
    print()
    print(table(["db", "what", "size", "ms", "output"], rows))
    worst = max(
        max(r["recall_s"], r["report csv"]["max_ms"] / 1000, r["report xlsx"]["max_ms"] / 1000) for r in results
    )
    print(f"slowest: {worst:.2f} s — {'meets' if worst < GOAL_S else 'MISSES'} the {GOAL_S:.0f} s goal.")
    emit("recall", {"runs": results, "goal_s": GOAL_S, "meets_goal": worst < GOAL_S})


if __name__ == "__main__":
    main()
