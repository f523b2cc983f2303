"""verify-log recomputes every derived table from the events alone: an insider's edit to any of them is
named, row and all.

One world is built once per module in a database of its own (every kind of event, every kind of
correction, a hold, a release, a recall that reaches a transformation's output, EPCIS capture with and
without sent ids). Each insider test edits one row straight in the database inside a transaction, runs
the verifier in that transaction, and rolls the edit back. The suite runs this on SQLite and on
PostgreSQL (.ci/run runs it on both).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session, select

from tests import factories as f
from tests.conftest import Databases, migrate
from trace import cli
from trace.access import Actor, Role
from trace.epcis import document, vocab
from trace.epcis.capture import capture_document
from trace.errors import Forbidden
from trace.events import derived, verify_jobs
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import (
    CommissionIn,
    CorrectionIn,
    DecommissionIn,
    InspectIn,
    LossIn,
    PackIn,
    SellIn,
    StoreIn,
    UnitRef,
)
from trace.events.verify_jobs import VerifyJob, VerifyStatus
from trace.lots import Lot, LotStatus
from trace.platform.config import get_settings
from trace.platform.db import make_engine, session_scope
from trace.recalls.holds import hold, release
from trace.recalls.models import ReasonIn
from trace.recalls.recall import recall
from trace.scans.record import new_scan, write
from trace.units import Unit
from workers import ops


@dataclass
class World:
    url: str
    engine: Engine
    lot: int  # the grower's main lot: shipped, transformed, labelled, packed, stored, inspected
    output: int  # a transformation's output, held and released, partly sold and lost
    recalled: int  # a transformation's output the recall of its input reached


def _cap(session: Session, actor: Actor, kind: EventType, data: Any) -> Any:
    return capture(session=session, actor=actor, items=[(kind, data)])


def _correct(session: Session, actor: Actor, event_id: str) -> None:
    _cap(session, actor, EventType.CORRECTION, CorrectionIn(event_id=event_id, reason="incorrect_data"))


def _build(session: Session) -> World:
    grower, processor = f.org(session), f.org(session, "processor")
    inspectors = f.org(session, "authority")
    g, p = f.member(grower), f.member(processor)
    inspector = Actor(role=Role.INSPECTOR, organisation_id=inspectors.id, user_id=None, name="inspector")
    reason = ReasonIn(reason="Mẫu kiểm nghiệm vượt ngưỡng dư lượng")
    lot = f.harvest(session, grower, "100", days_ago=9).lot_ids[0]
    # Shipments: one received in two parts, one corrected before receipt, one whose receipt was corrected.
    whole = f.ship(session, grower, lot, processor, "60", days_ago=8).shipment_id
    f.receive(session, processor, whole, "20", days_ago=7.5)
    f.receive(session, processor, whole, None, days_ago=7.4)
    cancelled = f.ship(session, grower, lot, processor, "10", days_ago=7).events[0].id
    _correct(session, g, cancelled)
    reopened = f.ship(session, grower, lot, processor, "5", days_ago=7).shipment_id
    _correct(session, p, f.receive(session, processor, reopened, "5", days_ago=6.5).events[0].id)
    # Transformations: one kept, one corrected (its output cancelled, its edges gone).
    dried = f.product(session, processor)
    output = f.transform(session, processor, [(lot, "30")], [(dried, "25")], days_ago=6).lot_ids[0]
    undone = f.transform(session, processor, [(lot, "10")], [(dried, "8")], days_ago=6)
    _correct(session, p, undone.events[0].id)
    # A harvest declared erroneous: its lot cancelled.
    _correct(session, g, f.harvest(session, grower, "50", days_ago=6).events[0].id)
    # Labels: commissioned, packed, voided; a commission, a void and a pack corrected.
    serials = _cap(session, g, EventType.COMMISSION, CommissionIn(lot_id=lot, count=6)).serials
    carton = PackIn(parent_id="urn:epc:id:sscc:0614141.0000000001", children=[UnitRef(lot_id=lot, serial=serials[0])])
    _cap(session, g, EventType.PACK, carton)
    unpacked = PackIn(parent_id="urn:epc:id:sscc:0614141.0000000002", children=[UnitRef(lot_id=lot, serial=serials[1])])
    _correct(session, g, _cap(session, g, EventType.PACK, unpacked).events[0].id)
    code = session.exec(select(Unit.code).where(Unit.lot_id == lot, Unit.serial == serials[2])).one()
    _cap(session, g, EventType.DECOMMISSION, DecommissionIn(codes=[code], reason="Tờ nhãn bị hỏng"))
    again = session.exec(select(Unit.code).where(Unit.lot_id == lot, Unit.serial == serials[3])).one()
    voided = _cap(session, g, EventType.DECOMMISSION, DecommissionIn(codes=[again], reason="In nhầm tờ nhãn"))
    _correct(session, g, voided.events[0].id)
    _correct(session, g, _cap(session, g, EventType.COMMISSION, CommissionIn(lot_id=lot, count=2)).events[0].id)
    # Store, inspect, sell, loss; a hold released; a hold left in place.
    store = f.location(session, grower, "warehouse")
    _cap(session, g, EventType.STORE, StoreIn(lot_id=lot, location_id=store.id))  # type: ignore[arg-type]
    _cap(session, inspector, EventType.INSPECT, InspectIn(lot_id=lot, result="pass"))
    _cap(session, p, EventType.SELL, SellIn(lot_id=output, quantity=Decimal(5)))  # type: ignore[arg-type]
    _cap(session, p, EventType.LOSS, LossIn(lot_id=output, quantity=Decimal(1), reason="damage"))  # type: ignore[arg-type]
    hold(session=session, actor=p, lot_id=output, data=reason)
    release(session=session, actor=p, lot_id=output, data=reason)
    held = f.harvest(session, grower, "10", days_ago=5).lot_ids[0]
    hold(session=session, actor=g, lot_id=held, data=reason)
    # A recall reaching a transformation's output; a lot sold out (consumed).
    source = f.harvest(session, grower, "40", days_ago=5).lot_ids[0]
    sent = f.ship(session, grower, source, processor, "40", days_ago=4).shipment_id
    f.receive(session, processor, sent, None, days_ago=3.5)
    recalled = f.transform(session, processor, [(source, "40")], [(dried, "30")], days_ago=3).lot_ids[0]
    recall(session=session, actor=inspector, lot_id=source, data=reason)
    sold = f.harvest(session, grower, "7", days_ago=2).lot_ids[0]
    _cap(session, g, EventType.SELL, SellIn(lot_id=sold, quantity=Decimal(7)))  # type: ignore[arg-type]
    # EPCIS capture: an event sent with its own id, one without (its id is the hash of what was sent).
    area, fresh = f.location(session, grower), f.product(session, grower)
    sent_id = f"urn:uuid:{uuid.uuid4()}"
    events = [
        {**_harvest(fresh, area, "EP-1"), "eventID": sent_id},
        _harvest(fresh, area, "EP-2"),
    ]
    capture_document(session=session, actor=g, document=document.document(events))
    # Scans of a unit's code and of the lot's: several networks, a place shared, a bot, a rescan.
    unit_id = session.exec(select(Unit.id).where(Unit.lot_id == lot).order_by(Unit.id)).first()
    write(
        session=session,
        scans=[
            new_scan(
                lot_id=lot,
                unit_id=unit,
                client_ip=ip,
                user_agent=agent,
                lang="vi",
                kind="page",
                place=place,
                at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC) + timedelta(minutes=minutes),
            )
            for unit, ip, agent, place, minutes in (
                (unit_id, "198.51.100.1", "Mozilla/5.0 (Linux; Android 14) Mobile", (20.64, 106.05), 0),
                (unit_id, "198.51.100.2", "Mozilla/5.0 (Linux; Android 14) Mobile", None, 20),
                (unit_id, "192.0.2.1", "Mozilla/5.0 (iPhone) Mobile", None, 50),
                (None, "203.0.113.9", "Googlebot/2.1", None, 65),
            )
        ],
    )
    session.commit()
    return World("", session.get_bind(), lot, output, recalled)  # type: ignore[arg-type]


def _harvest(product: Any, area: Any, lot: str) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-11-01T08:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantityList": [{"epcClass": vocab.lot_class(product.gtin, lot), "quantity": 12.5, "uom": "KGM"}],
        "bizLocation": {"id": vocab.location_uri(location_id=area.id, gln=area.gln, kind=area.kind, code=area.code)},
    }


@pytest.fixture(scope="module")
def world(databases: Databases) -> Iterator[World]:
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=4)  # a verify job's read, its heartbeats, a test's look beside
    with Session(engine) as session:
        built = _build(session)
    built.url, built.engine = url, engine
    yield built
    engine.dispose()


def _verify(connection: Connection) -> derived.DerivedReport:
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        return derived.verify(session=session)


def test_a_log_of_every_kind_of_event_and_correction_verifies_whole(world: World) -> None:
    with Session(world.engine) as session:
        report = derived.verify(session=session)
        statuses = {lot.id: lot.status for lot in session.exec(select(Lot))}
    assert report.ok, report.difference
    # Every table was compared, and the world holds what the edits below need.
    assert all(report.checked[table] > 0 for table in derived.STAGES), report.checked
    assert statuses[world.recalled] == LotStatus.RECALLED
    assert {LotStatus.CANCELLED, LotStatus.ON_HOLD, LotStatus.CONSUMED, LotStatus.ACTIVE} <= set(statuses.values())


def test_the_cli_reports_the_chains_and_the_derived_tables(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--database-url", world.url, "verify-log", "--progress"]) == cli.OK
    out = capsys.readouterr()
    assert "derived tables recomputed from the events" in out.out and "100%" in out.err


def test_ids_recomputed_under_another_public_address_are_named_with_that_address(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the log recorded under the default public base URL, verified as if the instance had moved
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://moi.example.vn")
    get_settings.cache_clear()
    with Session(world.engine) as session:
        report = derived.verify(session=session)
    # then the first own event whose form names our URIs differs, and the report says under which base
    assert not report.ok and report.difference is not None
    assert report.difference.table == "epcis_event_id"
    assert "its URIs under https://moi.example.vn" in report.difference.problem


Edit = Callable[[Connection, World], dict[str, Any]]  # makes the edit; returns what the report must name


def _one(connection: Connection, sql: str, **params: Any) -> Any:
    return connection.execute(text(sql), params).one()


def _without_triggers(c: Connection) -> None:
    """What an insider with the database's owner rights does first: drop the append-only triggers."""
    if c.dialect.name == "postgresql":
        c.execute(text("DROP TRIGGER event_lot_append_only ON event_lot"))
    else:
        c.execute(text("DROP TRIGGER event_lot_no_update"))
        c.execute(text("DROP TRIGGER event_lot_no_delete"))


