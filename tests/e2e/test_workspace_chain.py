"""The whole chain through the workspace pages in a real headless Chromium (Debian's), as its users do
it, by typing and tapping: a cooperative member records a harvest claiming the longan GI and ships it;
the processor receives it, dries it into a new lot, prints 24 labels that a real Celery worker renders,
and downloads the PDF; a label's QR, decoded from that PDF, opens the public page with the chain and
the GI badge; the market inspector verifies the label by its typed code and recalls the lot; the public
page then carries the recall banner. Screenshots of each step at phone and desktop width go to
test-artifacts/workspace-chain/.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, col, select

from tests.e2e.live import (
    ARTIFACTS,
    Server,
    phone,
    server_with_worker,
    shoot,
    sign_in,
)
from trace.access import Role
from trace.demo.data import ORGS, USERS
from trace.digital_link import unit_uri
from trace.lots import Lot
from trace.printing.models import PrintRun
from trace.products import Product
from trace.units import Unit

SHOTS = ARTIFACTS / "workspace-chain"
QUEUE = f"hytrace-web-chain-{os.getpid()}"  # our own queue: other suites may share the broker
WAIT_MS = 10_000  # one page, or one form sent
RENDER_MS = 60_000  # the worker starting and rendering 24 labels
GI = "Nhãn lồng Hưng Yên"  # the demo's geographical indication (trace/demo/data.py)
LABELS = 24  # one A4 sheet of the 3 × 8 format
COOP, PROC = ORGS["coop"][1], ORGS["proc"][1]


def _email(org: str, role: Role) -> str:
    return next(email for key, email, _, found in USERS if key == org and found == role)


@pytest.fixture(scope="module")
def server(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    with server_with_worker(databases, tmp_path_factory.mktemp("workspace-chain"), QUEUE) as running:
        yield running


@contextmanager
def person(browser: Any) -> Iterator[Any]:
    """A page in a fresh phone-sized browser context in Vietnamese: one person's phone, no shared cookies."""
    with phone(browser, accept_downloads=True) as page:
        page.context.set_default_timeout(WAIT_MS)
        yield page


def snap(page: Any, name: str) -> None:
    shoot(page, SHOTS, name)


def go(page: Any, href: str) -> None:
    """Follow a link on the page (the menu, or a next step), as a tap does."""
    with page.expect_navigation():
        page.locator(f"a[href='{href}']").first.click()


def choose(page: Any, select: str, text: str) -> str:
    """Pick the one option of a drop-down whose words include ``text``; its value."""
    option = page.locator(f"{select} option").filter(has_text=text)
    assert option.count() == 1, (select, text, page.locator(f"{select} option").all_inner_texts())
    value = option.get_attribute("value")
    page.select_option(select, value=value)
    return str(value)


def send(page: Any, form: str) -> None:
    """Tap the form's main button and wait for the page the server answers with."""
    with page.expect_navigation():
        page.click(f"{form} button.primary[type=submit]")


def lot_id(page: Any, prefix: str) -> int:
    path = urlsplit(page.url).path
    assert path.startswith(prefix), page.url
    return int(path.removeprefix(prefix).split("/")[0])


def decode_qr_codes(pdf: bytes) -> list[str]:
    """The texts of every QR code on page 1 of a PDF, rendered at 300 dpi."""
    import pypdfium2
    import zxingcpp

    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=300 / 72).to_pil()
    finally:
        document.close()
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [result.text for result in found]


def journey_step(page: Any, what: str) -> str:
    """The text of the one step of the public page's journey that starts with ``what``."""
    steps = page.locator("#journey ol > li").filter(has=page.locator(".what", has_text=what))
    assert steps.count() == 1, page.locator("#journey ol > li").all_inner_texts()
    return str(steps.inner_text())


