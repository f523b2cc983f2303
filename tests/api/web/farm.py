"""A cooperative with a growing area inside the longan GI's protected area, and its harvest form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests.api.web.helpers import VI, form_token, sign_in
from trace.designations.models import Designation
from trace.locations import Location
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone
from trace.products import Product
from trace.users import User

LAC_DAO = "11992"  # today's Xã Lạc Đạo lies wholly outside the longan GI's area


@dataclass
class Farm:
    coop: Organisation
    user: User
    fresh: Product
    area: Location
    gi: Designation
    buyer: Organisation


def idem(page: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', page)
    assert found, "the form has no once-only key"
    return found.group(1)


def signed_in(client: TestClient, farm: Farm) -> None:
    assert sign_in(client, farm.user.email).status_code == 303  # type: ignore[attr-defined]


def an_hour_ago() -> str:
    return (datetime.now(local_zone()) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")


def harvest_form(client: TestClient, farm: Farm, **over: Any) -> dict[str, Any]:
    page = client.get("/app/harvest", headers=VI)
    assert page.status_code == 200
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "product_id": farm.fresh.id,
        "location_id": farm.area.id,
        "quantity": "1.234,5",
        "event_time": an_hour_ago(),
        "lot_code": "NL-2026-001",
        "designation_ids": [farm.gi.id],
        **over,
    }


def lots_coded(session: Session, code: str) -> list[Lot]:
    session.expire_all()
    return list(session.exec(select(Lot).where(Lot.lot_code == code)))
