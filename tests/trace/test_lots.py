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
    Lot,
    LotStatus,
    ShipmentStatus,
    allowed_actions,
    get_incoming,
    incoming_shipments,
    inputs_of,
    lots_by_id,
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


def test_a_lot_page_offers_its_holders_writers_ship_print_store_and_sell_and_pack_while_packages_are_loose(
    session: Session,
) -> None:
    from tests.trace.test_packing import SSCC, _stock
    from trace import packing
    from trace.units import display_code

    # given an organisation holding a lot, and its packages labelled
    s = _stock(session, 2)
    writers = [f.member(s.org), f.member(s.org, Role.ORG_ADMIN)]
    for actor in writers:
        assert allowed_actions(session=session, actor=actor, lot=s.lot) == ["ship", "print", "store", "sell", "pack"]
    # when every package is in a carton, there is nothing left to pack
    packing.pack(session=session, actor=s.actor, parent=SSCC, codes="\n".join(display_code(u.code) for u in s.units))
    for actor in writers:
        assert allowed_actions(session=session, actor=actor, lot=s.lot) == ["ship", "print", "store", "sell"]


def test_no_action_is_offered_to_another_organisation_a_reader_of_everything_or_on_a_stopped_lot(
    session: Session,
) -> None:
    coop, buyer, stranger = f.org(session), f.org(session, "processor"), f.org(session, "processor")
    lot = session.get(Lot, f.harvest(session, coop, "50").lot_ids[0])
    assert lot is not None
    f.ship(session, coop, lot.id, buyer, "20")  # type: ignore[arg-type]
    # another organisation, even one the lot is on its way to (it holds none yet): nothing to do with it
    for actor in (f.member(stranger), f.member(buyer), f.ADMIN, Actor(role=Role.INSPECTOR, organisation_id=None)):
        assert allowed_actions(session=session, actor=actor, lot=lot) == [], actor
    # an account of the holder that does not record for it (an inspector of the organisation), or none at all
    assert allowed_actions(session=session, actor=Actor(role=Role.INSPECTOR, organisation_id=coop.id), lot=lot) == []
    assert allowed_actions(session=session, actor=Actor(role=Role.MEMBER, organisation_id=None), lot=lot) == []
    # a lot on hold, recalled or used up is moved by nobody
    for status in (LotStatus.ON_HOLD, LotStatus.RECALLED, LotStatus.CONSUMED, LotStatus.CANCELLED):
        lot.status = status
        assert allowed_actions(session=session, actor=f.member(coop), lot=lot) == [], status
    # and an organisation that shipped all it held is offered nothing either
    lot.status = LotStatus.ACTIVE
    f.ship(session, coop, lot.id, buyer, "30")  # type: ignore[arg-type]
    assert allowed_actions(session=session, actor=f.member(coop), lot=lot) == []


def test_the_inputs_of_a_lot_are_the_lots_it_was_made_from_directly(session: Session) -> None:
    coop, processor = f.org(session), f.org(session, "processor")
    first, second = (f.harvest(session, coop, "40").lot_ids[0] for _ in range(2))
    for lot_id in (first, second):
        f.receive(session, processor, f.ship(session, coop, lot_id, processor, "40").shipment_id)  # type: ignore[arg-type]
    dried = f.product(session, processor)
    made = f.transform(session, processor, [(second, "10"), (first, "10")], [(dried, "5")]).lot_ids[0]
    packed = f.transform(session, processor, [(made, "5")], [(dried, "5")], days_ago=1).lot_ids[0]
    # the direct inputs, by id: not the inputs' own inputs
    assert [lot.id for lot in inputs_of(session=session, lot_id=made)] == [first, second]
    assert [lot.id for lot in inputs_of(session=session, lot_id=packed)] == [made]
    assert inputs_of(session=session, lot_id=first) == []  # a harvest was made from nothing


def test_lots_by_id_reads_the_lots_asked_for_and_leaves_out_ids_of_none(session: Session) -> None:
    coop = f.org(session)
    ids = [f.harvest(session, coop, "10").lot_ids[0] for _ in range(3)]
    found = lots_by_id(session=session, ids=[ids[0], ids[2], None, ids[2] + 10_000])
    assert sorted(found) == [ids[0], ids[2]] and all(found[i].id == i for i in found)
    assert lots_by_id(session=session, ids=[]) == {}