def _event_lot_delta(c: Connection, w: World) -> dict[str, Any]:
    _without_triggers(c)
    row = _one(c, "SELECT id FROM event_lot WHERE lot_id = :lot AND role = 'output'", lot=w.lot)
    c.execute(text("UPDATE event_lot SET quantity = 9999, delta = 9999 WHERE id = :id"), {"id": row.id})
    return {"table": "event_lot", "id": row.id}


def _event_lot_deleted(c: Connection, w: World) -> dict[str, Any]:
    _without_triggers(c)
    row = _one(
        c, "SELECT id, event_id FROM event_lot WHERE lot_id = :lot AND role = 'input' ORDER BY id LIMIT 1", lot=w.lot
    )
    c.execute(text("DELETE FROM event_lot WHERE id = :id"), {"id": row.id})
    return {"table": "event_lot", "event_id": row.event_id}


def _holding(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT organisation_id FROM holding WHERE lot_id = :lot AND quantity > 0", lot=w.output)
    c.execute(
        text("UPDATE holding SET quantity = quantity + 50 WHERE lot_id = :lot AND organisation_id = :org"),
        {"lot": w.output, "org": row.organisation_id},
    )
    return {"table": "holding", "lot_id": w.output, "organisation_id": row.organisation_id}


def _holding_granted(c: Connection, w: World) -> dict[str, Any]:
    # A zero row makes an organisation "involved" with a lot: it would see the lot's private trail.
    org = _one(c, "SELECT id FROM organisation WHERE id NOT IN (SELECT organisation_id FROM holding) LIMIT 1").id
    c.execute(
        text("INSERT INTO holding (lot_id, organisation_id, quantity) VALUES (:lot, :org, 0)"),
        {"lot": w.lot, "org": org},
    )
    return {"table": "holding", "lot_id": w.lot, "organisation_id": org}


def _edge(c: Connection, w: World) -> dict[str, Any]:
    c.execute(text("DELETE FROM lot_edge WHERE child_lot_id = :lot"), {"lot": w.output})
    return {"table": "lot_edge", "child_lot_id": w.output}


def _edge_forged(c: Connection, w: World) -> dict[str, Any]:
    event = _one(c, "SELECT event_id FROM lot_edge WHERE child_lot_id = :lot", lot=w.output).event_id
    c.execute(
        text("INSERT INTO lot_edge (parent_lot_id, child_lot_id, event_id) VALUES (:p, :c, :e)"),
        {"p": w.recalled, "c": w.output, "e": event},
    )
    return {"table": "lot_edge", "parent_lot_id": w.recalled}


def _lot_quantity(c: Connection, w: World) -> dict[str, Any]:
    c.execute(text("UPDATE lot SET quantity = 9999 WHERE id = :id"), {"id": w.lot})
    return {"table": "lot", "id": w.lot, "problem": "quantity"}


def _lot_status(c: Connection, w: World) -> dict[str, Any]:
    c.execute(text("UPDATE lot SET status = 'active' WHERE id = :id"), {"id": w.recalled})  # a recall undone
    return {"table": "lot", "id": w.recalled, "problem": "status"}


def _lot_code(c: Connection, w: World) -> dict[str, Any]:
    c.execute(text("UPDATE lot SET lot_code = 'FORGED-1' WHERE id = :id"), {"id": w.output})
    return {"table": "event_lot"}  # the transformation's output row no longer finds its lot


def _shipment(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT id FROM shipment WHERE status = 'received' ORDER BY id LIMIT 1")
    c.execute(text("UPDATE shipment SET received_quantity = received_quantity - 1 WHERE id = :id"), {"id": row.id})
    return {"table": "shipment", "id": row.id}


def _shipment_reopened(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT id FROM shipment WHERE status = 'cancelled'")
    c.execute(text("UPDATE shipment SET status = 'open' WHERE id = :id"), {"id": row.id})
    return {"table": "shipment", "id": row.id}


def _unit_status(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT id FROM unit WHERE status = 'void' ORDER BY id LIMIT 1")
    c.execute(text("UPDATE unit SET status = 'active' WHERE id = :id"), {"id": row.id})  # a voided code revived
    return {"table": "unit", "id": row.id, "problem": "status"}


def _unit_parent(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT id FROM unit WHERE parent_id IS NOT NULL")
    c.execute(text("UPDATE unit SET parent_id = 'urn:epc:id:sscc:0614141.0000000009' WHERE id = :id"), {"id": row.id})
    return {"table": "unit", "id": row.id, "problem": "parent_id"}


def _its_commission(row: Any) -> dict[str, Any]:
    # A commission commits to its serials by a digest: a unit row added, renamed or deleted breaks it,
    # and the difference names the commission, not one serial.
    return {
        "table": "unit",
        "created_event_id": row.created_event_id,
        "problem": f"commission event {row.created_event_id}",
    }


def _unit_forged(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT * FROM unit ORDER BY id LIMIT 1")
    c.execute(
        text(
            "INSERT INTO unit (lot_id, serial, code, level, parent_id, status, created_event_id, created_at) "
            "VALUES (:lot, 'FORGED', 'ZZZZZZZZZ', 'unit', NULL, 'active', :event, :at)"
        ),
        {"lot": row.lot_id, "event": row.created_event_id, "at": row.created_at},
    )
    return _its_commission(row)


def _unit_serial(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT * FROM unit WHERE status = 'active' AND parent_id IS NULL ORDER BY id LIMIT 1")
    c.execute(text("UPDATE unit SET serial = 'RENAMED' WHERE id = :id"), {"id": row.id})
    return _its_commission(row)


def _unit_deleted(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT * FROM unit WHERE parent_id IS NULL ORDER BY id DESC LIMIT 1")
    c.execute(text("DELETE FROM unit WHERE id = :id"), {"id": row.id})
    return _its_commission(row)


def _epcis_id(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT event_id FROM epcis_event_id ORDER BY event_id LIMIT 1")
    c.execute(text("UPDATE epcis_event_id SET epcis_id = 'urn:uuid:forged' WHERE event_id = :id"), {"id": row.event_id})
    return {"table": "epcis_event_id", "event_id": row.event_id}


def _epcis_sent_id(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT event_id FROM epcis_event_id WHERE epcis_id LIKE 'urn:uuid:%' ORDER BY event_id LIMIT 1")
    c.execute(
        text("UPDATE epcis_event_id SET epcis_id = :new WHERE event_id = :id"),
        {"new": f"urn:uuid:{uuid.uuid4()}", "id": row.event_id},
    )
    return {"table": "epcis_event_id", "event_id": row.event_id}


def _scan_count(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT code_id FROM scan_tally WHERE scope = 'unit'")
    c.execute(
        text("UPDATE scan_tally SET scans = scans + 100 WHERE scope = 'unit' AND code_id = :id"), {"id": row.code_id}
    )
    return {"table": "scan_tally", "scope": "unit", "code_id": row.code_id, "problem": "scans"}


def _scan_deleted(c: Connection, w: World) -> dict[str, Any]:
    # A scan that is no network's first, so that nothing else refers to it: the lot's count no longer adds up.
    row = _one(c, "SELECT id, lot_id FROM scan WHERE id NOT IN (SELECT scan_id FROM scan_sighting) ORDER BY id LIMIT 1")
    c.execute(text("DELETE FROM scan WHERE id = :id"), {"id": row.id})
    return {"table": "scan_tally", "scope": "lot", "code_id": row.lot_id, "problem": "scans"}


def _scan_networks(c: Connection, w: World) -> dict[str, Any]:
    # Fewer networks, so that a copied code stops being flagged.
    c.execute(text("UPDATE scan_tally SET networks = 1 WHERE scope = 'unit'"))
    return {"table": "scan_tally", "scope": "unit", "problem": "networks"}


def _scan_place(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT code_id, network FROM scan_sighting WHERE scope = 'unit' AND place IS NULL LIMIT 1")
    c.execute(
        text("UPDATE scan_sighting SET place = '10.8,106.7' WHERE scope = 'unit' AND network = :n"), {"n": row.network}
    )
    return {"table": "scan_sighting", "code_id": row.code_id, "network": row.network, "problem": "place"}


def _scan_sighting_deleted(c: Connection, w: World) -> dict[str, Any]:
    row = _one(c, "SELECT code_id, network FROM scan_sighting WHERE scope = 'lot' ORDER BY network LIMIT 1")
    c.execute(text("DELETE FROM scan_sighting WHERE scope = 'lot' AND network = :n"), {"n": row.network})
    return {"table": "scan_sighting", "scope": "lot", "code_id": row.code_id, "network": row.network}


def _scan_bucket(c: Connection, w: World) -> dict[str, Any]:
    c.execute(text("UPDATE scan_bucket SET people = people + bots, bots = 0"))  # the bot's fetch passed as a person's
    return {"table": "scan_bucket", "problem": "people"}


EDITS: dict[str, Edit] = {
    "an event's lot row's quantity": _event_lot_delta,
    "an event's lot row deleted": _event_lot_deleted,
    "a holding": _holding,
    "a holding granted to an outsider": _holding_granted,
    "a lineage edge deleted": _edge,
    "a lineage edge forged": _edge_forged,
    "a lot's quantity": _lot_quantity,
    "a recalled lot made active": _lot_status,
    "a lot's code": _lot_code,
    "a shipment's received quantity": _shipment,
    "a cancelled shipment reopened": _shipment_reopened,
    "a voided unit revived": _unit_status,
    "a unit moved to another carton": _unit_parent,
    "a unit forged": _unit_forged,
    "a unit's serial changed": _unit_serial,
    "a unit deleted": _unit_deleted,
    "a stored EPCIS id": _epcis_id,
    "an id sent with a captured event": _epcis_sent_id,
    "a code's scan count": _scan_count,
    "a scan deleted": _scan_deleted,
    "a code's networks": _scan_networks,
    "a place on a first sighting": _scan_place,
    "a first sighting deleted": _scan_sighting_deleted,
    "a quarter hour's scans by people": _scan_bucket,
}


@pytest.mark.parametrize("edit", list(EDITS.values()), ids=list(EDITS))
def test_an_insider_edit_to_a_derived_table_is_named(world: World, edit: Edit) -> None:
    with world.engine.connect() as connection:
        transaction = connection.begin()
        try:
            expected = edit(connection, world)
            report = _verify(connection)
        finally:
            transaction.rollback()
    assert not report.ok and report.difference is not None, report
    found = report.difference
    assert found.table == expected.pop("table"), found
    if "problem" in expected:
        assert found.problem.startswith(expected.pop("problem")), found
    assert expected.items() <= found.row.items(), found


# --- the whole verify as a worker job ---------------------------------------------------------------------

ADMIN = Actor(role=Role.ADMIN, organisation_id=None, user_id=None, name="admin")


def _queued(engine: Engine) -> int:
    with session_scope(engine) as session:
        return verify_jobs.request(session=session, actor=ADMIN).id  # type: ignore[return-value]


def test_a_verify_job_records_its_progress_and_its_report_and_runs_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _queued(world.engine)
    assert _queued(world.engine) == job_id  # one already queued is answered, not a second one
    seen: list[int] = []
    real = verify_jobs.heartbeat

    def watch(**kwargs: Any) -> bool:
        ok = real(**kwargs)
        with Session(world.engine) as look:  # what another process reads while the job runs
            job = look.get(VerifyJob, job_id)
            assert job is not None and job.status == VerifyStatus.RUNNING
            seen.append(job.progress)
        return ok

    monkeypatch.setattr(verify_jobs, "heartbeat", watch)
    assert ops.run_verify(job_id, engine=world.engine) == "done"
    assert len(seen) > 3 and seen == sorted(seen) and 0 <= seen[0] < 50 < seen[-1] <= 99, seen
    with Session(world.engine) as session:
        job = session.get(VerifyJob, job_id)
        assert job is not None and job.status == VerifyStatus.DONE and job.progress == 100 and job.ok is True
        assert job.report and job.report["chain"]["ok"] and job.report["derived"]["checked"]["unit"] > 0
    assert ops.run_verify(job_id, engine=world.engine) == "skipped"  # a second delivery does nothing
    assert _queued(world.engine) != job_id  # a finished verify is not answered again: a new one is queued


def test_a_verify_job_names_what_an_insider_changed(world: World) -> None:
    job_id = _queued(world.engine)
    change = "UPDATE holding SET quantity = quantity + :by WHERE lot_id = :lot AND quantity > 0"
    with session_scope(world.engine) as session:
        session.execute(text(change), {"by": 50, "lot": world.output})
    try:
        assert ops.run_verify(job_id, engine=world.engine) == "done"
    finally:
        with session_scope(world.engine) as session:
            session.execute(text(change), {"by": -50, "lot": world.output})
    with Session(world.engine) as session:
        job = session.get(VerifyJob, job_id)
        assert job is not None and job.ok is False and job.status == VerifyStatus.DONE
        difference = job.report["derived"]["difference"]  # type: ignore[index]
        assert difference["table"] == "holding" and difference["row"]["lot_id"] == world.output


def test_only_the_province_administrator_asks_for_a_verify(world: World) -> None:
    with session_scope(world.engine) as session:
        for role in (Role.MEMBER, Role.ORG_ADMIN, Role.INSPECTOR):
            someone = Actor(role=role, organisation_id=1, user_id=None, name="not the admin")
            with pytest.raises(Forbidden):
                verify_jobs.request(session=session, actor=someone)
            with pytest.raises(Forbidden):
                verify_jobs.recent(session=session, actor=someone)
