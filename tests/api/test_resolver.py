"""The label paths themselves (/01/…): answered on any host the label named, from the raw path."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from tests import factories as f
from tests.api.helpers import assert_problem, party
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import HarvestIn
from trace.lots import Lot
from trace.printing import runs
from trace.units import Unit, display_code

JSON = {"accept": "application/json"}


def _unit(session: Session, lot_code: str = "LN2607/A") -> tuple[Lot, str, str]:
    coop, _ = party(session)
    prod, area = f.product(session, coop), f.location(session, coop)
    lot_id = capture(
        session=session,
        actor=f.member(coop),
        items=[
            (
                EventType.HARVEST,
                HarvestIn(
                    product_id=prod.id,
                    lot_code=lot_code,
                    quantity=Decimal(10),
                    location_id=area.id,  # type: ignore[arg-type]
                    event_time=f.when(3),
                ),
            )
        ],
    ).lot_ids[0]
    run = runs.create_run(session=session, actor=f.member(coop), lot_id=lot_id, data=runs.PrintRunCreate(quantity=2))
    serial, code = session.execute(
        select(col(Unit.serial), col(Unit.code)).where(col(Unit.print_run_id) == run.id).order_by(col(Unit.id))
    ).first()  # type: ignore[misc]
    session.commit()  # a refused request rolls back to here, not past the data
    lot = session.get(Lot, lot_id)
    assert lot is not None
    return lot, serial, code


def test_a_unit_path_with_an_encoded_slash_in_its_lot_resolves_on_an_alias_host(
    client: TestClient, session: Session
) -> None:
    # given a unit of a lot whose code holds a "/" (percent-encoded on the label)
    lot, serial, code = _unit(session)
    # when the label is opened on another host name than the public one
    answer = client.get(
        f"/01/{lot.gtin}/10/LN2607%2FA/21/{serial}/", headers={"host": "qr.old-host.vn", "accept": "application/json"}
    )
    # then the same unit answers, as printed
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["serial"], body["lot_code"], body["code"], body["valid"]) == (
        serial,
        "LN2607/A",
        display_code(code),
        True,
    )
    assert body["uri"].endswith(f"/10/LN2607%2FA/21/{serial}")


def test_a_lot_path_and_a_short_gtin_resolve_to_the_lot(client: TestClient, session: Session) -> None:
    lot, _, _ = _unit(session, "L-7")
    answer = client.get(f"/01/{lot.gtin.lstrip('0')}/10/L-7", headers={"accept": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["serial"] is None and answer.json()["gtin"] == lot.gtin


def test_an_unknown_serial_is_not_genuine_and_a_bad_path_says_why(client: TestClient, session: Session) -> None:
    lot, _, _ = _unit(session, "L-8")
    unknown = assert_problem(client.get(f"/01/{lot.gtin}/10/L-8/21/NOSUCHSERIAL", headers=JSON), 404, "not_genuine")
    assert (unknown["title"], unknown["instance"]) == ("Not genuine", f"/01/{lot.gtin}/10/L-8/21/NOSUCHSERIAL")
    wrong = str((int(lot.gtin[-1]) + 1) % 10)
    assert_problem(client.get(f"/01/{lot.gtin[:-1]}{wrong}/10/L-8", headers=JSON), 422, "dl_bad_gtin")
    disordered = assert_problem(client.get(f"/01/{lot.gtin}/21/X/10/L-8", headers=JSON), 422, "dl_order")
    assert disordered["title"] == "Invalid identifier"
