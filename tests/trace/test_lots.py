"""Who may see a lot, and the shipments an organisation sends and receives: one rule in trace/ for the
API and the workspace pages alike."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import Session

from tests import factories as f
from trace.access import Actor, Role
from trace.errors import NotFound
from trace.lots import (
    ShipmentStatus,
    get_incoming,
    incoming_shipments,
    outgoing_shipments,
    visible_lot,
)


def test_a_lot_is_visible_to_its_producer_its_holders_its_receivers_and_readers_of_everything(session: Session) -> None:
    coop, buyer, stranger = f.org(session), f.org(session, "processor"), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "50").lot_ids[0]
    f.ship(session, coop, lot_id, buyer, "20")
    for actor in (f.member(coop), f.member(buyer), f.ADMIN, Actor(role=Role.INSPECTOR, organisation_id=None)):
        assert visible_lot(session=session, actor=actor, lot_id=lot_id).id == lot_id
    # another organisation's lot and a lot that does not exist get the same answer: nothing leaks
    with pytest.raises(NotFound) as theirs:
        visible_lot(session=session, actor=f.member(stranger), lot_id=lot_id)
    with pytest.raises(NotFound) as missing:
        visible_lot(session=session, actor=f.member(stranger), lot_id=lot_id + 10_000)
    assert str(theirs.value).replace(str(lot_id), "#") == str(missing.value).replace(str(lot_id + 10_000), "#")
    assert theirs.value.code == missing.value.code
    # an account of no organisation sees nothing that is not everyone's
    with pytest.raises(NotFound):
        visible_lot(session=session, actor=Actor(role=Role.MEMBER, organisation_id=None), lot_id=lot_id)


def test_shipments_in_and_out_are_each_organisations_own(session: Session) -> None:
    coop, buyer, stranger = f.org(session), f.org(session, "processor"), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "50").lot_ids[0]
    first = f.ship(session, coop, lot_id, buyer, "20", days_ago=4).shipment_ids[0]
    second = f.ship(session, coop, lot_id, buyer, "10", days_ago=3).shipment_ids[0]
    f.receive(session, buyer, first, days_ago=2)
    # the receiver: open shipments by default, all of them when asked, newest first, each with its lot
    assert [(s.id, lot.id) for s, lot in incoming_shipments(session=session, actor=f.member(buyer))] == [
        (second, lot_id)
    ]
    everything = incoming_shipments(session=session, actor=f.member(buyer), open_only=False)
    assert [(s.id, s.status) for s, _ in everything] == [
        (second, ShipmentStatus.OPEN),
        (first, ShipmentStatus.RECEIVED),
    ]
    assert get_incoming(session=session, actor=f.member(buyer), shipment_id=second).quantity == Decimal(10)
    # the sender: what it sent, newest first
    assert [s.id for s, _ in outgoing_shipments(session=session, actor=f.member(coop))] == [second, first]
    # nobody else sees them, nor learns that they exist
    assert incoming_shipments(session=session, actor=f.member(stranger), open_only=False) == []
    assert outgoing_shipments(session=session, actor=f.member(buyer)) == []
    assert (
        incoming_shipments(session=session, actor=f.ADMIN) == [] == outgoing_shipments(session=session, actor=f.ADMIN)
    )
    for actor, shipment_id in ((f.member(stranger), second), (f.member(coop), second), (f.member(buyer), second + 999)):
        with pytest.raises(NotFound):
            get_incoming(session=session, actor=actor, shipment_id=shipment_id)
