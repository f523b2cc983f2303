"""The lot pages of the workspace: a lot, its trace backward and forward as a tree and a timeline with
private fields only for their owner, the trace as CSV and XLSX, and nothing of it for an organisation
that has no part in the lot (direct URLs included)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session

from tests import factories as f
from tests.api.web.helpers import PASSWORD, VI, sign_in
from trace import lineage
from trace.access import Role
from trace.auth import actor_for_user
from trace.certifications import CertificationCreate, record_certification
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import HarvestIn, InputUsed, TransformIn, TransformInput, TransformOutput
from trace.lineage import Direction
from trace.lots import Lot
from trace.organisations import Organisation
from trace.users import User

INPUT = "Phân hữu cơ vi sinh (bí mật của HTX)"
NOTE = "Ghi chú nội bộ của HTX"


@dataclass
class Chain:
    """A GI longan harvest of a cooperative, shipped in part to a processor that dries it and packs
    the dried longan into gift boxes: three lots in a line, and people of four organisations."""

    coop: Organisation
    proc: Organisation
    harvest: Lot
    dried: Lot
    boxed: Lot
    grower: User
    processor: User
    stranger: User
    inspector: User


@pytest.fixture
def chain(session: Session) -> Chain:
    grows = f.gi_grower(
        session,
        f.org(session, name="HTX Nhãn lồng Đông Tảo (thử nghiệm)", practices_public=False),
        name="Vườn nhãn Đông Tảo",
    )
    coop, gi, area, fresh = grows.grower, grows.gi, grows.area, grows.fresh
    proc, stranger = f.org(session, "processor", name="Cơ sở sấy Phố Hiến (thử nghiệm)"), f.org(session, "processor")
    dried = f.product(session, proc, name_vi="Long nhãn sấy", category="longan_dried")
    boxed = f.product(session, proc, name_vi='=HYPERLINK("http://x") Hộp quà long nhãn', category="longan_dried")
    record_certification(
        session=session,
        actor=f.ADMIN,
        data=CertificationCreate(
            organisation_id=coop.id,
            kind="vietgap",
            number="VG-LOT-01",
            issuer="Trung tâm chứng nhận (thử nghiệm)",  # type: ignore[arg-type]
            valid_from=date.today() - timedelta(days=300),
            valid_to=date.today() + timedelta(days=300),
        ),
    )
    harvested = capture(
        session=session,
        actor=f.member(coop),
        items=[
            (
                EventType.HARVEST,
                HarvestIn(
                    product_id=fresh.id,
                    lot_code="NL-LOT-1",
                    quantity=Decimal("1234.5"),
                    location_id=area.id,  # type: ignore[arg-type]
                    event_time=f.when(6),
                    designation_ids=[gi.id],
                    note=NOTE,  # type: ignore[list-item]
                    inputs_used=[
                        InputUsed(kind="fertiliser", name=INPUT, applied_on=date.today() - timedelta(days=60))
                    ],
                ),
            )
        ],
    ).lot_ids[0]
    shipment = f.ship(session, coop, harvested, proc, "1000", days_ago=5.5).shipment_ids[0]
    f.receive(session, proc, shipment, days_ago=5.3)
    made = f.transform(session, proc, [(harvested, "1000")], [(dried, "250")], days_ago=5).lot_ids[0]
    packed = f.transform(session, proc, [(made, "250")], [(boxed, "240")], days_ago=4).lot_ids[0]
    people = [
        f.user(session, o, role, password=PASSWORD)[0]
        for o, role in ((coop, Role.MEMBER), (proc, Role.MEMBER), (stranger, Role.MEMBER), (None, Role.INSPECTOR))
    ]
    lots = [session.get(Lot, i) for i in (harvested, made, packed)]
    session.commit()
    return Chain(coop, proc, *lots, *people)  # type: ignore[arg-type]


def as_(client: TestClient, user: User) -> TestClient:
    client.cookies.clear()
    assert sign_in(client, user.email).status_code == 303  # type: ignore[attr-defined]
    return client


class _Tree(HTMLParser):
    """Each lot of the page's tree with how many lists deep it sits, and which lot's item holds it."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.depth, self.open_items = False, 0, [0]
        self.found: list[tuple[int, int, int]] = []  # (lot id, depth, enclosing lot id or 0)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and values.get("id") == "tree":
            self.inside = True
        elif self.inside and tag == "ul":
            self.depth += 1
        elif self.inside and tag == "li":
            lot = int(values["data-lot"] or 0)
            self.found.append((lot, self.depth, self.open_items[-1]))
            self.open_items.append(lot)

    def handle_endtag(self, tag: str) -> None:
        if self.inside and tag == "ul":
            self.depth -= 1
        elif self.inside and tag == "li":
            self.open_items.pop()
        elif tag == "section":
            self.inside = False


