"""The public code check over HTTP: a typed code or a scanned Digital Link, genuine or not, and nothing private."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from tests import factories as f
from tests.api.helpers import assert_problem, party
from trace.lots import Lot
from trace.printing import runs
from trace.units import CROCKFORD, Unit, new_code

API = "/api/v1"
OVERRIDE = "Spare labels for the Hà Nội trade fair"


@dataclass
class Printed:
    """A lot of 5 kg (5 labels fit) with a run of 7 unit labels printed beyond it on an override."""

    org: Any
    lot: Lot
    run: runs.PrintRun
    units: list[tuple[str, str]]  # (serial, code) in print order


def _printed(session: Session) -> Printed:
    coop, _ = party(session)
    lot = session.get(Lot, f.harvest(session, coop, "5").lot_ids[0])
    assert lot is not None
    run = runs.create_run(
        session=session,
        actor=f.member(coop),
        lot_id=lot.id,  # type: ignore[arg-type]
        data=runs.PrintRunCreate(quantity=7, override_reason=OVERRIDE),
    )
    session.commit()
    units = session.execute(
        select(col(Unit.serial), col(Unit.code))
        .where(Unit.print_run_id == run.id)  # type: ignore[arg-type]
        .order_by(col(Unit.id))
    ).all()
    return Printed(coop, lot, run, [(serial, code) for serial, code in units])


def _uri(p: Printed, serial: str | None = None, base: str | None = None) -> str:
    uri = f"{base or p.run.base_url}/01/{p.lot.gtin.zfill(14)}/10/{p.lot.lot_code}"
    return f"{uri}/21/{serial}" if serial else uri


def _get(client: TestClient, **params: str) -> Any:
    return client.get(f"{API}/codes/check", params=params)


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_printed_code_checks_as_genuine_without_signing_in(client: TestClient, session: Session) -> None:
    p = _printed(session)
    serial, code = p.units[2]
    printed = "-".join(code[i : i + 3] for i in range(0, 9, 3))
    for typed in (printed, code, code.lower(), f"  {printed.lower()} ", " ".join(code)):
        found = _ok(_get(client, code=typed))
        assert (found["valid"], found["status"], found["code"], found["serial"]) == (True, "valid", printed, serial)
        assert found["lot_code"] == p.lot.lot_code and found["gtin"] == p.lot.gtin and found["level"] == "unit"
        assert found["uri"].endswith(f"/21/{serial}")


def test_a_scanned_uri_checks_as_the_same_unit(client: TestClient, session: Session) -> None:
    p = _printed(session)
    serial, code = p.units[0]
    by_uri, by_code = _ok(_get(client, uri=_uri(p, serial))), _ok(_get(client, code=code))
    assert by_uri == by_code
    # a lot's own Digital Link (a lot label) checks as the lot, without a unit
    lot = _ok(_get(client, uri=_uri(p)))
    assert (lot["valid"], lot["serial"], lot["code"], lot["lot_code"]) == (True, None, None, p.lot.lot_code)


def test_a_voided_code_reads_as_not_valid(client: TestClient, session: Session) -> None:
    p = _printed(session)
    serial, code = p.units[1]
    runs.void_codes(
        session=session, actor=f.member(p.org), run_id=p.run.id, data=runs.VoidIn(codes=[code], reason="torn")
    )  # type: ignore[arg-type]
    session.commit()
    for params in ({"code": code}, {"uri": _uri(p, serial)}):
        found = _ok(_get(client, **params))
        assert (found["valid"], found["status"]) == (False, "void")
    assert _ok(_get(client, code=p.units[0][1]))["valid"] is True


@pytest.mark.parametrize("params", [{}, {"code": "7KQ-2M9-XD4", "uri": "https://example.vn/01/09520000000013"}])
def test_give_either_a_code_or_a_uri(client: TestClient, params: dict[str, str]) -> None:
    assert_problem(_get(client, **params), 422, "code_or_uri")


def test_a_mistyped_code_is_caught_by_its_check_character(client: TestClient, session: Session) -> None:
    p = _printed(session)
    code = p.units[0][1]
    for position in (0, 4, 8):  # the first, a middle and the check character itself
        wrong = next(ch for ch in CROCKFORD if ch != code[position])
        typo = code[:position] + wrong + code[position + 1 :]
        problem = assert_problem(_get(client, code=typo), 422, "code_check")
        assert "mistyped" in problem["detail"]
    assert_problem(_get(client, code=code[:-1]), 422, "code_length")
    assert_problem(_get(client, code=code[:-1] + "U"), 422, "code_characters")


def test_an_unknown_well_formed_code_is_not_genuine(client: TestClient, session: Session) -> None:
    p = _printed(session)
    issued = {code for _, code in p.units}
    unknown = next(c for c in iter(new_code, None) if c not in issued)
    problem = assert_problem(_get(client, code=unknown), 404, "not_genuine")
    assert "genuine" in problem["detail"]
    assert_problem(_get(client, uri=_uri(p, "0000000000")), 404, "not_genuine")
    assert_problem(_get(client, uri=_uri(p).replace(p.lot.lot_code, "NO-SUCH-LOT")), 404, "not_genuine")


def test_a_uri_on_a_foreign_host_is_not_ours(client: TestClient, session: Session) -> None:
    p = _printed(session)
    foreign = _uri(p, p.units[0][0], base="https://truyxuat.example.com")
    problem = assert_problem(_get(client, uri=foreign), 422, "dl_not_ours")
    assert "truyxuat.example.com" in problem["detail"]
    assert_problem(_get(client, uri="not a link"), 422)


def test_the_answer_tells_nothing_private_about_the_printer(client: TestClient, session: Session) -> None:
    p = _printed(session)
    serial, code = p.units[3]
    others = [x for pair in p.units if pair != (serial, code) for x in pair]
    for params in ({"code": code}, {"uri": _uri(p, serial)}):
        response = _get(client, **params)
        text = response.text
        assert response.status_code == 200, text
        assert OVERRIDE not in text
        assert not [x for x in others if x in text], "another label's serial or code leaked"
        assert not {"override_reason", "organisation_id", "print_run_id", "event_id", "reason"} & set(response.json())
