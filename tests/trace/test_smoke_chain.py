"""A first end-to-end walk through the domain: harvest → ship → receive → transform → trace."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session

from tests import factories as f
from trace.events import chain
from trace.lineage import Direction, lot_ids
from trace.lots import held_by


def test_harvest_ship_receive_transform_trace(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "500").lot_ids[0]
    shipment = f.ship(session, coop, lot_id, proc, "200").shipment_id
    f.receive(session, proc, shipment)
    dried = f.product(session, proc, category="longan_dried")
    out = f.transform(session, proc, [(lot_id, "200")], [(dried, "40")]).lot_ids[0]
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == Decimal("300")
    assert held_by(session=session, lot_id=lot_id, organisation_id=proc.id) == Decimal("0")
    assert set(lot_ids(session=session, lot_id=out, direction=Direction.BACKWARD)) == {lot_id, out}
    assert chain.verify(session=session).ok