def tree(page: str) -> list[tuple[int, int, int]]:
    parser = _Tree()
    parser.feed(page)
    return parser.found


def test_the_backward_trace_shows_inputs_under_what_was_made_of_them_and_hides_anothers_private_fields(
    client: TestClient, chain: Chain
) -> None:
    page = as_(client, chain.processor).get(f"/app/lots/{chain.boxed.id}/trace?direction=backward", headers=VI)
    assert page.status_code == 200
    # the boxes at the top, the dried longan inside them, the harvest inside that
    assert tree(page.text) == [
        (chain.boxed.id, 1, 0),
        (chain.dried.id, 2, chain.boxed.id),
        (chain.harvest.id, 3, chain.dried.id),
    ]
    assert "<h1>Truy xuất ngược: nguồn gốc</h1>" in page.text and "HTX Nhãn lồng Đông Tảo (thử nghiệm)" in page.text
    assert "1.234,5 kg" in page.text  # the harvest's quantity, the Vietnamese way
    timeline = page.text[page.text.index('id="timeline"') :]
    kinds = ["Thu hoạch", "Vận chuyển", "Nhận hàng", "Chế biến"]
    assert [timeline.index(k) for k in kinds] == sorted(timeline.index(k) for k in kinds)
    assert timeline.count("Chế biến") == 2
    assert "Nhận hàng</span> · Cơ sở sấy Phố Hiến (thử nghiệm) ← HTX Nhãn lồng Đông Tảo (thử nghiệm)" in timeline
    # the cooperative's inputs and note are its own
    assert INPUT not in page.text and NOTE not in page.text
    assert "Thông tin riêng của tổ chức khác (vật tư đầu vào, ghi chú, chứng từ) chỉ tổ chức đó được xem." in timeline


def test_the_forward_trace_shows_what_was_made_under_its_inputs_and_the_owners_private_fields(
    client: TestClient, chain: Chain
) -> None:
    page = as_(client, chain.grower).get(f"/app/lots/{chain.harvest.id}/trace?direction=forward", headers=VI)
    assert page.status_code == 200
    assert tree(page.text) == [
        (chain.harvest.id, 1, 0),
        (chain.dried.id, 2, chain.harvest.id),
        (chain.boxed.id, 3, chain.dried.id),
    ]
    assert "<h1>Truy xuất xuôi: nơi đã đến</h1>" in page.text
    # who holds what, forward: the cooperative the rest of its harvest, the processor its boxes
    assert "Cơ sở sấy Phố Hiến (thử nghiệm) (240 kg)" in page.text
    # the cooperative sees its own harvest's private fields
    applied = (date.today() - timedelta(days=60)).strftime("%d/%m/%Y")
    assert f"{INPUT}; sử dụng ngày {applied}" in page.text and NOTE in page.text
    # and the processor's view of the same harvest forward does not
    other = as_(client, chain.processor).get(f"/app/lots/{chain.harvest.id}/trace?direction=forward", headers=VI)
    assert other.status_code == 200 and tree(other.text) == tree(page.text)
    assert INPUT not in other.text and NOTE not in other.text


