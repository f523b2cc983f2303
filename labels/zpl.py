"""Labels as ZPL II for Zebra thermal printers: one ``^XA … ^XZ`` format per label."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labels.layout import PT_MM, layout
from labels.model import LabelData
from labels.qr import qr_matrix

# ^FH_ turns on hex escapes in the next field: ZPL would read a literal ^ or ~ in the data as a
# command (and "~" is legal, unescaped, in a URI), so both — and the escape character — go as _XX.
_ESCAPE = str.maketrans({"_": "_5F", "^": "_5E", "~": "_7E"})


def _field(data: str) -> str:
    return "^FH_^FD" + data.translate(_ESCAPE) + "^FS"


# Zebra's Link-OS printers hold the Unicode TrueType font Swiss 721 as E:TT0003M_.TTF; the built-in
# ^A0 font has no Vietnamese letters (ư ơ ạ ả ẫ … would print as blanks). A printer without it can
# be given any Unicode TTF under this name (ZebraNet Bridge or ~DU), or pass another ``font``.
FONT = "E:TT0003M_.TTF"


def render_zpl(
    labels: Sequence[LabelData],
    *,
    size_mm: tuple[float, float] = (50, 30),
    dpmm: int = 8,
    on_progress: Callable[[int], None] | None = None,
    every: int = 250,
    font: str = FONT,
) -> bytes:
    """ZPL for ``labels`` at ``dpmm`` dots per millimetre (8 = 203 dpi, 12 = 300 dpi), UTF-8 text
    in the printer-resident TrueType ``font`` (mapped to font letter 1 with ^CW).

    ``on_progress(done)`` is called after every ``every`` labels and with ``len(labels)`` at the
    end; whatever it raises stops the rendering and propagates.
    """
    out: list[str] = []
    for done, label in enumerate(labels, 1):
        side = len(qr_matrix(label.uri))
        plan = layout(label, side, size_mm)
        # ^BQ draws whole dots per module (magnification 1–10); round down so the symbol fits its box.
        magnification = max(1, min(10, int(plan.module * dpmm)))
        qx = round((plan.qr_x) * dpmm)
        qy = round((plan.qr_y) * dpmm)
        lines = [
            "^XA",
            "^CI28",  # field data is UTF-8, so Vietnamese diacritics pass through unchanged
            f"^CW1,{font}",
            f"^PW{round(size_mm[0] * dpmm)}",
            f"^LL{round(size_mm[1] * dpmm)}",
            # Model 2, error correction Q, automatic input mode: the printer encodes the URI itself.
            f"^FO{qx},{qy}^BQN,2,{magnification}" + _field("QA," + label.uri),
        ]
        if plan.badge:
            bx, by, bw, bh = (round(v * dpmm) for v in plan.badge)
            lines.append(f"^FO{bx},{by}^GB{bw},{bh},2,B,2^FS")
        for t in plan.texts:
            height = max(10, round(t.size_pt * PT_MM * dpmm))
            top = round((t.y - t.size_pt * PT_MM * 0.8) * dpmm)
            if t.centred:
                width = round(plan.module * (side + 4) * dpmm)
                lines.append(
                    f"^FO{round(plan.qr_x * dpmm) - round(2 * plan.module * dpmm)},{top}"
                    f"^A1N,{height},{height}^FB{width},1,0,C" + _field(t.text)
                )
            else:
                lines.append(f"^FO{round(t.x * dpmm)},{top}^A1N,{height},{height}" + _field(t.text))
        lines.append("^XZ")
        out.append("\n".join(lines))
        if on_progress and done % every == 0 and done < len(labels):
            on_progress(done)
    data = ("\n".join(out) + "\n").encode("utf-8")
    if on_progress:
        on_progress(len(labels))
    return data
