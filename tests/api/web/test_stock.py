"""A shop stores a lot it received and sells it, on chosen days."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.web.chain import _chain, _events, _send
from tests.api.web.helpers import VI
from trace.events.models import EventType


def test_a_shop_receives_stores_and_sells_with_dates(client: TestClient, session: Session) -> None:
    c = _chain(client, session, kind="retailer")
    shop = f.location(session, c.processor, kind="shop", name="Cửa hàng Phố Hiến")
    session.commit()
    _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="40")
    page = client.get(f"/app/lots/{c.lot.id}/store", headers=VI)
    assert "Cửa hàng Phố Hiến" in page.text
    stored = _send(client, f"/app/lots/{c.lot.id}/store", location_id=str(shop.id), day="")
    assert stored.status_code == 303 and stored.headers["location"] == f"/app/lots/{c.lot.id}/store?done=1"
    assert "Đã ghi nhận." in client.get(stored.headers["location"], headers=VI).text
    assert _events(session, EventType.STORE) == 1
    sold = _send(client, f"/app/lots/{c.lot.id}/sell", quantity="1.234,5", day="")
    assert sold.status_code == 422 and "chỉ giữ 40 kg của lô NL-2026-07, không đủ 1.234,5 kg" in sold.text
    yesterday = f.when(1).astimezone().date().isoformat()
    sold = _send(client, f"/app/lots/{c.lot.id}/sell", quantity="3", day=yesterday)
    assert sold.status_code == 303
    after = client.get(sold.headers["location"], headers=VI).text
    assert "Đã ghi nhận." in after and "Tổ chức của bạn đang giữ 37 kg." in after
    future = _send(client, f"/app/lots/{c.lot.id}/sell", quantity="1", day="2099-01-01")
    assert future.status_code == 422 and "Ngày đã chọn nằm trong tương lai." in future.text
    assert _events(session, EventType.SELL) == 1
