"""A whole print run in one of its output formats: the format's name in, one file out (written to a
file-like object as it is made, or returned as bytes)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, Protocol

from labels.model import LabelData
from labels.pdf import write_pdf
from labels.raster import render_png, render_svg
from labels.zpl import render_zpl


@dataclass(frozen=True)
class Format:
    """An output a print run can be rendered to; ``name`` is what print runs store."""

    name: str
    media_type: str
    extension: str
    description_vi: str
    description_en: str


PDF = "application/pdf"
ZIP = "application/zip"
# IANA registers no media type for ZPL, and nobody agrees on an unregistered one: Labelary reads
# raw ZPL sent as application/x-www-form-urlencoded, carrier APIs answer with application/x-zpl
# or application/x-zebra-zpl. What a client can rely on is that the bytes are UTF-8 text (^CI28),
# which only text/plain says; the .zpl extension tells people and Zebra's tools what it is.
ZPL = "text/plain; charset=utf-8"
ZPL_DPMM = 8  # 203 dpi, the head of nearly every desktop Zebra

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "a4-3x8",
            PDF,
            "pdf",
            "Tờ decal A4, 24 nhãn 63,5 × 33,9 mm (3 × 8)",
            "A4 sticker sheet, 24 labels of 63.5 × 33.9 mm (3 × 8)",
        ),
        Format(
            "a4-4x10",
            PDF,
            "pdf",
            "Tờ decal A4, 40 nhãn 45,7 × 25,4 mm (4 × 10)",
            "A4 sticker sheet, 40 labels of 45.7 × 25.4 mm (4 × 10)",
        ),
        Format(
            "roll-50x30",
            PDF,
            "pdf",
            "Cuộn nhãn 50 × 30 mm, mỗi trang một nhãn (PDF)",
            "Roll of 50 × 30 mm labels, one label per page (PDF)",
        ),
        Format(
            "roll-100x50",
            PDF,
            "pdf",
            "Cuộn nhãn 100 × 50 mm, mỗi trang một nhãn (PDF)",
            "Roll of 100 × 50 mm labels, one label per page (PDF)",
        ),
        Format(
            "zpl-50x30",
            ZPL,
            "zpl",
            "Máy in nhiệt Zebra (ZPL, 203 dpi), nhãn 50 × 30 mm",
            "Zebra thermal printer (ZPL, 203 dpi), 50 × 30 mm labels",
        ),
        Format(
            "zpl-100x50",
            ZPL,
            "zpl",
            "Máy in nhiệt Zebra (ZPL, 203 dpi), nhãn 100 × 50 mm",
            "Zebra thermal printer (ZPL, 203 dpi), 100 × 50 mm labels",
        ),
        Format(
            "png-50x30",
            ZIP,
            "zip",
            "Ảnh PNG 300 dpi, 50 × 30 mm, mỗi nhãn một tệp (ZIP)",
            "PNG images at 300 dpi, 50 × 30 mm, one file per label (ZIP)",
        ),
        Format(
            "svg-50x30",
            ZIP,
            "zip",
            "Ảnh vector SVG, 50 × 30 mm, mỗi nhãn một tệp (ZIP)",
            "SVG vector images, 50 × 30 mm, one file per label (ZIP)",
        ),
    )
}

# The earliest time a ZIP entry can carry: the same labels give the same archive on any day.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_UNSAFE = re.compile(r"[^0-9A-Za-z-]+")


class _Renderer(Protocol):
    def __call__(
        self, labels: Sequence[LabelData], out: BinaryIO, *, on_progress: Callable[[int], None] | None, every: int
    ) -> object: ...


def render(
    labels: Sequence[LabelData], *, format: str, on_progress: Callable[[int], None] | None = None, every: int = 250
) -> bytes:
    """All ``labels`` as one file in ``format`` (a key of ``FORMATS``), in memory: ``render_to`` a buffer."""
    out = io.BytesIO()
    render_to(labels, out, format=format, on_progress=on_progress, every=every)
    return out.getvalue()


def render_to(
    labels: Sequence[LabelData],
    out: BinaryIO,
    *,
    format: str,
    on_progress: Callable[[int], None] | None = None,
    every: int = 250,
) -> None:
    """Write all ``labels`` as one file in ``format`` (a key of ``FORMATS``) to ``out``; the same labels
    give the same bytes. PDFs go out page by page, so a run's size does not set the memory it takes.

    ``on_progress(done)`` is called after every ``every`` labels and once with ``len(labels)`` when
    the file is complete. Whatever it raises (a cancelled run, say) stops rendering and propagates.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown label format {format!r}; known: {', '.join(FORMATS)}")
    if every < 1:
        raise ValueError(f"every must be at least 1, not {every}")
    _RENDERERS[format](labels, out, on_progress=on_progress, every=every)


def _member(index: int, count: int, label: LabelData, extension: str) -> str:
    """``0001-7KQ-2M9-XDV.png``: numbered from 1, zero-padded so names sort in label order."""
    number = str(index).zfill(max(4, len(str(count))))
    # Codes are printed on the label; anything else in one must not become a folder or a bad name.
    code = _UNSAFE.sub("_", label.human_code).strip("_")
    return f"{number}-{code}.{extension}" if code else f"{number}.{extension}"


def _zip(
    labels: Sequence[LabelData],
    out: BinaryIO,
    *,
    draw: Callable[[LabelData], bytes],
    extension: str,
    compression: int,
    on_progress: Callable[[int], None] | None,
    every: int,
) -> None:
    # A seekable ``out`` (a file, a buffer) gets the same bytes either way; a pipe would get data descriptors.
    with zipfile.ZipFile(out, "w") as archive:
        for done, label in enumerate(labels, 1):
            info = zipfile.ZipInfo(_member(done, len(labels), label, extension), ZIP_EPOCH)
            info.compress_type = compression
            info.create_system = 3  # Unix, wherever it runs: ZipInfo defaults to the host's
            info.external_attr = 0o644 << 16
            archive.writestr(info, draw(label))
            if on_progress and done % every == 0 and done < len(labels):
                on_progress(done)
    if on_progress:
        on_progress(len(labels))


def _zpl(
    labels: Sequence[LabelData],
    out: BinaryIO,
    *,
    size_mm: tuple[float, float],
    on_progress: Callable[[int], None] | None,
    every: int,
) -> None:
    # ZPL is ~0.7 KB of text a label (70 MB for the largest run): made in one piece, as before.
    out.write(render_zpl(labels, size_mm=size_mm, dpmm=ZPL_DPMM, on_progress=on_progress, every=every))


_RENDERERS: dict[str, _Renderer] = {
    "a4-3x8": partial(write_pdf, template="a4-3x8"),
    "a4-4x10": partial(write_pdf, template="a4-4x10"),
    "roll-50x30": partial(write_pdf, template="roll-50x30"),
    "roll-100x50": partial(write_pdf, template="roll-100x50"),
    "zpl-50x30": partial(_zpl, size_mm=(50, 30)),
    "zpl-100x50": partial(_zpl, size_mm=(100, 50)),
    # PNG is deflated already: storing it costs nothing and saves a second compression pass.
    "png-50x30": partial(
        _zip, draw=partial(render_png, size_mm=(50, 30)), extension="png", compression=zipfile.ZIP_STORED
    ),
    "svg-50x30": partial(
        _zip, draw=partial(render_svg, size_mm=(50, 30)), extension="svg", compression=zipfile.ZIP_DEFLATED
    ),
}