def test_a_harvest_goes_from_the_cooperative_through_the_processor_to_a_label_the_inspector_recalls(
    browser: Any, server: Server
) -> None:
    started = time.monotonic()
    tag = secrets.token_hex(3).upper()
    fresh_code, dried_code = f"NL-E2E-{tag}", f"LN-E2E-{tag}"
    with Session(server.engine) as session:
        fresh_product = session.exec(select(Product).where(Product.category == "longan_fresh")).one()
        dried_product = session.exec(select(Product).where(Product.category == "longan_dried")).one()

    # 1. A member of the longan cooperative records a harvest claiming the GI, and ships it.
    with person(browser) as coop:
        sign_in(coop, server, _email("coop", Role.MEMBER))
        go(coop, "/app/harvest")
        choose(coop, "#f-product_id", fresh_product.name_vi)
        choose(coop, "#f-location_id", "VN-HY-NL-DEMO-01")  # in the former Hưng Yên city: inside the GI's area
        coop.fill("#f-quantity", "60")
        coop.fill("#f-lot_code", fresh_code)
        coop.locator("label.check").filter(has_text=GI).locator("input").check()
        snap(coop, "01-harvest-form")
        send(coop, "form[action='/app/harvest']")
        fresh_id = lot_id(coop, "/app/farm/lots/")
        assert fresh_code in coop.get_by_role("heading", level=1).inner_text()
        badge = coop.locator(".badge").filter(has_text=GI)
        assert badge.count() == 1 and "Được chấp nhận khi thu hoạch" in badge.inner_text(), badge.all_inner_texts()
        snap(coop, "02-harvested-lot-gi-accepted")
        go(coop, f"/app/lots/{fresh_id}/ship")
        choose(coop, "#f-destination_organisation_id", PROC)
        coop.fill("#f-quantity", "60")
        snap(coop, "03-ship-form")
        send(coop, f"form[action='/app/lots/{fresh_id}/ship']")
        assert urlsplit(coop.url).path == "/app/shipments", coop.url
        shipped = coop.locator("tr").filter(has_text=fresh_code)
        assert shipped.count() == 1 and PROC in shipped.inner_text(), shipped.all_inner_texts()
        snap(coop, "04-shipments-out")

    # 2. The processor receives it, dries it into a new lot, prints 24 labels and downloads them.
    with person(browser) as proc:
        sign_in(proc, server, _email("proc", Role.ORG_ADMIN))
        go(proc, "/app/incoming")
        arriving = proc.locator("tr").filter(has_text=fresh_code)
        assert arriving.count() == 1 and "60" in arriving.inner_text(), proc.locator("tr").all_inner_texts()
        snap(proc, "05-incoming")
        with proc.expect_navigation():
            arriving.locator("a").click()
        assert proc.input_value("#f-quantity") == "60"  # everything in transit, unless less arrived
        send(proc, "form[action$='/receive']")
        assert fresh_code in proc.locator("[role=status] .done").inner_text()
        snap(proc, "06-received")
        go(proc, "/app/transform")
        choose(proc, "#f-lot-1", fresh_code)
        proc.fill("#f-qty-1", "60")
        choose(proc, "#f-product_id", dried_product.name_vi)
        proc.fill("#f-lot_code", dried_code)
        proc.fill("#f-quantity", "12")  # 24 boxes of 500 g
        snap(proc, "07-transform-form")
        send(proc, "form[action='/app/transform']")
        dried_id = lot_id(proc, "/app/transform/")
        assert dried_code in proc.get_by_role("heading", level=1).inner_text()
        assert proc.locator("tr").filter(has_text=fresh_code).count() == 1  # made from the harvest
        snap(proc, "08-transformed")
        go(proc, f"/app/lots/{dried_id}/print")
        proc.select_option("#f-format", value="a4-3x8")
        proc.fill("#f-count", str(LABELS))
        snap(proc, "09-print-form")
        send(proc, f"form[action='/app/lots/{dried_id}/print']")
        run_id = int(urlsplit(proc.url).path.removeprefix("/app/print-runs/"))
        snap(proc, "10-print-run-asked")
        # the run page refreshes itself until the worker has rendered the labels
        download = proc.locator(f"a[href='/app/print-runs/{run_id}/file']")
        try:
            download.wait_for(state="visible", timeout=RENDER_MS)
        except Exception:
            with Session(server.engine) as session:
                state = session.get(PrintRun, run_id)
            pytest.fail(f"print run {run_id} not ready after {RENDER_MS / 1000} s: {state}\n{server.tail()}")
        progress = proc.locator("progress#progress")
        assert progress.get_attribute("value") == progress.get_attribute("max") == str(LABELS)
        snap(proc, "11-print-run-ready")
        with proc.expect_download() as fetched:
            download.click()
        pdf = Path(fetched.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF-")
        (SHOTS / "labels.pdf").write_bytes(pdf)

    # 3. Each label's QR code holds its unit's URI on this server; one opens the public page.
    decoded = decode_qr_codes(pdf)
    with Session(server.engine) as session:
        units = session.exec(select(Unit).where(Unit.print_run_id == run_id)).all()
        dried = session.get(Lot, dried_id)
        assert dried is not None
        issued = {
            unit_uri(base_url=server.base, gtin=dried.gtin, lot=dried.lot_code, serial=u.serial): u for u in units
        }
    assert len(decoded) == LABELS == len(set(decoded)), decoded
    assert set(decoded) == set(issued)
    uri = decoded[0]
    assert uri.startswith(f"{server.base}/01/{dried.gtin}/10/{dried_code}/21/"), uri
    label = issued[uri]
    with person(browser) as buyer:
        buyer.goto(uri)
        assert dried_product.name_vi == buyer.get_by_role("heading", level=1).inner_text()
        harvest, processing = journey_step(buyer, "Thu hoạch"), journey_step(buyer, "Chế biến")
        assert COOP in harvest and fresh_code in harvest, harvest
        assert PROC in processing and dried_code in processing, processing
        steps = buyer.locator("#journey ol > li").all_inner_texts()
        assert steps.index(harvest) < steps.index(processing), steps
        badge = buyer.locator("#designations .badge").filter(has_text="Chỉ dẫn địa lý")
        assert badge.count() == 1 and GI in badge.inner_text(), buyer.locator(".badge").all_inner_texts()
        assert buyer.get_by_role("alert").count() == 0
        # the human code printed under the QR, as the page shows it
        shown = (
            buyer.locator("#facts dt", has_text="Mã")
            .filter(has_not_text="GTIN")
            .locator("xpath=following-sibling::dd[1]")
        )
        typed = shown.first.inner_text().strip()
        assert typed.replace("-", "").upper() == label.code.replace("-", "").upper(), (typed, label.code)
        snap(buyer, "12-public-page")

        # 4. The market inspector verifies the label by its typed code, then recalls the dried lot.
        reason = f"Kiểm nghiệm phát hiện nấm mốc vượt ngưỡng, lô {dried_code} (dữ liệu mẫu)"
        with person(browser) as inspector:
            sign_in(inspector, server, _email("qltt", Role.INSPECTOR))
            go(inspector, "/app/verify")
            inspector.fill("#f-code", typed)
            send(inspector, "form[action='/app/verify'][method=get]")
            verdict = inspector.locator("#verdict")
            # Every check passes: the code is ours, the lot is active, the inherited GI is valid, the
            # chain and quantities add up, and the label was scanned once or twice from this one
            # machine (an ordinary scan pattern, not a copied code).
            outcomes = {
                row.get_attribute("id"): row.get_attribute("class")
                for row in inspector.locator("tr[id^='check-']").all()
            }
            assert verdict.get_attribute("class") == "verdict v-genuine_and_compliant", outcomes
            assert verdict.inner_text() == "Hàng thật, đạt yêu cầu"
            for name in ("code_known", "lot_status", "designation", "chain", "mass_balance", "scan_pattern"):
                assert outcomes.get(f"check-{name}") == "o-pass", outcomes
            assert dried_code in inspector.locator("section.ok dl").inner_text()
            snap(inspector, "13-verified-genuine")
            inspector.fill("#recall-reason", reason)
            send(inspector, "form[action$='/recall']")
            assert "Đã thu hồi lô hàng" in inspector.locator("p.done[role=status]").inner_text()
            assert inspector.locator("#lot-status").inner_text() == "đã thu hồi"
            assert inspector.locator("#verdict").get_attribute("class") == "verdict v-violation"
            snap(inspector, "14-recalled")

        # then the buyer's page, opened again, shows the recall first, with its reason
        response = buyer.reload()
        assert response is not None and response.status == 200
        banner = buyer.get_by_role("alert")
        assert banner.count() == 1 and buyer.locator("main > *").first.get_attribute("role") == "alert"
        text = banner.inner_text()
        assert "ĐÃ THU HỒI" in text and reason in text, text
        snap(buyer, "15-public-page-recalled")
    with Session(server.engine) as session:
        assert session.exec(select(col(Lot.status)).where(Lot.id == dried_id)).one() == "recalled"
    print(f"workspace chain: {time.monotonic() - started:.1f} s")
