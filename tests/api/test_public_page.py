"""The label URIs as a consumer's phone and a partner's program meet them: content negotiation,
linksets, conditional requests, honest 404s, scans, the copied-code warning and the recall banner."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem
from tests.trace.test_origin import SECRET_KDE, SECRET_NOTE, Chain, build_chain
from trace.certifications import CertificationCreate, CertificationKind, record_certification
from trace.epcis.document import schema_errors
from trace.recalls import recall
from trace.recalls.models import ReasonIn
from trace.scans.models import Scan
from trace.units import display_code

HTML = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "vi-VN,vi;q=0.9",
}
JSON = {"accept": "application/json"}


@pytest.fixture
def chain(session: Session) -> Chain:
    c = build_chain(session)
    session.commit()  # a refused request rolls back to here, not past the data
    return c


def path_of(c: Chain) -> str:
    return f"/01/{c.lot.gtin}/10/{quote(c.lot.lot_code, safe='')}/21/{c.unit.serial}"


def scans(session: Session, c: Chain) -> int:
    return session.execute(select(func.count()).select_from(Scan).where(Scan.unit_id == c.unit.id)).scalar_one()  # type: ignore[arg-type]


def flush(client: TestClient) -> None:
    client.app.state.public.buffer.flush()  # type: ignore[attr-defined]


def test_a_browser_gets_the_vietnamese_page_with_the_facts_and_a_program_gets_them_as_json(
    client: TestClient, chain: Chain
) -> None:
    page = client.get(path_of(chain), headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-language"] == "vi" and '<html lang="vi">' in page.text
    for fact in (
        "Long nhãn sấy",
        chain.proc.name,
        "Chỉ dẫn địa lý",
        "00055",
        "Hành trình sản phẩm",
        "Thu hoạch",
        "Chế biến",
        display_code(chain.unit.code),
        chain.unit.serial,
        "Mã thật do hệ thống cấp",
        "VG-TEST-01",
    ):
        assert fact in page.text, fact
    data = client.get(path_of(chain), headers=JSON)
    assert data.headers["content-type"] == "application/json"
    body = data.json()
    assert (body["valid"], body["serial"], body["code"], body["product_name"]) == (
        True,
        chain.unit.serial,
        display_code(chain.unit.code),
        "Long nhãn sấy",
    )
    assert body["designations"][0]["registration_number"] == "00055"
    assert body["journey"][0]["kind"] == "harvest"
    assert body["scans"]["count"] == 1  # the page view before it


def test_english_by_query_or_by_the_browsers_languages_and_vietnamese_by_default(
    client: TestClient, chain: Chain
) -> None:
    english = client.get(path_of(chain) + "?lang=en", headers=HTML)
    assert (
        english.headers["content-language"] == "en" and "The journey" in english.text and "Dried longan" in english.text
    )
    by_browser = client.get(path_of(chain), headers={"accept-language": "en-GB,en;q=0.8,vi;q=0.5"})
    assert by_browser.headers["content-language"] == "en"
    preferred_vi = client.get(path_of(chain), headers={"accept-language": "fr-FR,vi;q=0.9,en;q=0.8"})
    assert preferred_vi.headers["content-language"] == "vi"
    unknown = client.get(path_of(chain), headers={"accept-language": "fr-FR"})
    assert unknown.headers["content-language"] == "vi" and "Hành trình sản phẩm" in unknown.text


def test_the_linkset_names_our_link_types_by_query_and_by_accept(client: TestClient, chain: Chain) -> None:
    by_query = client.get(path_of(chain) + "?linkType=all")
    by_accept = client.get(path_of(chain), headers={"accept": "application/linkset+json"})
    for answer in (by_query, by_accept):
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/linkset+json"
        (context,) = answer.json()["linkset"]
        assert context["anchor"].endswith(path_of(chain))
        for link_type in ("pip", "traceability", "certificationInfo", "epcis"):
            targets = context[f"https://gs1.org/voc/{link_type}"]
            assert targets and all(t["href"].startswith("http") and t["type"] for t in targets)
        assert context["https://gs1.org/voc/pip"][0]["href"].endswith(f"/01/{chain.lot.gtin}")
    page = client.get(path_of(chain))
    assert 'rel="linkset"' in page.headers["link"]


def test_every_link_in_the_linkset_answers_with_the_type_it_declares(client: TestClient, chain: Chain) -> None:
    (context,) = client.get(path_of(chain) + "?linkType=all").json()["linkset"]
    links = [link for name, targets in context.items() if name != "anchor" for link in targets]
    assert len(links) >= 8
    for link in links:
        path = link["href"].split("://", 1)[1].partition("/")[2]
        answer = client.get("/" + path, headers={"accept": link["type"], "accept-language": "vi"})
        assert answer.status_code == 200, link
        assert answer.headers["content-type"].split(";")[0] == link["type"], link
        if "en" in link.get("hreflang", []):
            assert answer.headers["content-language"] == "en", link


def test_each_link_type_answers(client: TestClient, chain: Chain) -> None:
    pip = client.get(path_of(chain) + "?linkType=gs1:pip", follow_redirects=False)
    assert pip.status_code == 307 and pip.headers["location"].endswith(f"/01/{chain.lot.gtin}")
    product = client.get(f"/01/{chain.lot.gtin}", headers=HTML)
    assert product.status_code == 200 and "Long nhãn sấy" in product.text and chain.proc.name in product.text
    certs = client.get(path_of(chain) + "?linkType=gs1:certificationInfo").json()
    assert (
        certs["designations"][0]["name"] == "Nhãn lồng Hưng Yên" and certs["certificates"][0]["number"] == "VG-TEST-01"
    )
    epcis = client.get(path_of(chain) + "?linkType=gs1:epcis")
    assert epcis.status_code == 200 and epcis.headers["content-type"] == "application/ld+json"
    document = epcis.json()
    assert document["type"] == "EPCISDocument" and schema_errors(document) == []
    # the journey's events, in its order, each with the id /epcis/events knows it by
    steps = client.get(path_of(chain), headers={"accept": "application/json"}).json()["journey"]
    shown = document["epcisBody"]["eventList"]
    assert [e["bizStep"] for e in shown][:1] == ["commissioning"] and len(shown) == len(steps)
    assert all(e["eventID"].startswith("ni:///sha-256;") for e in shown)
    # nobody's private facts (the harvest's note and contract stay with their owner); the farming inputs
    # the producer chose to make public are there, as on the page
    assert SECRET_NOTE not in epcis.text and SECRET_KDE not in epcis.text
    assert "Phân hữu cơ vi sinh" in epcis.text
    other = client.get(path_of(chain) + "?linkType=gs1:recipeInfo", headers=HTML)  # one we do not have: the page
    assert other.status_code == 200 and "Hành trình sản phẩm" in other.text


def test_certificates_are_named_alike_on_the_product_page_and_the_origin_page(
    client: TestClient, session: Session, chain: Chain
) -> None:
    record_certification(
        session=session,
        actor=f.ADMIN,
        data=CertificationCreate(
            organisation_id=chain.proc.id,
            kind=CertificationKind.OCOP,
            stars=4,
            number="OCOP-TEST-4",
            issuer="UBND tỉnh (thử nghiệm)",
            valid_from=date.today() - timedelta(days=30),
            valid_to=date.today() + timedelta(days=300),
        ),
    )
    session.commit()  # a public write: the cached pages are rebuilt
    product = client.get(f"/01/{chain.lot.gtin}", headers=HTML)
    assert "<strong>OCOP 4★</strong> số OCOP-TEST-4" in product.text
    origin_page = client.get(path_of(chain), headers=HTML)
    assert "<strong>VietGAP</strong> số VG-TEST-01" in origin_page.text


def test_the_resolver_describes_itself() -> None:
    from api.main import create_app

    answer = TestClient(create_app(testing=True)).get("/.well-known/gs1resolver")
    body = answer.json()
    assert (
        body["supportedPrimaryKeys"] == ["01"]
        and "gs1:pip" in body["linkTypes"]
        and body["resolverRoot"].startswith("http")
    )


def test_a_repeat_visit_gets_304_and_still_counts_as_a_scan_but_a_recall_changes_the_page(
    client: TestClient, session: Session, chain: Chain
) -> None:
    first = client.get(path_of(chain), headers=HTML)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache" and etag.startswith('W/"')
    again = client.get(path_of(chain), headers={**HTML, "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    flush(client)
    assert scans(session, chain) == 2
    # when the harvest the dried lot came from is recalled
    recall.recall(
        session=session,
        actor=f.member(chain.coop),
        lot_id=chain.harvest.id,  # type: ignore[arg-type]
        data=ReasonIn(reason="Dư lượng thuốc BVTV vượt ngưỡng"),
    )
    session.commit()
    after = client.get(path_of(chain), headers={**HTML, "if-none-match": etag})
    # then the cached copy is not confirmed: the new page leads with the recall
    assert after.status_code == 200 and after.headers["etag"] != etag
    main = after.text.split('<main id="main">', 1)[1]
    assert main.lstrip().startswith('<section class="alert" role="alert"')
    assert "ĐÃ THU HỒI" in main and "Dư lượng thuốc BVTV vượt ngưỡng" in main and "NL-TEST-1" in main


def test_every_scan_is_counted_and_the_page_tells_how_often_and_since_when(
    client: TestClient, session: Session, chain: Chain
) -> None:
    assert "Đây là lần quét đầu tiên" in client.get(path_of(chain), headers=HTML).text
    for _ in range(3):
        client.get(path_of(chain), headers=JSON)
    assert "Đã được quét 4 lần trước đây" in client.get(path_of(chain), headers=HTML).text
    client.head(path_of(chain))  # a HEAD is not a scan
    flush(client)
    assert scans(session, chain) == 5
    rows = session.execute(select(Scan).where(Scan.unit_id == chain.unit.id)).scalars().all()  # type: ignore[arg-type]
    assert {r.kind for r in rows} == {"page", "json"} and {r.lang for r in rows} == {"vi"}
    assert all(re.fullmatch(r"[0-9a-f]{16}", r.network) for r in rows)  # a salted hash, never the address


def test_a_code_scanned_from_many_networks_carries_a_warning(
    client: TestClient, session: Session, chain: Chain
) -> None:
    from trace.scans.record import new_scan, write

    # given the same code scanned from many networks (a genuine code copied onto many packages)
    write(
        session=session,
        scans=[
            new_scan(
                lot_id=chain.lot.id,
                unit_id=chain.unit.id,
                client_ip=f"10.{i}.1.1",  # type: ignore[arg-type]
                user_agent="Mozilla/5.0 (Linux; Android 14)",
                lang="vi",
                kind="page",
            )
            for i in range(8)
        ],
    )
    session.commit()
    # when someone opens it
    page = client.get(path_of(chain), headers=HTML)
    # then the page warns, and says why
    assert "Cảnh báo: mã này có thể đã bị sao chép" in page.text and "từ 8 mạng" in page.text
    assert client.get(path_of(chain), headers=JSON).json()["scans"]["suspicious"] is True


def _from(client: TestClient, ip: str) -> TestClient:
    """The same application, as a visitor on another network."""
    return TestClient(client.app, client=(ip, 40000))


def test_one_network_scanning_a_code_many_times_never_makes_it_look_copied(
    client: TestClient, session: Session, chain: Chain
) -> None:
    from tests.api.helpers import headers_for
    from trace.access import Role

    # given a genuine code scanned far more often than the old warning's 50 scans, anonymously, all
    # from one network, each scan naming another place and offering the share button a place too
    visitor = _from(client, "198.51.100.23")
    times = 60
    for i in range(times):
        page = visitor.get(path_of(chain) + f"?geo=2{i % 10}.5,10{i % 10}.5", headers=HTML)
        assert page.status_code == 200
        if i % 7 == 0:
            visitor.post(f"/api/v1/scans/{_scan_uid(page.text)}/place", json={"lat": 10 + i % 10, "lon": 106})
        if i % 20 == 0:
            flush(client)
    # then the consumer page still says genuine, counted in this process and read back from the database
    for fresh in (False, True):
        if fresh:
            flush(client)
            client.app.state.public.entries.clear()  # type: ignore[attr-defined]
        page = visitor.get(path_of(chain), headers=HTML)
        assert "Mã thật do hệ thống cấp" in page.text and "Cảnh báo: mã này có thể đã bị sao chép" not in page.text
        seen = visitor.get(path_of(chain), headers=JSON).json()["scans"]
        assert (seen["suspicious"], seen["reasons"], seen["networks"], seen["places"]) == (False, [], 1, 1), seen
        assert seen["count"] > times
    # and so does the inspector's verdict
    session.commit()
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    session.commit()
    body = client.get("/api/v1/inspector/verify", params={"code": chain.unit.code}, headers=inspector).json()
    check = next(c for c in body["checks"] if c["name"] == "scan_pattern")
    assert (body["verdict"], check["outcome"], check["evidence"]["networks"], check["evidence"]["places"]) == (
        "genuine_and_compliant",
        "pass",
        1,
        1,
    ), body


def test_places_shared_from_new_networks_count_and_from_a_known_network_do_not(
    client: TestClient, chain: Chain
) -> None:
    from trace.platform.config import get_settings

    warn = get_settings().scan_warn_places
    # given a code scanned from one network, that then names many places
    home = _from(client, "198.51.100.23")
    home.get(path_of(chain), headers=HTML)
    for i in range(warn + 2):
        home.get(path_of(chain) + f"?geo=2{i}.5,106.5", headers=HTML)
    assert home.get(path_of(chain), headers=JSON).json()["scans"]["places"] == 0
    # when new networks each share a place on their first scan
    for i in range(warn):
        _from(client, f"203.0.{113 + i}.9").get(path_of(chain) + f"?geo=1{i}.5,105.5", headers=HTML)
    # then those count, the code carries the warning for them, and still after a read of the database
    for fresh in (False, True):
        if fresh:
            flush(client)
            client.app.state.public.entries.clear()  # type: ignore[attr-defined]
        seen = home.get(path_of(chain), headers=JSON).json()["scans"]
        assert (seen["networks"], seen["places"], seen["suspicious"]) == (1 + warn, warn, True), seen
        assert "many_places" in seen["reasons"]
        assert "Cảnh báo: mã này có thể đã bị sao chép" in home.get(path_of(chain), headers=HTML).text


def test_a_lot_code_scanned_from_many_networks_is_not_called_copied(client: TestClient, chain: Chain) -> None:
    # given a lot label (printed on every package of the lot) scanned by many households
    lot_path = f"/01/{chain.lot.gtin}/10/{quote(chain.lot.lot_code, safe='')}"
    for i in range(8):
        assert _from(client, f"10.{i}.1.1").get(lot_path, headers=HTML).status_code == 200
    # then it is counted, not judged, as the inspector's check does
    seen = client.get(lot_path, headers=JSON).json()["scans"]
    assert (seen["networks"], seen["suspicious"]) == (8, False)
    assert "Cảnh báo: mã này có thể đã bị sao chép" not in client.get(lot_path, headers=HTML).text


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/01/09521234000006/10/NOPE/21/NOPE", "not_genuine"),
        ("/01/09521234000007/10/L1", "dl_bad_gtin"),
        ("/01/09521234000006/21/X/10/L1", "dl_order"),
        ("/01/abc", "dl_bad_gtin"),
        ("/01/09521234000006/99/X", "dl_unknown_ai"),
    ],
)
def test_unknown_or_malformed_codes_get_an_honest_404_page_in_the_visitors_language(
    client: TestClient, path: str, code: str
) -> None:
    vi = client.get(path, headers=HTML)
    assert vi.status_code == 404 and "Không tìm thấy mã" in vi.text and vi.headers["content-language"] == "vi"
    en = client.get(path + ("&" if "?" in path else "?") + "lang=en", headers=HTML)
    assert en.status_code == 404 and "Code not found" in en.text
    assert_problem(client.get(path, headers=JSON), 404 if code == "not_genuine" else 422, code)


@pytest.mark.parametrize(
    "path",
    [
        "/01/09521234000006/10/%00%FF",
        "/01/09521234000006/10/L1/21/" + "x" * 5000,
        "/01/" + "9" * 3000,
        "/01/09521234000006/10/%3Cscript%3E",
    ],
)
def test_a_refused_path_is_not_echoed_back_whole_nor_raw(client: TestClient, path: str) -> None:
    page = client.get(path, headers=HTML)
    assert page.status_code == 404 and "Không tìm thấy mã" in page.text
    assert len(page.content) < 6_000  # the page, not the path three times over
    assert "\x00" not in page.text and "<script>" not in page.text
    assert 'href="?lang=en"' in page.text  # the language links keep the visitor on the path they sent
    problem = client.get(path, headers=JSON)
    assert problem.status_code in (404, 422) and len(problem.json()["detail"]) < 200


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segments=st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=7),
    accept=st.sampled_from([HTML["accept"], "application/json", "application/linkset+json", "*/*", "x/y;q=oops"]),
)
def test_no_path_under_01_gives_a_server_error(client: TestClient, segments: list[str], accept: str) -> None:
    path = "/01/" + "/".join(quote(s, safe="") for s in segments)
    answer = client.get(path, headers={"accept": accept, "accept-language": "vi;q=x, en"})
    assert answer.status_code in (200, 307, 404, 422), (path, answer.status_code, answer.text[:300])


def test_the_first_response_is_small_and_names_no_other_host(client: TestClient, chain: Chain) -> None:
    page = client.get(path_of(chain), headers=HTML)
    assert len(page.content) < 50_000
    assert "<script src" not in page.text and "@import" not in page.text
    hosts = set(re.findall(r'(?:src|href)="(https?://[^/"]+)', page.text))
    assert hosts <= {"http://testserver", "http://127.0.0.1:8000"}, hosts
    assert re.search(r"<h1>[^<]+</h1>", page.text) and page.text.count("<h2>") >= 3


def test_public_label_paths_are_rate_limited_per_client(
    monkeypatch: pytest.MonkeyPatch, session: Session, chain: Chain
) -> None:
    from api.main import create_app
    from trace.platform.config import get_settings

    monkeypatch.setenv("HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE", "5")
    get_settings.cache_clear()
    app = create_app(testing=True)
    from contextlib import nullcontext

    from api.public import PublicPages

    app.state.public = PublicPages(lambda: nullcontext(session), None)
    with TestClient(app) as limited:
        codes = [limited.get(path_of(chain), headers=HTML).status_code for _ in range(8)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3


def _scan_uid(page: str) -> str:
    found = re.search(r'data-scan="([0-9a-f]{32})"', page)
    assert found, "the page offers no location button"
    return found.group(1)


def test_a_visitor_may_add_a_coarse_place_to_their_own_scan_once(
    client: TestClient, session: Session, chain: Chain
) -> None:
    # given a scan still waiting in the buffer, and another already written
    waiting = _scan_uid(client.get(path_of(chain), headers=HTML).text)
    written = _scan_uid(client.get(path_of(chain), headers=HTML).text)
    flush(client)
    third = _scan_uid(client.get(path_of(chain), headers=HTML).text)
    # when each visitor shares where they are (the phone rounds; the server rounds again)
    for uid, (lat, lon) in ((waiting, (20.6461, 106.0511)), (written, (21.0278, 105.8342)), (third, (20.64, 106.05))):
        assert client.post(f"/api/v1/scans/{uid}/place", json={"lat": lat, "lon": lon}).status_code == 204
    flush(client)
    # then each scan has its ~11 km cell and nothing finer; a second share of the same scan is refused
    places = dict(session.execute(select(Scan.uid, Scan.place).where(Scan.unit_id == chain.unit.id)).all())  # type: ignore[arg-type, call-overload]
    assert places == {waiting: "20.6,106.1", written: "21.0,105.8", third: "20.6,106.0"}
    assert_problem(client.post(f"/api/v1/scans/{written}/place", json={"lat": 1, "lon": 1}), 404, "scan_not_found")
    assert_problem(client.post(f"/api/v1/scans/{'0' * 32}/place", json={"lat": 1, "lon": 1}), 404, "scan_not_found")
    assert client.post(f"/api/v1/scans/{third}/place", json={"lat": 91, "lon": 1}).status_code == 422
    assert client.post("/api/v1/scans/not-an-id/place", json={"lat": 1, "lon": 1}).status_code == 422
    # and the place of the network's first scan counts in the copied-code check, not the other two (the
    # same network naming other places is one visitor, or one forger)
    assert client.get(path_of(chain), headers=JSON).json()["scans"]["places"] == 1


def test_a_failed_refresh_of_the_counts_keeps_the_page_serving(client: TestClient, chain: Chain) -> None:
    import asyncio
    import time as clock

    from api.public import STATS_SECONDS, PublicPages

    public: PublicPages = client.app.state.public  # type: ignore[attr-defined]
    assert client.get(path_of(chain), headers=JSON).json()["scans"]["count"] == 0
    entry = next(iter(public.entries.values()))
    before = entry.stats

    def broken() -> object:
        raise RuntimeError("database away")

    public.sessions = broken  # type: ignore[assignment]
    entry.stats_at = clock.monotonic() - STATS_SECONDS - 1
    asyncio.run(public._refresh(entry))  # logs, does not raise
    assert entry.refreshing is False and entry.stats is before


@pytest.mark.parametrize("inline", [False, True], ids=["in a thread", "on the event loop"])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_a_units_page_made_from_its_labellings_shared_page_is_the_page_rendered_for_it(
    client: TestClient, chain: Chain, session: Session, lang: str, inline: bool
) -> None:
    # given the four units of one print run: the first page seen builds the labelling's shared page
    from api import pages
    from trace import origin
    from trace.units import Unit

    made = session.execute(
        select(Unit).where(Unit.created_event_id == chain.unit.created_event_id).order_by(Unit.id)  # type: ignore[arg-type]
    ).scalars()
    units = list(made)
    assert len(units) == 4
    public = client.app.state.public  # type: ignore[attr-defined]
    public.inline = inline
    for unit in units:
        path = f"/01/{chain.lot.gtin}/10/{quote(chain.lot.lot_code, safe='')}/21/{unit.serial}"
        # when each is asked for, as a page and as JSON
        answer = client.get(path + f"?lang={lang}", headers=HTML)
        assert answer.status_code == 200
        as_json = client.get(path, headers=JSON)
        # then it was made from the shared page, and it is what a full rendering for that unit gives
        entry = public.entries[(chain.lot.gtin, chain.lot.lot_code, unit.serial)]
        assert entry.shared is not None
        facts = origin.build(session=session, lot=chain.lot, unit=unit)
        assert entry.facts == facts and entry.facts.version == facts.version
        full = pages.render("public/origin.html", lang, o=facts, path=path, home="/")
        before, _, after = full.partition("<!--genuine-->")
        assert answer.text.startswith(before) and answer.text.endswith(after)
        assert display_code(unit.code) in answer.text and unit.serial in answer.text
        # the JSON made from the shared facts' JSON is the unit's facts as pydantic writes them
        body = as_json.json()
        assert body.pop("scans")["count"] == 1  # the page view before it
        assert body == json.loads(facts.model_dump_json())
    assert len(public.shared) == 1  # one labelling: one shared page for its four units


@pytest.mark.parametrize("inline", [False, True], ids=["in a thread", "on the event loop"])
def test_a_page_built_again_from_the_shared_page_counts_written_and_pending_scans_once(
    client: TestClient, chain: Chain, session: Session, inline: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a unit scanned three times (two written, one still in the buffer) and its page dropped
    public = client.app.state.public  # type: ignore[attr-defined]
    public.inline = inline
    for _ in range(2):
        client.get(path_of(chain), headers=JSON)
    flush(client)
    client.get(path_of(chain), headers=JSON)
    assert scans(session, chain) == 2 and len(public.buffer.pending(unit_id=chain.unit.id)) == 1
    public.entries.clear()
    # (a unit that does not exist is still refused with its reason)
    missing = client.get(path_of(chain)[:-1] + "Q", headers=JSON)
    assert missing.status_code == 404 and "Serial" in missing.json()["detail"]

    def full_build(*_args: object) -> None:
        raise AssertionError("the unit's page was built in full, not from its labelling's shared page")

    monkeypatch.setattr(public, "_facts", full_build)
    # when it is asked for again (its labelling's shared page still kept)
    seen = client.get(path_of(chain), headers=JSON).json()["scans"]
    # then every earlier scan counts once, the first one's time included
    assert seen["count"] == 3 and seen["networks"] == 1 and seen["first_at"] is not None
    entry = public.entries[(chain.lot.gtin, chain.lot.lot_code, chain.unit.serial)]
    assert entry.shared is not None


def test_a_units_first_look_is_read_once_and_a_dropped_connection_is_read_again(
    client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from trace import verification

    public = client.app.state.public  # type: ignore[attr-defined]
    public.inline = True
    looks: list[str] = []
    real = verification.first_look
    dropped = {"left": 0}

    def counted(**kwargs: object) -> object:
        looks.append(kwargs["link"].serial)  # type: ignore[attr-defined]
        if dropped["left"]:
            dropped["left"] -= 1
            raise OperationalError("SELECT", {}, Exception("server closed the connection"), connection_invalidated=True)
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(verification, "first_look", counted)
    # the first unit of a labelling: tried quick on the event loop (no shared page yet), then built in full,
    # without a second quick try in the worker thread
    assert client.get(path_of(chain), headers=JSON).status_code == 200
    assert looks == [chain.unit.serial]
    # its page again (the shared page kept now), its read meeting a connection the database dropped: read
    # again, once
    public.entries.clear()
    looks.clear()
    dropped["left"] = 1
    assert client.get(path_of(chain), headers=JSON).status_code == 200
    assert looks == [chain.unit.serial, chain.unit.serial]
    # dropped again on the second try: the API's answer for a database away (503, retryable), not a 500
    public.entries.clear()
    looks.clear()
    dropped["left"] = 2
    answer = client.get(path_of(chain), headers=JSON)
    assert answer.status_code == 503 and answer.json()["code"] == "database_unavailable"
    assert len(looks) == 2


def test_a_voided_units_page_is_rendered_for_it_alone(client: TestClient, chain: Chain, session: Session) -> None:
    from trace.units import Unit, UnitStatus

    others = session.execute(
        select(Unit).where(Unit.created_event_id == chain.unit.created_event_id, Unit.id != chain.unit.id)  # type: ignore[arg-type]
    ).scalars()
    void = next(iter(others))
    void.status = UnitStatus.VOID
    session.add(void)
    session.commit()
    assert client.get(path_of(chain), headers=HTML).status_code == 200  # the shared page exists
    path = f"/01/{chain.lot.gtin}/10/{quote(chain.lot.lot_code, safe='')}/21/{void.serial}"
    page = client.get(path, headers=HTML)
    assert page.status_code == 200
    entry = client.app.state.public.entries[(chain.lot.gtin, chain.lot.lot_code, void.serial)]  # type: ignore[attr-defined]
    assert entry.shared is None and entry.facts.status == "void" and entry.facts.alert.kind == "void"


def test_past_the_networks_kept_the_page_says_at_least(client: TestClient, chain: Chain) -> None:
    from api.public import Entry
    from trace.scans.record import SOURCES_KEPT, ScanStats

    assert client.get(path_of(chain), headers=HTML).status_code == 200
    public = client.app.state.public  # type: ignore[attr-defined]
    entry: Entry = public.entries[(chain.lot.gtin, chain.lot.lot_code, chain.unit.serial)]
    # given figures at the bound of what is kept of a code's networks (a code copied far and wide)
    entry.stats = ScanStats(
        count=5000, first_at=None, last_at=None, networks=SOURCES_KEPT, places=0, suspicious=True, reasons=[]
    )
    page = public.html(entry, "en", entry.seen(), path_of(chain)).decode()
    assert f"from {SOURCES_KEPT}+ different networks" in page
    entry.stats = ScanStats(count=50, first_at=None, last_at=None, networks=7, places=0, suspicious=True, reasons=[])
    assert "from 7 different networks" in public.html(entry, "en", entry.seen(), path_of(chain)).decode()


def test_a_page_dropped_from_the_cache_is_freed_without_the_cycle_collector(client: TestClient, chain: Chain) -> None:
    # The app runs full collections rarely (api.main.FULL_COLLECTION_EVERY): that is only safe while what
    # the page cache keeps holds no reference cycles, so a page it drops is freed at once.
    import gc
    import weakref

    public = client.app.state.public  # type: ignore[attr-defined]
    for headers in (HTML, JSON, {"accept-language": "en"}):
        assert client.get(path_of(chain), headers=headers).status_code == 200
    assert client.get(f"/01/{chain.lot.gtin}/10/{quote(chain.lot.lot_code, safe='')}", headers=HTML).status_code == 200
    assert client.get(f"/01/{chain.lot.gtin}/10/NO-SUCH/21/NOSUCH", headers=HTML).status_code == 404
    entries = list(public.entries.values())
    assert len(entries) == 3 and all(e.html or e.missing for e in entries)
    kept = [weakref.ref(e) for e in entries] + [weakref.ref(e.facts) for e in entries if e.facts is not None]
    gc.collect()  # a render's own garbage (Jinja's contexts are cycles, young ones) is not the cache's
    gc.disable()
    try:
        del entries
        public.entries.clear()
        assert [ref() for ref in kept] == [None] * len(kept)
    finally:
        gc.enable()
