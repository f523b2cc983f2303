"""XLSX files for people to sort and filter: a bold frozen header, filters on every column, numbers as
numbers, and text that stays text (a name typed as ``=HYPERLINK(...)`` never becomes a formula)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

_FORMULA_STARTS = ("=", "+", "-", "@")


def _cell(sheet: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    # XML 1.0 cannot hold most control characters: a reason typed with one (or pasted from a terminal) must
    # not stop the whole file, so each becomes U+FFFD, visibly.
    value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if not value.startswith(_FORMULA_STARTS):
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


def workbook(
    rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str], title: str, widths: Mapping[str, int] | None = None
) -> bytes:
    """One sheet of ``rows`` under ``columns`` (streamed: no cell objects kept for a large file)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    for i, name in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = (widths or {}).get(name, max(12, len(name) + 2))
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in columns:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append([_cell(sheet, row[name]) for name in columns])
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
