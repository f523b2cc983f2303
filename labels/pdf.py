"""Many labels as one PDF: A4 sticker sheets or one label per page for roll printers."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

from reportlab import rl_config
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from labels.fonts import register
from labels.layout import layout
from labels.model import TEMPLATES, LabelData
from labels.qr import pdf_qr_path


def render_pdf(
    labels: Sequence[LabelData], *, template: str, on_progress: Callable[[int], None] | None = None, every: int = 250
) -> bytes:
    """Lay ``labels`` out on the pages of ``template`` (a key of ``TEMPLATES``); vector QR, DejaVu text.

    ``on_progress(done)`` is called after every ``every`` labels, and with ``len(labels)`` once the
    PDF is complete; whatever it raises stops the rendering and propagates.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown label template {template!r}; known: {', '.join(TEMPLATES)}")
    spec = TEMPLATES[template]
    register()
    out = io.BytesIO()
    page_w, page_h = spec.page_mm[0] * mm, spec.page_mm[1] * mm
    # invariant=True leaves dates and IDs out, so the same labels give the same bytes (golden tests).
    canvas = Canvas(out, pagesize=(page_w, page_h), pageCompression=1, invariant=True)
    canvas.setTitle("hytrace labels")
    canvas.setLineWidth(0.25 * mm)
    for index, label in enumerate(labels):
        slot = index % spec.per_page
        if index and slot == 0:
            canvas.showPage()
            canvas.setLineWidth(0.25 * mm)
        ox, oy = spec.origin_mm(slot)
        side, path = pdf_qr_path(label.uri)
        plan = layout(label, side, spec.label_mm)
        label_h = spec.label_mm[1]
        # Each label draws in its own coordinates (origin at its bottom-left corner), so labels of
        # one batch repeat the same text operators and Flate compresses them to almost nothing.
        canvas.saveState()
        canvas.translate(ox * mm, page_h - (oy + label_h) * mm)
        # The QR is one path of integer module rectangles under a scale transform that also flips
        # the y axis (rows go down): no images, crisp at any printer resolution.
        m = plan.module * mm
        canvas.addLiteral(f"q {m:.4f} 0 0 {-m:.4f} {plan.qr_x * mm:.2f} {(label_h - plan.qr_y) * mm:.2f} cm {path} Q")
        if plan.badge:
            bx, by, bw, bh = plan.badge
            canvas.roundRect(bx * mm, (label_h - by - bh) * mm, bw * mm, bh * mm, 0.8 * mm)
        for t in plan.texts:
            canvas.setFont(t.font, t.size_pt)
            x, y = t.x * mm, (label_h - t.y) * mm
            if t.centred:
                canvas.drawCentredString(x, y, t.text)
            else:
                canvas.drawString(x, y, t.text)
        canvas.restoreState()
        done = index + 1
        if on_progress and done % every == 0 and done < len(labels):
            on_progress(done)
    canvas.showPage()
    # ASCII85 on top of Flate (reportlab's default) adds 25 % for 7-bit mail transports nobody uses.
    saved, rl_config.useA85 = rl_config.useA85, 0
    try:
        canvas.save()
    finally:
        rl_config.useA85 = saved
    # Only now: save() formats and compresses every page, ~8 % of a 100,000-label A4 run and a
    # third of a roll's (one page per label), during which no progress can be reported.
    if on_progress:
        on_progress(len(labels))
    return out.getvalue()
