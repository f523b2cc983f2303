"""Where things go on one label, in millimetres from its top-left corner; every renderer follows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from labels.fonts import BOLD, REGULAR, width_mm
from labels.model import LabelData
from labels.qr import QUIET_ZONE

PT_MM = 25.4 / 72
LEADING = 1.18


@dataclass(frozen=True)
class Text:
    """One line of text; ``x`` is its left edge (or centre when ``centred``), ``y`` its baseline."""

    x: float
    y: float
    size_pt: float
    font: str
    text: str
    centred: bool = False


@dataclass(frozen=True)
class Layout:
    """The QR's top-left corner and module size, the text lines and the designation badge's box."""

    qr_x: float
    qr_y: float
    module: float
    texts: list[Text]
    badge: tuple[float, float, float, float] | None


def vn_date(day: date) -> str:
    """dd/mm/yyyy, as Vietnamese labels print dates."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def wrap(text: str, font: str, size_pt: float, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines; the last one ends in "…" if text is left over."""
    words, lines, current = text.split(), [], ""
    for i, word in enumerate(words):
        trial = f"{current} {word}".strip()
        if not current or width_mm(trial, font, size_pt) <= width:
            current = trial
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines:
            current = " ".join(words[i:])
            break
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += "…"
    return [_clip(line, font, size_pt, width) for line in lines]


def _clip(line: str, font: str, size_pt: float, width: float) -> str:
    if width_mm(line, font, size_pt) <= width:
        return line
    while line and width_mm(line + "…", font, size_pt) > width:
        line = line[:-1]
    return line.rstrip() + "…"


def layout(label: LabelData, side: int, size_mm: tuple[float, float]) -> Layout:
    """Place the QR (``side`` modules) on the left, the code under it and the text to its right."""
    w, h = size_mm
    pad = max(1.0, min(w, h) * 0.05)
    base = h / 30 * 7.0  # name size in points: 7 pt on a 30 mm-high label, scaled with the label
    code_pt = max(4.5, base * 0.8)
    code_h = code_pt * PT_MM * LEADING if label.human_code else 0.0
    box = min(h - 2 * pad - code_h + 2 * pad * 0.8, w * 0.5)  # quiet zone may use the padding
    module = box / (side + 2 * QUIET_ZONE)
    qr_x, qr_y = pad * 0.2, pad * 0.2
    texts: list[Text] = []
    if label.human_code:
        texts.append(
            Text(qr_x + box / 2, qr_y + box + code_pt * PT_MM * 0.85, code_pt, REGULAR, label.human_code, centred=True)
        )
    x0 = qr_x + box + pad * 0.3
    column = w - x0 - pad
    for scale in (1.0, 0.9, 0.8, 0.7, 0.6):
        lines, badge = _column(label, x0, pad, column, base * scale)
        bottom = (badge[1] + badge[3]) if badge else (lines[-1].y if lines else 0.0)
        if lines and lines[-1].y > bottom:
            bottom = lines[-1].y + 0.5
        if bottom <= h - pad * 0.5:
            break
    return Layout(qr_x + QUIET_ZONE * module, qr_y + QUIET_ZONE * module, module, texts + lines, badge)


def _column(
    label: LabelData, x0: float, top: float, width: float, size: float
) -> tuple[list[Text], tuple[float, float, float, float] | None]:
    out: list[Text] = []
    y = top

    def line(text: str, font: str, pt: float) -> None:
        nonlocal y
        y += pt * PT_MM * (LEADING if out else 0.9)
        out.append(Text(x0, y, pt, font, text))

    for part in wrap(label.product_name, BOLD, size, width, 3):
        line(part, BOLD, size)
    small = size * 0.82
    y += small * PT_MM * 0.25
    line(_clip(f"Lô: {label.lot_code}", REGULAR, small, width), REGULAR, small)
    if label.packed_on:
        line(_clip(f"Đóng gói: {vn_date(label.packed_on)}", REGULAR, small, width), REGULAR, small)
    if label.expiry:
        line(_clip(f"HSD: {vn_date(label.expiry)}", REGULAR, small, width), REGULAR, small)
    if label.extra_line:
        line(_clip(label.extra_line, REGULAR, small, width), REGULAR, small)
    badge = None
    if label.designation:
        tiny = size * 0.72
        inset = tiny * PT_MM * 0.45
        parts = wrap(label.designation, BOLD, tiny, width - 2 * inset, 2)
        top_b = y + small * PT_MM * 0.45
        y = top_b + inset * 0.6
        for part in parts:
            y += tiny * PT_MM * (LEADING if y > top_b + inset else 0.9)
            out.append(Text(x0 + inset, y, tiny, BOLD, part))
        badge = (x0, top_b, width, y - top_b + inset * 1.2)
    return out, badge
