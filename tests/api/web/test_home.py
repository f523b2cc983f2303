"""The start pages: the organisation's lots, a typed code checked, the icon, and the menu."""

from __future__ import annotations

from io import BytesIO

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.web.helpers import PASSWORD, VI, sign_in
from trace.access import Role


def test_the_start_page_lists_only_the_organisations_own_lots(
    client: TestClient, session: Session, member: tuple[object, object]
) -> None:
    org, user = member
    mine = f.harvest(session, org, lot_code="L-MINE-1").lot_ids  # type: ignore[arg-type]
    f.harvest(session, f.org(session), lot_code="L-THEIRS-1")
    session.commit()
    assert mine
    sign_in(client, user.email)  # type: ignore[attr-defined]
    page = client.get("/app", headers=VI).text
    assert "L-MINE-1" in page and "L-THEIRS-1" not in page and "đang lưu thông" in page
    assert "Lô hàng của tổ chức bạn" in page


def test_a_typed_code_leads_to_its_labels_page_or_to_an_honest_refusal(client: TestClient, session: Session) -> None:
    from tests.trace.test_origin import build_chain
    from trace.units import display_code

    chain = build_chain(session)
    session.commit()
    typed = display_code(chain.unit.code).lower().replace("-", " ")
    found = client.get(f"/check?code={typed}", follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"].endswith(f"/21/{chain.unit.serial}")
    missing = client.get("/check?code=AAAA-BBBB-C", headers=VI)
    assert missing.status_code == 404 and "Mã này không do hệ thống cấp" in missing.text
    assert "Kiểm tra mã in trên nhãn" in client.get("/", headers=VI).text


def test_the_icon_browsers_ask_for_is_there_and_cached(client: TestClient) -> None:
    from PIL import Image

    answer = client.get("/favicon.ico")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/x-icon"
    assert "max-age" in answer.headers["cache-control"]
    assert Image.open(BytesIO(answer.content)).size == (32, 32)


@pytest.mark.parametrize(
    ("kind", "role", "keeps_registry"),
    [("authority", Role.ORG_ADMIN, True), ("authority", Role.MEMBER, False), ("cooperative", Role.ORG_ADMIN, False)],
)
def test_the_menu_leads_the_registrars_and_only_them_to_the_designation_registry(
    client: TestClient, session: Session, kind: str, role: Role, keeps_registry: bool
) -> None:
    user, _ = f.user(session, f.org(session, kind), role, password=PASSWORD)
    session.commit()
    sign_in(client, user.email)
    start = client.get("/app", headers=VI).text
    assert ('href="/app/admin/designations"' in start) is keeps_registry
    # the menu follows the rule trace/ keeps: the registry answers those it leads there, and only them
    assert client.get("/app/admin/designations").status_code == (200 if keeps_registry else 403)
