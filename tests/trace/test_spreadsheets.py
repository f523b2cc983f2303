"""Spreadsheets for people: text stays text (no formula injection), numbers stay numbers."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import load_workbook

from trace.spreadsheets import workbook


def test_text_that_looks_like_a_formula_stays_text_and_numbers_stay_numbers() -> None:
    rows = [
        {"name": '=HYPERLINK("http://evil.example","click")', "qty": Decimal("12.5"), "note": "-1 kg"},
        {"name": "+84 912 345 678", "qty": 3, "note": "@mention"},
        {"name": "Nhãn lồng Hưng Yên", "qty": None, "note": ""},
    ]
    sheet = load_workbook(io.BytesIO(workbook(rows, columns=["name", "qty", "note"], title="t"))).active
    cells = [[cell for cell in row] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells[0]] == ['=HYPERLINK("http://evil.example","click")', 12.5, "-1 kg"]
    assert all(c.data_type == "s" for c in (cells[0][0], cells[0][2], cells[1][0], cells[1][2]))
    assert cells[0][1].data_type == "n" and cells[2][0].value == "Nhãn lồng Hưng Yên"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:C4"


def test_control_characters_in_a_cell_do_not_stop_the_file() -> None:
    # a reason with control characters (found by fuzzing a recall's report: a 500 before), and a formula with one
    data = workbook([{"reason": "\x1e\x86mý\x00", "note": "=\x07cmd"}], columns=["reason", "note"], title="recall")
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet["A2"].value == "\ufffd\x86mý\ufffd"
    assert sheet["B2"].value == "=\ufffdcmd" and sheet["B2"].data_type == "s"
