"""Many labels as one PDF: A4 sticker sheets or one label per page for roll printers, written page by page.

Memory does not grow with the run. Each page is drawn, compressed and written to the output as soon as
its labels are laid out; what stays behind is one offset per object (8 bytes, for the cross-reference
table) and the characters each face has used, so the fonts are subset and embedded once, at the end.

ReportLab's ``Canvas`` kept every page until ``save()`` (~18 KB per roll label: 1.8 GB for 100,000), so
the file is written here directly. ReportLab still does what it does well and the output depends on:
the glyph widths that labels/layout.py measures with, its TrueType subsetter (256-code subsets with a
ToUnicode map, as reportlab embedded them before: the same font programs, the same text extraction),
and number formatting.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from array import array
from collections.abc import Callable, Sequence
from typing import BinaryIO

from reportlab.lib.rl_accel import fp_str
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import FF_NONSYMBOLIC, FF_SYMBOLIC, SUBSETN, TTFont, makeToUnicodeCMap

from labels.fonts import BOLD, REGULAR, register
from labels.layout import Text, layout
from labels.model import TEMPLATES, LabelData
from labels.qr import pdf_qr_path

MM = 72 / 25.4  # points per millimetre
LINE_WIDTH = 0.25 * MM
# Pages per node of the page tree: a reader looking up page 90,000 walks two short arrays, not one of 100,000.
LEAF = 128
CATALOG, PAGES, INFO, RESOURCES = 1, 2, 3, 4  # fixed object numbers: pages refer to them before they exist
FACES = (REGULAR, BOLD)  # resource names /F1+n and /F2+n, in this order
HEADER = b"%PDF-1.4\n%\x93\x8c\x8b\x9e\n"  # the comment's high bytes tell transports the file is binary
_ROUND = 0.4472  # reportlab's factor for a quarter circle as one Bezier curve (pathobject.roundRect)


def render_pdf(
    labels: Sequence[LabelData], *, template: str, on_progress: Callable[[int], None] | None = None, every: int = 250
) -> bytes:
    """``write_pdf`` into memory: the PDF's bytes (fine for a sheet or a preview; runs go to a file)."""
    out = io.BytesIO()
    write_pdf(labels, out, template=template, on_progress=on_progress, every=every)
    return out.getvalue()


def write_pdf(
    labels: Sequence[LabelData],
    out: BinaryIO,
    *,
    template: str,
    on_progress: Callable[[int], None] | None = None,
    every: int = 250,
) -> int:
    """Lay ``labels`` out on the pages of ``template`` (a key of ``TEMPLATES``) and write the PDF to
    ``out`` as it goes (vector QR, DejaVu text); returns the bytes written. ``out`` need not seek.

    ``on_progress(done)`` is called after every ``every`` labels, and with ``len(labels)`` once the
    PDF is complete; whatever it raises stops the rendering and propagates.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown label template {template!r}; known: {', '.join(TEMPLATES)}")
    spec = TEMPLATES[template]
    register()
    pdf = _Writer(out, (spec.page_mm[0] * MM, spec.page_mm[1] * MM))
    page: list[bytes] = []
    label_h = spec.label_mm[1]
    for index, label in enumerate(labels):
        slot = index % spec.per_page
        if index and slot == 0:
            pdf.page(page)
            page = []
        ox, oy = spec.origin_mm(slot)
        side, path = pdf_qr_path(label.uri)
        plan = layout(label, side, spec.label_mm)
        # Each label draws in its own coordinates (origin at its bottom-left corner), so the labels of
        # a sheet repeat the same operators and Flate compresses them to almost nothing.
        page.append(b"q 1 0 0 1 %s cm" % fp_str(ox * MM, pdf.height - (oy + label_h) * MM).encode())
        # The QR is one path of integer module rectangles under a scale transform that also flips
        # the y axis (rows go down): no images, crisp at any printer resolution.
        m = plan.module * MM
        page.append(
            f"q {m:.4f} 0 0 {-m:.4f} {plan.qr_x * MM:.2f} {(label_h - plan.qr_y) * MM:.2f} cm {path} Q".encode()
        )
        if plan.badge:
            bx, by, bw, bh = plan.badge
            page.append(_round_rect(bx * MM, (label_h - by - bh) * MM, bw * MM, bh * MM, 0.8 * MM))
        page.extend(pdf.text(t, t.x * MM, (label_h - t.y) * MM) for t in plan.texts)
        page.append(b"Q")
        done = index + 1
        if on_progress and done % every == 0 and done < len(labels):
            on_progress(done)
    pdf.page(page)  # the last (or, for no labels, one blank) page
    size = pdf.close()
    if on_progress:
        on_progress(len(labels))
    return size


def _round_rect(x: float, y: float, w: float, h: float, r: float) -> bytes:
    """A stroked rectangle with quarter-circle corners, as reportlab's ``Canvas.roundRect`` draws it."""
    t = _ROUND * r
    x1, y1 = x + w, y + h
    return (
        f"n {fp_str(x + r, y)} m {fp_str(x1 - r, y)} l {fp_str(x1 - t, y, x1, y + t, x1, y + r)} c"
        f" {fp_str(x1, y1 - r)} l {fp_str(x1, y1 - t, x1 - t, y1, x1 - r, y1)} c {fp_str(x + r, y1)} l"
        f" {fp_str(x + t, y1, x, y1 - t, x, y1 - r)} c {fp_str(x, y + r)} l"
        f" {fp_str(x, y + t, x + t, y, x + r, y)} c h S"
    ).encode()