def test_a_lot_made_in_a_workshop_names_it_as_where_it_was_made_not_as_a_growing_area(
    client: TestClient, session: Session, chain: Chain
) -> None:
    workshop = f.location(session, chain.proc, kind="packing_facility", name="Xưởng sấy Phố Hiến")
    made = capture(
        session=session,
        actor=f.member(chain.proc),
        items=[
            (
                EventType.TRANSFORM,
                TransformIn(
                    inputs=[TransformInput(lot_id=chain.boxed.id, quantity=Decimal(5))],
                    location_id=workshop.id,  # type: ignore[arg-type]
                    outputs=[
                        TransformOutput(product_id=chain.boxed.product_id, lot_code="LN-XUONG-1", quantity=Decimal(5))
                    ],
                    event_time=f.when(1),
                ),
            )
        ],
    ).lot_ids[0]
    session.commit()
    page = as_(client, chain.processor).get(f"/app/lots/{made}", headers=VI).text
    assert "<dt>Nơi sản xuất</dt><dd>Xưởng sấy Phố Hiến" in page and "<dt>Vùng trồng</dt>" not in page
    english = client.get(f"/app/lots/{made}?lang=en").text
    assert "<dt>Made at</dt><dd>Xưởng sấy Phố Hiến" in english


def test_the_lot_page_shows_the_lot_its_holders_claims_certificates_and_what_can_be_done(
    client: TestClient, chain: Chain
) -> None:
    page = as_(client, chain.grower).get(f"/app/lots/{chain.harvest.id}", headers=VI)
    assert page.status_code == 200
    text = page.text
    assert "Nhãn lồng tươi" in text and "NL-LOT-1" in text and "1.234,5 kg" in text and "đang lưu thông" in text
    assert "Cơ sở sấy Phố Hiến" not in text  # it used up all it received: it holds none now
    assert '<td class="num">234,5 kg</td>' in text  # what the cooperative still holds
    assert "CDĐL Nhãn lồng Hưng Yên · số 00055" in text and "VG-LOT-01" in text
    assert "<dt>Vùng trồng</dt>" in text  # a harvest comes from a growing area...
    client.cookies.clear()
    for action in ("ship", "print", "store", "sell"):
        assert f'href="/app/lots/{chain.harvest.id}/{action}"' in text
    assert f'href="/app/lots/{chain.harvest.id}/trace?direction=forward"' in text
    # the processor holds none of the harvest now: it may look, but there is nothing to ship or sell
    looked = as_(client, chain.processor).get(f"/app/lots/{chain.harvest.id}", headers=VI)
    assert looked.status_code == 200 and f"/app/lots/{chain.harvest.id}/ship" not in looked.text
    # an inspector reads every lot and acts on none
    inspected = as_(client, chain.inspector).get(f"/app/lots/{chain.boxed.id}", headers=VI)
    assert inspected.status_code == 200 and "Cơ sở sấy Phố Hiến (thử nghiệm)" in inspected.text
    assert f"/app/lots/{chain.boxed.id}/sell" not in inspected.text


def test_the_csv_export_is_the_fsma_spreadsheet_of_the_trace(
    client: TestClient, session: Session, chain: Chain
) -> None:
    answer = as_(client, chain.processor).get(f"/app/lots/{chain.boxed.id}/trace.csv?direction=backward")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == f'attachment; filename="lot-{chain.boxed.lot_code}-backward.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert {r["lot_code"] for r in rows} == {"NL-LOT-1", chain.dried.lot_code, chain.boxed.lot_code}
    assert {"Harvesting", "Shipping", "Receiving", "Transformation"} <= {r["critical_tracking_event"] for r in rows}
    # the same file as the domain gives the same reader
    assert answer.text == lineage.fsma_csv(
        session=session,
        actor=actor_for_user(chain.processor),
        lot_id=chain.boxed.id,  # type: ignore[arg-type]
        direction=Direction.BACKWARD,
    )


