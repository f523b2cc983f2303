"""The per-organisation hash chain: it verifies on a real log, names the first broken link after
tampering, and the database itself refuses UPDATE and DELETE on the event tables."""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from tests import factories as f
from trace.errors import RuleViolation
from trace.events import chain
from trace.events.ledger import capture
from trace.events.models import ChainHead, Event, EventType
from trace.events.schemas import (
    BizTransaction,
    CommissionIn,
    CorrectionIn,
    InspectIn,
    LossIn,
    PackIn,
    SellIn,
    StoreIn,
    UnitRef,
)
from trace.organisations import Organisation

D = Decimal
APPEND_ONLY = ("event", "event_lot")


def dialect(session: Session) -> str:
    return session.connection().dialect.name


def sql(session: Session, statement: str, **params: object) -> None:
    session.connection().execute(text(statement), params)


def unlock(session: Session, table: str, verb: str) -> None:
    """Switch off an append-only trigger inside the test's transaction (rolled back with it)."""
    if dialect(session) == "postgresql":
        sql(session, f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
    else:
        sql(session, f"DROP TRIGGER {table}_no_{verb}")


def triggers(session: Session) -> set[str]:
    """The enabled append-only triggers on the event tables."""
    if dialect(session) == "postgresql":
        rows = session.connection().execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid IN ('event'::regclass, 'event_lot'::regclass) "
                "AND NOT tgisinternal AND tgenabled <> 'D'"
            )
        )
    else:
        rows = session.connection().execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    return {row[0] for row in rows}


EXPECTED_TRIGGERS = {
    "postgresql": {"event_append_only", "event_no_truncate", "event_lot_append_only", "event_lot_no_truncate"},
    "sqlite": {"event_no_update", "event_no_delete", "event_lot_no_update", "event_lot_no_delete"},
}


def events_of(session: Session, o: Organisation) -> list[Event]:
    return list(session.exec(select(Event).where(Event.organisation_id == o.id).order_by(Event.seq)))  # type: ignore[arg-type]


def populate(session: Session) -> tuple[Organisation, Organisation, Organisation]:
    """A log with every kind of event, interleaved across three organisations."""
    coop, proc, shop = f.org(session), f.org(session, "processor"), f.org(session, "retailer")
    lot_a = f.harvest(session, coop, "123.456", note="Thu hoạch đợt 1 — nhãn lồng", kde={"độ_ngọt": 21.5}).lot_ids[0]
    lot_b = f.harvest(session, coop, "50").lot_ids[0]
    shipment = f.ship(session, coop, lot_a, proc, "100.5").shipment_id
    f.receive(session, proc, shipment, "100.5")  # type: ignore[arg-type]
    dried = f.product(session, proc, category="longan_dried")
    out = f.transform(session, proc, [(lot_a, "100.5")], [(dried, "20.1")]).lot_ids[0]
    member = f.member(proc)
    serials = capture(
        session=session, actor=member, items=[(EventType.COMMISSION, CommissionIn(lot_id=out, count=3))]
    ).serials
    warehouse = f.location(session, proc, "warehouse")
    capture(
        session=session,
        actor=member,
        items=[
            (
                EventType.PACK,
                PackIn(parent_id="(00)095212340000000017", children=[UnitRef(lot_id=out, serial=s) for s in serials]),
            ),
            (EventType.STORE, StoreIn(lot_id=out, location_id=warehouse.id)),  # type: ignore[arg-type]
            (EventType.INSPECT, InspectIn(lot_id=out, result="pass")),
        ],
    )
    shipment = f.ship(session, proc, out, shop, "10", days_ago=1).shipment_id
    f.receive(session, shop, shipment, days_ago=0.5)  # type: ignore[arg-type]
    sale = (
        capture(
            session=session,
            actor=f.member(shop),
            items=[
                (
                    EventType.SELL,
                    SellIn(lot_id=out, quantity=D("2.25"), biz_transactions=[BizTransaction(type="inv", id="HD-0001")]),
                )
            ],
        )
        .events[0]
        .id
    )
    capture(
        session=session,
        actor=f.member(shop),
        items=[(EventType.CORRECTION, CorrectionIn(event_id=sale, reason="incorrect_data"))],
    )
    capture(
        session=session,
        actor=f.member(coop),
        items=[(EventType.LOSS, LossIn(lot_id=lot_b, quantity=D(1), reason="sample"))],
    )
    return coop, proc, shop


def test_a_populated_log_across_organisations_verifies_as_stored(session: Session) -> None:
    coop, proc, shop = populate(session)
    # read back from the database, not from the session's memory, so stored content is what is hashed
    session.expire_all()
    report = chain.verify(session=session)
    assert report.ok, report
    assert report.organisations == 3
    assert report.events == len(session.exec(select(Event.id)).all())
    # each organisation's chain is its own: numbered from 1 without gaps, linked from the genesis hash
    for o in (coop, proc, shop):
        events = events_of(session, o)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[0].prev_hash == chain.GENESIS
        assert all(later.prev_hash == earlier.hash for earlier, later in pairwise(events))
        head = session.get(ChainHead, o.id)
        assert head is not None and (head.seq, head.hash) == (events[-1].seq, events[-1].hash)
        assert chain.verify(session=session, organisation_id=o.id).ok


