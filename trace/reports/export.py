"""The dashboard as a report to attach to the province's yearly report, in Vietnamese: an XLSX workbook
(a summary sheet and one sheet per section), one section as CSV (UTF-8 with a BOM, so Excel reads the
diacritics), or every section as CSV files in a ZIP. Text never becomes a formula in either."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from trace import csvfile
from trace.reports.dashboard import Dashboard
from trace.reports.models import Indicator

# The shared rule for text that looks like a formula (trace.spreadsheets keeps it for every workbook).
from trace.spreadsheets import _cell as _safe_cell

ORG_KINDS = {
    "cooperative": "Hợp tác xã",
    "farm": "Hộ sản xuất, trang trại",
    "processor": "Cơ sở chế biến",
    "distributor": "Nhà phân phối",
    "retailer": "Cửa hàng bán lẻ",
    "designation_holder": "Chủ thể chỉ dẫn, nhãn hiệu",
    "authority": "Cơ quan quản lý",
}
DESIGNATION_KINDS = {
    "geographical_indication": "Chỉ dẫn địa lý",
    "collective_trademark": "Nhãn hiệu tập thể",
    "certification_trademark": "Nhãn hiệu chứng nhận",
}
# Worded after Plan 197/KH-UBND's themes (organisations applying traceability, products with trace codes).
INDICATORS = {
    Indicator.ORGANISATIONS: "Số tổ chức, cơ sở tham gia hệ thống truy xuất nguồn gốc",
    Indicator.PRODUCTS: "Số sản phẩm được gắn mã truy xuất nguồn gốc",
    Indicator.LABELS: "Số tem (mã) truy xuất nguồn gốc đã phát hành trong năm",
    Indicator.SCANS: "Số lượt tra cứu (quét mã) trong năm",
}

INT, TEXT, PERCENT = "int", "text", "percent"


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    kind: str = INT
    width: int = 14


@dataclass(frozen=True)
class Section:
    code: str
    title: str  # the sheet's name: at most 31 characters, none of : / \\ ? * [ ]
    filename: str  # ASCII, for the CSV file
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]


def _month(m: Any) -> str:
    return f"{m.month:02d}/{m.year}"


def _percent(actual: int | None, target: int | None) -> float | None:
    return None if actual is None or not target else actual / target


def summary_rows(found: Dashboard) -> list[dict[str, Any]]:
    """The figures of the period in a few lines."""
    p = found.period
    rows: list[dict[str, Any]] = [{"name": "Kỳ báo cáo", "value": f"{p.start:%d/%m/%Y} – {p.end:%d/%m/%Y}"}]
    if found.scope == "holder":
        rows.append({"name": "Chủ thể quản lý", "value": found.organisation_name or ""})
    else:
        rows += [
            {"name": "Tổ chức trên hệ thống (cuối kỳ)", "value": found.organisations},
            {"name": "Tổ chức mới tham gia trong kỳ", "value": found.organisations_new},
            {"name": "Sản phẩm đã đăng ký (cuối kỳ)", "value": found.products},
            {"name": "Sản phẩm được gắn mã truy xuất (cuối kỳ)", "value": found.products_traced},
        ]
    rows += [
        {"name": "Lô hàng thu hoạch trong kỳ", "value": found.total("lots_harvested")},
        {"name": "Lô hàng chế biến trong kỳ", "value": found.total("lots_produced")},
        {"name": "Tem (mã) đã phát hành trong kỳ", "value": found.total("labels")},
    ]
    if found.scope == "province":
        rows += [
            {"name": "Lượt quét mã trong kỳ", "value": found.total("scans")},
            {"name": "Lượt kiểm tra trong kỳ", "value": found.total("inspections")},
            {"name": "Lượt tạm giữ lô hàng trong kỳ", "value": found.total("holds")},
            {"name": "Lượt thu hồi trong kỳ", "value": found.total("recalls")},
        ]
    return rows


def sections(found: Dashboard) -> list[Section]:
    """Every section of the report, in order (the holder's report has its own few)."""
    out = [
        Section(
            "summary",
            "Tổng hợp",
            "01-tong-hop.csv",
            (Column("name", "Chỉ tiêu", TEXT, 46), Column("value", "Giá trị", INT, 26)),
            summary_rows(found),
        )
    ]
    if found.scope == "province":
        out.append(
            Section(
                "organisations_by_kind",
                "Tổ chức theo loại",
                "02-to-chuc-theo-loai.csv",
                (
                    Column("kind", "Loại tổ chức", TEXT, 32),
                    Column("total", "Trên hệ thống (cuối kỳ)"),
                    Column("new", "Mới tham gia trong kỳ"),
                ),
                [{"kind": ORG_KINDS.get(k.kind, k.kind), "total": k.total, "new": k.new} for k in found.by_kind],
            )
        )
        out.append(
            Section(
                "organisations_by_commune",
                "Tổ chức theo xã, phường",
                "03-to-chuc-theo-xa-phuong.csv",
                (
                    Column("code", "Mã xã, phường", TEXT),
                    Column("name", "Xã, phường", TEXT, 30),
                    Column("total", "Số tổ chức"),
                ),
                [
                    {"code": c.code or "", "name": c.name or "Chưa ghi xã, phường", "total": c.total}
                    for c in found.by_commune
                ],
            )
        )
    monthly = [
        Column("month", "Tháng", TEXT, 10),
        Column("lots_harvested", "Lô thu hoạch"),
        Column("lots_produced", "Lô chế biến"),
        Column("unit_codes", "Mã đơn vị sản phẩm"),
        Column("lot_labels", "Tem lô hàng"),
        Column("labels", "Tổng số tem"),
    ]
    if found.scope == "province":
        monthly += [
            Column("scans", "Lượt quét mã"),
            Column("inspections", "Lượt kiểm tra"),
            Column("holds", "Lượt tạm giữ"),
            Column("recalls", "Lượt thu hồi"),
        ]
    out.append(
        Section(
            "monthly",
            "Theo tháng",
            "04-theo-thang.csv",
            tuple(monthly),
            [{"month": _month(m), **{c.key: getattr(m, c.key) for c in monthly[1:]}} for m in found.months],
        )
    )
    out.append(
        Section(
            "designations",
            "Chỉ dẫn địa lý, nhãn hiệu",
            "05-chi-dan-nhan-hieu.csv",
            (
                Column("name", "Chỉ dẫn địa lý, nhãn hiệu", TEXT, 30),
                Column("kind", "Loại", TEXT, 20),
                Column("year", "Năm", TEXT, 8),
                Column("rights", "Số quyền sử dụng"),
                Column("labels", "Số tem đã phát hành"),
                Column("quota", "Hạn mức tem/năm"),
                Column("used", "Đã dùng theo hạn mức"),
                Column("share", "Tỷ lệ dùng hạn mức", PERCENT),
                Column("over", "Số quyền vượt hạn mức"),
            ),
            [
                {
                    "name": d.name,
                    "kind": DESIGNATION_KINDS.get(d.kind, d.kind),
                    "year": str(d.year),
                    "rights": d.rights,
                    "labels": d.labels,
                    "quota": d.quota,
                    "used": d.used,
                    "share": d.share,
                    "over": d.over,
                }
                for d in found.designations
            ],
        )
    )
    if found.scope == "province":
        out.append(
            Section(
                "growth",
                "Tăng trưởng so với mục tiêu",
                "06-tang-truong.csv",
                (
                    Column("indicator", "Chỉ tiêu", TEXT, 50),
                    Column("year", "Năm", TEXT, 8),
                    Column("actual", "Thực hiện"),
                    Column("target", "Mục tiêu"),
                    Column("reached", "Tỷ lệ đạt", PERCENT),
                ),
                [
                    {
                        "indicator": INDICATORS[g.indicator],
                        "year": str(g.year),
                        "actual": g.actual,
                        "target": g.target,
                        "reached": _percent(g.actual, g.target),
                    }
                    for g in found.growth
                ],
            )
        )
    return out


SECTION_CODES = ("summary", "organisations_by_kind", "organisations_by_commune", "monthly", "designations", "growth")
SECTION_TITLES = {
    "summary": "Tổng hợp",
    "organisations_by_kind": "Tổ chức theo loại",
    "organisations_by_commune": "Tổ chức theo xã, phường",
    "monthly": "Theo tháng",
    "designations": "Chỉ dẫn địa lý, nhãn hiệu",
    "growth": "Tăng trưởng so với mục tiêu",
}

_FORMATS = {INT: "#,##0", PERCENT: "0.0%"}


def to_xlsx(parts: Sequence[Section], *, progress: Callable[[int], None] | None = None) -> bytes:
    """One sheet per section (the summary first): bold frozen header, filters, numbers as numbers."""
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for n, part in enumerate(parts, start=1):
        sheet = book.create_sheet(part.title[:31])
        for i, column in enumerate(part.columns, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = column.width
        sheet.freeze_panes = "A2"
        header = []
        for column in part.columns:
            cell = WriteOnlyCell(sheet, value=column.heading)
            cell.font = bold
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            header.append(cell)
        sheet.append(header)
        for row in part.rows:
            sheet.append([_value(sheet, column, row.get(column.key)) for column in part.columns])
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(part.columns))}{len(part.rows) + 1}"
        if progress:
            progress(n * 100 // len(parts))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _value(sheet: Any, column: Column, value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and column.kind in _FORMATS:
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = _FORMATS[column.kind]
        return cell
    return _safe_cell(sheet, value)


def _csv_value(column: Column, value: Any) -> Any:
    if column.kind == PERCENT and isinstance(value, float):
        return f"{value * 100:.1f}".replace(".", ",")  # Vietnamese decimals, as the sheet shows them
    return value


def to_csv(part: Section) -> bytes:
    """One section as CSV: UTF-8 with a BOM, one header row, numbers plain, text never a formula."""
    body = csvfile.text(
        [c.heading for c in part.columns], ([_csv_value(c, row.get(c.key)) for c in part.columns] for row in part.rows)
    )
    return ("\ufeff" + body).encode("utf-8")


def to_zip(parts: Sequence[Section]) -> bytes:
    """Every section as its own CSV file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for part in parts:
            archive.writestr(part.filename, to_csv(part))
    return buffer.getvalue()
