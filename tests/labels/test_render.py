"""labels.render: every format of a print run, read back with real decoders, with progress."""

from __future__ import annotations

import dataclasses
import io
import random
import re
import time
import zipfile
from collections.abc import Iterator, Sequence
from datetime import date

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image

from labels import FORMATS, TEMPLATES, LabelData, render

HOST = "https://truyxuat.example.vn"
NAMES = ["Nhãn lồng Hưng Yên – Đặc sản", "Gà Đông Tảo", "Vải lai chín sớm Phù Cừ"]
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PDF_FORMATS = ["a4-3x8", "a4-4x10", "roll-50x30", "roll-100x50"]
ZPL_FORMATS = {"zpl-50x30": (50, 30), "zpl-100x50": (100, 50)}
ZIP_FORMATS = {"png-50x30": ("png", zipfile.ZIP_STORED), "svg-50x30": ("svg", zipfile.ZIP_DEFLATED)}
ALL_FORMATS = [*PDF_FORMATS, *ZPL_FORMATS, *ZIP_FORMATS]


def _labels(count: int = 30, seed: int = 20260715) -> list[LabelData]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        serial = "".join(rng.choices(CROCKFORD, k=10))
        code = "".join(rng.choices(CROCKFORD, k=9))
        out.append(
            LabelData(
                uri=f"{HOST}/01/09520002000019/10/LN260715/21/{serial}",
                human_code=f"{code[:3]}-{code[3:6]}-{code[6:]}",
                product_name=NAMES[i % len(NAMES)],
                lot_code="LN260715",
                packed_on=date(2026, 7, 15),
                expiry=date(2026, 8, 15),
            )
        )
    return out


class _Reads(Sequence[LabelData]):
    """A run's labels that remember how many of them the renderer has read."""

    def __init__(self, labels: list[LabelData]) -> None:
        self.labels, self.read = labels, set[int]()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> LabelData:  # type: ignore[override]
        self.read.add(index)
        return self.labels[index]

    def __iter__(self) -> Iterator[LabelData]:
        for index in range(len(self.labels)):
            yield self[index]


def _decode(image: Image.Image) -> list[zxingcpp.Result]:
    return list(zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode))


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


def _svg_matrix(svg: bytes) -> list[list[bool]]:
    """Read the QR path back: ``M x y h w v h h -w z`` rectangles onto a grid."""
    tag = re.search(rb'<path id="qr"[^>]*>', svg)
    assert tag is not None
    side = int(re.search(rb'data-modules="(\d+)"', tag.group()).group(1))  # type: ignore[union-attr]
    d = re.search(rb' d="([^"]*)"', tag.group()).group(1).decode()  # type: ignore[union-attr]
    grid = [[False] * side for _ in range(side)]
    for x, y, w, h in re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\d+z", d):
        for row in range(int(y), int(y) + int(h)):
            for col in range(int(x), int(x) + int(w)):
                grid[row][col] = True
    return grid


# --- the table of formats -------------------------------------------------------------------


def test_formats_are_exactly_the_names_print_runs_store_with_their_media_types() -> None:
    expected = {
        **{name: ("application/pdf", "pdf") for name in PDF_FORMATS},
        **{name: ("text/plain; charset=utf-8", "zpl") for name in ZPL_FORMATS},
        **{name: ("application/zip", "zip") for name in ZIP_FORMATS},
    }
    assert {name: (f.media_type, f.extension) for name, f in FORMATS.items()} == expected
    for name, spec in FORMATS.items():
        assert spec.name == name and spec.description_vi and spec.description_en
    # every sheet and roll a PDF can be laid out on is offered as a format of the same name
    assert set(TEMPLATES) <= set(FORMATS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        FORMATS["a4-3x8"].name = "letter"  # type: ignore[misc]


def test_unknown_format_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="letter-2x5") as refused:
        render(_labels(1), format="letter-2x5")
    assert all(name in str(refused.value) for name in ALL_FORMATS)


def test_every_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="every"):
        render(_labels(1), format="zpl-50x30", on_progress=lambda done: None, every=0)


# --- PDF --------------------------------------------------------------------------------------


