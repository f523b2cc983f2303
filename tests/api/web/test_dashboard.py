"""The province's and a holder's dashboards, who may see them, and the plan's targets."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from tests.api.helpers import snapshot
from tests.api.web.helpers import VI, form_token
from tests.api.web.people import People, as_user, idem
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone, today
from trace.reports.models import Indicator, PlanTarget


def figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">([^<]*)<', page)
    assert found, name
    return found.group(1)


def test_the_administrator_sees_the_province_dashboard_with_charts_and_tables(
    client: TestClient, session: Session, people: People
) -> None:
    as_user(client, people.admin)
    page = client.get("/app/dashboard", headers=VI)
    assert page.status_code == 200
    assert "Bảng điều khiển của tỉnh" in page.text and page.text.count("<svg") >= 4 + 4
    assert 'role="img"' in page.text and "<title" in page.text and "<table" in page.text
    # figures counted here: the lots harvested this year and the active organisations
    from trace.lots import Lot

    year = today().year
    lots = [lt for lt in session.exec(select(Lot)).all() if lt.created_at.astimezone(local_zone()).year == year]
    assert figure(page.text, "lots") == str(len(lots))
    orgs = session.exec(select(Organisation).where(col(Organisation.active).is_(True))).all()
    assert figure(page.text, "organisations") == f"{len(orgs)}"
    assert people.gi.gi.name_vi in page.text
    # the menu offers it
    assert 'href="/app/dashboard"' in page.text
    # a year and a period chosen; a period backwards is refused with words
    assert client.get(f"/app/dashboard?year={year - 1}", headers=VI).status_code == 200
    bad = client.get("/app/dashboard?from=2026-05-01&to=2026-04-01", headers=VI)
    assert bad.status_code == 422 and "Kỳ báo cáo kết thúc trước khi bắt đầu." in bad.text
    assert client.get("/app/dashboard?year=abc", headers=VI).status_code == 422
    half = client.get("/app/dashboard?from=&to=2026-01-01", headers=VI)
    assert half.status_code == 422 and "Hãy chọn cả hai ngày của kỳ báo cáo." in half.text
    english = client.get("/app/dashboard?lang=en")
    assert "Province dashboard" in english.text


def test_a_holder_sees_its_own_designations_read_only_and_is_sent_there_from_the_province_page(
    client: TestClient, people: People
) -> None:
    as_user(client, people.holder_user)
    away = client.get("/app/dashboard", headers=VI, follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/app/dashboard/designations"
    page = client.get("/app/dashboard/designations", headers=VI)
    assert page.status_code == 200 and people.gi.gi.name_vi in page.text and "Gà Đông Tảo (thử)" not in page.text
    assert figure(page.text, "lots") == "1"  # the lot claiming the GI, not the plain one
    assert '<form method="post"' not in page.text.split("</nav>", 1)[1]  # read-only: no form that writes
    as_user(client, people.other_holder_user)
    other = client.get("/app/dashboard/designations", headers=VI)
    assert "Gà Đông Tảo (thử)" in other.text and people.gi.gi.name_vi not in other.text


def test_a_cooperative_is_refused_every_dashboard_page_in_vietnamese(client: TestClient, people: People) -> None:
    as_user(client, people.grower_user)
    for path in ("/app/dashboard", "/app/dashboard/designations", "/app/dashboard/targets", "/app/reports"):
        answer = client.get(path, headers=VI, follow_redirects=False)
        assert answer.status_code == 403, path
        assert "Không được phép" in answer.text or "Chỉ" in answer.text
    client.cookies.clear()
    assert client.get("/app/dashboard", follow_redirects=False).status_code == 303  # not signed in: to /login


def _target_form(client: TestClient, **over: Any) -> dict[str, Any]:
    page = client.get("/app/dashboard/targets", headers=VI)
    assert page.status_code == 200
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "indicator": "labels",
        "year": str(today().year),
        "value": "1.500",
        "note": "KH 197/KH-UBND",
        **over,
    }


def test_the_administrator_sets_a_target_once_and_the_growth_chart_draws_its_line(
    client: TestClient, session: Session, people: People
) -> None:
    as_user(client, people.admin)
    before = client.get("/app/dashboard", headers=VI).text
    assert before.count('class="target"') == 0  # no target entered: no target line
    form = _target_form(client)
    first = client.post("/app/dashboard/targets", data=form, headers=VI, follow_redirects=False)
    again = client.post("/app/dashboard/targets", data=form, headers=VI, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    rows = session.exec(select(PlanTarget)).all()
    assert [(r.indicator, r.value, r.set_by_user_id) for r in rows] == [(Indicator.LABELS, 1500, people.admin.id)]
    page = client.get(first.headers["location"], headers=VI).text
    block = page.split('data-indicator="labels"', 1)[1].split("data-indicator=", 1)[0]
    assert "1.500" in block and 'class="target"' not in block  # one year with a target: a mark, no line yet
    assert "<rect" in block and "Chỉ tiêu" in block
    # a second year's target makes a line
    client.post(
        "/app/dashboard/targets", data=_target_form(client, year=str(today().year - 1), value="900"), headers=VI
    )
    page = client.get("/app/dashboard", headers=VI).text
    block = page.split('data-indicator="labels"', 1)[1].split("data-indicator=", 1)[0]
    assert 'class="target"' in block and "900" in block
    # a value that is not a whole number is refused beside the field, nothing written
    bad = client.post("/app/dashboard/targets", data=_target_form(client, value="1,5"), headers=VI)
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    assert len(session.exec(select(PlanTarget)).all()) == 2


def test_a_forged_targets_form_is_refused_and_writes_nothing(
    client: TestClient, session: Session, people: People
) -> None:
    as_user(client, people.admin)
    form = _target_form(client, csrf="forged")
    before = snapshot(session)
    answer = client.post("/app/dashboard/targets", data=form, headers=VI, follow_redirects=False)
    assert answer.status_code == 403
    assert snapshot(session) == before
    # and a holder's genuine form is refused too: targets are the administrator's
    as_user(client, people.holder_user)
    page = client.get("/app/reports", headers=VI)
    answer = client.post(
        "/app/dashboard/targets",
        data={"csrf": form_token(page.text), "idem": "x", "indicator": "labels", "year": "2026", "value": "1"},
        headers=VI,
    )
    assert answer.status_code == 403 and session.exec(select(PlanTarget)).all() == []
