"""Holds and recalls over HTTP: a recall across three transformations read back through the lot and
code-check endpoints, holds and their permissions, the notices list, and the CSV and XLSX reports."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import openpyxl
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from tests import factories as f
from tests.api.helpers import assert_problem, count, headers_for, snapshot
from tests.trace.test_recalls import chain as trace_chain
from trace.access import Role
from trace.events.models import Event, EventType
from trace.lots import Lot
from trace.organisations import Organisation
from trace.recalls import Recall, RecallLot

API = "/api/v1"
WHY = {"reason": "Phát hiện nấm mốc trong mẫu lưu (biên bản 07/QLTT)"}
DESCENDANTS = {"H": 0, "L1": 1, "L2a": 2, "L2b": 2, "L3": 3}  # transformations away from H


@dataclass
class Chain:
    """H → L1 (with G) → L2a, L2b → L3; G → SIB is a sibling branch. L2b: 10 kg at a shop, 5 kg in
    transit to a second shop. Unit labels on L3 (5), L2b (3) and SIB (4)."""

    orgs: dict[str, Organisation]
    headers: dict[str, dict[str, str]]
    ids: dict[str, int]
    codes: dict[str, list[str]]


def _chain(session: Session) -> Chain:
    # The trace tests' chain (tests/trace/test_recalls.py), plus an inspector, a stranger and everyone's headers.
    built = trace_chain(session)
    orgs = {
        "coop": built.coop,
        "proc": built.proc,
        "shop": built.shop,
        "shop2": built.shop2,
        "stranger": f.org(session),
        "qltt": f.org(session, "authority"),
    }
    headers = {name: headers_for(session, org) for name, org in orgs.items() if name != "qltt"}
    headers["qltt"] = headers_for(session, orgs["qltt"], Role.INSPECTOR)
    session.commit()
    return Chain(orgs, headers, built.ids, built.codes)


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _recall_events(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Event).where(Event.type == EventType.RECALL)).one()


def test_a_recall_reads_back_on_every_descendant_lot_and_unit_and_nowhere_else(
    client: TestClient, session: Session
) -> None:
    c = _chain(session)
    # when the cooperative recalls its harvest
    body = _ok(client.post(f"{API}/lots/{c.ids['H']}/recall", json=WHY, headers=c.headers["coop"]))
    assert (body["lot_id"], body["lots_affected"], body["units_affected"]) == (c.ids["H"], 5, 8)
    assert (body["organisation_id"], body["reason"]) == (c.orgs["coop"].id, WHY["reason"])
    # then every descendant lot reads as recalled, the other parent and the sibling branch as before
    statuses = {
        name: _ok(client.get(f"{API}/lots/{i}", headers=c.headers["qltt"]))["status"] for name, i in c.ids.items()
    }
    assert statuses == {**{name: "recalled" for name in DESCENDANTS}, "G": "active", "SIB": "active"}
    # and so does every unit printed on a descendant lot, to anyone who types its code
    for code in c.codes["L3"] + c.codes["L2b"]:
        check = _ok(client.get(f"{API}/codes/check", params={"code": code}))
        assert (check["valid"], check["status"], check["lot_status"]) == (False, "lot_recalled", "recalled")
    for code in c.codes["SIB"]:
        assert _ok(client.get(f"{API}/codes/check", params={"code": code}))["valid"] is True
    # a second recall of the same lot changes nothing and gives the same answer
    events, reached = _recall_events(session), count(session, RecallLot)
    again = client.post(f"{API}/lots/{c.ids['H']}/recall", json={"reason": "Gửi lại"}, headers=c.headers["coop"])
    assert _ok(again) == body
    assert (_recall_events(session), count(session, RecallLot), count(session, Recall)) == (events, reached, 1)
    # the one recall event is in the history of every lot it reached
    log = _ok(
        client.get(f"{API}/events", params={"lot_id": c.ids["L3"], "eventType": "recall"}, headers=c.headers["proc"])
    )
    assert [e["id"] for e in log] == [body["event_id"]]


def test_moving_a_recalled_lot_is_refused(client: TestClient, session: Session) -> None:
    c = _chain(session)
    _ok(client.post(f"{API}/lots/{c.ids['H']}/recall", json=WHY, headers=c.headers["coop"]))
    shipped = client.post(
        f"{API}/events/ship",
        headers=c.headers["shop"],
        json={"lot_id": c.ids["L2b"], "quantity": "1", "destination_organisation_id": c.orgs["stranger"].id},
    )
    assert_problem(shipped, 422, "lot_recalled")
    assert_problem(
        client.post(f"{API}/lots/{c.ids['L3']}/hold", json=WHY, headers=c.headers["qltt"]), 409, "lot_recalled"
    )


def test_only_an_authority_or_the_producer_recalls(client: TestClient, session: Session) -> None:
    c = _chain(session)
    before = snapshot(session)
    for who in ("shop", "stranger"):
        assert_problem(
            client.post(f"{API}/lots/{c.ids['L1']}/recall", json=WHY, headers=c.headers[who]), 403, "recall_not_allowed"
        )
    assert_problem(
        client.post(f"{API}/lots/{c.ids['L1']}/recall", json={"reason": " "}, headers=c.headers["coop"]),
        422,
        "validation_error",
    )
    assert_problem(client.post(f"{API}/lots/999999/recall", json=WHY, headers=c.headers["qltt"]), 404)
    assert snapshot(session) == before
    by_inspector = _ok(client.post(f"{API}/lots/{c.ids['L2b']}/recall", json=WHY, headers=c.headers["qltt"]))
    assert (by_inspector["organisation_id"], by_inspector["lots_affected"]) == (c.orgs["qltt"].id, 1)


def test_hold_and_release(client: TestClient, session: Session) -> None:
    c = _chain(session)
    lot_url = f"{API}/lots/{c.ids['L1']}"
    # the producer holds its lot; it cannot be shipped while held
    held = _ok(client.post(f"{lot_url}/hold", json=WHY, headers=c.headers["coop"]))
    assert (held["status"], held["previous_status"], held["reason"]) == ("on_hold", "active", WHY["reason"])
    assert _ok(client.get(lot_url, headers=c.headers["coop"]))["status"] == "on_hold"
    shipped = client.post(
        f"{API}/events/ship",
        headers=c.headers["coop"],
        json={"lot_id": c.ids["L1"], "quantity": "1", "destination_organisation_id": c.orgs["proc"].id},
    )
    assert_problem(shipped, 422, "lot_on_hold")
    assert_problem(client.post(f"{lot_url}/hold", json=WHY, headers=c.headers["qltt"]), 409, "already_on_hold")
    # a holder that did not produce it may neither hold nor release it
    assert_problem(client.post(f"{lot_url}/release", json=WHY, headers=c.headers["proc"]), 403, "release_not_allowed")
    released = _ok(
        client.post(f"{lot_url}/release", json={"reason": "Kết quả kiểm nghiệm đạt"}, headers=c.headers["coop"])
    )
    assert (released["status"], released["previous_status"]) == ("active", "on_hold")
    assert_problem(client.post(f"{lot_url}/release", json=WHY, headers=c.headers["coop"]), 409, "not_on_hold")
    # an inspector's hold is lifted by an inspector only
    assert_problem(
        client.post(f"{API}/lots/{c.ids['L3']}/hold", json=WHY, headers=c.headers["shop"]), 403, "hold_not_allowed"
    )
    _ok(client.post(f"{API}/lots/{c.ids['L3']}/hold", json=WHY, headers=c.headers["qltt"]))
    assert_problem(
        client.post(f"{API}/lots/{c.ids['L3']}/release", json=WHY, headers=c.headers["proc"]), 403, "held_by_authority"
    )
    assert (
        _ok(client.post(f"{API}/lots/{c.ids['L3']}/release", json=WHY, headers=c.headers["qltt"]))["status"] == "active"
    )
    kinds = [
        e["type"] for e in _ok(client.get(f"{API}/events", params={"lot_id": c.ids["L3"]}, headers=c.headers["qltt"]))
    ]
    assert kinds[:2] == ["release", "hold"]


def test_recall_lists_notices_and_visibility(client: TestClient, session: Session) -> None:
    c = _chain(session)
    made = _ok(client.post(f"{API}/lots/{c.ids['H']}/recall", json=WHY, headers=c.headers["coop"]))
    for who in ("qltt", "coop"):
        assert [r["id"] for r in _ok(client.get(f"{API}/recalls", headers=c.headers[who]))] == [made["id"]]
    assert _ok(client.get(f"{API}/recalls", headers=c.headers["stranger"])) == []
    # a shop holding part of a reached lot finds it in its notices, with what it holds
    notices = _ok(client.get(f"{API}/recalls/affecting-me", headers=c.headers["shop"]))
    assert [
        (n["recall_id"], n["lot_id"], n["depth"], Decimal(n["quantity_held"]), n["recalled_lot_id"], n["reason"])
        for n in notices
    ] == [(made["id"], c.ids["L2b"], 2, Decimal(10), c.ids["H"], WHY["reason"])]
    assert _ok(client.get(f"{API}/recalls/affecting-me", headers=c.headers["stranger"])) == []
    # it may read the recall, not the report (everyone else's stock and contacts)
    assert _ok(client.get(f"{API}/recalls/{made['id']}", headers=c.headers["shop"])) == made
    assert_problem(
        client.get(f"{API}/recalls/{made['id']}/report.csv", headers=c.headers["shop"]), 403, "report_not_allowed"
    )
    assert_problem(client.get(f"{API}/recalls/{made['id']}", headers=c.headers["stranger"]), 404)
    assert_problem(client.get(f"{API}/recalls/{made['id']}/report.xlsx", headers=c.headers["stranger"]), 404)
    assert_problem(client.get(f"{API}/recalls/{made['id']}"), 401)


def test_the_report_as_csv_and_xlsx(client: TestClient, session: Session) -> None:
    c = _chain(session)
    made = _ok(client.post(f"{API}/lots/{c.ids['H']}/recall", json=WHY, headers=c.headers["coop"]))
    response = client.get(f"{API}/recalls/{made['id']}/report.csv", headers=c.headers["qltt"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    names = {session.get(Lot, i).lot_code: name for name, i in c.ids.items()}  # type: ignore[union-attr]
    holders = {str(o.id): name for name, o in c.orgs.items()}
    got = {
        (names[r["lot_code"]], holders.get(r["holder_organisation_id"], "")): (
            int(r["depth"]),
            int(r["units_active"]),
            r["quantity_held"],
            r["quantity_in_transit"],
        )
        for r in rows
    }
    assert got == {
        ("H", "coop"): (0, 0, "20.000", "0.000"),
        ("L1", "coop"): (1, 0, "10.000", "0.000"),
        ("L2a", ""): (2, 0, "", ""),
        ("L2b", "shop"): (2, 3, "10.000", "0.000"),
        ("L2b", "shop2"): (2, 3, "0.000", "5.000"),
        ("L3", "proc"): (3, 5, "15.000", "0.000"),
    }
    shop = next(r for r in rows if r["holder_organisation_id"] == str(c.orgs["shop"].id))
    assert (shop["holder_name"], shop["holder_address"], shop["holder_phone"], shop["holder_email"]) == (
        c.orgs["shop"].name,
        "12 Phố Hiến, Hưng Yên",
        "0221 3862 123",
        "shop@example.vn",
    )
    assert shop["product_description"] == "Long nhãn hộp" and shop["lot_status"] == "recalled"
    # the spreadsheet: the same rows under one frozen, filtered header row
    xlsx = client.get(f"{API}/recalls/{made['id']}/report.xlsx", headers=c.headers["coop"])
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == list(rows[0])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(table[0]))}{len(rows) + 1}"
    assert len(table) == len(rows) + 1
    for cells, row in zip(table[1:], rows, strict=True):
        for value, text in zip(cells, row.values(), strict=True):
            if isinstance(value, int | float):  # numbers are numbers there: sortable and summable
                assert Decimal(str(value)) == Decimal(text)
            else:
                assert ("" if value is None else value) == text