def _pdf_pages(pdf: bytes) -> tuple[list[list[zxingcpp.Result]], list[str], list[float]]:
    document = pdfium.PdfDocument(pdf)
    try:
        found, texts, widths = [], [], []
        for page in document:
            found.append(_decode(page.render(scale=300 / 72, grayscale=True).to_pil()))
            texts.append(page.get_textpage().get_text_range())
            widths.append(page.get_width() * 25.4 / 72)
        return found, texts, widths
    finally:
        document.close()


def _slot(result: zxingcpp.Result, template: str) -> int:
    """Which label of its page a QR belongs to, from where its centre lies on the page."""
    spec = TEMPLATES[template]
    corners = (
        result.position.top_left,
        result.position.top_right,
        result.position.bottom_left,
        result.position.bottom_right,
    )
    x_mm = sum(p.x for p in corners) / 4 * 25.4 / 300
    y_mm = sum(p.y for p in corners) / 4 * 25.4 / 300
    column = int((x_mm - spec.margin_left_mm) // (spec.label_mm[0] + spec.gap_x_mm))
    row = int((y_mm - spec.margin_top_mm) // (spec.label_mm[1] + spec.gap_y_mm))
    return row * spec.columns + column


@pytest.mark.parametrize("name", PDF_FORMATS)
def test_pdf_every_qr_decodes_to_its_uri_in_label_order(name: str) -> None:
    # given a run that fills more than one sheet of the 24-label template
    labels, spec = _labels(), TEMPLATES[name]
    # when
    pages, _, widths = _pdf_pages(render(labels, format=name))
    # then one PDF of ceil(n / per page) pages of the template's size
    assert len(pages) == -(-len(labels) // spec.per_page)
    assert widths == pytest.approx([spec.page_mm[0]] * len(pages), abs=0.05)
    # and each QR, placed by where it is printed, holds the URI of the label that belongs there
    read = []
    for number, found in enumerate(pages):
        slots = {_slot(result, name): result.text for result in found}
        assert len(slots) == len(found)
        first = number * spec.per_page
        assert sorted(slots) == list(range(min(spec.per_page, len(labels) - first)))
        read += [slots[slot] for slot in sorted(slots)]
    assert read == [label.uri for label in labels]


@pytest.mark.parametrize("name", PDF_FORMATS)
def test_pdf_text_layer_has_each_name_with_its_diacritics_and_each_code_in_order(name: str) -> None:
    labels = _labels()
    _, texts, _ = _pdf_pages(render(labels, format=name))
    flat = " ".join(" ".join(texts).split())
    names = re.findall("|".join(map(re.escape, NAMES)), flat)
    assert names == [label.product_name for label in labels]
    codes = [flat.find(label.human_code) for label in labels]
    assert -1 not in codes and codes == sorted(codes)


# --- ZPL --------------------------------------------------------------------------------------


def _unescape(data: str) -> str:
    return re.sub(r"_([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), data)


@pytest.mark.parametrize("name", ZPL_FORMATS)
def test_zpl_has_one_utf8_format_per_label_and_each_qr_field_holds_its_uri(name: str) -> None:
    # given labels whose serials hold the characters ZPL would read as commands
    labels = _labels()
    labels[1] = dataclasses.replace(labels[1], uri=labels[1].uri + "~x^y_z")
    # when
    zpl = render(labels, format=name).decode("utf-8")
    # then one ^XA…^XZ per label, in order, each switched to UTF-8 and 203 dpi at the label's size
    formats = re.findall(r"\^XA(.*?)\^XZ", zpl, re.S)
    assert len(formats) == len(labels)
    width, height = ZPL_FORMATS[name]
    for label, body in zip(labels, formats, strict=True):
        assert "^CI28" in body
        assert f"^PW{width * 8}" in body and f"^LL{height * 8}" in body
        qr = re.findall(r"\^BQ[^\^]*(?:\^FH_)?\^FD(.*?)\^FS", body)
        assert len(qr) == 1 and qr[0].startswith("QA,")
        assert _unescape(qr[0][3:]) == label.uri
        texts = " ".join(_unescape(d) for d in re.findall(r"\^A1[^\^]*(?:\^FB[^\^]*)?\^FH_\^FD(.*?)\^FS", body))
        assert label.human_code in texts and label.product_name.split()[0] in texts
        assert "Lô: LN260715" in texts


# --- ZIP of PNG or SVG ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ZIP_FORMATS)
def test_zip_holds_one_file_per_label_named_in_label_order(name: str) -> None:
    labels = _labels()
    extension, compression = ZIP_FORMATS[name]
    archive = zipfile.ZipFile(io.BytesIO(render(labels, format=name)))
    assert archive.testzip() is None
    assert archive.namelist() == [f"{i:04d}-{label.human_code}.{extension}" for i, label in enumerate(labels, 1)]
    assert {info.compress_type for info in archive.infolist()} == {compression}


def test_png_zip_every_image_decodes_to_its_labels_uri() -> None:
    labels = _labels()
    archive = zipfile.ZipFile(io.BytesIO(render(labels, format="png-50x30")))
    read = []
    for member in archive.namelist():
        image = Image.open(io.BytesIO(archive.read(member)))
        assert image.size == (round(50 / 25.4 * 300), round(30 / 25.4 * 300))
        read.append([result.text for result in _decode(image)])
    assert read == [[label.uri] for label in labels]


def test_svg_zip_every_qr_path_decodes_to_its_labels_uri_and_names_keep_diacritics() -> None:
    labels = _labels()
    archive = zipfile.ZipFile(io.BytesIO(render(labels, format="svg-50x30")))
    svgs = [archive.read(member) for member in archive.namelist()]
    assert [[r.text for r in _decode(_matrix_png(_svg_matrix(svg)))] for svg in svgs] == [
        [label.uri] for label in labels
    ]
    for label, svg in zip(labels, svgs, strict=True):
        text = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg.decode("utf-8")))
        assert label.product_name in text and label.human_code in text


def test_zip_member_names_stay_flat_and_sorted_whatever_the_code_holds() -> None:
    # given codes a file system would read as folders or reject, and one label without a code
    labels = [
        dataclasses.replace(label, human_code=code)
        for label, code in zip(_labels(3), ["../../etc/x", "", "A:B*C"], strict=True)
    ]
    # when
    names = zipfile.ZipFile(io.BytesIO(render(labels, format="svg-50x30"))).namelist()
    # then
    assert names == sorted(names) and len(names) == 3
    assert all(re.fullmatch(r"000[1-3](-[0-9A-Za-z_-]+)?\.svg", n) for n in names)


def test_zip_names_widen_past_9999_labels_so_they_still_sort_in_order() -> None:
    labels = [_labels(1)[0]] * 10_001
    names = zipfile.ZipFile(io.BytesIO(render(labels, format="svg-50x30"))).namelist()
    assert names[0].startswith("00001-") and names[-1].startswith("10001-")
    assert names == sorted(names)


# --- progress, cancellation, determinism -----------------------------------------------------


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_progress_is_reported_every_n_labels_and_once_at_the_end(name: str) -> None:
    labels = _labels()
    seen: list[int] = []
    render(labels, format=name, on_progress=seen.append, every=7)
    assert seen == [7, 14, 21, 28, 30]
    # an end that falls on a multiple of ``every`` is reported once, not twice
    seen.clear()
    render(labels, format=name, on_progress=seen.append, every=10)
    assert seen == [10, 20, 30]
    # and a run shorter than ``every`` (the default is 250) reports only its end
    seen.clear()
    render(labels, format=name, on_progress=seen.append)
    assert seen == [30]


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_an_exception_from_on_progress_stops_rendering_and_propagates(name: str) -> None:
    # given a run of 30 labels and a callback that cancels at the first report
    labels = _Reads(_labels())

    def cancel(done: int) -> None:
        raise Cancelled(done)

    # when / then
    with pytest.raises(Cancelled, match=r"^5$"):
        render(labels, format=name, on_progress=cancel, every=5)
    assert max(labels.read) < 10  # the labels after the cancelled report were never rendered


def test_an_exception_from_the_final_report_still_propagates() -> None:
    def cancel_at_end(done: int) -> None:
        if done == 30:
            raise Cancelled(done)

    with pytest.raises(Cancelled):
        render(_labels(), format="a4-4x10", on_progress=cancel_at_end, every=10)


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_the_same_labels_give_the_same_bytes_at_any_time(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # given one rendering now
    first = render(_labels(), format=name)
    # when the clock says another year
    monkeypatch.setattr(time, "time", lambda: 1_900_000_000.0)
    second = render(_labels(), format=name)
    # then the same bytes, and other labels give other bytes
    assert first == second
    assert render(_labels(seed=1), format=name) != first
