"""THE mapping to the national traceability portal (Circular 02/2024/TT-BKHCN): the one file to edit
when the portal's real file format is known.

The circular names the key data elements; the portal's exact column names and files are not public
here, so each file below is a declarative table: column name (the circular's Vietnamese term) →
getter on one source row. Adding, renaming or dropping a column is a one-line edit of a table;
nothing else in ``trace/portal/`` names a column.

Identifiers (see PRODUCT.md):

- ``ma_truy_xuat_san_pham`` (product trace code) = the GTIN-14;
- ``ma_truy_xuat_dia_diem`` (location trace code) = the location's GLN when it has one, else its
  registered code (planting-area / packing-facility code), else ``HY-DD-<id>`` (our location code);
- ``ma_lo`` = the lot code; GTIN + lot code identify a lot;
- ``thoi_gian_su_kien`` = when the event happened, ISO 8601 with the offset it was recorded in;
  ``thoi_gian_ghi_nhan`` = when hytrace recorded it (UTC), which is what ``since`` pages on;
- organisations are identified by their tax code (``ma_so_thue``).

Only data that is public or that the province may pass on: no phone, e-mail or contact person; a farm
household's personal name, street address and GLN only with its consent (else the redacted form of
``trace.organisations.shown_party``, as on the consumer page: its tax code stays, as the key); no
GPS for a farm household's places (its home); no event payload (farming inputs, notes, serials,
business documents: what ``trace/events/query.py`` strips for outsiders).

Files (one per feed): ``san_pham.csv`` (products), ``to_chuc.csv`` (organisations), ``dia_diem.csv``
(locations), ``ma_truy_xuat.csv`` (one row per lot an event touched: the trace codes with their
event times; events that touch no lot are left out, except corrections, which name the event they
declare erroneous).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trace import admin_units
from trace.access import Actor, Role
from trace.organisations import PartyRow, PartyShown, shown_party
from trace.platform.timeutil import localise

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    """One output column: its name in the portal's terms and how to read it from a source row."""

    name: str
    get: Callable[[Row], Any]
    doc: str = ""


