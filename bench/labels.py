"""Label rendering speed: a 10,000-label A4 PDF (4x10) in one process, and the bare QR encoders.

Run from the repository root::

    .venv/bin/python -m bench.labels [--labels 10000] [--qr 2000] [--seed N]

Goal: ≥ 1,000 labels/s per core. No database: labels/ is pure rendering.
"""

from __future__ import annotations

import argparse
import random
import string
import time
from collections.abc import Callable
from datetime import date

import qrcode
import zxingcpp
from qrcode.constants import ERROR_CORRECT_Q

from bench.common import emit, table
from labels import LabelData, qr_matrix, render_pdf, render_png, render_zpl


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


def main() -> None:
    """Measure, print a table and the BENCH_JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=10_000, help="labels in the PDF (default 10,000)")
    parser.add_argument("--qr", type=int, default=2_000, help="URIs for the bare encoder runs")
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
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
