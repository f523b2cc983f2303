"""What a capture answers: enough ids for the client's next step, in event order."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, select

from tests import factories as f
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import ShipIn
from trace.lots import Shipment


def test_a_batch_of_shipments_returns_every_shipment_id_in_order(session: Session) -> None:
    # given two lots of a cooperative
    coop, proc = f.org(session), f.org(session, "processor")
    first, second = f.harvest(session, coop, "10").lot_ids[0], f.harvest(session, coop, "20").lot_ids[0]
    # when both are shipped in one batch
    result = capture(
        session=session,
        actor=f.member(coop),
        items=[
            (
                EventType.SHIP,
                ShipIn(lot_id=lot, quantity=Decimal(5), destination_organisation_id=proc.id, event_time=f.when(1)),
            )  # type: ignore[arg-type]
            for lot in (first, second)
        ],
    )
    # then the answer names both shipments, in the order of the events
    by_event = {s.event_id: s.id for s in session.exec(select(Shipment))}
    assert result.shipment_ids == [by_event[e.id] for e in result.events]
    assert len(set(result.shipment_ids)) == 2 and result.shipment_id == result.shipment_ids[-1]
