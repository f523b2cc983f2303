"""A processor's chain for the page tests: a cooperative's lot shipped to it, and sending a page's own
form with its token and once-only key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import jobs_sent
from tests.api.web.helpers import PASSWORD, VI, form_token, sign_in
from trace.access import Role
from trace.events.models import Event, EventType
from trace.lots import Holding, Lot


@dataclass
class Chain:
    """A cooperative's lot of 100 kg, 40 kg of it shipped to a processor whose user is signed in; the
    processor's dried-longan product is packed in 0.5 kg bags; the run ids handed to the render queue."""

    coop: Any
    processor: Any
    user: Any
    lot: Lot
    shipment_id: int
    dried: Any
    calls: list[int]


def _chain(client: TestClient, session: Session, kind: str = "processor", sign: bool = True) -> Chain:
    coop = f.org(session)
    processor = f.org(session, kind)
    user, _ = f.user(session, processor, Role.MEMBER, password=PASSWORD)
    lot = session.get(Lot, f.harvest(session, coop, "100", lot_code="NL-2026-07").lot_ids[0])
    assert lot is not None
    shipment_id = f.ship(session, coop, lot.id, processor, "40").shipment_id  # type: ignore[arg-type]
    assert shipment_id is not None
    dried = f.product(
        session, processor, name_vi="Long nhãn sấy khô", category="longan_dried", package_size=Decimal("0.5")
    )
    session.commit()
    calls = jobs_sent(client, "print_run")
    if sign:
        assert sign_in(client, user.email).status_code == 303  # type: ignore[attr-defined]
    return Chain(coop, processor, user, lot, shipment_id, dried, calls)


def _idem(page: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', page)
    assert found, "the form has no once-only key"
    return found.group(1)


def _value(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" type="[a-z]+" value="([^"]*)"', page)
    assert found, f"no field {name}"
    return found.group(1)


def _send(client: TestClient, url: str, **data: Any) -> Any:
    """GET the form, then POST it with its own token and key (overridable) and the given fields."""
    page = client.get(url, headers=VI)
    assert page.status_code == 200, page.text
    form = {"csrf": form_token(page.text), "idem": _idem(page.text), **data}
    return client.post(url, data=form, headers=VI, follow_redirects=False)


def _events(session: Session, kind: EventType) -> int:
    return session.execute(select(func.count()).select_from(Event).where(Event.type == kind)).scalar_one()  # type: ignore[arg-type]


def _held(session: Session, lot_id: int, org: Any) -> Decimal:
    row = session.get(Holding, (lot_id, org.id), populate_existing=True)
    return row.quantity if row else Decimal(0)


def _receive_and_transform(client: TestClient, session: Session, c: Chain) -> int:
    answer = _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="40")
    assert answer.status_code == 303, answer.text
    answer = _send(
        client,
        "/app/transform",
        lot=[str(c.lot.id), "", "", "", ""],
        qty=["30", "", "", "", ""],
        product_id=str(c.dried.id),
        lot_code="LS-2026-01",
        quantity="12",
        expiry_date="",
    )
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])
