"""The national portal export: rows as counted independently, no private field, Vietnamese intact,
a manifest whose hashes match, incremental pages that return every row exactly once."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
import zipfile
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from tests import factories as f
from trace import portal, products
from trace.access import Actor, Role
from trace.errors import Forbidden, RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import BizTransaction, CorrectionIn, InputUsed
from trace.locations import Location
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.timeutil import utcnow
from trace.portal import feed
from trace.products import Product

ADMIN = f.ADMIN
NAME = "Nhãn lồng Hưng Yên sấy khô"  # NFC, with ồ ư ấ


@pytest.fixture(autouse=True)
def _no_settling(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rows recorded a moment ago are exported at once (a test of its own covers the settle window).
    monkeypatch.setenv("HYTRACE_PORTAL_SETTLE_SECONDS", "0")


def _chain(session: Session) -> dict[str, Any]:
    """A grower, a household farm with private details, a processor: harvests, a shipment, a receipt,
    a transformation and a correction."""
    grower = f.org(session, name="HTX Nhãn lồng Tân Hưng")
    farm = f.org(
        session,
        "farm",
        name="Hộ Nguyễn Văn Riêngtư",
        contact_person="Nguyễn Văn Riêngtư",
        phone="0912345678",
        email="rieng@example.test",
    )
    processor = f.org(session, "processor", name="Công ty Long nhãn Phố Hiến")
    fresh = f.product(session, grower, name_vi=NAME)
    area = f.location(session, farm, latitude=20.654321, longitude=106.0543)
    used = InputUsed(kind="pesticide", name="Thuốc Bímật", applied_on=f.today() - timedelta(days=30))
    first = f.harvest(
        session,
        grower,
        "200",
        prod=fresh,
        inputs_used=[used],
        note="Ghi chú nội bộ",
        biz_transactions=[BizTransaction(type="inv", id="HD-BIMAT-7")],
    )
    f.harvest(session, farm, "50", loc=area, kde={"brix": "22-bimat"})
    lot_id = first.lot_ids[0]
    shipped = f.ship(session, grower, lot_id, processor, "120")
    f.receive(session, processor, shipped.shipment_id)  # type: ignore[arg-type]
    dried = f.product(session, processor, name_vi="Long nhãn Phố Hiến", category="longan_dried")
    f.transform(session, processor, [(lot_id, "100")], [(dried, "20")])
    wrong = f.harvest(session, farm, "5", loc=area)
    capture(
        session=session,
        actor=f.member(farm),
        items=[(EventType.CORRECTION, CorrectionIn(event_id=wrong.events[0].id, reason="did_not_occur"))],
    )
    return {"grower": grower, "farm": farm, "processor": processor, "fresh": fresh, "area": area}


def _unzip(chunks: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    files = {name: archive.read(name) for name in archive.namelist()}
    return files, json.loads(files.pop("manifest.json"))


def _rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _count(session: Session, query: Any) -> int:
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def test_the_export_has_every_row_counted_independently(session: Session) -> None:
    # given
    _chain(session)
    # when
    chunks = list(portal.export_zip(session=session, actor=ADMIN, batch=3))
    files, manifest = _unzip(chunks)
    assert len(chunks) > len(files) + 1  # streamed: bytes leave every few rows, not once at the end
    # then: each file holds what plain queries count
    expected = {
        "san_pham.csv": _count(session, select(Product.id)),
        "to_chuc.csv": _count(session, select(Organisation.id)),
        "dia_diem.csv": _count(session, select(Location.id)),
        "ma_truy_xuat.csv": _count(session, select(EventLot.id))
        + _count(
            session,
            select(Event.id).where(Event.type == EventType.CORRECTION, ~col(Event.id).in_(select(EventLot.event_id))),
        ),
    }
    assert {name: len(_rows(data)) for name, data in files.items()} == expected
    assert {entry["name"]: entry["rows"] for entry in manifest["files"]} == expected
    # and the trace codes are the (GTIN, lot, event) triples of the log
    triples = Counter(
        (r["ma_truy_xuat_san_pham"], r["ma_lo"], r["ma_su_kien"])
        for r in _rows(files["ma_truy_xuat.csv"])
        if r["ma_lo"]
    )
    plain = Counter(
        session.execute(
            select(Lot.gtin, Lot.lot_code, EventLot.event_id).join(Lot, col(Lot.id) == col(EventLot.lot_id))
        ).tuples()
    )
    assert triples == plain


def test_the_manifest_hashes_match_the_files(session: Session) -> None:
    _chain(session)
    files, manifest = _unzip(portal.export_zip(session=session, actor=ADMIN))
    assert manifest["format"] == "hytrace-portal-1"
    assert {e["name"]: e["sha256"] for e in manifest["files"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()
    }
    tampered = files["san_pham.csv"] + b"x"
    assert hashlib.sha256(tampered).hexdigest() != manifest["files"][0]["sha256"]


def test_no_private_field_reaches_the_export(session: Session) -> None:
    # given a household without consent to show its name, inputs, notes, KDEs, invoices and GPS of its home
    parts = _chain(session)
    # when
    files, _ = _unzip(portal.export_zip(session=session, actor=ADMIN))
    text = "\n".join(data.decode("utf-8-sig") for data in files.values())
    # then
    for secret in (
        "Riêngtư",
        "0912345678",
        "rieng@example.test",
        "Bímật",
        "Ghi chú nội bộ",
        "bimat",
        "BIMAT",
        "20.654321",
        "106.0543",
    ):
        assert secret.lower() not in text.lower(), secret
    farm_row = next(r for r in _rows(files["to_chuc.csv"]) if r["ma_so_thue"] == parts["farm"].tax_code)
    assert farm_row["ten_to_chuc"].startswith("Hộ sản xuất tại ")
    # a cooperative's growing area keeps its coordinates: registered planting areas are public
    f.location(session, parts["grower"], latitude=20.5, longitude=106.25)
    files, _ = _unzip(portal.export_zip(session=session, actor=ADMIN))
    assert any(r["vi_do"] == "20.5" for r in _rows(files["dia_diem.csv"]))


def test_vietnamese_survives_and_formulas_stay_text(session: Session) -> None:
    grower = f.org(session)
    f.product(session, grower, name_vi=NAME)
    f.product(session, grower, name_vi='=HYPERLINK("http://x")')
    files, _ = _unzip(portal.export_zip(session=session, actor=ADMIN))
    text = files["san_pham.csv"].decode("utf-8-sig")
    assert unicodedata.is_normalized("NFC", text)
    names = {r["ten_san_pham"] for r in _rows(files["san_pham.csv"])}
    assert NAME in names
    assert '\'=HYPERLINK("http://x")' in names and '=HYPERLINK("http://x")' not in names
    row = next(r for r in _rows(files["to_chuc.csv"]) if r["ma_so_thue"] == grower.tax_code)
    assert (row["ten_xa"], row["ten_tinh"]) == ("Xã Hoàn Long", "Tỉnh Hưng Yên")


def _all_pages(
    session: Session, name: str, limit: int, cursor: str | None = None, since: Any = None
) -> tuple[list[dict[str, str]], str | None, int]:
    items: list[dict[str, str]] = []
    pages = 0
    while True:
        page = portal.page(session=session, actor=ADMIN, feed=name, since=since, cursor=cursor, limit=limit)
        items += page.items
        cursor, pages = page.cursor, pages + 1
        if not page.more:
            return items, cursor, pages


def test_pages_return_every_row_exactly_once_and_resume_at_the_cursor(session: Session) -> None:
    # given
    parts = _chain(session)
    for _ in range(5):
        f.product(session, parts["grower"])
    # when paging by 2
    items, cursor, pages = _all_pages(session, "products", limit=2)
    codes, _, _ = _all_pages(session, "trace-codes", limit=2)
    # then
    gtins = [r["ma_truy_xuat_san_pham"] for r in items]
    assert sorted(gtins) == sorted(session.execute(select(Product.gtin)).scalars())
    assert len(set(gtins)) == len(gtins) and pages == -(-len(gtins) // 2)
    keys = [(r["ma_su_kien"], r["ma_truy_xuat_san_pham"], r["ma_lo"], r["vai_tro_lo"]) for r in codes]
    assert len(set(keys)) == len(keys) == _count(session, select(EventLot.id)) + 1  # + the correction
    # and nothing new: the saved cursor gives an empty page and keeps itself
    again = portal.page(session=session, actor=ADMIN, feed="products", cursor=cursor, limit=2)
    assert (again.items, again.cursor, again.more) == ([], cursor, False)
    # when a product changes, the next pull from the cursor returns it, once
    products.update_product(
        session=session,
        actor=f.member(parts["grower"]),
        product_id=parts["fresh"].id,
        data=products.ProductUpdate(name_en="Dried longan"),
    )
    changed, _, _ = _all_pages(session, "products", limit=2, cursor=cursor)
    assert [(r["ma_truy_xuat_san_pham"], r["ten_san_pham_en"], r["phien_ban"]) for r in changed] == [
        (parts["fresh"].gtin, "Dried longan", "2")
    ]


def test_since_keeps_rows_changed_from_then(session: Session) -> None:
    grower = f.org(session)
    f.product(session, grower)
    middle = utcnow()
    later = [f.product(session, grower).gtin for _ in range(3)]
    items, _, _ = _all_pages(session, "products", limit=10, since=middle)
    assert sorted(r["ma_truy_xuat_san_pham"] for r in items) == sorted(later)


def test_rows_of_the_last_moments_wait_for_the_settle_window(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    # A transaction that began earlier may still commit rows with an earlier record time: a cursor
    # must not pass them, so the newest seconds wait for the next pull.
    monkeypatch.setenv("HYTRACE_PORTAL_SETTLE_SECONDS", "60")
    from trace.platform.config import get_settings

    get_settings.cache_clear()
    gtin = f.product(session, f.org(session)).gtin
    now = utcnow()
    assert (
        portal.page(session=session, actor=ADMIN, feed="products", since=now - timedelta(minutes=1), now=now).items
        == []
    )
    later = portal.page(
        session=session, actor=ADMIN, feed="products", since=now - timedelta(minutes=1), now=now + timedelta(seconds=61)
    )
    assert [r["ma_truy_xuat_san_pham"] for r in later.items] == [gtin]
    # a file asked for since a moment ago is empty for now (not an error)
    _, manifest = _unzip(portal.export_zip(session=session, actor=ADMIN, since=now - timedelta(seconds=10), now=now))
    assert [e["rows"] for e in manifest["files"]] == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "cursor", ["nonsense", "e30", feed.encode_cursor("organisations", feed.Position(utcnow(), 1, 0))]
)
def test_a_cursor_not_given_out_by_the_feed_is_refused(session: Session, cursor: str) -> None:
    with pytest.raises(RuleViolation) as error:
        portal.page(session=session, actor=ADMIN, feed="products", cursor=cursor)
    assert error.value.code == "bad_cursor"


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ORG_ADMIN, Role.INSPECTOR, Role.PORTAL])
def test_only_the_province_admin_or_a_portal_key_reads_it(session: Session, role: Role) -> None:
    org = f.org(session, "authority")
    user = Actor(role=role, organisation_id=org.id, user_id=7)
    with pytest.raises(Forbidden):
        portal.page(session=session, actor=user, feed="products")
    with pytest.raises(Forbidden):
        portal.export_zip(session=session, actor=user)
    key = Actor(role=Role.PORTAL, organisation_id=org.id, api_key_id=3)
    assert portal.page(session=session, actor=key, feed="products").feed == "products"


def test_trace_codes_name_the_location_and_both_neighbours(session: Session) -> None:
    parts = _chain(session)
    files, _ = _unzip(portal.export_zip(session=session, actor=ADMIN))
    rows = _rows(files["ma_truy_xuat.csv"])
    ship = next(r for r in rows if r["loai_su_kien_en"] == "Shipping")
    assert (ship["ma_so_thue_ben_gui"], ship["ma_so_thue_ben_nhan"]) == (
        parts["grower"].tax_code,
        parts["processor"].tax_code,
    )
    harvest = next(
        r for r in rows if r["loai_su_kien_en"] == "Harvest" and r["ma_so_thue_to_chuc"] == parts["farm"].tax_code
    )
    assert harvest["ma_truy_xuat_dia_diem"] == parts["area"].code and harvest["loai_su_kien"] == "Thu hoạch"
    recorded = session.get(Event, harvest["ma_su_kien"])
    assert recorded is not None
    assert datetime.fromisoformat(harvest["thoi_gian_su_kien"]) == recorded.event_time
    assert harvest["thoi_gian_su_kien"].endswith(recorded.event_tz_offset)
    correction = next(r for r in rows if r["loai_su_kien_en"] == "Correction")
    corrected = session.execute(select(Event.corrects_event_id).where(Event.type == EventType.CORRECTION)).scalar_one()
    assert correction["ma_su_kien_bi_dinh_chinh"] == corrected
    assert Decimal(ship["so_luong"]) == Decimal("120")
