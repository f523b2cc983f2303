"""Who sees what: private event fields are redacted for other organisations; lots are shown to those involved."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session

from tests import factories as f
from trace import lot_views, lots, organisations
from trace.access import Actor, Role
from trace.errors import NotFound
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.query import events_public, get_event, list_events
from trace.events.schemas import BizTransaction, InputUsed, InspectIn
from trace.organisations import Organisation

INSPECTOR = Actor(role=Role.INSPECTOR, organisation_id=None, name="QLTT Hưng Yên")
PRIVATE = ("inputs_used", "kde", "note")


def private_harvest(session: Session, o: Organisation) -> Event:
    """A harvest carrying every kind of private field."""
    used = InputUsed(kind="fertiliser", name="Phân hữu cơ vi sinh", applied_on=f.today() - timedelta(days=40))
    result = f.harvest(
        session,
        o,
        "100",
        inputs_used=[used],
        kde={"brix": 21},
        note="Giá bán nội bộ",
        biz_transactions=[BizTransaction(type="po", id="DH-77")],
    )
    event = session.get(Event, result.events[0].id)
    assert event is not None
    return event


def test_other_organisations_and_the_public_see_no_private_fields(session: Session) -> None:
    coop, other = f.org(session), f.org(session, "retailer")
    event = private_harvest(session, coop)
    for actor in (f.member(other), None):
        shown = events_public(session=session, actor=actor, events=[event])[0]
        assert shown.redacted and shown.biz_transactions is None
        assert not set(PRIVATE) & set(shown.payload)
        # what is public stays: the lot code and quantity
        assert (shown.payload["lot_code"], shown.payload["quantity"]) == (event.payload["lot_code"], "100.000")


@pytest.mark.parametrize("who", ["own member", "own admin", "inspector", "province admin"])
def test_the_organisation_itself_and_inspectors_see_everything(session: Session, who: str) -> None:
    coop = f.org(session)
    event = private_harvest(session, coop)
    actor = {
        "own member": f.member(coop),
        "own admin": f.member(coop, Role.ORG_ADMIN),
        "inspector": INSPECTOR,
        "province admin": f.ADMIN,
    }[who]
    shown = events_public(session=session, actor=actor, events=[event])[0]
    assert not shown.redacted
    assert shown.biz_transactions == [{"type": "po", "id": "DH-77"}]
    assert shown.payload["inputs_used"][0]["name"] == "Phân hữu cơ vi sinh"
    assert (shown.payload["kde"], shown.payload["note"]) == ({"brix": 21}, "Giá bán nội bộ")


def test_a_producer_may_publish_its_farming_practices_and_nothing_else(session: Session) -> None:
    coop, other = f.org(session), f.org(session)
    organisations.update_organisation(
        session=session,
        actor=f.ADMIN,
        organisation_id=coop.id,  # type: ignore[arg-type]
        data=organisations.OrganisationUpdate(practices_public=True),
    )
    event = private_harvest(session, coop)
    for actor in (f.member(other), None):
        shown = events_public(session=session, actor=actor, events=[event])[0]
        assert shown.payload["inputs_used"][0]["name"] == "Phân hữu cơ vi sinh"
        assert "kde" not in shown.payload and "note" not in shown.payload and shown.biz_transactions is None


def test_inspection_photos_are_private_to_the_inspecting_organisation(session: Session) -> None:
    coop, other = f.org(session), f.org(session)
    lot_id = f.harvest(session, coop, "10").lot_ids[0]
    result = capture(
        session=session,
        actor=f.member(coop),
        items=[(EventType.INSPECT, InspectIn(lot_id=lot_id, result="pass", photos=["p/1.jpg"]))],
    )
    event = session.get(Event, result.events[0].id)
    assert event is not None
    assert "photos" not in events_public(session=session, actor=f.member(other), events=[event])[0].payload
    assert events_public(session=session, actor=f.member(coop), events=[event])[0].payload["photos"] == ["p/1.jpg"]


def test_involvement_in_a_lot(session: Session) -> None:
    # given a lot produced by a cooperative, shipped (not yet received) to a processor
    coop, proc, stranger = f.org(session), f.org(session, "processor"), f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    f.ship(session, coop, lot_id, proc, "10")
    lot = lots.get_lot(session=session, lot_id=lot_id)
    # then producer, addressee and inspectors are involved; an unrelated organisation is not
    assert lots.involved(session=session, actor=f.member(coop), lot=lot)
    assert lots.involved(session=session, actor=f.member(proc), lot=lot)
    assert lots.involved(session=session, actor=INSPECTOR, lot=lot)
    assert not lots.involved(session=session, actor=f.member(stranger), lot=lot)
    assert not lots.involved(session=session, actor=Actor(role=Role.MEMBER, organisation_id=None), lot=lot)
    # and holder details are shown only to those involved
    assert lot_views.to_public(session=session, actor=f.member(stranger), lot=lot).holders is None
    holders = lot_views.to_public(session=session, actor=f.member(proc), lot=lot).holders
    assert holders is not None and {(h.organisation_id, h.quantity) for h in holders} == {(coop.id, Decimal(90))}


def test_an_unrelated_organisation_cannot_read_or_list_others_events(session: Session) -> None:
    coop, proc, stranger = f.org(session), f.org(session, "processor"), f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    ship_id = f.ship(session, coop, lot_id, proc, "10").events[0].id
    with pytest.raises(NotFound):
        get_event(session=session, actor=f.member(stranger), event_id=ship_id)
    with pytest.raises(NotFound):
        list_events(session=session, actor=f.member(stranger), lot_id=lot_id)
    assert list_events(session=session, actor=f.member(stranger)) == []
    # the addressee reads the shipment, redacted; an inspector lists everything
    assert get_event(session=session, actor=f.member(proc), event_id=ship_id).redacted
    assert {e.id for e in list_events(session=session, actor=INSPECTOR)} >= {ship_id}
