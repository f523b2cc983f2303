"""The public origin page in a real headless Chromium (Debian's), at phone width, against a real server
on the demo data: the facts, the designation badge, the journey, Vietnamese text, the English switch,
the recall banner after a recall made through the API, the not-found page, and no scan lost on a clean
shutdown. Screenshots go to test-artifacts/public-page/.

The tests sharing ``server`` run in file order: the recall test comes after the others because a
recall cannot be undone (events are append-only); the others assert that no alert is shown, so a
different order fails loudly instead of passing by accident.
"""

from __future__ import annotations

import signal
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from tests.e2e import a11y
from tests.e2e.live import ARTIFACTS, PHONE, DemoUnit, Server, demo_server, phone
from trace.access import Role
from trace.demo.data import DEMO_PASSWORD, USERS
from trace.lots import Lot
from trace.organisations import Organisation
from trace.products import Product
from trace.scans.models import Scan
from trace.units import Unit

SHOTS = ARTIFACTS / "public-page"
HEADER_VI = "Nguồn gốc nông sản Hưng Yên"


@dataclass(frozen=True)
class Expected:
    """What the page must say of the unit, read from the database."""

    product_vi: str
    product_en: str
    producer: str


@pytest.fixture(scope="module")
def server(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    # the reverse proxy of the proxy test runs on this host: its X-Forwarded-For is believed
    with demo_server(
        databases.new(), tmp_path_factory.mktemp("public-page"), FORWARDED_ALLOW_IPS="127.0.0.1"
    ) as running:
        yield running


def shot(page: Any, name: str) -> None:
    """A full-page screenshot kept as a test artefact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def expected(server: Server, unit: DemoUnit) -> Expected:
    """The product's names and its producer, as the database holds them."""
    with Session(server.engine) as session:
        row = session.execute(
            select(col(Product.name_vi), col(Product.name_en), col(Organisation.name))
            .join(Lot, col(Lot.product_id) == col(Product.id))
            .join(Organisation, col(Organisation.id) == col(Lot.producer_organisation_id))
            .where(col(Lot.id) == unit.lot_id)
        ).one()
    assert row[1], "the showcase product has an English name in the demo"
    return Expected(product_vi=row[0], product_en=row[1], producer=row[2])


def journey(page: Any, heading: str) -> Any:
    """The list items of the ordered list in the section headed ``heading``."""
    section = page.locator("section").filter(has=page.get_by_role("heading", name=heading, exact=True))
    return section.locator("ol").first.locator(":scope > li")


def test_a_phone_in_vietnamese_sees_the_facts_badge_journey_and_genuine_code(browser: Any, server: Server) -> None:
    # given the demo's unit and what the database says of it
    unit = server.unit()
    facts = expected(server, unit)
    host = urlsplit(server.base).netloc
    with phone(browser) as page:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        # when a phone set to Vietnamese opens the label's URL
        response = page.goto(server.unit_url(unit))
        # then the first response is the page, small enough for a weak network
        assert response is not None and response.status == 200
        assert response.headers["content-type"].startswith("text/html")
        assert len(response.body()) < 50_000, len(response.body())
        assert page.evaluate("document.documentElement.lang") == "vi"
        # the product and its producer
        assert page.get_by_role("heading", level=1).inner_text() == facts.product_vi
        assert page.get_by_text(facts.producer, exact=True).first.is_visible()
        # the geographical indication badge with its registration number
        badge = page.locator(".badge").filter(has_text="Chỉ dẫn địa lý")
        assert badge.count() == 1 and badge.is_visible()
        assert "00055" in badge.inner_text() and "Nhãn lồng Hưng Yên" in badge.inner_text()
        # the certificates held when it was harvested and made: the growers' VietGAP, the maker's OCOP stars
        certificates = page.locator("#certificates")
        assert certificates.get_by_role("heading", name="Chứng nhận còn hiệu lực khi thu hoạch").is_visible()
        listed = certificates.locator("li").all_inner_texts()
        assert any(text.startswith("VietGAP") for text in listed) and any("OCOP 4★" in text for text in listed), listed
        # the journey, harvest before processing
        steps = journey(page, "Hành trình sản phẩm")
        texts = steps.all_inner_texts()
        assert len(texts) >= 3 and steps.first.is_visible()
        harvests = [n for n, text in enumerate(texts) if "Thu hoạch" in text]
        processing = [n for n, text in enumerate(texts) if "Chế biến" in text]
        assert harvests and processing and min(harvests) < min(processing), texts
        # Vietnamese text read back exactly as written (precomposed, NFC), in a UTF-8 document
        assert page.evaluate("document.characterSet") == "UTF-8"
        header = page.locator("header").get_by_text(HEADER_VI, exact=True)
        assert header.is_visible()
        shown = header.inner_text()
        assert shown == unicodedata.normalize("NFC", HEADER_VI) and shown == unicodedata.normalize("NFC", shown)
        # the genuine-code block, and no alert on a lot nobody recalled
        assert page.get_by_role("heading", name="Mã thật do hệ thống cấp").is_visible()
        assert page.get_by_role("alert").count() == 0
        # no horizontal scrolling at 360 px
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        # headings in order, alt text, named controls, WCAG AA contrast
        assert a11y.problems(page) == []
        shot(page, "phone-vi.png")  # full page: lazy images below the fold load too
        # and nothing was fetched from another host
        assert requested and all(urlsplit(url).netloc == host for url in requested), requested


def test_the_english_link_and_an_english_browser_get_the_page_in_english(browser: Any, server: Server) -> None:
    unit = server.unit()
    facts = expected(server, unit)
    with phone(browser) as page:
        # given the page in Vietnamese
        page.goto(server.unit_url(unit))
        assert page.evaluate("document.documentElement.lang") == "vi"
        # when the visitor taps "English"
        with page.expect_navigation():
            page.get_by_role("link", name="English", exact=True).click()
        # then the page is in English, and the URL says so (it can be shared as it is)
        assert parse_qs(urlsplit(page.url).query).get("lang") == ["en"], page.url
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.get_by_role("heading", level=1).inner_text() == facts.product_en
        assert page.get_by_role("heading", name="The journey", exact=True).is_visible()
        assert "Geographical indication" in page.locator(".badge").first.inner_text()
        assert page.get_by_role("alert").count() == 0
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        assert a11y.problems(page) == []
        shot(page, "phone-en.png")
    # and a browser set to English gets English without ?lang
    with phone(browser, locale="en-US", accept_language=None) as page:
        response = page.goto(server.unit_url(unit))
        assert response is not None and response.status == 200
        assert "lang" not in urlsplit(page.url).query
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.get_by_role("heading", name="The journey", exact=True).is_visible()


def test_a_code_that_was_never_issued_gets_the_not_found_page_in_the_visitors_language(
    browser: Any, server: Server
) -> None:
    # given a well-formed serial that no unit of the lot has
    unit = server.unit()
    serial = unit.serial[::-1]
    with Session(server.engine) as session:
        assert (
            session.execute(
                select(func.count())
                .select_from(Unit)
                .where(col(Unit.lot_id) == unit.lot_id, col(Unit.serial) == serial)
            ).scalar_one()
            == 0
        )
    fake = DemoUnit(lot_id=unit.lot_id, unit_id=-1, gtin=unit.gtin, lot_code=unit.lot_code, serial=serial)
    with phone(browser) as page:
        # when it is opened in Vietnamese, then in English
        response = page.goto(server.unit_url(fake))
        assert response is not None and response.status == 404
        assert page.evaluate("document.documentElement.lang") == "vi"
        assert "Không tìm thấy mã" in page.get_by_role("heading", level=1).inner_text()
        assert page.get_by_role("alert").is_visible()
        assert a11y.problems(page) == []
        shot(page, "phone-not-found.png")
        response = page.goto(server.unit_url(fake) + "?lang=en")
        # then both say the code was not found, with HTTP 404
        assert response is not None and response.status == 404
        assert page.evaluate("document.documentElement.lang") == "en"
        assert "Code not found" in page.get_by_role("heading", level=1).inner_text()


def test_sharing_a_location_runs_under_the_pages_strict_policy_and_stores_only_a_coarse_place(
    browser: Any, server: Server
) -> None:
    # given a visitor whose phone knows where it is and who allows the page to ask
    unit = server.unit()
    with phone(
        browser, geolocation={"latitude": 20.64612, "longitude": 106.05113}, permissions=["geolocation"]
    ) as page:
        refused: list[str] = []
        page.on(
            "console",
            lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
        )
        response = page.goto(server.unit_url(unit))
        assert response is not None and "script-src 'sha256-" in response.headers["content-security-policy"]
        # when they press the button (only shown when the page's one script ran: the policy allows it)
        button = page.get_by_role("button", name="Chia sẻ vị trí gần đúng của tôi")
        assert button.is_visible()
        uid = page.locator("#share").get_attribute("data-scan")
        button.click()
        # then the page thanks them and the scan holds an ~11 km cell, nothing finer
        page.get_by_text("Cảm ơn bạn").wait_for(timeout=10_000)
        place = None
        for _ in range(50):  # the scan reaches the database with the buffer's next round
            with Session(server.engine) as session:
                place = session.execute(select(col(Scan.place)).where(col(Scan.uid) == uid)).scalar_one_or_none()
            if place is not None:
                break
            time.sleep(0.1)
        assert place == "20.6,106.1" and refused == []


def test_behind_a_trusted_proxy_each_visitor_counts_as_their_own_network(server: Server) -> None:
    # given another unit of the showcase lot than the page tests use, never scanned
    shown = server.unit()
    with Session(server.engine) as session:
        serial = (
            session.execute(
                select(col(Unit.serial))
                .where(col(Unit.lot_id) == shown.lot_id, col(Unit.id) != shown.unit_id)
                .order_by(col(Unit.id))
            )
            .scalars()
            .first()
        )
    assert serial is not None
    url = server.unit_url(
        DemoUnit(lot_id=shown.lot_id, unit_id=-1, gtin=shown.gtin, lot_code=shown.lot_code, serial=serial)
    )
    # when six visitors on six networks scan it through a reverse proxy on this host (uvicorn believes
    # X-Forwarded-For from FORWARDED_ALLOW_IPS, which the fixture sets to 127.0.0.1), as the phones of
    # many buyers of copied labels would
    with httpx.Client(timeout=10) as client:
        for n in range(6):
            answer = client.get(url, headers={"accept": "application/json", "x-forwarded-for": f"203.0.{100 + n}.7"})
            assert answer.status_code == 200
        # then the code counts six networks, not the proxy's one, and carries the copied-code warning
        seen: dict[str, Any] = {}
        for _ in range(50):  # the buffered scans reach the counts with the next round
            seen = client.get(url, headers={"accept": "application/json", "x-forwarded-for": "198.51.100.9"}).json()[
                "scans"
            ]
            if seen["networks"] >= 6:
                break
            time.sleep(0.1)
    assert seen["networks"] >= 6 and seen["suspicious"] and "many_networks" in seen["reasons"], seen


def test_one_network_scanning_a_code_sixty_times_through_the_proxy_leaves_it_genuine(server: Server) -> None:
    # given a third unit of the showcase lot, never scanned
    shown = server.unit()
    with Session(server.engine) as session:
        serials = (
            session.execute(
                select(col(Unit.serial))
                .where(col(Unit.lot_id) == shown.lot_id, col(Unit.id) != shown.unit_id)
                .order_by(col(Unit.id))
            )
            .scalars()
            .all()
        )
    assert len(serials) >= 2
    url = server.unit_url(
        DemoUnit(lot_id=shown.lot_id, unit_id=-1, gtin=shown.gtin, lot_code=shown.lot_code, serial=serials[1])
    )
    # when one network (phones behind one /24, through the reverse proxy) scans it 60 times, each scan
    # naming another place
    with httpx.Client(timeout=10) as client:
        for n in range(60):
            answer = client.get(
                f"{url}?geo=2{n % 10}.5,10{n % 10}.5",
                headers={"accept": "text/html", "x-forwarded-for": f"198.51.100.{n + 1}"},
            )
            assert answer.status_code == 200
        # then, once the scans are written, the code is one network and one place, and still genuine
        seen: dict[str, Any] = {}
        for _ in range(50):
            seen = client.get(url, headers={"accept": "application/json", "x-forwarded-for": "198.51.100.99"}).json()[
                "scans"
            ]
            if seen["count"] >= 60:
                break
            time.sleep(0.1)
        page = client.get(
            url, headers={"accept": "text/html", "accept-language": "vi", "x-forwarded-for": "198.51.100.9"}
        )
    assert seen["count"] >= 60 and (seen["networks"], seen["places"], seen["suspicious"]) == (1, 1, False), seen
    assert "Mã thật do hệ thống cấp" in page.text and "có thể đã bị sao chép" not in page.text


def test_a_recall_made_through_the_api_shows_a_banner_above_everything_on_the_next_visit(
    browser: Any, server: Server
) -> None:
    unit = server.unit()
    with phone(browser) as page:
        # given the page seen once (and so cached by the server and by the browser), without an alert
        page.goto(server.unit_url(unit))
        assert page.get_by_role("alert").count() == 0
        # when the market inspector signs in and recalls the lot, as the web client would
        inspector = next(email for _, email, _, role in USERS if role == Role.INSPECTOR)
        reason = "Kiểm nghiệm phát hiện nấm mốc vượt ngưỡng (dữ liệu mẫu)"
        with httpx.Client(base_url=server.base, timeout=10) as api:
            login = api.post("/api/v1/auth/token", data={"username": inspector, "password": DEMO_PASSWORD})
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            recalled = api.post(
                f"/api/v1/lots/{unit.lot_id}/recall",
                json={"reason": reason},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert recalled.status_code == 200, recalled.text
        # and the visitor reloads the page
        response = page.reload()
        assert response is not None and response.status == 200
        # then a recall banner is the first thing in <main>, above the product, with the reason
        first = page.locator("main > *").first
        assert first.get_attribute("role") == "alert"
        banner = page.get_by_role("alert")
        assert banner.count() == 1
        text = banner.inner_text()
        assert "ĐÃ THU HỒI" in text and reason in text, text
        # and it is in view without scrolling
        assert page.evaluate("window.scrollY") == 0
        box, title = banner.bounding_box(), page.get_by_role("heading", level=1).bounding_box()
        heading = banner.get_by_role("heading").bounding_box()
        assert box is not None and title is not None and heading is not None
        assert 0 <= box["y"] < box["y"] + box["height"] <= title["y"]
        assert heading["y"] + heading["height"] <= PHONE["height"]
        assert a11y.problems(page) == []  # the red banner's text too
        shot(page, "phone-recalled.png")


def test_every_scan_served_before_a_clean_shutdown_is_written(databases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # given a server of its own whose buffer would not write on its own for an hour: only the
    # shutdown can write what it holds
    with demo_server(databases.new(), tmp_path, HYTRACE_SCAN_FLUSH_SECONDS="3600") as running:
        unit = running.unit()
        before = running.scans(unit.unit_id)
        url = running.unit_url(unit)
        n = 30
        # when the label is opened N times, as pages and as JSON
        with httpx.Client(timeout=10) as http:
            for i in range(n):
                headers = {"Accept": "application/json"} if i % 2 else {"Accept": "text/html"}
                response = http.get(url, headers=headers)
                assert response.status_code == 200, response.text
                assert response.headers["content-type"].startswith(headers["Accept"])
        assert running.scans(unit.unit_id) == before
        # and the server is stopped with SIGTERM right away
        code = running.stop()
        # then it shuts down cleanly (uvicorn re-raises the signal it handled once shutdown is complete,
        # so the exit status is SIGTERM's), having written every scan
        assert code in (0, -signal.SIGTERM), running.tail()
        assert "Application shutdown complete" in running.tail(), running.tail()
        assert running.scans(unit.unit_id) == before + n, running.tail()
