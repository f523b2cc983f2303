"""What a label says, and the sheets and rolls it is printed on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class LabelData:
    """One label: the GS1 Digital Link its QR encodes and the text printed beside it."""

    uri: str
    human_code: str
    product_name: str
    lot_code: str
    packed_on: date | None = None
    expiry: date | None = None
    designation: str | None = None
    extra_line: str | None = None


@dataclass(frozen=True)
class Template:
    """A page of ``columns`` × ``rows`` labels; millimetres from the top-left corner."""

    page_mm: tuple[float, float]
    label_mm: tuple[float, float]
    columns: int = 1
    rows: int = 1
    margin_left_mm: float = 0.0
    margin_top_mm: float = 0.0
    gap_x_mm: float = 0.0
    gap_y_mm: float = 0.0

    @property
    def per_page(self) -> int:
        """Labels on one page."""
        return self.columns * self.rows

    def origin_mm(self, index: int) -> tuple[float, float]:
        """Top-left corner of the ``index``-th label of a page (row by row)."""
        row, column = divmod(index, self.columns)
        return (
            self.margin_left_mm + column * (self.label_mm[0] + self.gap_x_mm),
            self.margin_top_mm + row * (self.label_mm[1] + self.gap_y_mm),
        )


A4 = (210.0, 297.0)
TEMPLATES: dict[str, Template] = {
    # Avery L7159 / common "A4 24 nhãn" decal sheets: 63.5 × 33.9 mm, side margins 7.25 mm,
    # top and bottom 12.9 mm, 2.5 mm between columns, rows touching.
    "a4-3x8": Template(A4, (63.5, 33.9), 3, 8, 7.25, 12.9, 2.5, 0.0),
    # Avery L7654 / "A4 40 nhãn" sheets: 45.7 × 25.4 mm, side margins 9.7 mm, top and bottom
    # 21.5 mm, 2.6 mm between columns, rows touching.
    "a4-4x10": Template(A4, (45.7, 25.4), 4, 10, 9.7, 21.5, 2.6, 0.0),
    # Thermal-transfer rolls: one label per page of exactly the label's size.
    "roll-50x30": Template((50.0, 30.0), (50.0, 30.0)),
    "roll-100x50": Template((100.0, 50.0), (100.0, 50.0)),
}
