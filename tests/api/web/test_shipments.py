"""Shipping part of a lot and seeing where it went; receiving a shipment, numbers typed the Vietnamese way,
and more than is in transit refused in Vietnamese."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests import factories as f
from tests.api.web.chain import _chain, _events, _held, _send, _value
from tests.api.web.farm import Farm, an_hour_ago, idem, signed_in
from tests.api.web.helpers import VI, form_token
from trace.events.models import EventType
from trace.lots import Shipment


def test_a_member_ships_part_of_a_lot_once_and_sees_it_in_transit_then_received(
    client: TestClient, session: Session, farm: Farm
) -> None:
    lot_id = f.harvest(session, farm.coop, "100", prod=farm.fresh, loc=farm.area, lot_code="NL-SHIP-1").lot_ids[0]
    session.commit()
    signed_in(client, farm)
    form = client.get(f"/app/lots/{lot_id}/ship", headers=VI)
    assert form.status_code == 200 and farm.buyer.name in form.text
    assert f'<option value="{farm.coop.id}">' not in form.text  # not one's own organisation
    data = {
        "csrf": form_token(form.text),
        "idem": idem(form.text),
        "destination_organisation_id": farm.buyer.id,
        "quantity": "40,5",
        "event_time": an_hour_ago(),
    }
    sent = client.post(f"/app/lots/{lot_id}/ship", data=data, headers=VI, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/app/shipments?saved=1"
    assert client.post(f"/app/lots/{lot_id}/ship", data=data, headers=VI, follow_redirects=False).status_code == 303
    session.expire_all()
    shipped = list(session.exec(select(Shipment).where(Shipment.lot_id == lot_id)))
    assert len(shipped) == 1 and shipped[0].quantity == Decimal("40.5")
    listing = client.get(sent.headers["location"], headers=VI).text
    row = listing.split("NL-SHIP-1")[1].split("</tr>")[0]
    assert farm.buyer.name in row and "40,5 kg" in row and "đang vận chuyển" in row
    f.receive(session, farm.buyer, shipped[0].id, days_ago=0)  # type: ignore[arg-type]
    session.commit()
    row = client.get("/app/shipments", headers=VI).text.split("NL-SHIP-1")[1].split("</tr>")[0]
    assert "đã nhận" in row and "đang vận chuyển" not in row


def test_shipping_more_than_the_organisation_holds_is_refused_in_vietnamese(
    client: TestClient, session: Session, farm: Farm
) -> None:
    lot_id = f.harvest(session, farm.coop, "100", prod=farm.fresh, loc=farm.area).lot_ids[0]
    session.commit()
    signed_in(client, farm)
    form = client.get(f"/app/lots/{lot_id}/ship", headers=VI).text
    refused = client.post(
        f"/app/lots/{lot_id}/ship",
        data={
            "csrf": form_token(form),
            "idem": idem(form),
            "destination_organisation_id": farm.buyer.id,
            "quantity": "1.000",
            "event_time": an_hour_ago(),
        },
        headers=VI,
    )
    assert refused.status_code == 422
    # the one wording of exceeds_holding, with the lot's unit and code the page adds
    assert (
        "Tổ chức của bạn chỉ giữ 100 kg của lô" in refused.text and "không đủ 1.000 kg" in refused.text
    )  # 1.000 typed the Vietnamese way
    session.expire_all()
    assert session.exec(select(Shipment).where(Shipment.lot_id == lot_id)).first() is None


def test_a_number_typed_the_vietnamese_way_is_read_as_such(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    answer = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="12,5")
    assert answer.status_code == 303
    assert _held(session, c.lot.id, c.processor) == Decimal("12.5")  # type: ignore[arg-type]
    shipment = session.get(Shipment, c.shipment_id, populate_existing=True)
    assert shipment is not None and shipment.received_quantity == Decimal("12.5") and shipment.status == "open"
    wrong = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="1.5")  # a misplaced thousands dot
    assert wrong.status_code == 422 and "Không phải số." in wrong.text


def test_receiving_more_than_is_in_transit_is_refused_in_vietnamese_and_records_nothing(
    client: TestClient, session: Session
) -> None:
    c = _chain(client, session)
    answer = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="50")
    assert answer.status_code == 422
    assert '<p class="error" role="alert">Lô hàng này chỉ còn 40 kg đang trên đường.</p>' in answer.text
    assert _value(answer.text, "quantity") == "50"  # what was typed stays
    assert _events(session, EventType.RECEIVE) == 0 and _held(session, c.lot.id, c.processor) == 0  # type: ignore[arg-type]
