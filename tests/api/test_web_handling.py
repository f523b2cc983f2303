"""Workspace pages of processors and shops: receive a shipment, process lots, print labels and follow
the run to its PDF, store and sell; refusals in Vietnamese, forged forms refused, double taps recorded
once, and another organisation's pages not found."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import jobs_sent
from tests.api.test_print_runs import render, start
from tests.api.test_web_auth import PASSWORD, VI, form_token, sign_in
from trace.access import Role
from trace.events.models import Event, EventType
from trace.lots import Holding, Lot, Shipment
from trace.printing.models import PrintRun, PrintStatus


@dataclass
class Chain:
    """A cooperative's lot of 100 kg, 40 kg of it shipped to a processor whose user is signed in; the
    processor's dried-longan product is packed in 0.5 kg bags; the run ids handed to the render queue."""

    coop: Any
    processor: Any
    user: Any
    lot: Lot
    shipment_id: int
    dried: Any
    calls: list[int]


def _chain(client: TestClient, session: Session, kind: str = "processor", sign: bool = True) -> Chain:
    coop = f.org(session)
    processor = f.org(session, kind)
    user, _ = f.user(session, processor, Role.MEMBER, password=PASSWORD)
    lot = session.get(Lot, f.harvest(session, coop, "100", lot_code="NL-2026-07").lot_ids[0])
    assert lot is not None
    shipment_id = f.ship(session, coop, lot.id, processor, "40").shipment_id  # type: ignore[arg-type]
    assert shipment_id is not None
    dried = f.product(
        session, processor, name_vi="Long nhãn sấy khô", category="longan_dried", package_size=Decimal("0.5")
    )
    session.commit()
    calls = jobs_sent(client, "print_run")
    if sign:
        assert sign_in(client, user.email).status_code == 303  # type: ignore[attr-defined]
    return Chain(coop, processor, user, lot, shipment_id, dried, calls)