def _text(value: Any) -> str:
    """How a value is written in a CSV cell or JSON string: ISO dates, plain decimals, '' for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    return str(value)


def field(name: str) -> Callable[[Row], Any]:
    """A getter for one field of the source row."""
    return lambda row: row[name]


# --------------------------------------------------------------------------- vocabularies

ORG_KINDS_VI = {
    "cooperative": "Hợp tác xã",
    "farm": "Hộ sản xuất",
    "processor": "Cơ sở chế biến",
    "distributor": "Nhà phân phối",
    "retailer": "Cơ sở bán lẻ",
    "designation_holder": "Tổ chức quản lý nhãn hiệu/CDĐL",
    "authority": "Cơ quan quản lý nhà nước",
}
LOCATION_KINDS_VI = {
    "growing_area": "Vùng trồng",
    "packing_facility": "Cơ sở đóng gói",
    "warehouse": "Kho",
    "shop": "Cửa hàng",
    "farm": "Trang trại chăn nuôi",
}
EVENT_TYPES_VI = {
    "harvest": "Thu hoạch",
    "commission": "Cấp mã đơn vị sản phẩm",
    "ship": "Xuất hàng",
    "receive": "Nhận hàng",
    "transform": "Chế biến",
    "pack": "Đóng gói",
    "sell": "Bán lẻ",
    "store": "Lưu kho",
    "inspect": "Kiểm tra",
    "loss": "Hao hụt/huỷ",
    "correction": "Đính chính",
    "decommission": "Huỷ mã",
    "right": "Quyền sử dụng nhãn",
    "hold": "Tạm giữ",
    "release": "Giải toả",
    "recall": "Thu hồi",
}
EVENT_TYPES_EN = {
    "harvest": "Harvest",
    "commission": "Unit codes issued",
    "ship": "Shipping",
    "receive": "Receiving",
    "transform": "Processing",
    "pack": "Packing",
    "sell": "Retail sale",
    "store": "Storage",
    "inspect": "Inspection",
    "loss": "Loss",
    "correction": "Correction",
    "decommission": "Codes voided",
    "right": "Right to use a mark",
    "hold": "Hold",
    "release": "Release",
    "recall": "Recall",
}
LOT_ROLES_VI = {"object": "đối tượng", "input": "đầu vào", "output": "đầu ra"}


# --------------------------------------------------------------------------- derived values


def location_trace_code(*, gln: str | None, code: str | None, location_id: int | None) -> str:
    """``ma_truy_xuat_dia_diem``: GLN, else the registered code, else our location code."""
    if gln:
        return gln
    if code:
        return code
    return f"HY-DD-{location_id}" if location_id is not None else ""


def _commune_name(code: str | None) -> str:
    unit = admin_units.commune(code) if code else None
    return unit.name if unit else ""


def _province(code: str | None) -> tuple[str, str]:
    unit = admin_units.commune(code) if code else None
    return (unit.province_code, unit.province_name) if unit else ("", "")


def _former_name(code: str | None) -> str:
    old = admin_units.former_commune(code) if code else None
    return f"{old.name}, {old.district_name}, {old.province_name}" if old else ""


# The portal reads as itself: a farm household's name and street address only with its consent
# (Decree 13/2023), its tax code as the record key (trace.organisations.shown_party says who sees what).
PORTAL = Actor(role=Role.PORTAL, organisation_id=None, name="national portal")


def _org(row: Row) -> PartyShown:
    return shown_party(
        PartyRow(
            id=row["id"],
            kind=row["kind"],
            name=row["name"],
            commune_code=row["commune_code"],
            personal_name_consent=bool(row["personal_name_consent"]),
            name_en=row["name_en"],
            address=row["address"] or "",
            tax_code=row["tax_code"],
            gln=row["gln"],
        ),
        PORTAL,
    )


def _private_place(row: Row) -> bool:
    return bool(row["org_kind"] == "farm")


def _event_time(row: Row) -> str:
    return localise(row["event_time"], row["event_tz_offset"]).isoformat()


# --------------------------------------------------------------------------- the four files

PRODUCTS: Sequence[Column] = (
    Column("ma_truy_xuat_san_pham", field("gtin"), "GTIN-14"),
    Column("ten_san_pham", field("name_vi")),
    Column("ten_san_pham_en", field("name_en")),
    Column("nhom_san_pham", field("category"), "our category code, e.g. longan_fresh"),
    Column("don_vi_tinh", field("unit")),
    Column("quy_cach_dong_goi", field("package_size"), "quantity (in don_vi_tinh) per labelled package"),
    Column("ma_so_thue_to_chuc", field("org_tax_code"), "the brand owner"),
    Column("phien_ban", field("version")),
    Column("thoi_gian_cap_nhat", field("changed_at"), "last change (UTC)"),
)

ORGANISATIONS: Sequence[Column] = (
    Column("ma_so_thue", lambda r: _org(r).tax_code),
    Column("ten_to_chuc", lambda r: _org(r).name),
    Column("ten_to_chuc_en", lambda r: _org(r).name_en),
    Column("loai_to_chuc", lambda r: ORG_KINDS_VI.get(r["kind"], r["kind"])),
    Column("loai_to_chuc_en", field("kind")),
    Column("ma_gln", lambda r: _org(r).gln),
    Column("dia_chi", lambda r: _org(r).address),
    Column("ma_xa", field("commune_code"), "today's commune/ward (two-tier administration since 1 July 2025)"),
    Column("ten_xa", lambda r: _commune_name(r["commune_code"])),
    Column("ma_tinh", lambda r: _province(r["commune_code"])[0]),
    Column("ten_tinh", lambda r: _province(r["commune_code"])[1]),
    Column("hoat_dong", field("active")),
    Column("phien_ban", field("version")),
    Column("thoi_gian_cap_nhat", field("changed_at")),
)

LOCATIONS: Sequence[Column] = (
    Column("ma_truy_xuat_dia_diem", lambda r: location_trace_code(gln=r["gln"], code=r["code"], location_id=r["id"])),
    Column("ma_gln", field("gln")),
    Column("ma_so_dang_ky", field("code"), "planting-area code (mã số vùng trồng) or packing-facility code"),
    Column("ten_dia_diem", field("name")),
    Column("loai_dia_diem", lambda r: LOCATION_KINDS_VI.get(r["kind"], r["kind"])),
    Column("loai_dia_diem_en", field("kind")),
    Column("ma_so_thue_to_chuc", field("org_tax_code")),
    Column("dia_chi", field("address")),
    Column("ma_xa", field("commune_code")),
    Column("ten_xa", lambda r: _commune_name(r["commune_code"])),
    Column("ma_tinh", lambda r: _province(r["commune_code"])[0]),
    Column("ten_tinh", lambda r: _province(r["commune_code"])[1]),
    Column("ma_xa_truoc_2025", field("former_commune_code")),
    Column("ten_xa_truoc_2025", lambda r: _former_name(r["former_commune_code"])),
    Column("vi_do", lambda r: None if _private_place(r) else r["latitude"]),
    Column("kinh_do", lambda r: None if _private_place(r) else r["longitude"]),
    Column("dien_tich_ha", field("area_ha")),
    Column("hoat_dong", field("active")),
    Column("phien_ban", field("version")),
    Column("thoi_gian_cap_nhat", field("changed_at")),
)

TRACE_CODES: Sequence[Column] = (
    Column("ma_truy_xuat_san_pham", field("gtin"), "GTIN-14 of the lot"),
    Column("ma_lo", field("lot_code")),
    Column("ngay_san_xuat", field("production_date")),
    Column("han_su_dung", field("expiry_date")),
    Column("ma_su_kien", field("event_id")),
    Column("loai_su_kien", lambda r: EVENT_TYPES_VI.get(r["type"], r["type"])),
    Column("loai_su_kien_en", lambda r: EVENT_TYPES_EN.get(r["type"], r["type"])),
    Column("buoc_nghiep_vu_cbv", field("biz_step"), "GS1 CBV bizStep"),
    Column("thoi_gian_su_kien", _event_time),
    Column("thoi_gian_ghi_nhan", field("record_time")),
    Column(
        "ma_truy_xuat_dia_diem",
        lambda r: location_trace_code(gln=r["location_gln"], code=r["location_code"], location_id=r["location_id"]),
    ),
    Column("vai_tro_lo", lambda r: LOT_ROLES_VI.get(r["lot_role"], r["lot_role"])),
    Column("so_luong", field("quantity")),
    Column("don_vi_tinh", field("unit")),
    Column("ma_so_thue_to_chuc", field("org_tax_code"), "who recorded the event"),
    Column("ma_so_thue_ben_gui", field("source_tax_code"), "one step back"),
    Column("ma_so_thue_ben_nhan", field("destination_tax_code"), "one step forward"),
    Column("ma_su_kien_bi_dinh_chinh", field("corrects_event_id"), "the event this correction declares erroneous"),
)

FILES: dict[str, tuple[str, Sequence[Column]]] = {
    # feed name (the pull endpoint's path) → (file name in the ZIP, columns)
    "products": ("san_pham.csv", PRODUCTS),
    "organisations": ("to_chuc.csv", ORGANISATIONS),
    "locations": ("dia_diem.csv", LOCATIONS),
    "trace-codes": ("ma_truy_xuat.csv", TRACE_CODES),
}


def render(columns: Sequence[Column], row: Row) -> dict[str, str]:
    """One source row as the portal's record: column name → text."""
    return {c.name: _text(c.get(row)) for c in columns}
