"""Inspectors' workspace pages: verify a label by its typed code or a photo of its QR, see the verdict
and checklist, record an inspection (once), hold, release and recall the lot; others refused in words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

import pytest
import qrcode
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlmodel import Session, col

from tests import factories as f
from tests.api.web.helpers import PASSWORD, VI, form_token, sign_in
from trace import verification
from trace.access import Role
from trace.events.ledger import capture
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import SellIn
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation
from trace.printing import runs
from trace.recalls import Recall
from trace.units import Unit, check_char, display_code

VERIFY = "/app/verify"


@dataclass
class Label:
    lot_id: int
    code: str  # as printed: 7KQ-2M9-XDV
    uri: str
    inspector: str  # e-mail of a market inspector of an authority
    stranger: str  # e-mail of a member of another cooperative


@pytest.fixture
def label(session: Session) -> Label:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "10", prod=f.product(session, coop, package_size=Decimal(1))).lot_ids[0]
    run = runs.create_run(session=session, actor=f.member(coop), lot_id=lot_id, data=runs.PrintRunCreate(quantity=2))
    stored = session.execute(select(col(Unit.code)).where(col(Unit.print_run_id) == run.id)).scalars().first()
    assert stored is not None
    found = verification.check_code(session=session, code=stored)
    inspector, _ = f.user(session, f.org(session, "authority"), Role.INSPECTOR, password=PASSWORD)
    stranger, _ = f.user(session, f.org(session), Role.MEMBER, password=PASSWORD)
    session.commit()
    return Label(lot_id, display_code(stored), found.uri, inspector.email, stranger.email)


def _status(session: Session, lot_id: int) -> LotStatus:
    session.expire_all()
    lot = session.get(Lot, lot_id)
    assert lot is not None
    return lot.status


def _inspections(session: Session, lot_id: int) -> int:
    return session.execute(
        select(func.count())
        .select_from(Event)
        .join(EventLot, col(EventLot.event_id) == Event.id)
        .where(Event.type == EventType.INSPECT, EventLot.lot_id == lot_id)
    ).scalar_one()


def _png(image: Image.Image) -> bytes:
    out = BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _verdict(page: str) -> str:
    found = re.search(r'<h1 class="verdict v-([a-z_]+)"', page)
    assert found, "the page shows no verdict"
    return found.group(1)


def test_an_inspector_types_a_genuine_code_and_sees_the_verdict_and_the_checklist(
    client: TestClient, session: Session, label: Label
) -> None:
    sign_in(client, label.inspector)
    form = client.get(VERIFY, headers=VI)
    assert form.status_code == 200
    assert 'type="file" accept="image/*" capture="environment"' in form.text and "<script" not in form.text
    # the code typed as people do: lower case, no dashes
    page = client.get(VERIFY, params={"code": label.code.replace("-", "").lower()}, headers=VI)
    assert page.status_code == 200, page.text
    assert _verdict(page.text) == "genuine_and_compliant" and "Hàng thật, đạt yêu cầu" in page.text
    for check in ("code_known", "lot_status", "chain", "mass_balance", "scan_pattern"):
        assert f'id="check-{check}"' in page.text
    assert "Lượt quét mã" in page.text and "<dt>Số mạng</dt>" in page.text  # the scan pattern's evidence
    assert label.code in page.text and "đang lưu thông" in page.text
    # the evidence reads as words, not as data: who holds the lot and how much, the lot counted for
    lot = session.get(Lot, label.lot_id)
    holder = session.get(Organisation, lot.producer_organisation_id)  # type: ignore[union-attr]
    assert f"<dt>Đang giữ lô hàng</dt><dd>{escape(holder.name)}: 10</dd>" in page.text  # type: ignore[union-attr]
    assert "<dt>Đếm theo</dt><dd>mã của gói này</dd>" in page.text  # a unit code is judged on its own scans
    assert "{&#34;" not in page.text and '{"' not in page.text  # no raw JSON left
    english = client.get(VERIFY, params={"code": label.code, "lang": "en"})
    assert f"<dt>Holding the lot now</dt><dd>{escape(holder.name)}: 10</dd>" in english.text


def _snapshot(uri: str) -> bytes:
    """A phone's snapshot: the label small in a larger grey frame, askew, as a compressed JPEG."""
    frame = Image.new("RGB", (1600, 1200), (150, 145, 140))
    label = (
        qrcode.make(uri, box_size=6, border=4)
        .get_image()
        .convert("RGB")
        .rotate(11, expand=True, fillcolor=(150, 145, 140))
    )
    frame.paste(label, (500, 300))
    out = BytesIO()
    frame.save(out, "JPEG", quality=70)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_an_inspector_sends_a_photo_of_the_labels_qr_and_gets_the_same_verdict(
    client: TestClient, label: Label, kind: str
) -> None:
    sign_in(client, label.inspector)
    token = form_token(client.get(VERIFY).text)
    photo = _png(qrcode.make(label.uri).get_image()) if kind == "png" else _snapshot(label.uri)
    sent = client.post(
        f"{VERIFY}/photo",
        data={"csrf": token},
        files={"photo": (f"label.{kind}", photo, f"image/{kind}")},
        headers=VI,
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert parse_qs(urlsplit(sent.headers["location"]).query)["uri"] == [label.uri]
    page = client.get(sent.headers["location"], headers=VI)
    assert _verdict(page.text) == "genuine_and_compliant" and label.code in page.text


@pytest.mark.parametrize(
    ("photo", "status", "words"),
    [
        (b"this is not a picture", 422, "Tệp này không phải ảnh đọc được"),
        (_png(Image.new("L", (400, 300), 255)), 422, "Không đọc được mã QR trong ảnh này"),
        (_png(qrcode.make("WIFI:S:quan-ca-phe;T:WPA;P:12345678;;").get_image()), 422, "không phải nhãn của hệ thống"),
        (b"\x89PNG" + b"\0" * (8 * 1024 * 1024), 413, "Ảnh lớn hơn 8 MB"),
    ],
)
def test_a_photo_without_a_readable_label_is_refused_in_words(
    client: TestClient, label: Label, photo: bytes, status: int, words: str
) -> None:
    sign_in(client, label.inspector)
    token = form_token(client.get(VERIFY).text)
    answer = client.post(
        f"{VERIFY}/photo",
        data={"csrf": token},
        files={"photo": ("label.png", photo, "image/png")},
        headers=VI,
        follow_redirects=False,
    )
    assert answer.status_code == status and words in answer.text
    assert '<p class="error" role="alert">' in answer.text


def test_a_code_never_issued_is_a_violation_in_words(client: TestClient, label: Label) -> None:
    sign_in(client, label.inspector)
    body = "ABCDEFGH" if label.code.replace("-", "")[:8] != "ABCDEFGH" else "HGFEDCBA"
    never = display_code(body + check_char(body))  # well formed, with a right check character, never printed
    page = client.get(VERIFY, params={"code": never}, headers=VI)
    assert page.status_code == 200
    assert _verdict(page.text) == "violation" and "Vi phạm" in page.text
    assert "Mã này không do hệ thống cấp" in page.text
    assert "Ghi nhận kết quả kiểm tra</button>" not in page.text  # nothing to record against
    mistyped = client.get(
        VERIFY, params={"code": label.code[:-1] + ("0" if label.code[-1] != "0" else "1")}, headers=VI
    )
    assert _verdict(mistyped.text) == "warning" and "có thể gõ nhầm" in mistyped.text


def test_hold_then_release_shows_the_new_state_each_time(client: TestClient, session: Session, label: Label) -> None:
    sign_in(client, label.inspector)
    page = client.get(VERIFY, params={"code": label.code}, headers=VI)
    token = form_token(page.text)
    held = client.post(
        f"{VERIFY}/lot/{label.lot_id}/hold",
        data={"csrf": token, "reason": "Nghi hàng giả (BB 12/QLTT)", "code": label.code},
        follow_redirects=False,
    )
    assert held.status_code == 303 and held.headers["location"].startswith(f"{VERIFY}?code=")
    assert _status(session, label.lot_id) == LotStatus.ON_HOLD
    page = client.get(held.headers["location"], headers=VI)
    assert "Lô hàng đang bị tạm giữ" in page.text and '<strong id="lot-status">tạm dừng</strong>' in page.text
    assert _verdict(page.text) == "violation"  # a held lot must not be sold
    assert f"/lot/{label.lot_id}/release" in page.text and f"/lot/{label.lot_id}/hold" not in page.text
    # holding it again is refused in words, at the top of the verdict
    again = client.post(
        f"{VERIFY}/lot/{label.lot_id}/hold", data={"csrf": token, "reason": "lần nữa", "code": label.code}, headers=VI
    )
    assert again.status_code == 422 and "Lô này đang bị tạm giữ." in again.text
    released = client.post(
        f"{VERIFY}/lot/{label.lot_id}/release",
        data={"csrf": token, "reason": "Kết quả giám định: hàng thật", "code": label.code},
        follow_redirects=False,
    )
    assert released.status_code == 303 and _status(session, label.lot_id) == LotStatus.ACTIVE
    page = client.get(released.headers["location"], headers=VI)
    assert "Đã gỡ tạm giữ." in page.text and _verdict(page.text) == "genuine_and_compliant"


def test_a_reason_is_required_and_said_beside_the_field(client: TestClient, session: Session, label: Label) -> None:
    sign_in(client, label.inspector)
    token = form_token(client.get(VERIFY, params={"code": label.code}).text)
    answer = client.post(
        f"{VERIFY}/lot/{label.lot_id}/hold", data={"csrf": token, "reason": " ", "code": label.code}, headers=VI
    )
    assert answer.status_code == 422 and 'id="hold-error">Quá ngắn.' in answer.text
    assert _status(session, label.lot_id) == LotStatus.ACTIVE


def test_a_recall_from_the_verdict(client: TestClient, session: Session, label: Label) -> None:
    sign_in(client, label.inspector)
    token = form_token(client.get(VERIFY, params={"uri": label.uri}).text)
    why = "Phát hiện nấm mốc trong mẫu lưu (biên bản 07/QLTT)"
    answer = client.post(
        f"{VERIFY}/lot/{label.lot_id}/recall",
        data={"csrf": token, "reason": why, "uri": label.uri},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and parse_qs(urlsplit(answer.headers["location"]).query)["uri"] == [label.uri]
    assert _status(session, label.lot_id) == LotStatus.RECALLED
    assert (
        session.execute(select(func.count()).select_from(Recall).where(Recall.lot_id == label.lot_id)).scalar_one() == 1
    )
    page = client.get(answer.headers["location"], headers=VI)
    assert "Đã thu hồi lô hàng" in page.text and why in page.text and _verdict(page.text) == "violation"
    assert f"/lot/{label.lot_id}/recall" not in page.text and f"/lot/{label.lot_id}/hold" not in page.text


def test_a_member_of_another_cooperative_can_neither_verify_nor_hold_the_lot(
    client: TestClient, session: Session, label: Label
) -> None:
    sign_in(client, label.stranger)
    token = form_token(client.get("/app").text)
    page = client.get(VERIFY, params={"code": label.code}, headers=VI)
    main = page.text.split('<main id="main">', 1)[1]  # (the language links repeat what was typed, no more)
    assert page.status_code == 403 and "dành cho cán bộ quản lý thị trường" in main and label.code not in main
    for action in ("hold", "recall"):
        refused = client.post(
            f"{VERIFY}/lot/{label.lot_id}/{action}",
            data={"csrf": token, "reason": "Muốn dừng lô của người khác", "code": label.code},
            headers=VI,
        )
        assert refused.status_code == 403, refused.text
        assert "Chỉ cán bộ quản lý thị trường hoặc đơn vị sản xuất lô hàng" in refused.text
    assert _status(session, label.lot_id) == LotStatus.ACTIVE


def test_a_shop_that_sold_all_of_the_lot_may_no_longer_record_an_inspection_of_it(
    client: TestClient, session: Session, label: Label
) -> None:
    # given a shop that received 4 of the lot's 10 packages and sold them all
    lot = session.get(Lot, label.lot_id)
    assert lot is not None
    producer = session.get(Organisation, lot.producer_organisation_id)
    shop = f.org(session, "retailer")
    shopkeeper, _ = f.user(session, shop, Role.MEMBER, password=PASSWORD)
    f.receive(session, shop, f.ship(session, producer, label.lot_id, shop, "4").shipment_id)  # type: ignore[arg-type]
    session.commit()
    sign_in(client, shopkeeper.email)
    token = form_token(client.get("/app").text)
    form = {"csrf": token, "result": "fail", "note": "Hàng hỏng", "code": label.code}
    # while it has stock its own check is recorded
    kept = client.post(
        f"{VERIFY}/lot/{label.lot_id}/inspection", data={**form, "idem": "k1"}, headers=VI, follow_redirects=False
    )
    assert kept.status_code == 303 and _inspections(session, label.lot_id) == 1
    capture(session=session, actor=f.member(shop), items=[(EventType.SELL, SellIn(lot_id=label.lot_id, quantity=4))])  # type: ignore[arg-type]
    session.commit()
    # when it sends the inspection form again, then it is refused in words, and nothing is recorded
    refused = client.post(f"{VERIFY}/lot/{label.lot_id}/inspection", data={**form, "idem": "k2"}, headers=VI)
    assert refused.status_code == 403, refused.text
    assert "Hiện tổ chức của bạn không giữ lô này." in refused.text
    assert _inspections(session, label.lot_id) == 1


def test_a_forged_form_token_is_refused_and_changes_nothing(client: TestClient, session: Session, label: Label) -> None:
    sign_in(client, label.inspector)
    for action, data in (("hold", {"reason": "Nghi hàng giả"}), ("inspection", {"result": "fail", "idem": "k1"})):
        forged = client.post(f"{VERIFY}/lot/{label.lot_id}/{action}", data={"csrf": "0" * 64, **data}, headers=VI)
        assert forged.status_code == 403 and "Bị từ chối" in forged.text
    photo = client.post(
        f"{VERIFY}/photo",
        data={"csrf": "forged"},
        files={"photo": ("label.png", _png(qrcode.make(label.uri).get_image()), "image/png")},
    )
    assert photo.status_code == 403
    assert _status(session, label.lot_id) == LotStatus.ACTIVE and _inspections(session, label.lot_id) == 0


def test_an_inspection_sent_twice_is_recorded_once(client: TestClient, session: Session, label: Label) -> None:
    sign_in(client, label.inspector)
    page = client.get(VERIFY, params={"code": label.code}, headers=VI).text
    token, idem = form_token(page), re.search(r'name="idem" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert '<option value="pass" selected>' in page  # the verdict suggests the result
    form = {"csrf": token, "idem": idem, "result": "warning", "note": "Tem nhãn mờ", "code": label.code}
    first = client.post(f"{VERIFY}/lot/{label.lot_id}/inspection", data=form, follow_redirects=False)
    second = client.post(f"{VERIFY}/lot/{label.lot_id}/inspection", data=form, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert _inspections(session, label.lot_id) == 1
    shown = client.get(first.headers["location"], headers=VI).text
    assert "Đã ghi nhận kết quả kiểm tra." in shown and shown.count("Tem nhãn mờ") == 1
    # a new page gives a new key: a second inspection is a second event
    fresh = re.search(r'name="idem" value="([^"]+)"', shown).group(1)  # type: ignore[union-attr]
    assert fresh != idem
    client.post(f"{VERIFY}/lot/{label.lot_id}/inspection", data={**form, "idem": fresh, "result": "pass"})
    assert _inspections(session, label.lot_id) == 2
    # a result that is not one of the choices is said beside the field, and records nothing
    bad = client.post(
        f"{VERIFY}/lot/{label.lot_id}/inspection", data={**form, "idem": "other", "result": "great"}, headers=VI
    )
    assert bad.status_code == 422 and "Hãy chọn kết quả." in bad.text and _inspections(session, label.lot_id) == 2


def test_a_hold_sent_twice_holds_once_and_says_so_once(client: TestClient, session: Session, label: Label) -> None:
    sign_in(client, label.inspector)
    page = client.get(VERIFY, params={"code": label.code}, headers=VI).text
    token, idem = form_token(page), re.search(r'name="idem" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf": token, "idem": idem, "reason": "Nghi hàng giả, chờ giám định", "code": label.code}
    first = client.post(f"{VERIFY}/lot/{label.lot_id}/hold", data=form, follow_redirects=False)
    second = client.post(f"{VERIFY}/lot/{label.lot_id}/hold", data=form, follow_redirects=False, headers=VI)
    # the second (a double tap) lands where the first did, not on "already on hold"
    assert first.status_code == second.status_code == 303 and second.headers["location"] == first.headers["location"]
    held = session.execute(select(func.count()).select_from(Event).where(Event.type == EventType.HOLD)).scalar_one()
    assert held == 1 and _status(session, label.lot_id) == LotStatus.ON_HOLD
