"""The province's dashboard in a real headless Chromium (Debian's), on the demo data: the administrator
signs in, opens the dashboard from the menu and sees SVG charts with tables whose figures equal counts made
here from the database; sets targets and sees the target line; asks for a report that a real Celery worker
builds, and downloads it. Nothing needs sideways scrolling at 360 px. Screenshots go to
test-artifacts/dashboard/.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from openpyxl import load_workbook
from sqlmodel import Session, col, select

from tests.e2e.live import (
    ARTIFACTS,
    Server,
    phone,
    server_with_worker,
    shoot,
    sign_in,
)
from trace.demo.data import ORGS, USERS
from trace.designations.models import Designation, LotClaim
from trace.events.models import Event, EventType
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone, today
from trace.printing.models import PrintKind, PrintRun, PrintStatus
from trace.reports.models import ReportJob
from trace.units import Unit, UnitLevel, UnitStatus

SHOTS = ARTIFACTS / "dashboard"
QUEUE = f"hytrace-dashboard-{os.getpid()}"  # our own queue: other suites may share the broker
WAIT_MS = 15_000
BUILD_MS = 60_000  # the worker starting and building the report
ADMIN_EMAIL = "admin@hytrace.local"  # the demo's administrator (trace.platform.config's default admin email)


@pytest.fixture(scope="module")
def server(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    with server_with_worker(databases, tmp_path_factory.mktemp("dashboard"), QUEUE) as running:
        yield running


def snap(page: Any, name: str) -> None:
    shoot(page, SHOTS, name)


def send(page: Any, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button.primary[type=submit]")


def local_month(moment: Any) -> tuple[int, int]:
    here = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(local_zone())
    return here.year, here.month


def counted(server: Server) -> dict[str, Any]:
    """This year's figures, counted here from the rows (Python, not the dashboard's SQL)."""
    year = today().year
    with Session(server.engine) as session:
        lots = session.exec(select(Lot, Event).join(Event, col(Event.id) == col(Lot.created_event_id))).all()
        units = session.exec(select(Unit)).all()
        runs = session.exec(select(PrintRun)).all()
        orgs = session.exec(select(Organisation).where(col(Organisation.active).is_(True))).all()
    harvested = Counter(
        local_month(lot.created_at)
        for lot, event in lots
        if event.type == EventType.HARVEST and lot.status != LotStatus.CANCELLED
    )
    labels = Counter(
        local_month(u.created_at) for u in units if u.level == UnitLevel.UNIT and u.status == UnitStatus.ACTIVE
    )
    for run in runs:
        if run.kind == PrintKind.LOT and run.reprint_of_id is None and run.status != PrintStatus.CANCELLED:
            labels[local_month(run.created_at)] += run.quantity
    return {
        "harvested": {m: n for (y, m), n in harvested.items() if y == year},
        "labels": {m: n for (y, m), n in labels.items() if y == year},
        "organisations": len(orgs),
    }


def column(page: Any, series: str) -> dict[int, int]:
    """A table's column of monthly figures, by month, as the page shows them (1.234 → 1234)."""
    cells = page.locator(f"td[data-series='{series}']")
    months = page.locator(f"tr:has(td[data-series='{series}']) td:first-child")
    out = {}
    for month, value in zip(months.all_inner_texts(), cells.all_inner_texts(), strict=True):
        number = int(value.replace(".", ""))
        if number:
            out[int(month.split("/")[0])] = number
    return out


