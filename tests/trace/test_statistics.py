"""The planner's statistics after bulk writes: a worker's round analyses what changed (PostgreSQL
autovacuum may be off, as on the machine where a never-analysed table made registration take minutes)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
from sqlmodel import Session

from tests import factories as f
from trace.platform.db import refresh_statistics
from trace.units import register_units


def _analysed(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT relname, last_analyze FROM pg_stat_user_tables")).all()
    return dict(rows)  # type: ignore[arg-type]


def test_a_bulk_registration_is_analysed_by_the_next_round_and_then_nothing_is(postgres_engine: Engine) -> None:
    # given 5,000 units registered in one transaction on a table never analysed
    with Session(postgres_engine) as session:
        harvest = f.harvest(session, f.org(session), "100")
        register_units(session=session, lot_id=harvest.lot_ids[0], count=5000, event_id=harvest.event_ids[0])
        session.execute(text("SELECT pg_stat_force_next_flush()"))
        session.commit()
    assert _analysed(postgres_engine)["unit"] is None
    deadline = time.monotonic() + 10
    analysed: list[str] = []
    while not analysed and time.monotonic() < deadline:  # the write's counts reach the statistics views
        analysed = refresh_statistics(postgres_engine)
        time.sleep(0.2)
    # then the round analysed the unit table (and the planner knows its rows), and the next finds nothing
    assert "unit" in analysed and _analysed(postgres_engine)["unit"] is not None
    with postgres_engine.connect() as conn:
        estimate = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'unit'")).scalar_one()
    assert estimate == 5000
    assert refresh_statistics(postgres_engine) == []