def _literal(chunk: bytes) -> bytes:
    # Subset codes are any byte: escape the delimiters, and CR/LF, which a reader would normalise.
    return (
        chunk.replace(b"\\", b"\\\\")
        .replace(b"(", b"\\(")
        .replace(b")", b"\\)")
        .replace(b"\r", b"\\r")
        .replace(b"\n", b"\\n")
    )


class _Writer:
    """One PDF being written: objects go out as they are made; only their offsets are kept."""

    def __init__(self, out: BinaryIO, size: tuple[float, float]) -> None:
        self.out, self.position = out, 0
        self.width, self.height = size
        self.offsets = array("q", [0] * (RESOURCES + 1))  # by object number; 0 is the free list's head
        self.digest = hashlib.sha256()
        self.fonts: dict[str, TTFont] = {name: pdfmetrics.getFont(name) for name in FACES}
        self.leaves = array("q")  # the page tree's nodes under the root
        self.kids = array("q")  # the pages of the node being filled
        self.pages = 0
        self._page_head = b" /MediaBox [0 0 %s] /Resources %d 0 R" % (
            fp_str(self.width, self.height).encode(),
            RESOURCES,
        )
        self._write(HEADER)

    # --- objects --------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.digest.update(data)
        self.position += len(data)

    def _reserve(self) -> int:
        self.offsets.append(0)
        return len(self.offsets) - 1

    def _object(self, number: int, body: bytes) -> None:
        self.offsets[number] = self.position
        self._write(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def _stream(self, number: int, data: bytes, extra: bytes = b"") -> None:
        packed = zlib.compress(data)
        self.offsets[number] = self.position
        self._write(b"%d 0 obj\n<< /Filter /FlateDecode /Length %d%s >>\nstream\n" % (number, len(packed), extra))
        self._write(packed)
        self._write(b"\nendstream\nendobj\n")

    # --- pages ----------------------------------------------------------------------------------

    def text(self, t: Text, x: float, y: float) -> bytes:
        """One line of text at (x, y) in points (``x`` its centre when ``t.centred``)."""
        font = self.fonts[t.font]
        if t.centred:
            x -= pdfmetrics.stringWidth(t.text, t.font, t.size_pt) / 2
        face = b"/F%d+" % (FACES.index(t.font) + 1)
        size = fp_str(t.size_pt).encode()
        # Characters get their subset codes in order of first use (reportlab's own bookkeeping, keyed
        # by this writer): a long text may span two subsets, each chunk in its own font resource.
        shown = [
            b"%s%d %s Tf (%s) Tj" % (face, subset, size, _literal(chunk))
            for subset, chunk in font.splitString(t.text, self)
        ]
        return b"BT %s Td %s ET" % (fp_str(x, y).encode(), b" ".join(shown))

    def page(self, content: list[bytes]) -> None:
        """Write one page whose content is ``content`` (operators, joined by newlines)."""
        if not self.kids:
            self.leaves.append(self._reserve())
        contents, page = self._reserve(), self._reserve()
        self._stream(contents, b"%s w\n" % fp_str(LINE_WIDTH).encode() + b"\n".join(content))
        self._object(
            page,
            b"<< /Type /Page /Parent %d 0 R%s /Contents %d 0 R >>" % (self.leaves[-1], self._page_head, contents),
        )
        self.kids.append(page)
        self.pages += 1
        if len(self.kids) == LEAF:
            self._leaf()

    def _leaf(self) -> None:
        kids = b" ".join(b"%d 0 R" % kid for kid in self.kids)
        self._object(
            self.leaves[-1], b"<< /Type /Pages /Parent %d 0 R /Kids [%s] /Count %d >>" % (PAGES, kids, len(self.kids))
        )
        self.kids = array("q")

    # --- the end --------------------------------------------------------------------------------

    def _fonts(self) -> list[tuple[bytes, int]]:
        """Embed the subsets each face used; their resource names and object numbers."""
        used = []
        for number, name in enumerate(FACES, 1):
            font = self.fonts[name]
            state = font.state.pop(self, None)  # taken out: the next document starts its own subsets
            if state is None:
                continue
            face = font.face
            flags = (face.flags & ~FF_NONSYMBOLIC) | FF_SYMBOLIC
            for n, subset in enumerate(state.subsets):
                base = SUBSETN(n) + b"+" + face.name + face.subfontNameX
                program = face.makeSubset(subset)
                file_ref, descriptor, cmap, font_ref = (self._reserve() for _ in range(4))
                self._stream(file_ref, program, b" /Length1 %d" % len(program))
                bbox = " ".join(str(v) for v in face.bbox)
                self._object(
                    descriptor,
                    (
                        f"<< /Type /FontDescriptor /Ascent {face.ascent} /CapHeight {face.capHeight}"
                        f" /Descent {face.descent} /Flags {flags} /FontBBox [{bbox}] /FontName /{base.decode()}"
                        f" /ItalicAngle {face.italicAngle} /StemV {face.stemV} /FontFile2 {file_ref} 0 R"
                        f" /MissingWidth {face.defaultWidth} >>"
                    ).encode(),
                )
                self._stream(cmap, makeToUnicodeCMap(base.decode(), subset).encode())
                widths = fp_str(*map(face.getCharWidth, subset))
                self._object(
                    font_ref,
                    (
                        f"<< /Type /Font /Subtype /TrueType /Name /F{number}+{n} /BaseFont /{base.decode()}"
                        f" /FirstChar 0 /LastChar {len(subset) - 1} /Widths [{widths}]"
                        f" /FontDescriptor {descriptor} 0 R /ToUnicode {cmap} 0 R >>"
                    ).encode(),
                )
                used.append((b"/F%d+%d" % (number, n), font_ref))
        return used

    def close(self) -> int:
        """Write the fonts, the page tree, the cross-reference table and the trailer; the file's size."""
        if self.kids:
            self._leaf()
        fonts = b" ".join(b"%s %d 0 R" % (name, ref) for name, ref in self._fonts())
        self._object(RESOURCES, b"<< /Font << %s >> /ProcSet [/PDF /Text] >>" % fonts)
        leaves = b" ".join(b"%d 0 R" % leaf for leaf in self.leaves)
        self._object(PAGES, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (leaves, self.pages))
        self._object(INFO, b"<< /Producer (hytrace) /Title (hytrace labels) >>")
        self._object(CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % PAGES)
        xref = self.position
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % len(self.offsets))
        for start in range(1, len(self.offsets), 4096):  # 20 bytes an entry, written a slice at a time
            self._write(b"".join(b"%010d 00000 n \n" % o for o in self.offsets[start : start + 4096]))
        # The file identifier is a digest of the bytes before it: the same labels, the same file.
        ident = self.digest.hexdigest()[:32].encode()
        self._write(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(self.offsets), CATALOG, INFO, ident, ident, xref)
        )
        return self.position
