"""Label rendering speed: a 10,000-label A4 PDF (4x10) in one process, and the bare QR encoders;
or, with ``--roll N``, the memory a roll PDF of N labels takes.

Run from the repository root::

    .venv/bin/python -m bench.labels [--labels 10000] [--qr 2000] [--seed N]
    .venv/bin/python -m bench.labels --roll 100000 [--template roll-50x30]

Goal: ≥ 1,000 labels/s per core. No database: labels/ is pure rendering. ``--roll`` writes the PDF
to a temporary file, as the worker does, and prints the process's peak resident memory (ru_maxrss)
before and after rendering: the interpreter, its libraries and the labels (~0.4 KB each) are the
first figure, the renderer's own memory the difference. Goal: a 100,000-label roll under 300 MB.
"""

from __future__ import annotations

import argparse
import random
import resource
import string
import tempfile
import time
from collections.abc import Callable
from datetime import date

import qrcode
import zxingcpp
from qrcode.constants import ERROR_CORRECT_Q

from bench.common import emit, table
from labels import TEMPLATES, LabelData, qr_matrix, render_pdf, render_png, render_zpl, write_pdf


def _labels(count: int, rng: random.Random) -> list[LabelData]:
    alphabet = string.ascii_letters + string.digits + "-_"
    out = []
    for _ in range(count):
        serial = "".join(rng.choices(alphabet, k=16))
        # ~82 characters: a unit-level GS1 Digital Link as the print runs make them.
        out.append(
            LabelData(
                uri=f"https://truyxuat.hungyen.gov.vn/01/08930000000012/10/NL2026-07/21/{serial}",
                human_code=serial[:8].upper(),
                product_name="Long nhãn sấy khô Hưng Yên — Đặc sản",
                lot_code="NL2026-07",
                packed_on=date(2026, 7, 1),
                expiry=date(2027, 1, 1),
                designation="Chỉ dẫn địa lý Nhãn lồng Hưng Yên",
                extra_line="HTX Nhãn lồng Hồng Nam",
            )
        )
    return out


def _per_second(count: int, work: Callable[[], object]) -> tuple[float, float]:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    return count / seconds, seconds


def _qrcode_auto(uri: str) -> object:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, border=0)
    code.add_data(uri)
    code.make(fit=True)  # scores all 8 masks in pure Python
    return code.modules


def _zxing(uri: str) -> object:
    return zxingcpp.create_barcode(uri, zxingcpp.BarcodeFormat.QRCode, ec_level="Q").to_image(
        scale=1, add_quiet_zones=False
    )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def roll(count: int, template: str, seed: int) -> None:
    """One roll PDF of ``count`` labels into a temporary file: peak memory, labels/s, file size."""
    labels = _labels(count, random.Random(seed))
    render_pdf(labels[:10], template=template)  # fonts and imports out of the figures
    before = _peak_mb()
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        size = write_pdf(labels, out, template=template)
        seconds = time.perf_counter() - started
    peak = _peak_mb()
    rate = count / seconds
    print(
        table(
            ["what", "n", "seconds", "per s", "peak RSS MB (labels alone)", "output"],
            [
                [
                    f"write_pdf {template} to a file",
                    count,
                    round(seconds, 1),
                    round(rate),
                    f"{peak:.0f} ({before:.0f})",
                    f"{size / 1e6:.1f} MB ({size / count:.0f} B/label)",
                ]
            ],
        )
    )
    verdict = "meets" if peak < 300 else "MISSES"
    print(f"peak {peak:.0f} MB for {count:,} labels — {verdict} the 300 MB goal for a 100,000-label roll.")
    emit(
        "labels_roll",
        {
            "template": template,
            "n": count,
            "seconds": seconds,
            "per_s": rate,
            "bytes": size,
            "peak_rss_mb": peak,
            "labels_alone_rss_mb": before,
        },
    )


def main() -> None:
    """Measure, print a table and the BENCH_JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=10_000, help="labels in the PDF (default 10,000)")
    parser.add_argument("--qr", type=int, default=2_000, help="URIs for the bare encoder runs")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--roll", type=int, default=0, help="only: a roll PDF of this many labels, its peak memory")
    parser.add_argument("--template", default="roll-50x30", choices=sorted(TEMPLATES), help="for --roll")
    args = parser.parse_args()
    if args.roll:
        roll(args.roll, args.template, args.seed)
        return
    rng = random.Random(args.seed)
    labels = _labels(args.labels, rng)
    uris = [label.uri for label in labels[: args.qr]]
    render_pdf(labels[:40], template="a4-4x10")  # font registration and imports out of the timing

    rows, results = [], {}
    for name, count, work in [
        ("qrcode 8 auto mask (matrix)", len(uris), lambda: [_qrcode_auto(u) for u in uris]),
        ("zxing-cpp writer (matrix)", len(uris), lambda: [_zxing(u) for u in uris]),
        ("labels.qr_matrix (lists)", len(uris), lambda: [qr_matrix(u) for u in uris]),
        ("render_png 50x30 300 dpi", min(1000, len(labels)), lambda: [render_png(label) for label in labels[:1000]]),
        ("render_zpl 50x30", len(labels), lambda: render_zpl(labels)),
    ]:
        rate, seconds = _per_second(count, work)
        rows.append([name, count, round(seconds, 3), round(rate), round(1000 / rate, 3), ""])
        results[name] = {"n": count, "seconds": seconds, "per_s": rate}

    pdf: list[bytes] = []
    rate, seconds = _per_second(len(labels), lambda: pdf.append(render_pdf(labels, template="a4-4x10")))
    size = len(pdf[0])
    per_1000_mb = size / len(labels) * 1000 / 1e6
    rows.append(
        [
            "render_pdf a4-4x10",
            len(labels),
            round(seconds, 3),
            round(rate),
            round(1000 / rate, 3),
            f"{size / 1e6:.2f} MB ({per_1000_mb:.2f} MB/1,000)",
        ]
    )
    results["render_pdf a4-4x10"] = {
        "n": len(labels),
        "seconds": seconds,
        "per_s": rate,
        "bytes": size,
        "mb_per_1000": per_1000_mb,
    }
    print(table(["what", "n", "seconds", "per s", "ms each", "output"], rows))
    verdict = "meets" if rate >= 1000 else "MISSES"
    print(f"PDF: {rate:,.0f} labels/s in one process — {verdict} the 1,000 labels/s per core goal.")
    emit("labels", {"results": results, "goal_per_s": 1000, "pdf_meets_goal": rate >= 1000})


if __name__ == "__main__":
    main()