def test_the_xlsx_export_has_the_same_rows_with_numbers_as_numbers_and_text_as_text(
    client: TestClient, chain: Chain
) -> None:
    as_(client, chain.grower)
    answer = client.get(f"/app/lots/{chain.harvest.id}/trace.xlsx?direction=forward")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert answer.headers["content-disposition"] == 'attachment; filename="lot-NL-LOT-1-forward.xlsx"'
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    table = [list(row) for row in sheet.iter_rows()]
    assert [c.value for c in table[0]] == lineage.FSMA_COLUMNS
    expected = list(
        csv.DictReader(io.StringIO(client.get(f"/app/lots/{chain.harvest.id}/trace.csv?direction=forward").text))
    )
    assert len(table) - 1 == len(expected) > 0
    column = {name: i for i, name in enumerate(lineage.FSMA_COLUMNS)}
    for cells, row in zip(table[1:], expected, strict=True):
        assert cells[column["event_id"]].value == row["event_id"] and cells[column["lot_code"]].value == row["lot_code"]
        if row["quantity"]:
            assert cells[column["quantity"]].data_type == "n"
            assert Decimal(str(cells[column["quantity"]].value)) == Decimal(row["quantity"])
    # a product name that looks like a formula stays text: it cannot run in the buyer's spreadsheet
    names = [
        cells[column["product_description"]]
        for cells in table[1:]
        if str(cells[column["product_description"]].value).startswith("=")
    ]
    assert names and all(c.data_type == "s" for c in names)


@pytest.mark.parametrize(
    "path", ["", "/trace?direction=backward", "/trace?direction=forward", "/trace.csv", "/trace.xlsx?direction=forward"]
)
def test_another_organisations_direct_url_finds_nothing(client: TestClient, chain: Chain, path: str) -> None:
    as_(client, chain.stranger)
    for lot in (chain.harvest, chain.boxed):
        answer = client.get(f"/app/lots/{lot.id}{path}", headers=VI)
        assert answer.status_code == 404 and "Trang này không tồn tại, hoặc thuộc về tổ chức khác." in answer.text
        assert lot.lot_code not in answer.text and "content-disposition" not in answer.headers
    # the same answer as for a lot that does not exist
    missing = client.get(f"/app/lots/2000000000{path}", headers=VI)
    theirs = client.get(f"/app/lots/{chain.harvest.id}{path}", headers=VI)
    assert missing.status_code == 404
    assert missing.text.replace("/app/lots/2000000000", "/app/lots/ID") == theirs.text.replace(
        f"/app/lots/{chain.harvest.id}", "/app/lots/ID"
    )


def test_the_lot_pages_need_a_signed_in_user(client: TestClient, chain: Chain) -> None:
    for path in ("", "/trace", "/trace.csv", "/trace.xlsx"):
        away = client.get(f"/app/lots/{chain.harvest.id}{path}", follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"].startswith("/login?next=")


def test_packing_is_offered_once_the_lot_has_labelled_packages_outside_a_carton(
    client: TestClient, session: Session, chain: Chain
) -> None:
    from trace.printing import runs

    page = as_(client, chain.processor).get(f"/app/lots/{chain.boxed.id}", headers=VI).text
    assert f'href="/app/lots/{chain.boxed.id}/print"' in page and 'id="do-pack"' not in page
    runs.create_run(
        session=session,
        actor=f.member(chain.proc),
        lot_id=chain.boxed.id,  # type: ignore[arg-type]
        data=runs.PrintRunCreate(quantity=2),
    )
    session.commit()
    assert 'id="do-pack" href="/app/pack"' in client.get(f"/app/lots/{chain.boxed.id}", headers=VI).text
