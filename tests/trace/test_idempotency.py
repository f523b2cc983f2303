"""Idempotency keys: a retried capture replays its first answer; a reused key with new content is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from tests import factories as f
from trace import history, locations
from trace.errors import Conflict, Forbidden, RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventLot, EventType, IdempotencyRecord
from trace.events.schemas import CommissionIn, HarvestIn, ShipIn
from trace.idempotency import insert_once
from trace.lots import Holding, Lot, Shipment, held_by
from trace.organisations import Organisation
from trace.units import Unit

D = Decimal


def counts(session: Session) -> dict[str, int]:
    return {
        m.__name__: session.exec(select(func.count()).select_from(m)).one()
        for m in (Event, EventLot, Lot, Holding, Shipment, Unit, IdempotencyRecord)
    }


def harvest_data(session: Session, o: Organisation, lot_code: str = "IDEM1", qty: str = "100") -> HarvestIn:
    prod, loc = f.product(session, o), f.location(session, o)
    return HarvestIn(product_id=prod.id, lot_code=lot_code, quantity=D(qty), location_id=loc.id, event_time=f.when(3))  # type: ignore[arg-type]


def test_a_retry_with_the_same_key_and_content_replays_the_first_answer(session: Session) -> None:
    # given a harvest and a ship captured together under a key
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    items: list[tuple[EventType, SQLModel]] = [
        (EventType.HARVEST, harvest_data(session, coop)),
        (
            EventType.SHIP,
            ShipIn(lot_id=lot_id, quantity=D(40), destination_organisation_id=proc.id, event_time=f.when(1)),
        ),  # type: ignore[arg-type]
    ]
    first = capture(session=session, actor=f.member(coop), items=items, idempotency_key="req-1")
    before = counts(session)
    # when the same request is sent again
    again = capture(session=session, actor=f.member(coop), items=items, idempotency_key="req-1")
    # then it is the same answer, and nothing new is written
    assert not first.replayed and again.replayed
    assert [e.id for e in again.events] == [e.id for e in first.events]
    assert again.lot_ids == first.lot_ids and again.shipment_id == first.shipment_id
    assert counts(session) == before
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("60")


def test_a_replayed_commission_returns_the_same_serials(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    items = [(EventType.COMMISSION, CommissionIn(lot_id=lot_id, count=5))]
    first = capture(session=session, actor=f.member(coop), items=items, idempotency_key="labels-7")  # type: ignore[arg-type]
    again = capture(session=session, actor=f.member(coop), items=items, idempotency_key="labels-7")  # type: ignore[arg-type]
    assert again.replayed and again.serials == first.serials and len(set(first.serials)) == 5
    assert session.exec(select(func.count()).select_from(Unit)).one() == 5


def test_the_same_key_with_different_content_is_refused(session: Session) -> None:
    coop = f.org(session)
    data = harvest_data(session, coop)
    capture(session=session, actor=f.member(coop), items=[(EventType.HARVEST, data)], idempotency_key="k")
    before = counts(session)
    changed = data.model_copy(update={"quantity": D("101")})
    with pytest.raises(Conflict) as info:
        capture(session=session, actor=f.member(coop), items=[(EventType.HARVEST, changed)], idempotency_key="k")
    assert info.value.code == "idempotency_key_reused"
    assert counts(session) == before


def test_keys_belong_to_one_organisation(session: Session) -> None:
    # two organisations may pick the same key for unrelated requests
    a, b = f.org(session), f.org(session)
    first = capture(
        session=session,
        actor=f.member(a),
        items=[(EventType.HARVEST, harvest_data(session, a, "KA"))],
        idempotency_key="1",
    )
    second = capture(
        session=session,
        actor=f.member(b),
        items=[(EventType.HARVEST, harvest_data(session, b, "KB"))],
        idempotency_key="1",
    )
    assert not second.replayed and second.events[0].id != first.events[0].id


def test_a_refused_capture_does_not_burn_its_key(session: Session) -> None:
    # a request refused by a rule may be fixed and sent again under the same key
    coop = f.org(session)
    data = harvest_data(session, coop)
    too_much = ShipIn(lot_id=999_999, quantity=D(1), destination_organisation_id=coop.id)  # type: ignore[arg-type]
    with pytest.raises(RuleViolation):
        capture(
            session=session,
            actor=f.member(coop),
            items=[(EventType.HARVEST, data), (EventType.SHIP, too_much)],
            idempotency_key="r",
        )
    assert session.exec(select(IdempotencyRecord)).first() is None
    result = capture(session=session, actor=f.member(coop), items=[(EventType.HARVEST, data)], idempotency_key="r")
    assert not result.replayed and result.lot_ids


@pytest.mark.parametrize("key", ["", "x" * 101])
def test_malformed_keys_are_refused(session: Session, key: str) -> None:
    coop = f.org(session)
    with pytest.raises(RuleViolation) as info:
        capture(
            session=session,
            actor=f.member(coop),
            items=[(EventType.HARVEST, harvest_data(session, coop))],
            idempotency_key=key,
        )
    assert info.value.code == "bad_idempotency_key"


def test_keys_need_an_organisation(session: Session) -> None:
    with pytest.raises(Forbidden) as info:
        capture(
            session=session,
            actor=f.ADMIN,
            items=[(EventType.HARVEST, HarvestIn(product_id=1, lot_code="A", quantity=D(1)))],
            idempotency_key="k",
        )
    assert info.value.code == "not_a_writer"


def test_identical_harvests_without_a_key_are_both_recorded(session: Session) -> None:
    coop = f.org(session)
    data = harvest_data(session, coop, "SAME1")
    # identical but for the lot code, which must differ (a lot is born once)
    lots = [
        capture(session=session, actor=f.member(coop), items=[(EventType.HARVEST, d)])
        for d in (data, data.model_copy(update={"lot_code": "SAME2"}))
    ]
    assert lots[0].events[0].id != lots[1].events[0].id
    assert session.exec(select(func.count()).select_from(Lot).where(Lot.product_id == data.product_id)).one() == 2


def test_identical_ships_without_a_key_are_both_real(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    data = ShipIn(lot_id=lot_id, quantity=D(30), destination_organisation_id=proc.id, event_time=f.when(1))  # type: ignore[arg-type]
    first = capture(session=session, actor=f.member(coop), items=[(EventType.SHIP, data)])
    second = capture(session=session, actor=f.member(coop), items=[(EventType.SHIP, data)])
    assert first.shipment_id != second.shipment_id and not second.replayed
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("40")


def test_a_row_whose_key_another_request_took_first_gives_way_to_that_row(session: Session) -> None:
    # given a place registered under a key (as by a first request that won the race past the replay check)
    coop = f.org(session)
    first = locations.create_location(
        session=session,
        actor=f.member(coop),
        idempotency_key="form-1",
        data=locations.LocationCreate(kind="warehouse", name="Kho 1", commune_code=f.COMMUNE),
    )  # type: ignore[arg-type]
    late = locations.Location(
        kind="warehouse",
        name="Kho 1",
        commune_code=f.COMMUNE,
        organisation_id=coop.id,  # type: ignore[arg-type]
        request_key="form-1",
    )
    # when the second request's row meets the unique index: the first row stands, nothing else is written
    assert insert_once(session=session, row=late, replay=lambda: first) is first
    # and while the first is not to be found yet, the caller is asked to retry
    with pytest.raises(Conflict) as raised:
        insert_once(
            session=session,
            row=locations.Location(
                kind="warehouse",
                name="Kho 2",
                commune_code=f.COMMUNE,  # type: ignore[arg-type]
                organisation_id=coop.id,
                request_key="form-1",
            ),
            replay=lambda: None,
        )
    assert raised.value.code == "retry"
    assert (
        session.exec(
            select(func.count()).select_from(locations.Location).where(locations.Location.organisation_id == coop.id)
        ).one()
        == 1
    )


def test_a_places_versions_keep_what_it_is_not_the_key_of_the_form_that_made_it(session: Session) -> None:
    coop = f.org(session)
    data = locations.LocationCreate(
        kind="growing_area",
        name="Vườn nhãn Hồng Châu",
        code="VN-HY-KEY-01",  # type: ignore[arg-type]
        commune_code=f.COMMUNE,
    )
    place = locations.create_location(session=session, actor=f.member(coop), data=data, idempotency_key="form-77")
    assert place.request_key == "form-77"  # kept on the row, where retries look for it
    (first,) = history.history(session=session, entity="location", entity_id=place.id)  # type: ignore[arg-type]
    assert first.data["name"] == "Vườn nhãn Hồng Châu" and "request_key" not in first.data
