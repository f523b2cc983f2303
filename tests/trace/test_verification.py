"""Is this label genuine? A typed code or a scanned Digital Link is found on any host our labels
ever named, refused on others, and answered with the state of the unit and its lot."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from tests import factories as f
from trace.digital_link import DigitalLink, lot_uri, parse, unit_uri
from trace.errors import InvalidIdentifier, NotFound
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation
from trace.platform.config import get_settings
from trace.printing import jobs, runs
from trace.printing.models import PrintKind, PrintRun
from trace.printing.runs import PrintRunCreate
from trace.units import Unit, display_code, new_code
from trace.verification import check_code, check_uri, locate


def set_base_url(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", url)
    get_settings.cache_clear()


def printed(
    session: Session, quantity: int = 3, kind: PrintKind = PrintKind.UNIT
) -> tuple[Organisation, Lot, PrintRun]:
    """A lot with a run of labels printed for it."""
    coop = f.org(session)
    lot = session.get(Lot, f.harvest(session, coop, "100").lot_ids[0])
    assert lot is not None
    run = runs.create_run(
        session=session,
        actor=f.member(coop),
        lot_id=lot.id,  # type: ignore[arg-type]
        data=PrintRunCreate(quantity=quantity, kind=kind),
    )
    return coop, lot, run


def first_unit(session: Session, run: PrintRun) -> Unit:
    return session.exec(select(Unit).where(Unit.print_run_id == run.id).order_by(col(Unit.id))).first()  # type: ignore[return-value]


def test_a_typed_code_is_found_however_it_was_typed(session: Session) -> None:
    _, lot, run = printed(session)
    unit = first_unit(session, run)
    answer = check_code(session=session, code=f"  {unit.code.lower()} ")
    assert (answer.valid, answer.status) == (True, "valid")
    assert (answer.code, answer.serial, answer.gtin, answer.lot_code) == (
        display_code(unit.code),
        unit.serial,
        lot.gtin,
        lot.lot_code,
    )
    assert answer.level == "unit" and answer.lot_status == LotStatus.ACTIVE


def test_a_well_formed_code_nobody_issued_is_not_genuine(session: Session) -> None:
    printed(session)
    issued = set(session.exec(select(Unit.code)))
    code = next(c for c in iter(new_code, None) if c not in issued)
    with pytest.raises(NotFound) as info:
        check_code(session=session, code=display_code(code))
    assert info.value.code == "not_genuine"


def test_a_mistyped_code_is_refused_before_it_is_looked_up(session: Session) -> None:
    _, _, run = printed(session)
    code = first_unit(session, run).code
    swapped = code[:-1] + ("0" if code[-1] != "0" else "1")
    with pytest.raises(InvalidIdentifier) as info:
        check_code(session=session, code=swapped)
    assert info.value.code == "code_check"


def test_a_scanned_label_is_found_on_the_public_host(session: Session) -> None:
    _, lot, run = printed(session)
    for label, unit in zip(
        jobs.labels_for(session=session, run=run),
        session.exec(select(Unit).where(Unit.print_run_id == run.id).order_by(col(Unit.id))),
        strict=True,
    ):
        answer = check_uri(session=session, uri=label.uri)
        assert answer.valid and (answer.serial, answer.code) == (unit.serial, display_code(unit.code))
    answer = check_uri(
        session=session, uri=lot_uri(base_url=get_settings().public_base_url, gtin=lot.gtin, lot=lot.lot_code)
    )
    assert answer.valid and answer.serial is None and answer.lot_code == lot.lot_code


def test_a_scanned_label_is_found_on_a_configured_alias(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    _, lot, run = printed(session)
    unit = first_unit(session, run)
    monkeypatch.setenv("HYTRACE_PUBLIC_HOST_ALIASES", "qr.hungyen.example.vn, Truyxuat.Example.vn:8443")
    get_settings.cache_clear()
    for base in ("https://qr.hungyen.example.vn", "https://truyxuat.example.vn:8443/"):
        uri = unit_uri(base_url=base, gtin=lot.gtin, lot=lot.lot_code, serial=unit.serial)
        assert check_uri(session=session, uri=uri).serial == unit.serial


def test_a_label_printed_under_an_old_base_url_is_still_found(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_base_url(monkeypatch, "https://tem-cu.example.vn")
    _, _, run = printed(session)
    unit = first_unit(session, run)
    old_label = jobs.labels_for(session=session, run=run)[0].uri
    assert old_label.startswith("https://tem-cu.example.vn/")
    set_base_url(monkeypatch, "https://tem-moi.example.vn")
    answer = check_uri(session=session, uri=old_label)
    assert answer.valid and answer.serial == unit.serial


def test_a_label_on_an_unknown_host_is_not_ours(session: Session) -> None:
    _, lot, run = printed(session)
    uri = unit_uri(
        base_url="https://gia-mao.example.com", gtin=lot.gtin, lot=lot.lot_code, serial=first_unit(session, run).serial
    )
    with pytest.raises(InvalidIdentifier) as info:
        check_uri(session=session, uri=uri)
    assert info.value.code == "dl_not_ours"


def test_an_unknown_serial_of_a_known_lot_is_not_genuine(session: Session) -> None:
    _, lot, _ = printed(session)
    uri = unit_uri(base_url=get_settings().public_base_url, gtin=lot.gtin, lot=lot.lot_code, serial="0000000000")
    with pytest.raises(NotFound) as info:
        check_uri(session=session, uri=uri)
    assert info.value.code == "not_genuine"


def test_a_label_of_a_lot_on_hold_is_not_valid(session: Session) -> None:
    _, lot, run = printed(session)
    lot.status = LotStatus.ON_HOLD  # holds themselves come with inspections
    session.add(lot)
    session.flush()
    unit = first_unit(session, run)
    by_code = check_code(session=session, code=unit.code)
    by_uri = check_uri(session=session, uri=jobs.labels_for(session=session, run=run)[0].uri)
    for answer in (by_code, by_uri):
        assert (answer.valid, answer.status, answer.lot_status) == (False, "lot_on_hold", LotStatus.ON_HOLD)
        assert answer.serial == unit.serial


def test_locate_reads_the_unit_a_link_names_and_nothing_of_another_lot(session: Session) -> None:
    # given two lots with labels
    _, lot, run = printed(session)
    _, _, other_run = printed(session)
    unit, foreign = first_unit(session, run), first_unit(session, other_run)

    def link(of: Lot, serial: str) -> DigitalLink:
        return parse(unit_uri(base_url=get_settings().public_base_url, gtin=of.gtin, lot=of.lot_code, serial=serial))

    # when a unit's own link is located, then its lot and its row come back, as the table has them
    lot_id, found = locate(session=session, link=link(lot, unit.serial))
    assert lot_id == lot.id and found.model_dump() == unit.model_dump()
    # and a serial of another lot, under this lot, is not genuine, nor an unknown lot (told which)
    with pytest.raises(NotFound) as info:
        locate(session=session, link=link(lot, foreign.serial))
    assert info.value.code == "not_genuine" and foreign.serial in info.value.message
    unknown = parse(unit_uri(base_url=get_settings().public_base_url, gtin=lot.gtin, lot="NOPE-1", serial=unit.serial))
    with pytest.raises(NotFound) as info:
        locate(session=session, link=unknown)
    assert info.value.code == "not_genuine" and "NOPE-1" in info.value.message
