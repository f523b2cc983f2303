"""labels/: every QR the renderers produce decodes, with a real decoder, to exactly its URI."""

from __future__ import annotations

import io
import re
import secrets
import unicodedata
from datetime import date

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image
from reportlab.pdfbase.ttfonts import TTFont

from labels import TEMPLATES, LabelData, qr_matrix, render_pdf, render_png, render_svg, render_zpl
from labels.fonts import FILES

NAME = "Long nhãn sấy khô Hưng Yên — Đặc sản"
HOST = "https://truyxuat.hungyen.gov.vn"


def _label(serial: str | None = None, **changes: object) -> LabelData:
    serial = serial or secrets.token_urlsafe(12)
    data: dict[str, object] = dict(
        uri=f"{HOST}/01/08930000000012/10/NL2026-07/21/{serial}",
        human_code=serial[:8].upper(),
        product_name=NAME,
        lot_code="NL2026-07",
        packed_on=date(2026, 7, 1),
        expiry=date(2027, 1, 1),
        designation="Chỉ dẫn địa lý Nhãn lồng Hưng Yên",
        extra_line="HTX Nhãn lồng Hồng Nam",
    )
    data.update(changes)
    return LabelData(**data)  # type: ignore[arg-type]


def _decode(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def _matrix_png(matrix: list[list[bool]], scale: int = 8, border: int = 4) -> Image.Image:
    side = len(matrix) + 2 * border
    image = Image.new("L", (side, side), 255)
    image.putdata(
        [
            0
            if 0 <= r - border < len(matrix) and 0 <= c - border < len(matrix) and matrix[r - border][c - border]
            else 255
            for r in range(side)
            for c in range(side)
        ]
    )
    return image.resize((side * scale, side * scale), Image.Resampling.NEAREST)


def test_qr_matrix_decodes_to_exactly_the_uri_including_awkward_characters() -> None:
    # given a URI with percent-escapes and characters other encoders mangle
    uri = f"{HOST}/01/08930000000012/10/L%C3%B4%2F7/21/a~b_c-Z9?linkType=all"
    # when
    matrix = qr_matrix(uri)
    # then it is square, a QR size (21 + 4k), and decodes to the same string
    assert len(matrix) == len(matrix[0]) and (len(matrix) - 21) % 4 == 0
    assert _decode(_matrix_png(matrix)) == [uri]


def test_qr_matrix_uses_error_correction_level_q() -> None:
    result = zxingcpp.read_barcode(_matrix_png(qr_matrix(_label().uri)))
    assert result is not None and result.ec_level == "Q"


@pytest.mark.parametrize("size_mm", [(50, 30), (100, 50), (45.7, 25.4)])
def test_png_decodes_to_exactly_its_uri(size_mm: tuple[float, float]) -> None:
    label = _label()
    image = Image.open(io.BytesIO(render_png(label, size_mm=size_mm)))
    assert image.size == (round(size_mm[0] / 25.4 * 300), round(size_mm[1] / 25.4 * 300))
    assert _decode(image) == [label.uri]


def test_png_at_printer_resolution_203_dpi_still_decodes() -> None:
    label = _label()
    assert _decode(Image.open(io.BytesIO(render_png(label, dpi=203)))) == [label.uri]


def test_png_of_a_label_without_optional_fields_decodes() -> None:
    label = _label(human_code="", packed_on=None, expiry=None, designation=None, extra_line=None)
    assert _decode(Image.open(io.BytesIO(render_png(label)))) == [label.uri]


def test_png_draws_the_vietnamese_diacritics() -> None:
    # given the name with and without its diacritics (Đ → D, ặ → a …)
    plain = "".join(c for c in unicodedata.normalize("NFD", NAME) if not unicodedata.combining(c))
    plain = plain.replace("Đ", "D").replace("đ", "d")
    # when
    marked = Image.open(io.BytesIO(render_png(_label("s1", designation=None))))
    bare = Image.open(io.BytesIO(render_png(_label("s1", designation=None, product_name=plain))))
    # then the name region differs: the marks are drawn, not dropped
    box = (marked.width // 2 + 20, 0, marked.width, marked.height // 3)
    assert marked.crop(box).getextrema()[0] == 0
    assert marked.crop(box).tobytes() != bare.crop(box).tobytes()


def test_shipped_fonts_have_a_glyph_for_every_vietnamese_letter() -> None:
    letters = "ĂÂĐÊÔƠƯăâđêôơư" + "ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ" + NAME
    for path in FILES.values():
        cmap = TTFont("probe", str(path)).face.charToGlyph
        assert [c for c in letters if c.strip() and ord(c) not in cmap] == []


def _svg_matrix(svg: bytes) -> list[list[bool]]:
    """Read the QR path back: ``M x y h w v h h -w z`` rectangles onto a grid."""
    tag = re.search(rb'<path id="qr"[^>]*>', svg)
    assert tag is not None
    side = int(re.search(rb'data-modules="(\d+)"', tag.group()).group(1))  # type: ignore[union-attr]
    d = re.search(rb' d="([^"]*)"', tag.group()).group(1).decode()  # type: ignore[union-attr]
    grid = [[False] * side for _ in range(side)]
    for x, y, w, h, back in re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h(-\d+)z", d):
        assert int(back) == -int(w)
        for row in range(int(y), int(y) + int(h)):
            for col in range(int(x), int(x) + int(w)):
                grid[row][col] = True
    assert len(re.findall(r"M", d)) == len(re.findall(r"z", d))
    return grid


def test_svg_path_is_exactly_the_qr_and_decodes() -> None:
    label = _label()
    svg = render_svg(label)
    grid = _svg_matrix(svg)
    assert grid == qr_matrix(label.uri)
    assert _decode(_matrix_png(grid)) == [label.uri]
    assert NAME.split(" — ")[0].split()[0].encode() in svg and "Hưng Yên".encode() in svg


def _rasterise(pdf: bytes) -> tuple[list[list[str]], list[str]]:
    document = pdfium.PdfDocument(pdf)
    try:
        found, texts = [], []
        for page in document:
            found.append(_decode(page.render(scale=300 / 72, grayscale=True).to_pil()))
            texts.append(page.get_textpage().get_text_range())
        return found, texts
    finally:
        document.close()


@pytest.mark.parametrize("template", ["a4-3x8", "a4-4x10"])
def test_every_label_of_an_a4_sheet_decodes_to_exactly_its_uri(template: str) -> None:
    # given one full sheet of distinct labels
    spec = TEMPLATES[template]
    labels = [_label() for _ in range(spec.per_page)]
    # when
    pages, texts = _rasterise(render_pdf(labels, template=template))
    # then one page, every QR found once, and nothing else
    assert len(pages) == 1
    assert len(pages[0]) == spec.per_page
    assert set(pages[0]) == {label.uri for label in labels}
    # and the text layer holds the Vietnamese words with their diacritics
    flat = " ".join(texts[0].split())
    assert "Đặc sản" in flat and "Hưng Yên" in flat and "Lô: NL2026-07" in flat


@pytest.mark.parametrize("template", ["roll-50x30", "roll-100x50"])
def test_roll_templates_put_one_label_on_a_page_of_the_label_size(template: str) -> None:
    labels = [_label() for _ in range(3)]
    document = pdfium.PdfDocument(render_pdf(labels, template=template))
    try:
        assert len(document) == 3
        width_mm = document[0].get_width() * 25.4 / 72
        assert width_mm == pytest.approx(TEMPLATES[template].page_mm[0], abs=0.05)
        assert _decode(document[2].render(scale=300 / 72).to_pil()) == [labels[2].uri]
    finally:
        document.close()


def test_a_sheet_spills_onto_a_second_page() -> None:
    document = pdfium.PdfDocument(render_pdf([_label() for _ in range(25)], template="a4-3x8"))
    try:
        assert len(document) == 2
    finally:
        document.close()


def test_qr_in_pdf_is_a_vector_path_not_an_image() -> None:
    pdf = render_pdf([_label()], template="roll-50x30")
    assert b"/Subtype /Image" not in pdf
    document = pdfium.PdfDocument(pdf)
    try:
        kinds = {obj.type for obj in document[0].get_objects()}
        assert pdfium.raw.FPDF_PAGEOBJ_IMAGE not in kinds and pdfium.raw.FPDF_PAGEOBJ_PATH in kinds
    finally:
        document.close()


def test_a_thousand_labels_make_a_pdf_under_one_megabyte() -> None:
    pdf = render_pdf([_label() for _ in range(1000)], template="a4-4x10")
    assert len(pdf) < 1_000_000


def test_unknown_template_is_refused() -> None:
    with pytest.raises(ValueError, match="a4-3x8"):
        render_pdf([_label()], template="letter-2x5")


def _zpl_fields(zpl: str) -> list[tuple[str, str]]:
    """(command before ^FD, field data with ^FH hex escapes undone) for every field."""
    fields = []
    for head, data in re.findall(r"\^(B\w|A\w|GB)[^\^]*(?:\^FB[^\^]*)?\^FH_\^FD(.*?)\^FS", zpl):
        fields.append((head, re.sub(r"_([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), data)))
    return fields


def test_zpl_has_one_utf8_format_per_label_and_each_qr_field_holds_its_uri() -> None:
    # given URIs with characters ZPL treats as commands
    labels = [_label(), _label("x~y^z_w"), _label()]
    # when
    zpl = render_zpl(labels).decode("utf-8")
    # then
    formats = re.findall(r"\^XA(.*?)\^XZ", zpl, re.S)
    assert len(formats) == 3
    for label, body in zip(labels, formats, strict=True):
        assert "^CI28" in body and "^CW1,E:TT0003M_.TTF" in body  # UTF-8, in the resident Unicode font
        qr = [data for head, data in _zpl_fields(body) if head == "BQ"]
        assert qr == ["QA," + label.uri]
        texts = " ".join(data for head, data in _zpl_fields(body) if head == "A1")
        assert "Đặc sản" in texts and "Lô: NL2026-07" in texts
