"""Helpers for tests that handle whole databases (backup, transfer, migrations, CLI): realistic
committed data, row counts, tampering past the append-only triggers, a reachable PostgreSQL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from tests import factories as f
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import CommissionIn, CorrectionIn
from trace.platform.config import get_settings
from trace.platform.db import session_scope
from trace.schema import metadata
from trace.transparency import keys, log

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class World:
    """Ids of what ``populate`` made."""

    org_ids: tuple[int, int, int]
    fresh_lot_id: int
    dried_lot_id: int
    corrected_event_id: str


def populate(engine: Engine) -> World:
    """Commit a small but complete supply chain: three organisations, every common event kind,
    a correction, units, an idempotency record, a user, and payloads with Vietnamese text,
    floats, dates and decimals (the values a database move could distort)."""
    with session_scope(engine) as s:
        coop, proc, shop = f.org(s), f.org(s, "processor"), f.org(s, "retailer")
        f.user(s, coop)
        fresh = f.product(s, coop)
        lot = f.harvest(
            s,
            coop,
            "500.125",
            prod=fresh,
            biz_transactions=[{"type": "inv", "id": "HĐ-0001/Hưng Yên"}],
            kde={"độ ngọt (brix)": 21.5, "ghi chú": "Nhãn lồng loại 1 — đợt đầu", "số thùng": 40},
            inputs_used=[
                {
                    "kind": "fertiliser",
                    "name": "Phân hữu cơ vi sinh",
                    "applied_on": date(2026, 6, 1),
                    "pre_harvest_interval_days": 14,
                }
            ],
        ).lot_ids[0]
        mistake = f.harvest(s, coop, "7", prod=fresh, days_ago=4.5)
        capture(
            session=s,
            actor=f.member(coop),
            idempotency_key="sửa-lỗi-1",
            items=[
                (EventType.CORRECTION, CorrectionIn(event_id=mistake.events[0].id, reason="did_not_occur")),
            ],
        )
        shipment = f.ship(s, coop, lot, proc, "200").shipment_id
        assert shipment is not None
        f.receive(s, proc, shipment)
        dried = f.product(s, proc, category="longan_dried")
        out = f.transform(s, proc, [(lot, "200")], [(dried, "40.125")]).lot_ids[0]
        capture(session=s, actor=f.member(proc), items=[(EventType.COMMISSION, CommissionIn(lot_id=out, count=3))])
        to_shop = f.ship(s, proc, out, shop, "10.5", days_ago=1).shipment_id
        assert to_shop is not None
        f.receive(s, shop, to_shop, days_ago=0.5)
        ids = (coop.id, proc.id, shop.id)
        assert None not in ids
        return World(ids, lot, out, mistake.events[0].id)  # type: ignore[arg-type]


def counts(engine: Engine) -> dict[str, int]:
    """Rows in every table of the models but the one-row tables each database's migration makes (the change
    counter, the public log's head)."""
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in metadata.sorted_tables
            if t.name not in ("change_epoch", "tlog_head")
        }


def tamper(engine: Engine, event_id: str, payload: str = '{"forged": true}') -> None:
    """Alter one event row behind the application's back (past the append-only triggers)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE event DISABLE TRIGGER USER"))
            conn.execute(
                text("UPDATE event SET payload = CAST(:p AS JSON) WHERE id = :id"), {"p": payload, "id": event_id}
            )
            conn.execute(text("ALTER TABLE event ENABLE TRIGGER USER"))
            return
        triggers = (
            conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'event'"
                    " AND sql LIKE '%UPDATE%'"
                )
            )
            .scalars()
            .all()
        )
        for name in triggers:
            conn.execute(text(f'DROP TRIGGER "{name}"'))
        conn.execute(text("UPDATE event SET payload = :p WHERE id = :id"), {"p": payload, "id": event_id})


def postgres_base_url() -> str | None:
    """A reachable PostgreSQL server (HYTRACE_TEST_POSTGRES_URL, or the local default), else None."""
    url = os.environ.get("HYTRACE_TEST_POSTGRES_URL") or os.environ.get("HYTRACE_TEST_DATABASE_URL") or DEFAULT_POSTGRES
    if not url.startswith("postgresql"):
        url = DEFAULT_POSTGRES
    probe = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with probe.connect():
            return url
    except SQLAlchemyError:
        return None
    finally:
        probe.dispose()


def append_to_log(session: Session) -> int:
    """What the workers do every few seconds: append every pending event to the public log and sign it."""
    signing = keys.signing(get_settings())
    appended = 0
    while done := log.tick(session=session, signing=signing):
        appended += done
    return appended
