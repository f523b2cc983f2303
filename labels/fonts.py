"""DejaVu Sans, shipped with the package: Helvetica and reportlab's Vera lack Vietnamese glyphs."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FOLDER = Path(__file__).resolve().parent / "fonts"
REGULAR = "DejaVuSans"
BOLD = "DejaVuSans-Bold"
FILES = {REGULAR: FOLDER / "DejaVuSans.ttf", BOLD: FOLDER / "DejaVuSans-Bold.ttf"}


@cache
def register() -> None:
    """Make both faces known to reportlab (once per process)."""
    for name, path in FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(path)))


def width_mm(text: str, font: str, size_pt: float) -> float:
    """Advance width of ``text`` in millimetres."""
    register()
    return pdfmetrics.stringWidth(text, font, size_pt) * 25.4 / 72
