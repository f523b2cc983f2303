"""labels.write_pdf: the PDF is written as it is made, read back whole by two independent readers."""

from __future__ import annotations

import dataclasses
import io
import random
from datetime import date
from itertools import pairwise

import pypdfium2 as pdfium
import pytest
import zxingcpp

from labels import TEMPLATES, LabelData, render_pdf, write_pdf
from labels.layout import layout
from labels.pdf import LEAF
from labels.qr import pdf_qr_path

# Every Vietnamese vowel with each of its tones, and Đ: a label must print and extract them all.
VIETNAMESE = "ả ạ ấ ầ ẩ ẫ ậ ắ ằ ẳ ẵ ặ ẻ ẽ ẹ ế ề ể ễ ệ ỉ ĩ ị ỏ ọ ố ồ ổ ỗ ộ ớ ờ ở ỡ ợ ủ ũ ụ ứ ừ ử ữ ự ỳ ỷ ỹ ỵ Đ đ"
NAMES = ["Nhãn lồng Hưng Yên – Đặc sản", "Gà Đông Tảo", "Vải lai chín sớm Phù Cừ", "Chuối tiêu hồng Khoái Châu"]


def _labels(count: int, seed: int = 4) -> list[LabelData]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        serial = "".join(rng.choices("0123456789ABCDEFGHJKMNPQRSTVWXYZ", k=12))
        out.append(
            LabelData(
                uri=f"https://truyxuat.example.vn/01/09520002000019/10/LN260715/21/{serial}",
                human_code=f"{serial[:3]}-{serial[3:6]}-{serial[6:9]}",
                product_name=NAMES[i % len(NAMES)],
                lot_code="LN260715",
                packed_on=date(2026, 7, 15),
                expiry=date(2026, 8, 15) if i % 2 else None,
                designation="Chỉ dẫn địa lý Nhãn lồng Hưng Yên" if i % 3 == 0 else None,
                extra_line="HTX Nhãn lồng Hồng Nam" if i % 4 == 1 else None,
            )
        )
    return out


def _texts(label: LabelData, template: str) -> list[str]:
    """The lines labels/layout.py places on ``label``, in drawing order."""
    side, _ = pdf_qr_path(label.uri)
    return [t.text for t in layout(label, side, TEMPLATES[template].label_mm).texts]


class _Pipe(io.RawIOBase):
    """A sink that cannot seek or tell (a socket, a pipe) and remembers how much it was given."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_label_decodes_and_its_text_layer_is_exactly_its_lines_with_diacritics(template: str) -> None:
    # given labels of every shape (with and without the optional lines), some carrying every Vietnamese
    # letter in lower and upper case, six at a time (so that none is wrapped out of sight)
    per_page = TEMPLATES[template].per_page
    letters = VIETNAMESE.split()
    groups = [" ".join(letters[i : i + 6]) for i in range(0, len(letters), 6)]
    labels = _labels(max(2 * per_page + 1, len(groups) + 2))
    for index, group in enumerate(groups, 1):
        labels[index] = dataclasses.replace(labels[index], product_name=group, extra_line=group.upper())
    # when
    pdf = render_pdf(labels, template=template)
    # then each page's text, line by line, is its labels' lines in order, and every QR holds a label's URI
    document = pdfium.PdfDocument(pdf)
    extracted = []
    try:
        assert len(document) == -(-len(labels) // per_page)
        decoded = []
        for number, page in enumerate(document):
            on_page = labels[number * per_page : (number + 1) * per_page]
            lines = page.get_textpage().get_text_range().split("\r\n")
            assert lines == [line for label in on_page for line in _texts(label, template)]
            extracted += lines
            image = page.render(scale=300 / 72, grayscale=True).to_pil()
            decoded += [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]
        assert sorted(decoded) == sorted(label.uri for label in labels)
    finally:
        document.close()
    assert set(letters) | {letter.upper() for letter in letters} <= set(" ".join(extracted).split())


def test_a_second_reader_finds_every_page_and_the_same_text() -> None:
    pypdf = pytest.importorskip("pypdf")
    labels = _labels(LEAF + 3)  # more pages than one node of the page tree holds
    labels[2] = dataclasses.replace(labels[2], product_name="Đặc sản Hưng Yên")
    pdf = render_pdf(labels, template="roll-50x30")
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)  # strict: any fault in the file is an error
    assert len(reader.pages) == len(labels)
    for index in (0, 2, LEAF - 1, LEAF, len(labels) - 1):
        page = reader.pages[index]
        assert [float(v) for v in page.mediabox] == pytest.approx([0, 0, 50 * 72 / 25.4, 30 * 72 / 25.4])
        text = " ".join(page.extract_text().split())
        assert labels[index].human_code in text and labels[index].product_name.split()[0] in text
    assert "Đặc sản Hưng Yên" in " ".join(reader.pages[2].extract_text().split())
    assert reader.metadata is not None and reader.metadata.title == "hytrace labels"


def test_pages_go_out_as_they_are_made_not_at_the_end() -> None:
    # given a sink that cannot seek, and a progress callback that looks at it
    labels, out = _labels(60), _Pipe()
    seen: list[tuple[int, int]] = []
    # when a roll is written
    size = write_pdf(
        labels,
        out,  # type: ignore[arg-type]  # a raw stream: write() is all the writer uses
        template="roll-50x30",
        on_progress=lambda done: seen.append((done, len(out.data))),
        every=10,
    )
    # then, at each report, the pages before it were already written: the file grows with the labels
    assert [done for done, _ in seen] == [10, 20, 30, 40, 50, 60]
    written = [length for _, length in seen]
    # (ten roll pages of ~1.2 KB each between two reports; the fonts, ~60 KB, come only at the end)
    assert all(later - earlier > 10 * 1000 for earlier, later in pairwise(written))
    assert written[0] > 9 * 1000 and written[-1] == size
    # and the bytes are the same as those rendered into memory (seeking is never needed)
    assert size == len(out.data) and bytes(out.data) == render_pdf(labels, template="roll-50x30")


def test_an_empty_run_is_one_blank_page_and_a_valid_file() -> None:
    document = pdfium.PdfDocument(render_pdf([], template="a4-4x10"))
    try:
        assert len(document) == 1 and document[0].get_textpage().get_text_range() == ""
    finally:
        document.close()


def test_a_roll_of_many_pages_has_each_label_on_its_own_page_across_the_page_tree() -> None:
    labels = _labels(2 * LEAF + 1)
    document = pdfium.PdfDocument(render_pdf(labels, template="roll-100x50"))
    try:
        assert len(document) == len(labels)
        for index in (0, LEAF - 1, LEAF, 2 * LEAF):
            image = document[index].render(scale=300 / 72, grayscale=True).to_pil()
            assert [r.text for r in zxingcpp.read_barcodes(image)] == [labels[index].uri]
    finally:
        document.close()