def test_interleaved_writers_each_keep_a_valid_chain(session: Session) -> None:
    a, b = f.org(session), f.org(session)
    for _ in range(4):
        f.harvest(session, a, "1")
        f.harvest(session, b, "2")
    session.expire_all()
    assert [e.seq for e in events_of(session, a)] == [1, 2, 3, 4] == [e.seq for e in events_of(session, b)]
    assert (
        chain.verify(session=session, organisation_id=a.id).ok
        and chain.verify(session=session, organisation_id=b.id).ok
    )


def test_a_refused_batch_leaves_no_gap_in_the_chain(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "10").lot_ids[0]
    with pytest.raises(RuleViolation):
        capture(
            session=session,
            actor=f.member(coop),
            items=[
                (EventType.SELL, SellIn(lot_id=lot_id, quantity=D(1))),
                (EventType.SELL, SellIn(lot_id=lot_id, quantity=D(99))),
            ],
        )
    f.harvest(session, coop, "5")
    session.expire_all()
    assert [e.seq for e in events_of(session, coop)] == [1, 2]
    assert chain.verify(session=session).ok


def test_an_altered_payload_is_detected_and_named(session: Session) -> None:
    # given a valid chain of five events, the second and fourth of which are later altered
    coop, other = f.org(session), f.org(session)
    for qty in ("10", "20", "30", "40", "50"):
        f.harvest(session, coop, qty)
    f.harvest(session, other, "1")
    events = events_of(session, coop)
    unlock(session, "event", "update")
    cast = "CAST(:p AS JSON)" if dialect(session) == "postgresql" else ":p"
    for victim in (events[1], events[3]):
        forged = {**victim.payload, "quantity": "2000.000"}
        sql(session, f"UPDATE event SET payload = {cast} WHERE id = :id", p=json.dumps(forged), id=victim.id)
    session.expire_all()
    # when the log is verified
    report = chain.verify(session=session)
    # then the first altered event is named, and the other organisation's chain still verifies
    assert not report.ok
    assert (report.broken_event_id, report.broken_organisation_id, report.broken_seq) == (events[1].id, coop.id, 2)
    assert "altered" in (report.reason or "")
    assert chain.verify(session=session, organisation_id=other.id).ok


def _delete_event(session: Session, event_id: str) -> None:
    for table in APPEND_ONLY:
        unlock(session, table, "delete")
    sql(session, "DELETE FROM event_lot WHERE event_id = :id", id=event_id)
    sql(session, "DELETE FROM event WHERE id = :id", id=event_id)
    session.expire_all()


def test_deleting_the_last_event_is_detected(session: Session) -> None:
    coop = f.org(session)
    for qty in ("10", "20", "30"):
        f.harvest(session, coop, qty)
    last = events_of(session, coop)[-1]
    _delete_event(session, last.id)
    report = chain.verify(session=session)
    assert not report.ok
    assert (report.broken_organisation_id, report.broken_seq) == (coop.id, 3)
    assert "missing at the end" in (report.reason or "")


def test_deleting_a_middle_event_is_detected_at_the_gap(session: Session) -> None:
    coop = f.org(session)
    for qty in ("10", "20", "30", "40"):
        f.harvest(session, coop, qty)
    events = events_of(session, coop)
    _delete_event(session, events[1].id)
    report = chain.verify(session=session)
    assert not report.ok
    # the first broken link is the event after the hole
    assert (report.broken_event_id, report.broken_seq) == (events[2].id, 3)
    assert "gap" in (report.reason or "")


def test_tampering_tests_left_the_append_only_triggers_in_place(session: Session) -> None:
    # runs after the tests above, whose trigger changes were rolled back with their transactions
    assert triggers(session) >= EXPECTED_TRIGGERS[dialect(session)]


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("event", "UPDATE event SET disposition = 'destroyed' WHERE id = :id"),
        ("event", "DELETE FROM event WHERE id = :id"),
        ("event_lot", "UPDATE event_lot SET quantity = 1 WHERE event_id = :id"),
        ("event_lot", "DELETE FROM event_lot WHERE event_id = :id"),
    ],
)
def test_the_database_refuses_raw_updates_and_deletes_of_events(session: Session, table: str, statement: str) -> None:
    coop = f.org(session)
    event_id = f.harvest(session, coop, "10").events[0].id
    with pytest.raises(DBAPIError) as info, session.begin_nested():
        sql(session, statement, id=event_id)
    assert f"on {table} is refused" in str(info.value)
    # and the row is untouched
    session.expire_all()
    assert chain.verify(session=session).ok
    assert session.get(Event, event_id) is not None