def test_the_administrator_reads_the_dashboard_sets_targets_and_downloads_a_report(
    browser: Any, server: Server
) -> None:
    year = today().year
    with phone(browser, accept_downloads=True) as page:
        page.context.set_default_timeout(WAIT_MS)
        sign_in(page, server, ADMIN_EMAIL)
        with page.expect_navigation():
            page.locator("nav a[href='/app/dashboard']").click()
        assert urlsplit(page.url).path == "/app/dashboard"

        # charts drawn on the server, with the tables of their figures; the figures are the database's
        expected = counted(server)
        assert page.locator("svg.chart[role=img]").count() >= 8
        assert page.locator("svg.chart title").count() >= 8
        assert column(page, "lots_harvested") == expected["harvested"] and expected["harvested"]
        assert column(page, "labels") == expected["labels"] and expected["labels"]
        assert (
            int(page.locator("[data-figure=organisations]").inner_text().replace(".", "")) == expected["organisations"]
        )
        assert page.locator("[data-indicator=labels] polyline.target").count() == 0  # no target yet: no line
        snap(page, "01-province-dashboard")

        # targets for last year and this year: the labels chart draws the target line
        for when, value in ((year - 1, "100"), (year, "2.000")):
            page.goto(f"{server.base}/app/dashboard/targets")
            page.select_option("#f-indicator", value="labels")
            page.fill("#f-year", str(when))
            page.fill("#f-value", value)
            snap(page, f"02-target-form-{when}")
            send(page, "form[action='/app/dashboard/targets']")
        assert urlsplit(page.url).path == "/app/dashboard"
        chart = page.locator("[data-indicator=labels]")
        assert chart.locator("polyline.target").count() == 1
        assert chart.locator(f"tr[data-year='{year}'] td[data-field=target]").inner_text() == "2.000"
        chart.scroll_into_view_if_needed()
        snap(page, "03-target-line")

        # a report of this year, built by the real worker; the page refreshes itself until it is ready
        page.goto(f"{server.base}/app/reports")
        assert page.input_value("#f-from") == f"{year}-01-01"
        page.select_option("#f-format", value="xlsx")
        snap(page, "04-report-form")
        send(page, "form[action='/app/reports']")
        job_id = int(urlsplit(page.url).path.removeprefix("/app/reports/"))
        download = page.locator("#download")
        try:
            download.wait_for(state="visible", timeout=BUILD_MS)
        except Exception:
            with Session(server.engine) as session:
                state = session.get(ReportJob, job_id)
            pytest.fail(f"report {job_id} not ready after {BUILD_MS / 1000} s: {state}\n{server.tail()}")
        assert page.locator("progress#progress").get_attribute("value") == "100"
        snap(page, "05-report-ready")
        with page.expect_download() as fetched:
            download.click()
        content = Path(fetched.value.path()).read_bytes()
        (SHOTS / "report.xlsx").write_bytes(content)
    book = load_workbook(io.BytesIO(content))
    assert book.sheetnames[0] == "Tổng hợp" and "Theo tháng" in book.sheetnames
    summary = {row[0]: row[1] for row in book["Tổng hợp"].iter_rows(min_row=2, values_only=True)}
    assert summary["Tổ chức trên hệ thống (cuối kỳ)"] == expected["organisations"]
    assert summary["Lô hàng thu hoạch trong kỳ"] == sum(expected["harvested"].values())
    monthly = {int(r[0].split("/")[0]): r[5] for r in book["Theo tháng"].iter_rows(min_row=2, values_only=True) if r[5]}
    assert monthly == expected["labels"]


def test_the_longan_gi_holder_reads_its_own_dashboard_only(browser: Any, server: Server) -> None:
    # The demo's Department of Science and Technology manages the longan GI (trace/demo/data.py).
    email = next(e for key, e, _, _ in USERS if key == "dost")
    year = today().year
    with Session(server.engine) as session:
        org = session.exec(select(Organisation).where(col(Organisation.name) == ORGS["dost"][1])).one()
        mine = session.exec(select(Designation).where(col(Designation.holder_organisation_id) == org.id)).all()
        others = session.exec(select(Designation).where(col(Designation.holder_organisation_id) != org.id)).all()
        claimed = {c.lot_id for c in session.exec(select(LotClaim)).all() if c.designation_id in {d.id for d in mine}}
        lots = [
            lt
            for lt in session.exec(select(Lot)).all()
            if lt.id in claimed
            and lt.status != LotStatus.CANCELLED
            and lt.created_at.astimezone(local_zone()).year == year
        ]
    assert mine and others and lots
    with phone(browser) as page:
        page.context.set_default_timeout(WAIT_MS)
        sign_in(page, server, email)
        with page.expect_navigation():
            page.locator("nav a[href='/app/dashboard/designations']").click()
        assert int(page.locator("[data-figure=lots]").inner_text().replace(".", "")) == len(lots)
        shown = page.locator("#designations").inner_text()
        assert all(d.name_vi in shown for d in mine) and not any(d.name_vi in shown for d in others)
        assert page.locator("svg.chart[role=img]").count() == 2 and page.locator("#scans").count() == 0
        snap(page, "06-holder-dashboard")
        page.goto(f"{server.base}/app/dashboard")  # the province's page sends the holder to its own
        assert urlsplit(page.url).path == "/app/dashboard/designations"
