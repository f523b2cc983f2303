"""Transforming lots into a new one: more than is held refused, naming the lot; mistakes beside their fields."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.api.web.chain import _chain, _events, _send
from trace.events.models import EventType


def test_processing_more_than_is_held_is_refused_in_vietnamese_naming_the_lot(
    client: TestClient, session: Session
) -> None:
    c = _chain(client, session)
    _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="40")
    answer = _send(
        client,
        "/app/transform",
        lot=[str(c.lot.id), "", "", "", ""],
        qty=["45", "", "", "", ""],
        product_id=str(c.dried.id),
        lot_code="LS-2026-02",
        quantity="12",
        expiry_date="",
    )
    assert answer.status_code == 422
    assert "Tổ chức của bạn chỉ giữ 40 kg của lô NL-2026-07, không đủ 45 kg." in answer.text
    assert _events(session, EventType.TRANSFORM) == 0
    empty = _send(
        client,
        "/app/transform",
        lot=["", "", "", "", ""],
        qty=["", "", "", "", ""],
        product_id=str(c.dried.id),
        lot_code="LS 2026",
        quantity="abc",
        expiry_date="",
    )
    assert (
        empty.status_code == 422 and "Hãy chọn ít nhất một lô đầu vào." in empty.text and "Không phải số." in empty.text
    )
    bad_code = _send(
        client,
        "/app/transform",
        lot=[str(c.lot.id), "", "", "", ""],
        qty=["5", "", "", "", ""],
        product_id=str(c.dried.id),
        lot_code="LÔ-1",
        quantity="2",
        expiry_date="",
    )
    assert bad_code.status_code == 422 and "Mã lô chỉ được gồm chữ cái không dấu" in bad_code.text
    assert _events(session, EventType.TRANSFORM) == 0
