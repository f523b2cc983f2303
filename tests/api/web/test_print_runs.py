"""Printing labels: asking for a run, watching it render and downloading the PDF, room for labels and the
reason for more, cancelling once, and who may see a run but not its codes."""

from __future__ import annotations

from decimal import Decimal

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlmodel import Session

from tests import factories as f
from tests.api.test_print_runs import render, start
from tests.api.web.chain import Chain, _chain, _events, _held, _idem, _receive_and_transform, _send, _value
from tests.api.web.helpers import PASSWORD, VI, form_token, sign_in
from trace.access import Role
from trace.events.models import EventType
from trace.printing.models import PrintArtefactChunk, PrintRun, PrintStatus


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


def _printed(client: TestClient, session: Session) -> tuple[Chain, int]:
    """A processor's finished run of 2 labels, its user signed in."""
    c = _chain(client, session)
    new_id = _receive_and_transform(client, session, c)
    answer = _send(client, f"/app/lots/{new_id}/print", format="a4-3x8", count="2")
    run_id = int(answer.headers["location"].rsplit("/", 1)[1])
    render(session, run_id)
    return c, run_id


def test_a_labels_file_edited_in_the_database_is_refused_in_words_not_downloaded(
    client: TestClient, session: Session
) -> None:
    # given a finished run whose stored file an insider changed straight in the database
    _, run_id = _printed(client, session)
    assert client.get(f"/app/print-runs/{run_id}/file").content.startswith(b"%PDF")
    table = PrintArtefactChunk.__table__  # type: ignore[attr-defined]
    session.execute(update(table).where(table.c.print_run_id == run_id).values(data=b"%PDF-1.4 forged"))
    session.commit()
    # when the member downloads it, then the page says what happened and sends no file
    page = client.get(f"/app/print-runs/{run_id}/file", headers=VI)
    assert page.status_code == 409 and page.headers["content-type"].startswith("text/html")  # "not available"
    assert "Tệp nhãn của lượt in này đã bị thay đổi hoặc hư hỏng" in page.text and "forged" not in page.text


def test_a_member_of_another_organisation_cannot_download_a_run(client: TestClient, session: Session) -> None:
    _, run_id = _printed(client, session)
    stranger, _ = f.user(session, f.org(session, "processor"), Role.MEMBER, password=PASSWORD)
    session.commit()
    client.cookies.clear()
    sign_in(client, stranger.email)  # type: ignore[attr-defined]
    refused = client.get(f"/app/print-runs/{run_id}/file", headers=VI)
    assert refused.status_code == 404 and b"%PDF" not in refused.content
