"""QR modules for a GS1 Digital Link, and the compact shapes every renderer draws them with."""

from __future__ import annotations

import re

import zxingcpp

# Level Q restores ~25 % of damaged codewords: produce labels get scuffed, wet, curved round fruit and
# printed on cheap thermal stock, where M (15 %) fails first; H (30 %) would push an 80-character URI
# to a bigger version with smaller modules on a 25 mm label, which hurts more than it helps.
EC_LEVEL = "Q"
# Modules of white kept round the symbol inside the label: the 4 that ISO/IEC 18004 and GS1 ask
# for, since the label's edge may touch a printed or coloured package.
QUIET_ZONE = 4

_DARK = bytes.maketrans(b"\x00", b"#")
_RUN = re.compile(rb"#+")


def _raster(uri: str) -> tuple[int, bytes]:
    """Side and one byte per module (``#`` dark), row-major.

    zxing-cpp's writer (C++, with the standard mask scoring) takes ~0.3 ms per 80-character URI;
    qrcode's pure-Python automatic mask choice takes ~5 ms, too slow for 1,000 labels/s per core
    (bench/labels.py measures both).
    """
    image = zxingcpp.create_barcode(uri, zxingcpp.BarcodeFormat.QRCode, ec_level=EC_LEVEL).to_image(
        scale=1, add_quiet_zones=False
    )
    side = image.shape[0]
    # zxing's Image exports the buffer protocol (one byte per module, 0 = dark); its stubs omit it.
    return side, bytes(memoryview(image)).translate(_DARK)  # type: ignore[arg-type]


def qr_matrix(uri: str) -> list[list[bool]]:
    """The QR symbol (level Q) encoding ``uri`` exactly, as rows of modules (True = dark), no quiet zone."""
    side, cells = _raster(uri)
    return [[cells[r * side + c] == 35 for c in range(side)] for r in range(side)]


def rectangles(uri: str) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Side and the dark modules as integer rectangles (x, y, width, height), y downwards.

    One rectangle per horizontal run of dark modules. Merging runs vertically saves ~30 % of the
    operators but compresses worse (the y sequence and the constant height deflate well) and costs
    ~0.3 ms per label.
    """
    side, cells = _raster(uri)
    return side, [
        (m.start() % side, m.start() // side, m.end() - m.start(), 1)
        for y in range(side)
        for m in _RUN.finditer(cells, y * side, (y + 1) * side)
    ]


def pdf_qr_path(uri: str) -> tuple[int, str]:
    """Side and the PDF path of ``uri``'s dark modules (one ``x y w 1 re`` per horizontal run, then
    ``f``), built in one pass: the same operators as ``pdf_path(rectangles(uri)[1])`` at about half
    the cost, which matters at 1,000 labels a second."""
    side, cells = _raster(uri)
    # A separator byte after each row keeps runs inside their row, so one scan covers the symbol.
    width = side + 1
    rows = b"\n".join(cells[y * side : (y + 1) * side] for y in range(side))
    path = " ".join(
        [f"{m.start() % width} {m.start() // width} {m.end() - m.start()} 1 re" for m in _RUN.finditer(rows)]
    )
    return side, path + " f"


def pdf_path(rects: list[tuple[int, int, int, int]]) -> str:
    """PDF path operators (``x y w h re`` … ``f``) in module units, for use under a scale transform."""
    return " ".join(f"{x} {y} {w} {h} re" for x, y, w, h in rects) + " f"


def svg_path(rects: list[tuple[int, int, int, int]]) -> str:
    """SVG path data (``M x y h w v h h -w z`` …) in module units."""
    return "".join(f"M{x} {y}h{w}v{h}h{-w}z" for x, y, w, h in rects)
