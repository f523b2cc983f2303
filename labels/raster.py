"""One label as PNG (Pillow, DejaVu Sans) or SVG (the QR as one path)."""

from __future__ import annotations

import io
from functools import cache
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

from labels.fonts import BOLD, FILES
from labels.layout import PT_MM, layout
from labels.model import LabelData
from labels.qr import rectangles, svg_path


@cache
def _font(name: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FILES[name]), px)


def render_png(label: LabelData, *, dpi: int = 300, size_mm: tuple[float, float] = (50, 30)) -> bytes:
    """The label as a 1-bit-looking greyscale PNG of ``size_mm`` at ``dpi``."""
    side, rects = rectangles(label.uri)
    plan = layout(label, side, size_mm)
    px = dpi / 25.4
    image = Image.new("L", (round(size_mm[0] * px), round(size_mm[1] * px)), 255)
    draw = ImageDraw.Draw(image)
    # Module edges round to whole pixels from absolute positions, so neighbouring modules never
    # overlap or leave hairline gaps.
    ox, oy, m = plan.qr_x * px, plan.qr_y * px, plan.module * px
    for x, y, w, h in rects:
        draw.rectangle(
            (round(ox + x * m), round(oy + y * m), round(ox + (x + w) * m) - 1, round(oy + (y + h) * m) - 1), fill=0
        )
    if plan.badge:
        bx, by, bw, bh = plan.badge
        draw.rounded_rectangle(
            (bx * px, by * px, (bx + bw) * px, (by + bh) * px),
            radius=0.8 * px,
            outline=0,
            width=max(1, round(0.25 * px)),
        )
    for t in plan.texts:
        font = _font(t.font, max(1, round(t.size_pt * PT_MM * px)))
        draw.text((t.x * px, t.y * px), t.text, font=font, fill=0, anchor="ms" if t.centred else "ls")
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi), optimize=False)
    return out.getvalue()


def render_svg(label: LabelData, *, size_mm: tuple[float, float] = (50, 30)) -> bytes:
    """The label as SVG in millimetre units; the QR is one ``<path id="qr">`` of integer modules."""
    side, rects = rectangles(label.uri)
    plan = layout(label, side, size_mm)
    w, h = size_mm
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}">',
        f'<rect width="{w}" height="{h}" fill="#fff"/>',
        f'<path id="qr" transform="translate({plan.qr_x:.4f} {plan.qr_y:.4f}) scale({plan.module:.5f})"'
        f' data-modules="{side}" d="{svg_path(rects)}" fill="#000" shape-rendering="crispEdges"/>',
    ]
    if plan.badge:
        bx, by, bw, bh = plan.badge
        parts.append(
            f'<rect x="{bx:.3f}" y="{by:.3f}" width="{bw:.3f}" height="{bh:.3f}" rx="0.8"'
            ' fill="none" stroke="#000" stroke-width="0.25"/>'
        )
    for t in plan.texts:
        weight = ' font-weight="bold"' if t.font == BOLD else ""
        anchor = ' text-anchor="middle"' if t.centred else ""
        parts.append(
            f'<text x="{t.x:.3f}" y="{t.y:.3f}" font-family="DejaVu Sans, sans-serif"'
            f' font-size="{t.size_pt * PT_MM:.3f}"{weight}{anchor}>{escape(t.text)}</text>'
        )
    parts.append("</svg>\n")
    return "\n".join(parts).encode("utf-8")
