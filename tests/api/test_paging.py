"""Key (cursor) paging on every list of the API: walking the ``Link: rel="next"`` chain yields every row the
reader may see exactly once, none it may not, even when rows are added between pages; a forged or broken
cursor is a 422 with a reason; the legacy ``offset`` still works and the parameters are in the OpenAPI."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, party
from trace.access import Role
from trace.certifications import Certification, CertificationKind
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import HarvestIn
from trace.recalls.models import ReasonIn
from trace.recalls.recall import recall

API = "/api/v1"
LIMIT = 2  # small pages: many page boundaries over a few rows


def walk(client: TestClient, path: str, headers: dict[str, str] | None = None, **params: Any) -> list[list[Any]]:
    """Every page of a list, following its ``Link: rel="next"`` header; each page as its JSON rows."""
    pages: list[list[Any]] = []
    url: str | None = f"{API}{path}"
    query: dict[str, Any] | None = {"limit": LIMIT, **params}
    while url is not None:
        response = client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        link = response.headers.get("link")
        if link is None:
            assert "next-cursor" not in response.headers
            url = None
        else:
            assert link.endswith('>; rel="next"') and link.startswith("<"), link
            url, query = link[1:-13], None
            assert f"cursor={response.headers['next-cursor']}" in url
            assert "offset=" not in url
        assert len(pages) < 200, "the pages never end"
    return pages


def keys(pages: list[list[Any]], key: Callable[[Any], Any] = lambda x: x["id"]) -> list[Any]:
    return [key(x) for p in pages for x in p]


def once(found: list[Any]) -> set[Any]:
    assert len(found) == len(set(found)), f"a row came twice: {found}"
    return set(found)


# --------------------------------------------------------------------------- lots, events, recalls


@dataclass
class Two:
    """Two producers with lots, events and recalls of their own."""

    mine: Any
    mine_h: dict[str, str]
    theirs: Any
    theirs_h: dict[str, str]
    my_lots: list[int]
    their_lots: list[int]


def _two(session: Session, n: int = 5) -> Two:
    mine, mine_h = party(session)
    theirs, theirs_h = party(session)
    prod, loc = f.product(session, mine), f.location(session, mine)
    my_lots = [f.harvest(session, mine, prod=prod, loc=loc, days_ago=9 - i).lot_ids[0] for i in range(n)]
    their_lots = [f.harvest(session, theirs, days_ago=9 - i).lot_ids[0] for i in range(n)]
    return Two(mine, mine_h, theirs, theirs_h, my_lots, their_lots)


def test_lots_walk_every_own_lot_once_and_none_of_another_organisation(client: TestClient, session: Session) -> None:
    two = _two(session)
    # given a walk started, rows are added (by both) between its pages
    first = client.get(f"{API}/lots", params={"limit": LIMIT}, headers=two.mine_h)
    added = [f.harvest(session, two.mine, days_ago=1).lot_ids[0], f.harvest(session, two.theirs).lot_ids[0]]
    rest = walk_from(client, first, two.mine_h)

    found = once(keys([first.json(), *rest]))
    assert set(two.my_lots) <= found
    assert not found & {*two.their_lots, added[1]}
    assert keys([first.json(), *rest]) == sorted(found, reverse=True)  # newest first, as before


def walk_from(client: TestClient, response: Any, headers: dict[str, str]) -> list[list[Any]]:
    """The pages after ``response``, following its Link."""
    link = response.headers["link"]
    url = link[1 : link.index(">")]
    return walk(client, url.split(API, 1)[1].split("?", 1)[0], headers, **dict(_query(url)))


def _query(url: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    return [(k, v) for k, v in parse_qsl(urlsplit(url).query) if k != "limit"]


def test_lots_filters_hold_on_every_page(client: TestClient, session: Session) -> None:
    two = _two(session)
    product = f.product(session, two.mine)
    wanted = [f.harvest(session, two.mine, prod=product).lot_ids[0] for _ in range(3)]
    pages = walk(client, "/lots", two.mine_h, product_id=product.id)
    assert len(pages) == 2
    assert once(keys(pages)) == set(wanted)


def test_events_walk_once_even_with_events_of_the_same_instant(client: TestClient, session: Session) -> None:
    two = _two(session, n=2)
    # five harvests at one instant: the id breaks the tie, so no page boundary loses or repeats one
    moment = f.when(3)
    prod, loc = f.product(session, two.mine), f.location(session, two.mine)
    items = [
        (
            EventType.HARVEST,
            HarvestIn(
                product_id=prod.id,  # type: ignore[arg-type]
                lot_code=f"SAME{i}",
                quantity=Decimal(10),
                location_id=loc.id,  # type: ignore[arg-type]
                event_time=moment,
            ),
        )
        for i in range(5)
    ]
    same = capture(session=session, actor=f.member(two.mine), items=items).event_ids  # type: ignore[arg-type]
    first = client.get(f"{API}/events", params={"limit": LIMIT}, headers=two.mine_h)
    f.harvest(session, two.mine, days_ago=0.5)  # a newer event, between pages
    theirs = f.harvest(session, two.theirs, days_ago=3).event_ids
    pages = [first.json(), *walk_from(client, first, two.mine_h)]

    found = once(keys(pages))
    mine = client.get(f"{API}/events", params={"limit": 500}, headers=two.mine_h).json()
    assert set(same) <= found
    assert found <= {e["id"] for e in mine}
    assert not found & set(theirs)
    assert all(e["organisation_id"] == two.mine.id for p in pages for e in p)
    times = [e["event_time"] for p in pages for e in p]
    assert times == sorted(times, reverse=True)


def test_recalls_walk_own_recalls_once(client: TestClient, session: Session) -> None:
    two = _two(session)
    reason = ReasonIn(reason="Dư lượng thuốc bảo vệ thực vật")
    mine = [recall(session=session, actor=f.member(two.mine), lot_id=x, data=reason).id for x in two.my_lots]
    theirs = [recall(session=session, actor=f.member(two.theirs), lot_id=x, data=reason).id for x in two.their_lots]
    pages = walk(client, "/recalls", two.mine_h)
    assert once(keys(pages)) == set(mine)
    assert not set(keys(pages)) & set(theirs)


def test_recalls_affecting_me_walk_every_recall_and_lot_once(client: TestClient, session: Session) -> None:
    two = _two(session)
    reason = ReasonIn(reason="Nhiễm khuẩn")
    for x in two.my_lots:
        recall(session=session, actor=f.member(two.mine), lot_id=x, data=reason)
    for x in two.their_lots:
        recall(session=session, actor=f.member(two.theirs), lot_id=x, data=reason)
    pages = walk(client, "/recalls/affecting-me", two.mine_h)
    assert once(keys(pages, lambda x: (x["recall_id"], x["lot_id"]))) == {
        (r["recall_id"], r["lot_id"])
        for r in client.get(f"{API}/recalls/affecting-me", params={"limit": 500}, headers=two.mine_h).json()
    }
    assert {x["lot_id"] for p in pages for x in p} == set(two.my_lots)


# --------------------------------------------------------------------------- the directory and catalogue


def test_organisations_walk_once_and_never_an_inactive_one(client: TestClient, session: Session) -> None:
    _, headers = party(session)
    orgs = [f.org(session) for _ in range(4)]
    gone = f.org(session)
    gone.active = False
    session.flush()
    pages = walk(client, "/organisations", headers)
    found = once(keys(pages))
    assert {o.id for o in orgs} <= found
    assert gone.id not in found


def test_organisations_name_search_keeps_households_hidden_on_every_page(client: TestClient, session: Session) -> None:
    _, headers = party(session, "processor")
    coops = [f.org(session, name=f"Nhãn Phố Hiến {i}") for i in range(3)]
    households = [f.org(session, "farm", name=f"Nhãn Phố Hiến hộ {i}") for i in range(3)]
    found = once(keys(walk(client, "/organisations", headers, q="Phố Hiến")))
    assert found == {o.id for o in coops}
    assert not found & {o.id for o in households}


def test_certifications_walk_once_and_keep_documents_private(client: TestClient, session: Session) -> None:
    coop, coop_h = party(session)
    other_h = headers_for(session, f.org(session))
    for i in range(5):
        session.add(
            Certification(
                kind=CertificationKind.VIETGAP,
                number=f"VG-{i}",
                issuer="Trung tâm chứng nhận",
                organisation_id=coop.id,
                valid_from=date.today(),
                valid_to=date.today() + timedelta(days=365),
                document_url="https://example.org/cert.pdf",  # type: ignore[arg-type]
            )
        )
    session.flush()
    theirs = walk(client, "/certifications", other_h, organisation_id=coop.id)
    own = walk(client, "/certifications", coop_h, organisation_id=coop.id)
    assert len(once(keys(theirs))) == 5 and set(keys(theirs)) == set(keys(own))
    assert all(c["document_url"] is None for p in theirs for c in p)
    assert all(c["document_url"] for p in own for c in p)


def test_locations_and_products_walk_one_organisation_s_catalogue_once(client: TestClient, session: Session) -> None:
    coop, headers = party(session)
    other = f.org(session)
    places = [f.location(session, coop).id for _ in range(3)]
    goods = [f.product(session, coop).id for _ in range(3)]
    f.location(session, other), f.product(session, other)
    assert once(keys(walk(client, "/locations", headers, organisation_id=coop.id))) == set(places)
    assert once(keys(walk(client, "/products", headers, organisation_id=coop.id))) == set(goods)


def test_designations_walk_the_registry_once_without_login(client: TestClient, session: Session) -> None:
    holder = f.org(session, "designation_holder")
    marks = [f.designation(session, holder, name_vi=f"Nhãn thử {i}").id for i in range(5)]
    retired = f.designation(session, holder, name_vi="Nhãn đã thôi")
    retired.active = False
    session.flush()
    found = once(keys(walk(client, "/designations", None, holder_organisation_id=holder.id, active=True)))
    assert found == set(marks)


# --------------------------------------------------------------------------- hostile cursors


def _cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/lots", "not a cursor!"),
        ("/lots", "%%%%"),
        ("/lots", base64.urlsafe_b64encode(b"\xff\xfe").decode()),
        ("/lots", _cursor("events", "2026-01-01T00:00:00+00:00", "x")),  # another list's
        ("/lots", _cursor("lots", "7")),  # a string for an id
        ("/lots", _cursor("lots", True)),
        ("/lots", _cursor("lots", 10**30)),
        ("/lots", _cursor("lots", 1, 2)),
        ("/lots", _cursor({"lots": 1})),
        ("/events", _cursor("events", "yesterday", "x")),
        ("/events", _cursor("events", "2026-01-01T00:00:00", "x")),  # no zone
        ("/events", _cursor("events", "2026-01-01T00:00:00+00:00", 5)),
        ("/recalls", _cursor("lots", 5)),
        ("/recalls/affecting-me", _cursor("affecting", 1, 0)),
        ("/organisations", _cursor("organisations", None)),
        ("/certifications", _cursor("certifications", [1])),
        ("/locations", _cursor("products", 1)),
        ("/products", _cursor("locations", 1)),
        ("/designations", _cursor("designations", 1.5)),
    ],
)
def test_a_forged_or_broken_cursor_is_refused_with_a_reason(
    client: TestClient, session: Session, path: str, cursor: str
) -> None:
    _, headers = party(session)
    body = assert_problem(client.get(f"{API}{path}", params={"cursor": cursor}, headers=headers), 422, "bad_cursor")
    assert body["reason"]


def test_a_cursor_and_an_offset_together_are_refused_and_a_huge_cursor_too(
    client: TestClient, session: Session
) -> None:
    _, headers = party(session)
    session.commit()  # a refused request rolls back what the test had not committed
    both = client.get(f"{API}/lots", params={"cursor": _cursor("lots", 5), "offset": 3}, headers=headers)
    assert_problem(both, 422, "bad_cursor")
    assert_problem(client.get(f"{API}/lots", params={"cursor": "A" * 5000}, headers=headers), 422)


def test_a_cursor_naming_another_organisation_s_lot_shows_only_own_lots(client: TestClient, session: Session) -> None:
    two = _two(session)
    # the cursor is a position, not a permission: starting "after" their newest lot shows only mine
    start = _cursor("lots", max(two.their_lots) + 1)
    found = once(keys(walk(client, "/lots", two.mine_h, cursor=start)))
    assert found == set(two.my_lots)


def test_the_legacy_offset_still_pages_and_points_to_the_cursor_after_it(client: TestClient, session: Session) -> None:
    two = _two(session)
    by_offset = client.get(f"{API}/lots", params={"limit": LIMIT, "offset": 2}, headers=two.mine_h)
    assert keys([by_offset.json()]) == sorted(two.my_lots, reverse=True)[2:4]
    rest = walk_from(client, by_offset, two.mine_h)
    assert keys(rest) == sorted(two.my_lots, reverse=True)[4:]


def test_the_last_page_has_no_next_link(client: TestClient, session: Session) -> None:
    two = _two(session, n=2)
    response = client.get(f"{API}/lots", params={"limit": 2}, headers=two.mine_h)
    assert len(response.json()) == 2
    assert "link" not in response.headers


# --------------------------------------------------------------------------- the OpenAPI document

PAGED = [
    "/lots",
    "/events",
    "/recalls",
    "/recalls/affecting-me",
    "/organisations",
    "/certifications",
    "/locations",
    "/products",
    "/designations",
    "/webhooks/{subscription_id}/deliveries",
]


@pytest.mark.parametrize("path", PAGED)
def test_every_list_documents_cursor_deprecated_offset_and_next_headers(client: TestClient, path: str) -> None:
    operation = client.get("/openapi.json").json()["paths"][f"{API}{path}"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["cursor"]["in"] == "query" and params["cursor"]["schema"]["anyOf"][0]["maxLength"] == 512
    if path != "/webhooks/{subscription_id}/deliveries":  # it never had an offset
        assert params["offset"].get("deprecated") is True
    headers = operation["responses"]["200"]["headers"]
    assert {"Link", "Next-Cursor"} <= set(headers)


def test_every_list_with_a_limit_pages_by_cursor(client: TestClient) -> None:
    # A new list endpoint with a limit but no cursor would page by offset only: this fails until it has one.
    paths = client.get("/openapi.json").json()["paths"]
    limited = {
        p.removeprefix(API)
        for p, ops in paths.items()
        if "get" in ops and any(x["name"] == "limit" for x in ops["get"].get("parameters", []))
    }
    without = {p for p in limited if not any(x["name"] == "cursor" for x in paths[f"{API}{p}"]["get"]["parameters"])}
    assert without <= {"/epcis/events", "/portal/feed/{feed}"}, without


def test_webhook_deliveries_walk_one_subscription_s_deliveries_once(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trace import webhooks

    grower, other = f.org(session), f.org(session)
    admin = headers_for(session, grower, Role.ORG_ADMIN)
    other_admin = headers_for(session, other, Role.ORG_ADMIN)
    session.commit()
    url = "https://doi-tac.example.vn/hytrace"
    sub = client.post(f"{API}/webhooks", headers=admin, json={"url": url, "organisation_id": grower.id}).json()
    theirs = client.post(f"{API}/webhooks", headers=other_admin, json={"url": url, "organisation_id": other.id}).json()
    for _ in range(5):
        f.harvest(session, grower)
        f.harvest(session, other)
    sent = webhooks.dispatch(session=session)
    session.commit()
    found = once(keys(walk(client, f"/webhooks/{sub['id']}/deliveries", admin)))
    their_found = once(keys(walk(client, f"/webhooks/{theirs['id']}/deliveries", other_admin)))
    assert len(found) == 5 and found | their_found == set(sent) and not found & their_found
    # a cursor does not open another organisation's subscription
    start = _cursor("deliveries", max(sent) + 1)
    refused = client.get(f"{API}/webhooks/{theirs['id']}/deliveries", params={"cursor": start}, headers=admin)
    assert_problem(refused, 404)
    forged = client.get(f"{API}/webhooks/{sub['id']}/deliveries", params={"cursor": _cursor("lots", 1)}, headers=admin)
    assert_problem(forged, 422, "bad_cursor")
