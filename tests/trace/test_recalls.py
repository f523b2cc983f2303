"""Holds and recalls in the domain: who may stop a lot, what a hold and a recall change, that a recall
reaches every descendant (and only those) at once and only once, and what its report lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from tests import factories as f
from tests.api.helpers import count, snapshot
from trace.access import Actor, Role
from trace.errors import Conflict, Forbidden, NotFound, RuleViolation
from trace.events.chain import verify
from trace.events.ledger import capture
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import CorrectionIn, SellIn
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation
from trace.printing import runs
from trace.recalls import Recall, RecallLot, holds, recall, report
from trace.recalls.models import ReasonIn
from trace.units import Unit
from trace.verification import check_code

WHY = ReasonIn(reason="Dư lượng thuốc trừ sâu vượt ngưỡng (phiếu kiểm nghiệm 12/KN)")


def inspector(session: Session, kind: str = "authority") -> Actor:
    """A market inspector of a new organisation (an authority unless ``kind`` says)."""
    return Actor(role=Role.INSPECTOR, organisation_id=f.org(session, kind).id, name="kiểm soát viên")


def lot(session: Session, lot_id: int) -> Lot:
    found = session.get(Lot, lot_id)
    assert found is not None
    session.refresh(found)
    return found


def printed(session: Session, holder: Organisation, lot_id: int, quantity: int) -> list[str]:
    """Codes of a run of unit labels the holder prints for a lot."""
    run = runs.create_run(
        session=session, actor=f.member(holder), lot_id=lot_id, data=runs.PrintRunCreate(quantity=quantity)
    )
    return list(session.exec(select(Unit.code).where(Unit.print_run_id == run.id)))


@dataclass
class Chain:
    """harvest H → L1 (coop, with harvest G) → L2a, L2b (processor) → L3 (processor); G → SIB is a
    sibling branch (shares the parent G with L1, descends not from H). L2b went to a shop (10 kg
    received, 5 kg still in transit to a second shop); L2a was all used for L3."""

    coop: Organisation
    proc: Organisation
    shop: Organisation
    shop2: Organisation
    ids: dict[str, int]
    codes: dict[str, list[str]] = field(default_factory=dict)


def chain(session: Session) -> Chain:
    coop, proc = f.org(session, "cooperative"), f.org(session, "processor")
    shop = f.org(session, "retailer", address="12 Phố Hiến, Hưng Yên", phone="0221 3862 123", email="shop@example.vn")
    shop2 = f.org(session, "retailer")
    fresh = f.product(session, coop)
    dried, packed = f.product(session, coop, name_vi="Long nhãn sấy"), f.product(session, proc, name_vi="Long nhãn hộp")
    h = f.harvest(session, coop, "100", prod=fresh, days_ago=5).lot_ids[0]
    g = f.harvest(session, coop, "100", prod=fresh, days_ago=5).lot_ids[0]
    l1 = f.transform(session, coop, [(h, "80"), (g, "20")], [(dried, "40")], days_ago=4.5).lot_ids[0]
    sib = f.transform(session, coop, [(g, "30")], [(dried, "15")], days_ago=4.5).lot_ids[0]
    f.receive(session, proc, f.ship(session, coop, l1, proc, "30", days_ago=4).shipment_id, days_ago=3.5)  # type: ignore[arg-type]
    l2a, l2b = f.transform(session, proc, [(l1, "30")], [(packed, "15"), (packed, "15")], days_ago=3).lot_ids
    l3 = f.transform(session, proc, [(l2a, "15")], [(packed, "15")], days_ago=2.5).lot_ids[0]
    codes = {
        "L3": printed(session, proc, l3, 5),
        "L2b": printed(session, proc, l2b, 3),
        "SIB": printed(session, coop, sib, 4),
    }
    f.receive(session, shop, f.ship(session, proc, l2b, shop, "10", days_ago=2).shipment_id, days_ago=1.5)  # type: ignore[arg-type]
    f.ship(session, proc, l2b, shop2, "5", days_ago=1)
    ids = {"H": h, "G": g, "L1": l1, "SIB": sib, "L2a": l2a, "L2b": l2b, "L3": l3}
    return Chain(coop, proc, shop, shop2, ids, codes)


DESCENDANTS = {"H": 0, "L1": 1, "L2a": 2, "L2b": 2, "L3": 3}  # transformations away from H


def events_of(session: Session, type: EventType) -> int:
    return session.execute(select(func.count()).select_from(Event).where(Event.type == type)).scalar_one()  # type: ignore[arg-type]


def test_a_recall_reaches_every_lot_made_from_the_lot_through_three_transformations(session: Session) -> None:
    # given
    c = chain(session)
    # when the producer recalls the harvest
    found = recall.recall(session=session, actor=f.member(c.coop), lot_id=c.ids["H"], data=WHY)
    # then every descendant is recalled, with its distance; the sibling branch and the other parent are not
    assert {name: lot(session, i).status for name, i in c.ids.items()} == {
        **{name: LotStatus.RECALLED for name in DESCENDANTS},
        "G": LotStatus.ACTIVE,
        "SIB": LotStatus.ACTIVE,
    }
    reached = dict(session.exec(select(RecallLot.lot_id, RecallLot.depth).where(RecallLot.recall_id == found.id)).all())  # type: ignore[call-overload]
    assert reached == {c.ids[name]: depth for name, depth in DESCENDANTS.items()}
    assert (found.lots_affected, found.units_affected, found.organisation_id) == (5, 8, c.coop.id)
    # units printed on descendant lots read as recalled at once; the sibling's do not
    for code in c.codes["L3"] + c.codes["L2b"]:
        answer = check_code(session=session, code=code)
        assert (answer.valid, answer.status) == (False, "lot_recalled")
    assert all(check_code(session=session, code=code).valid for code in c.codes["SIB"])
    # one recall event, in the recaller's chain, on every reached lot
    event = session.get(Event, found.event_id)
    assert event is not None and (event.type, event.organisation_id, event.lot_id) == (
        EventType.RECALL,
        c.coop.id,
        c.ids["H"],
    )
    assert event.payload["reason"] == WHY.reason and event.payload["recall_id"] == found.id
    assert event.payload["previous_status"] == "active"
    on = set(session.exec(select(EventLot.lot_id).where(EventLot.event_id == event.id)))
    assert on == {c.ids[name] for name in DESCENDANTS}
    assert verify(session=session).ok


def test_recalling_a_recalled_lot_again_changes_nothing(session: Session) -> None:
    c = chain(session)
    first = recall.recall(session=session, actor=f.member(c.coop), lot_id=c.ids["H"], data=WHY)
    before = snapshot(session)
    # the same lot again, and a descendant by its own producer: the first recall answers both
    again = recall.recall(session=session, actor=f.member(c.coop), lot_id=c.ids["H"], data=ReasonIn(reason="Lần hai"))
    child = recall.recall(session=session, actor=f.member(c.proc), lot_id=c.ids["L3"], data=WHY)
    assert again.id == first.id and child.id == first.id
    assert snapshot(session) == before


def test_a_later_recall_of_an_ancestor_also_lists_lots_recalled_before(session: Session) -> None:
    c = chain(session)
    first = recall.recall(session=session, actor=f.member(c.proc), lot_id=c.ids["L2a"], data=WHY)
    assert (first.lots_affected, lot(session, c.ids["L1"]).status) == (2, LotStatus.ACTIVE)
    second = recall.recall(session=session, actor=f.member(c.coop), lot_id=c.ids["H"], data=WHY)
    assert second.id != first.id and second.lots_affected == 5
    assert events_of(session, EventType.RECALL) == 2
    assert recall.covering(session=session, lot_id=c.ids["L3"]).id == first.id  # type: ignore[union-attr]


def test_depth_counts_the_fewest_transformations(session: Session) -> None:
    coop = f.org(session)
    h = f.harvest(session, coop, "100").lot_ids[0]
    p = f.product(session, coop)
    mid = f.transform(session, coop, [(h, "50")], [(p, "50")], days_ago=3).lot_ids[0]
    both = f.transform(session, coop, [(h, "10"), (mid, "10")], [(p, "20")], days_ago=2).lot_ids[0]  # a diamond
    found = recall.recall(session=session, actor=f.member(coop), lot_id=h, data=WHY)
    depths = dict(session.exec(select(RecallLot.lot_id, RecallLot.depth).where(RecallLot.recall_id == found.id)).all())  # type: ignore[call-overload]
    assert depths == {h: 0, mid: 1, both: 1}


def test_recalled_lots_cannot_move(session: Session) -> None:
    c = chain(session)
    recall.recall(session=session, actor=f.member(c.coop), lot_id=c.ids["H"], data=WHY)
    with pytest.raises(RuleViolation) as shipped:
        f.ship(session, c.shop, c.ids["L2b"], c.proc, "1", days_ago=0.5)
    other = f.product(session, c.proc)
    with pytest.raises(RuleViolation) as transformed:
        f.transform(session, c.proc, [(c.ids["L3"], "1")], [(other, "1")], days_ago=0.5)
    assert shipped.value.code == transformed.value.code == "lot_recalled"


def test_an_authority_may_recall_any_lot_a_holder_or_stranger_may_not(session: Session) -> None:
    c = chain(session)
    refused = [
        (f.member(c.shop), "recall_not_allowed"),
        (f.member(f.org(session)), "recall_not_allowed"),
        (inspector(session, kind="cooperative"), "recall_not_allowed"),
        (f.ADMIN, "no_organisation"),
    ]
    before = snapshot(session)
    for actor, code in refused:
        with pytest.raises(Forbidden) as info:
            recall.recall(session=session, actor=actor, lot_id=c.ids["L1"], data=WHY)
        assert info.value.code == code
    assert snapshot(session) == before
    authority = inspector(session)
    found = recall.recall(session=session, actor=authority, lot_id=c.ids["L1"], data=WHY)
    event = session.get(Event, found.event_id)
    assert event is not None and event.organisation_id == authority.organisation_id == found.organisation_id


def test_a_cancelled_lot_cannot_be_recalled_or_held(session: Session) -> None:
    coop = f.org(session)
    made = f.harvest(session, coop, "10")
    capture(
        session=session,
        actor=f.member(coop),
        items=[(EventType.CORRECTION, CorrectionIn(event_id=made.event_ids[0], reason="did_not_occur"))],
    )
    lot_id = made.lot_ids[0]
    for act in (recall.recall, holds.hold):
        with pytest.raises(Conflict) as info:
            act(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
        assert info.value.code == "lot_cancelled"


def test_a_hold_stops_a_lot_until_it_is_released(session: Session) -> None:
    coop, buyer = f.org(session), f.org(session, "distributor")
    lot_id = f.harvest(session, coop, "50").lot_ids[0]
    # when the producer holds its lot
    held = holds.hold(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    # then it is on hold, recorded in the producer's chain with the reason and what it was
    assert (held.status, held.previous_status, lot(session, lot_id).status) == (
        LotStatus.ON_HOLD,
        LotStatus.ACTIVE,
        LotStatus.ON_HOLD,
    )
    event = session.get(Event, held.event_id)
    assert event is not None and (event.type, event.organisation_id) == (EventType.HOLD, coop.id)
    assert event.payload == {"reason": WHY.reason, "previous_status": "active"}
    with pytest.raises(RuleViolation) as moved:
        f.ship(session, coop, lot_id, buyer, "5", days_ago=0.5)
    assert moved.value.code == "lot_on_hold"
    with pytest.raises(Conflict) as twice:
        holds.hold(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    assert twice.value.code == "already_on_hold"
    # when released, it may move again
    released = holds.release(session=session, actor=f.member(coop), lot_id=lot_id, data=ReasonIn(reason="Mẫu đạt"))
    assert (released.status, lot(session, lot_id).status) == (LotStatus.ACTIVE, LotStatus.ACTIVE)
    release_event = session.get(Event, released.event_id)
    assert release_event is not None and release_event.type == EventType.RELEASE
    assert release_event.payload == {"reason": "Mẫu đạt", "previous_status": "on_hold", "status": "active"}
    f.ship(session, coop, lot_id, buyer, "5", days_ago=0.5)
    with pytest.raises(Conflict) as again:
        holds.release(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    assert again.value.code == "not_on_hold"
    assert verify(session=session).ok


def test_a_released_lot_nobody_holds_is_consumed_again(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "10").lot_ids[0]
    capture(
        session=session, actor=f.member(coop), items=[(EventType.SELL, SellIn(lot_id=lot_id, quantity=Decimal(10)))]
    )
    assert lot(session, lot_id).status == LotStatus.CONSUMED
    held = holds.hold(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    released = holds.release(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    assert (held.previous_status, released.status) == (LotStatus.CONSUMED, LotStatus.CONSUMED)
    assert lot(session, lot_id).status == LotStatus.CONSUMED


def test_only_an_authority_lifts_an_authority_hold(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "10").lot_ids[0]
    authority = inspector(session)
    held = holds.hold(session=session, actor=authority, lot_id=lot_id, data=WHY)
    assert session.get(Event, held.event_id).organisation_id == authority.organisation_id  # type: ignore[union-attr]
    with pytest.raises(Forbidden) as info:
        holds.release(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    assert info.value.code == "held_by_authority"
    holds.release(session=session, actor=authority, lot_id=lot_id, data=WHY)
    # the producer's own precaution may be lifted by an inspector too
    holds.hold(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    assert holds.release(session=session, actor=inspector(session), lot_id=lot_id, data=WHY).status == LotStatus.ACTIVE


def test_holders_and_strangers_may_not_hold_a_lot(session: Session) -> None:
    coop, buyer = f.org(session), f.org(session, "distributor")
    lot_id = f.harvest(session, coop, "10").lot_ids[0]
    f.receive(session, buyer, f.ship(session, coop, lot_id, buyer, "4").shipment_id)  # type: ignore[arg-type]
    refused = [
        (f.member(buyer), "hold_not_allowed"),
        (inspector(session, kind="distributor"), "hold_not_allowed"),
        (Actor(role=Role.MEMBER, organisation_id=None), "no_organisation"),
    ]
    before = snapshot(session)
    for actor, code in refused:
        with pytest.raises(Forbidden) as info:
            holds.hold(session=session, actor=actor, lot_id=lot_id, data=WHY)
        assert info.value.code == code
    assert snapshot(session) == before


def test_a_recalled_lot_cannot_be_held_or_released(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "10").lot_ids[0]
    holds.hold(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    found = recall.recall(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)  # a recall overrides a hold
    assert session.get(Event, found.event_id).payload["previous_status"] == "on_hold"  # type: ignore[union-attr]
    for act in (holds.hold, holds.release):
        with pytest.raises(Conflict) as info:
            act(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
        assert info.value.code == "lot_recalled"


def test_the_report_lists_each_lot_with_its_units_and_holders(session: Session) -> None:
    c = chain(session)
    found = recall.recall(session=session, actor=f.member(c.coop), lot_id=c.ids["H"], data=WHY)
    _, rows = report.rows(session=session, actor=f.member(c.coop), recall_id=found.id)  # type: ignore[arg-type]
    names = {lot(session, i).lot_code: name for name, i in c.ids.items()}
    got = {
        (names[r["lot_code"]], r["holder_organisation_id"]): (
            r["depth"],
            r["units_active"],
            r["quantity_held"],
            r["quantity_in_transit"],
        )
        for r in rows
    }
    q = Decimal
    assert got == {
        ("H", c.coop.id): (0, 0, q("20.000"), q("0.000")),  # 100 harvested, 80 into L1
        ("L1", c.coop.id): (1, 0, q("10.000"), q("0.000")),  # 40 made, 30 shipped
        ("L2a", None): (2, 0, None, None),  # all of it became L3: a row without a holder
        ("L2b", c.shop.id): (2, 3, q("10.000"), q("0.000")),
        ("L2b", c.shop2.id): (2, 3, q("0.000"), q("5.000")),  # still on the road
        ("L3", c.proc.id): (3, 5, q("15.000"), q("0.000")),
    }
    assert len(rows) == len(got)
    shop = next(r for r in rows if r["holder_organisation_id"] == c.shop.id)
    assert (shop["holder_name"], shop["holder_address"], shop["holder_phone"], shop["holder_email"]) == (
        c.shop.name,
        "12 Phố Hiến, Hưng Yên",
        "0221 3862 123",
        "shop@example.vn",
    )
    assert [r["depth"] for r in rows] == sorted(r["depth"] for r in rows)


def test_only_authorities_the_recaller_and_the_producer_read_the_report(session: Session) -> None:
    c = chain(session)
    found = recall.recall(session=session, actor=inspector(session), lot_id=c.ids["L1"], data=WHY)
    for reader in (f.member(c.coop), inspector(session)):
        # L1, L2a, L2b (two holders) and L3
        assert len(report.rows(session=session, actor=reader, recall_id=found.id)[1]) == 5  # type: ignore[arg-type]
    with pytest.raises(Forbidden) as holder:  # a holder sees the recall, not everyone else's stock
        report.rows(session=session, actor=f.member(c.shop), recall_id=found.id)  # type: ignore[arg-type]
    assert holder.value.code == "report_not_allowed"
    assert recall.get_recall(session=session, actor=f.member(c.shop), recall_id=found.id).id == found.id  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        recall.get_recall(session=session, actor=f.member(f.org(session)), recall_id=found.id)  # type: ignore[arg-type]


def test_holders_find_recalls_in_their_list(session: Session) -> None:
    c = chain(session)
    found = recall.recall(session=session, actor=f.member(c.coop), lot_id=c.ids["H"], data=WHY)
    mine = recall.affecting(session=session, actor=f.member(c.shop))
    assert [(x.recall_id, x.lot_id, x.depth, x.quantity_held, x.recalled_lot_id) for x in mine] == [
        (found.id, c.ids["L2b"], 2, Decimal("10.000"), c.ids["H"])
    ]
    # the processor held L1 and L2a (now nothing of them) and holds L2b's rest and L3
    assert {x.lot_id for x in recall.affecting(session=session, actor=f.member(c.proc))} == {
        c.ids[name] for name in ("L1", "L2a", "L2b", "L3")
    }
    assert recall.affecting(session=session, actor=f.member(f.org(session))) == []
    # the second shop has 5 kg of L2b on the road to it: it is told too
    coming = recall.affecting(session=session, actor=f.member(c.shop2))
    assert [(x.lot_id, x.quantity_held, x.quantity_in_transit) for x in coming] == [
        (c.ids["L2b"], Decimal(0), Decimal("5.000"))
    ]
    assert count(session, Recall) == 1


def _events(session: Session, kind: EventType) -> int:
    return session.exec(select(func.count()).select_from(Event).where(Event.type == kind)).one()


def test_a_hold_release_or_recall_sent_again_with_its_key_records_once_and_answers_the_same(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "40").lot_ids[0]
    actor = f.member(coop)
    # a double tap on "hold": the second answer is the first one, one event
    first = holds.hold(session=session, actor=actor, lot_id=lot_id, data=WHY, idempotency_key="tap-1")
    again = holds.hold(session=session, actor=actor, lot_id=lot_id, data=WHY, idempotency_key="tap-1")
    assert again == first and _events(session, EventType.HOLD) == 1
    # the key with another reason is refused, not taken for a new hold
    with pytest.raises(Conflict) as reused:
        holds.hold(
            session=session, actor=actor, lot_id=lot_id, data=ReasonIn(reason="Lý do khác"), idempotency_key="tap-1"
        )
    assert reused.value.code == "idempotency_key_reused"
    # without a key the same request is what it always was: the lot is already on hold
    with pytest.raises(Conflict) as plain:
        holds.hold(session=session, actor=actor, lot_id=lot_id, data=WHY)
    assert plain.value.code == "already_on_hold"
    released = holds.release(session=session, actor=actor, lot_id=lot_id, data=WHY, idempotency_key="tap-2")
    assert holds.release(session=session, actor=actor, lot_id=lot_id, data=WHY, idempotency_key="tap-2") == released
    assert _events(session, EventType.RELEASE) == 1 and lot(session, lot_id).status == LotStatus.ACTIVE
    # a recall retried after a timeout is the same recall
    recalled = recall.recall(session=session, actor=actor, lot_id=lot_id, data=WHY, idempotency_key="tap-3")
    assert (
        recall.recall(session=session, actor=actor, lot_id=lot_id, data=WHY, idempotency_key="tap-3").id == recalled.id
    )
    assert _events(session, EventType.RECALL) == 1
    assert verify(session=session).ok


def test_a_recall_event_keeps_the_epcis_id_of_its_whole_form_every_reached_lot_included(session: Session) -> None:
    from trace.epcis import hashid, render
    from trace.epcis.models import EpcisEventId

    # given a harvest with three generations of lots made from it
    c = chain(session)
    # when it is recalled
    found = recall.recall(session=session, actor=f.member(c.coop), lot_id=c.ids["H"], data=WHY)
    # then the stored id is the hash of the event as an EPCIS document shows it, with every lot it reached
    session.flush()
    row = render.event_row(session.get(Event, found.event_id))  # type: ignore[arg-type]
    shown = render.full_event(row, render.load(session.connection(), [row]))
    assert len(shown["quantityList"]) == len(DESCENDANTS) > 1
    stored = session.get(EpcisEventId, found.event_id)
    assert stored is not None and stored.epcis_id == hashid.hash_id(shown)