def _idem(page: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', page)
    assert found, "the form has no once-only key"
    return found.group(1)


def _value(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" type="[a-z]+" value="([^"]*)"', page)
    assert found, f"no field {name}"
    return found.group(1)


def _send(client: TestClient, url: str, **data: Any) -> Any:
    """GET the form, then POST it with its own token and key (overridable) and the given fields."""
    page = client.get(url, headers=VI)
    assert page.status_code == 200, page.text
    form = {"csrf": form_token(page.text), "idem": _idem(page.text), **data}
    return client.post(url, data=form, headers=VI, follow_redirects=False)


def _events(session: Session, kind: EventType) -> int:
    return session.execute(select(func.count()).select_from(Event).where(Event.type == kind)).scalar_one()  # type: ignore[arg-type]


def _held(session: Session, lot_id: int, org: Any) -> Decimal:
    row = session.get(Holding, (lot_id, org.id), populate_existing=True)
    return row.quantity if row else Decimal(0)


def _receive_and_transform(client: TestClient, session: Session, c: Chain) -> int:
    answer = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="40")
    assert answer.status_code == 303, answer.text
    answer = _send(
        client,
        "/app/transform",
        lot=[str(c.lot.id), "", "", "", ""],
        qty=["30", "", "", "", ""],
        product_id=str(c.dried.id),
        lot_code="LS-2026-01",
        quantity="12",
        expiry_date="",
    )
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


# --- the whole processor path -----------------------------------------------------------------


def test_a_processor_receives_processes_prints_24_labels_watches_the_run_and_downloads_the_pdf(
    client: TestClient, session: Session
) -> None:
    c = _chain(client, session)
    # given: the shipment is listed among what is on its way
    listed = client.get("/app/incoming", headers=VI)
    assert listed.status_code == 200 and "NL-2026-07" in listed.text and "Nhận hàng" in listed.text
    assert f"/app/incoming/{c.shipment_id}/receive" in listed.text
    form = client.get(f"/app/incoming/{c.shipment_id}/receive", headers=VI)
    assert _value(form.text, "quantity") == "40"  # by default, everything in transit
    # when: it is received
    answer = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="40")
    assert answer.status_code == 303 and answer.headers["location"] == f"/app/incoming?received={c.shipment_id}"
    done = client.get(answer.headers["location"], headers=VI)
    assert "Đã nhận: lô NL-2026-07 đã vào kho của bạn." in done.text
    assert "NL-2026-07" not in done.text.split("Hàng đang trên đường đến bạn")[1]  # no longer on its way
    assert _held(session, c.lot.id, c.processor) == Decimal(40)  # type: ignore[arg-type]
    # and processed into a new lot of 12 kg (24 bags of 0.5 kg)
    page = client.get("/app/transform", headers=VI)
    assert "NL-2026-07" in page.text and "Long nhãn sấy khô" in page.text
    answer = _send(
        client,
        "/app/transform",
        lot=[str(c.lot.id), "", "", "", ""],
        qty=["30", "", "", "", ""],
        product_id=str(c.dried.id),
        lot_code="LS-2026-01",
        quantity="12",
        expiry_date="2027-06-30",
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/app/transform/")
    made = client.get(answer.headers["location"], headers=VI)
    assert "Lô mới LS-2026-01" in made.text and "NL-2026-07" in made.text and "30/06/2027" in made.text
    new_id = int(answer.headers["location"].rsplit("/", 1)[1])
    assert _held(session, c.lot.id, c.processor) == Decimal(10)  # type: ignore[arg-type]
    # then: labels are asked for; the form offers what the lot has room for
    page = client.get(f"/app/lots/{new_id}/print", headers=VI)
    assert _value(page.text, "count") == "24" and "Tờ A4 24 nhãn" in page.text
    answer = _send(client, f"/app/lots/{new_id}/print", format="a4-3x8", count="24", override_reason="")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/app/print-runs/")
    run_id = int(answer.headers["location"].rsplit("/", 1)[1])
    assert c.calls == [run_id]  # handed to the rendering workers
    run = client.get(f"/app/print-runs/{run_id}", headers=VI).text
    assert '<meta http-equiv="refresh" content="2">' in run and 'value="0" max="24"' in run and "đang chờ" in run
    assert f"/app/print-runs/{run_id}/file" not in run
    token = start(session, run_id, done=10)
    run = client.get(f"/app/print-runs/{run_id}", headers=VI).text
    assert 'value="10" max="24"' in run and "đang chuẩn bị" in run and 'http-equiv="refresh"' in run
    render(session, run_id, token)
    run = client.get(f"/app/print-runs/{run_id}", headers=VI).text
    assert 'value="24" max="24"' in run and "sẵn sàng" in run and 'http-equiv="refresh"' not in run
    assert f'href="/app/print-runs/{run_id}/file"' in run
    # and the PDF is downloaded: one A4 sheet of 24 labels
    pdf = client.get(f"/app/print-runs/{run_id}/file")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    document = pdfium.PdfDocument(pdf.content)
    try:
        assert len(document) == 1
    finally:
        document.close()


def test_a_number_typed_the_vietnamese_way_is_read_as_such(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    answer = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="12,5")
    assert answer.status_code == 303
    assert _held(session, c.lot.id, c.processor) == Decimal("12.5")  # type: ignore[arg-type]
    shipment = session.get(Shipment, c.shipment_id, populate_existing=True)
    assert shipment is not None and shipment.received_quantity == Decimal("12.5") and shipment.status == "open"
    wrong = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="1.5")  # a misplaced thousands dot
    assert wrong.status_code == 422 and "Không phải số." in wrong.text


# --- refusals -----------------------------------------------------------------------------------


def test_receiving_more_than_is_in_transit_is_refused_in_vietnamese_and_records_nothing(
    client: TestClient, session: Session
) -> None:
    c = _chain(client, session)
    answer = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="50")
    assert answer.status_code == 422
    assert '<p class="error" role="alert">Lô hàng này chỉ còn 40 kg đang trên đường.</p>' in answer.text
    assert _value(answer.text, "quantity") == "50"  # what was typed stays
    assert _events(session, EventType.RECEIVE) == 0 and _held(session, c.lot.id, c.processor) == 0  # type: ignore[arg-type]


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


def test_printing_beyond_the_lots_room_needs_a_reason(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    new_id = _receive_and_transform(client, session, c)
    over = _send(client, f"/app/lots/{new_id}/print", format="a4-3x8", count="30", override_reason="")
    assert over.status_code == 422 and "Lô này chỉ còn in được 24 nhãn" in over.text
    assert c.calls == [] and session.execute(select(func.count()).select_from(PrintRun)).scalar_one() == 0
    short = _send(client, f"/app/lots/{new_id}/print", format="a4-3x8", count="30", override_reason="hỏng")
    assert short.status_code == 422 and "Quá ngắn." in short.text
    ok = _send(
        client, f"/app/lots/{new_id}/print", format="a4-3x8", count="30", override_reason="Thay cuộn nhãn bị kẹt máy"
    )
    assert ok.status_code == 303 and len(c.calls) == 1


def test_forged_form_tokens_are_refused_and_record_nothing(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    forged = {"csrf": "0" * 64, "idem": "k1"}
    receive = client.post(
        f"/app/incoming/{c.shipment_id}/receive", data={**forged, "quantity": "40"}, headers=VI, follow_redirects=False
    )
    assert receive.status_code == 403 and "Bị từ chối" in receive.text
    assert _events(session, EventType.RECEIVE) == 0
    _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="40")
    for url, data in (
        (f"/app/lots/{c.lot.id}/print", {"format": "a4-3x8", "count": "2"}),
        (
            "/app/transform",
            {"lot": [str(c.lot.id)], "qty": ["1"], "product_id": str(c.dried.id), "lot_code": "X1", "quantity": "1"},
        ),
        (f"/app/lots/{c.lot.id}/sell", {"quantity": "1"}),
    ):
        answer = client.post(url, data={**forged, **data}, headers=VI, follow_redirects=False)
        assert answer.status_code == 403, url
    assert _events(session, EventType.TRANSFORM) == _events(session, EventType.SELL) == 0
    assert c.calls == [] and _held(session, c.lot.id, c.processor) == Decimal(40)  # type: ignore[arg-type]


# --- once only ------------------------------------------------------------------------------------


def test_a_form_sent_twice_records_once(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    page = client.get(f"/app/incoming/{c.shipment_id}/receive", headers=VI).text
    form = {"csrf": form_token(page), "idem": _idem(page), "quantity": "10"}
    first = client.post(f"/app/incoming/{c.shipment_id}/receive", data=form, headers=VI, follow_redirects=False)
    again = client.post(f"/app/incoming/{c.shipment_id}/receive", data=form, headers=VI, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert _events(session, EventType.RECEIVE) == 1 and _held(session, c.lot.id, c.processor) == Decimal(10)  # type: ignore[arg-type]
    # a print run asked twice with the same form is one run, handed to the workers (harmlessly) again
    page = client.get(f"/app/lots/{c.lot.id}/print", headers=VI).text
    form = {"csrf": form_token(page), "idem": _idem(page), "format": "a4-3x8", "count": "5"}
    first = client.post(f"/app/lots/{c.lot.id}/print", data=form, headers=VI, follow_redirects=False)
    again = client.post(f"/app/lots/{c.lot.id}/print", data=form, headers=VI, follow_redirects=False)
    assert first.headers["location"] == again.headers["location"]
    assert session.execute(select(func.count()).select_from(PrintRun)).scalar_one() == 1
    run_id = int(first.headers["location"].rsplit("/", 1)[1])
    assert set(c.calls) == {run_id}
    # a reprint tapped twice is one reprint
    render(session, run_id)
    page = client.get(f"/app/print-runs/{run_id}", headers=VI).text
    form = {"csrf": form_token(page), "idem": _idem(page)}
    first = client.post(f"/app/print-runs/{run_id}/reprint", data=form, headers=VI, follow_redirects=False)
    again = client.post(f"/app/print-runs/{run_id}/reprint", data=form, headers=VI, follow_redirects=False)
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    reprints = session.execute(select(PrintRun).where(PrintRun.reprint_of_id == run_id)).scalars().all()  # type: ignore[arg-type]
    assert len(reprints) == 1 and reprints[0].quantity == 5 and c.calls[-1] == reprints[0].id
    # and a sale sent twice sells once
    page = client.get(f"/app/lots/{c.lot.id}/sell", headers=VI).text
    form = {"csrf": form_token(page), "idem": _idem(page), "quantity": "2,5", "day": ""}
    for _ in range(2):
        assert (
            client.post(f"/app/lots/{c.lot.id}/sell", data=form, headers=VI, follow_redirects=False).status_code == 303
        )
    assert _events(session, EventType.SELL) == 1 and _held(session, c.lot.id, c.processor) == Decimal("7.5")  # type: ignore[arg-type]


def test_a_queued_run_is_cancelled_once_however_often_the_button_is_tapped(
    client: TestClient, session: Session
) -> None:
    c = _chain(client, session)
    _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="40")
    answer = _send(client, f"/app/lots/{c.lot.id}/print", format="a4-3x8", count="3")
    run_id = int(answer.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/app/print-runs/{run_id}", headers=VI).text
    assert "Hủy lượt in này" in page
    form = {"csrf": form_token(page), "idem": _idem(page)}
    for _ in range(2):
        answer = client.post(f"/app/print-runs/{run_id}/cancel", data=form, headers=VI, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == f"/app/print-runs/{run_id}"
    assert _events(session, EventType.DECOMMISSION) == 1
    run = session.get(PrintRun, run_id, populate_existing=True)
    assert run is not None and run.status == PrintStatus.CANCELLED
    page = client.get(f"/app/print-runs/{run_id}", headers=VI).text
    assert "đã hủy" in page and "Hủy lượt in này" not in page and 'http-equiv="refresh"' not in page


# --- a shop ---------------------------------------------------------------------------------------


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


# --- another organisation -------------------------------------------------------------------------


def test_another_organisations_pages_are_not_found_by_direct_url(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    new_id = _receive_and_transform(client, session, c)
    answer = _send(client, f"/app/lots/{new_id}/print", format="a4-3x8", count="4")
    run_id = int(answer.headers["location"].rsplit("/", 1)[1])
    render(session, run_id)
    # another processor signs in on the same browser
    other = f.org(session, "processor")
    stranger, _ = f.user(session, other, Role.MEMBER, password=PASSWORD)
    session.commit()
    client.cookies.clear()
    assert sign_in(client, stranger.email).status_code == 303  # type: ignore[attr-defined]
    token = form_token(client.get("/app", headers=VI).text)
    for url in (
        f"/app/incoming/{c.shipment_id}/receive",
        f"/app/transform/{new_id}",
        f"/app/lots/{new_id}/print",
        f"/app/lots/{new_id}/store",
        f"/app/lots/{new_id}/sell",
        f"/app/print-runs/{run_id}",
        f"/app/print-runs/{run_id}/file",
    ):
        page = client.get(url, headers=VI)
        assert page.status_code == 404 and "Trang này không tồn tại, hoặc thuộc về tổ chức khác." in page.text, url
        assert "LS-2026-01" not in page.text and "NL-2026-07" not in page.text, url
    for url, data in (
        (f"/app/incoming/{c.shipment_id}/receive", {"quantity": "1"}),
        (f"/app/lots/{new_id}/print", {"format": "a4-3x8", "count": "1"}),
        (f"/app/lots/{new_id}/sell", {"quantity": "1"}),
        (f"/app/print-runs/{run_id}/reprint", {}),
        (f"/app/print-runs/{run_id}/cancel", {}),
    ):
        answer = client.post(
            url, data={"csrf": token, "idem": "stranger-1", **data}, headers=VI, follow_redirects=False
        )
        assert answer.status_code == 404, url
    assert "NL-2026-07" not in client.get("/app/incoming", headers=VI).text
    assert _events(session, EventType.SELL) == 0
    assert session.execute(select(func.count()).select_from(PrintRun)).scalar_one() == 1


@pytest.mark.parametrize("role", [Role.INSPECTOR])
def test_an_inspector_may_see_a_run_but_not_download_its_codes(
    client: TestClient, session: Session, role: Role
) -> None:
    c = _chain(client, session)
    new_id = _receive_and_transform(client, session, c)
    answer = _send(client, f"/app/lots/{new_id}/print", format="a4-3x8", count="2")
    run_id = int(answer.headers["location"].rsplit("/", 1)[1])
    render(session, run_id)
    inspector, _ = f.user(session, f.org(session, "authority"), role, password=PASSWORD)
    session.commit()
    client.cookies.clear()
    sign_in(client, inspector.email)  # type: ignore[attr-defined]
    page = client.get(f"/app/print-runs/{run_id}", headers=VI)
    assert page.status_code == 200 and "/file" not in page.text and "In lại các mã này" not in page.text
    refused = client.get(f"/app/print-runs/{run_id}/file", headers=VI)
    assert refused.status_code == 403 and "Chỉ tổ chức đã in lượt này mới được làm việc này." in refused.text
