"""EPCIS 2.0 at scale: exporting a 100,000-event chain as JSON-LD, and capturing a 10,000-event document.

Run from the repository root::

    .venv/bin/python -m bench.epcis [--db sqlite|postgres|both] [--events 100000] [--capture 10000]

On a fresh database per kind, through the domain layer: a cooperative harvests one lot and records
``--events - 1`` more events on it (storing, inspections and sales of 1 kg, in batches of 1,000; each
event's CBV hash id is computed and stored as it is recorded). Then, timed:

- ``export``: ``trace.epcis.query.lot_chain`` of that lot streamed through ``trace.epcis.document.stream``
  to bytes, as ``GET /epcis/lots/{id}/events`` answers it (the document is parsed back and its events
  counted; 1,000 of them are checked against GS1's schema);
- ``capture``: ``trace.epcis.capture.capture_document`` of an EPCISDocument of ``--capture`` harvests as
  another system would send it (no eventIDs: we compute their hash ids), committed — schema validation,
  mapping, the rules, the chain and the ids included.

Goal: both under 10 s on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
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
    server_version,
    table,
)
from trace import locations, organisations, products
from trace.access import Actor, Role
from trace.epcis import document, vocab
from trace.epcis import query as epcis_query
from trace.epcis.capture import capture_document
from trace.epcis.models import EpcisEventId
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.schemas import HarvestIn, InspectIn, SellIn, StoreIn
from trace.platform.db import make_engine, session_scope

GOAL_S = 10.0
BATCH = 1000


def build(engine: Engine, events: int) -> tuple[Actor, int, Any, Any]:
    """A cooperative, its place and product, and one lot with ``events`` events in all."""
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        org = organisations.create_organisation(
            session=s,
            actor=ADMIN,
            data=organisations.OrganisationCreate(
                kind="cooperative", name="HTX đo EPCIS", tax_code="9400000001", commune_code=COMMUNE
            ),
        )  # type: ignore[arg-type]
        coop = Actor(role=Role.MEMBER, organisation_id=org.id, name="bench coop")
        area = locations.create_location(
            session=s,
            actor=coop,
            data=locations.LocationCreate(
                kind="growing_area", name="Vùng trồng đo EPCIS", code="VN-HY-BENCH-EPCIS", commune_code=COMMUNE
            ),
        )  # type: ignore[arg-type]
        shed = locations.create_location(
            session=s,
            actor=coop,
            data=locations.LocationCreate(
                kind="warehouse", name="Kho đo EPCIS", code="KHO-BENCH-EPCIS", commune_code=COMMUNE
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
                        product_id=fresh.id,
                        lot_code="NL-EPCIS-01",
                        quantity=Decimal(events),
                        location_id=area.id,  # type: ignore[arg-type]
                        event_time=now - timedelta(days=30),
                    ),
                )
            ],
        ).lot_ids[0]
        area_id, shed_id, product = area.id, shed.id, (fresh.id, fresh.gtin)
    start = now - timedelta(days=29)
    step = timedelta(days=28) / max(events, 1)
    made = 1
    while made < events:
        items: list[Any] = []
        for k in range(made, min(events, made + BATCH)):
            when = start + step * k
            kind = k % 3
            if kind == 0:
                items.append((EventType.STORE, StoreIn(lot_id=lot, location_id=shed_id, event_time=when)))  # type: ignore[arg-type]
            elif kind == 1:
                items.append(
                    (EventType.INSPECT, InspectIn(lot_id=lot, result="pass", location_id=shed_id, event_time=when))
                )
            else:
                items.append((EventType.SELL, SellIn(lot_id=lot, quantity=Decimal(1), event_time=when)))
        with session_scope(engine) as s:
            capture(session=s, actor=coop, items=items, minimal=True)
        made += len(items)
    return coop, lot, (area_id, product), area_id


def _harvests(area: Any, product: tuple[int, str], count: int) -> dict[str, Any]:
    place = vocab.location_uri(location_id=area, gln=None, kind="growing_area", code="VN-HY-BENCH-EPCIS")
    base = datetime.now(UTC) - timedelta(days=2)
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": (base + timedelta(seconds=k)).isoformat(),
            "eventTimeZoneOffset": "+00:00",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "quantityList": [{"epcClass": vocab.lot_class(product[1], f"CAP-{k:06d}"), "quantity": 12.5, "uom": "KGM"}],
            "bizLocation": {"id": place},
            "readPoint": {"id": place},
        }
        for k in range(count)
    ]
    return document.document(events)


def run(kind: str, events: int, captured: int) -> dict[str, Any]:
    """Build, export, capture on one fresh database."""
    with fresh_database(kind) as url:
        engine = make_engine(url, pool_size=2)
        try:
            began = time.perf_counter()
            coop, lot, (area, product), _ = build(engine, events)
            built_s = time.perf_counter() - began
            print(
                f"[{kind}] recorded {events:,} events (hash ids included) in {built_s:.1f} s; exporting ...", flush=True
            )
            started = time.perf_counter()
            with session_scope(engine, write=False) as s:
                body = b"".join(document.stream(epcis_query.lot_chain(session=s, actor=coop, lot_id=lot)))
            export_s = time.perf_counter() - started
            parsed = json.loads(body)
            exported = parsed["epcisBody"]["eventList"]
            assert len(exported) == events, (len(exported), events)
            sample = {**parsed, "epcisBody": {"eventList": exported[:: max(1, len(exported) // 1000)]}}
            assert document.schema_errors(sample) == []
            with Session(engine) as s:
                ids = s.execute(select(func.count()).select_from(EpcisEventId)).scalar_one()  # type: ignore[arg-type]
            assert ids == events, (ids, events)
            doc = _harvests(area, product, captured)
            print(
                f"[{kind}] exported {len(body) / 1e6:.1f} MB in {export_s:.2f} s; capturing {captured:,} events ...",
                flush=True,
            )
            started = time.perf_counter()
            with session_scope(engine) as s:
                outcome = capture_document(session=s, actor=coop, document=doc)
            capture_s = time.perf_counter() - started
            with Session(engine) as s:
                total = s.execute(select(func.count()).select_from(Event)).scalar_one()  # type: ignore[arg-type]
            assert outcome.recorded == captured and total == events + captured, (outcome.recorded, total)
            return {
                "db": kind,
                "server": server_version(engine),
                "events": events,
                "build_s": round(built_s, 2),
                "export_s": round(export_s, 3),
                "export_mb": round(len(body) / 1e6, 1),
                "capture_events": captured,
                "capture_s": round(capture_s, 3),
                "ok": export_s < GOAL_S and capture_s < GOAL_S,
            }
        finally:
            engine.dispose()


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the exported chain")
    parser.add_argument("--capture", type=int, default=10_000, help="events in the captured document")
    args = parser.parse_args()
    results = [run(kind, args.events, args.capture) for kind in kinds(args.db)]
    print(
        table(
            ["db", "chain events", "export s", "MB", "capture events", "capture s", f"< {GOAL_S:.0f} s"],
            [
                [
                    r["db"],
                    r["events"],
                    r["export_s"],
                    r["export_mb"],
                    r["capture_events"],
                    r["capture_s"],
                    "yes" if r["ok"] else "NO",
                ]
                for r in results
            ],
        )
    )
    emit("epcis", {"goal_s": GOAL_S, "results": results})


if __name__ == "__main__":
    main()
