"""Reading what a packer scans or types into the units of a carton, and packing them once: every kind of
code a label carries, every reason a line or a carton's code is refused, and nothing recorded while any is."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import event, func, select
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import snapshot
from trace import packing
from trace.access import Actor, Role
from trace.errors import Conflict, DomainError, Forbidden, RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.query import list_events
from trace.events.schemas import CommissionIn, DecommissionIn, PackIn, UnitRef
from trace.identifiers import gs1_check_digit
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation
from trace.platform.config import get_settings
from trace.units import Unit, display_code, new_code

SSCC_BODY = "09521234000000001"
SSCC = SSCC_BODY + gs1_check_digit(SSCC_BODY)


@dataclass
class Stock:
    """An organisation holding a lot whose units are commissioned; ``units`` as stored."""

    org: Organisation
    actor: Actor
    lot: Lot
    units: list[Unit]

    def uri(self, unit: Unit, base: str | None = None) -> str:
        return (
            f"{(base or get_settings().public_base_url).rstrip('/')}/01/{self.lot.gtin}/10/"
            f"{quote(self.lot.lot_code, safe='')}/21/{unit.serial}"
        )


def _stock(session: Session, count: int = 6, kind: str = "cooperative", lot_code: str | None = None) -> Stock:
    org = f.org(session, kind)
    extra = {"lot_code": lot_code} if lot_code else {}
    lot = session.get(Lot, f.harvest(session, org, "100", **extra).lot_ids[0])
    assert lot is not None
    actor = f.member(org)
    serials = capture(
        session=session,
        actor=actor,
        items=[
            (
                EventType.COMMISSION,
                CommissionIn(
                    lot_id=lot.id,
                    count=count,
                    event_time=f.when(1),
                    override_reason="tem dự phòng cho thử nghiệm" if count > 100 else None,
                ),
            )
        ],
    ).serials  # type: ignore[arg-type]
    units = {u.serial: u for u in session.execute(select(Unit).where(Unit.lot_id == lot.id)).scalars()}  # type: ignore[arg-type]
    return Stock(org, actor, lot, [units[s] for s in serials])


def _ref(unit: Unit) -> UnitRef:
    return UnitRef(lot_id=unit.lot_id, serial=unit.serial)


def _codes(read: packing.UnitsRead) -> list[tuple[int, str]]:
    return [(p.line, p.code) for p in read.problems]


def _refused(code: str, fn: Any, kind: type[DomainError] = RuleViolation) -> DomainError:
    with pytest.raises(kind) as info:
        fn()
    assert info.value.code == code, info.value.message
    return info.value


# --- each kind of code ------------------------------------------------------------------------------


def test_every_form_a_label_carries_reads_as_its_unit(session: Session) -> None:
    # given units of a lot whose code needs percent-encoding in a Digital Link
    s = _stock(session, 7, lot_code="LS/26-01")
    u = s.units
    gs1 = s.uri(u[2], "https://id.gs1.org")
    lines = [
        display_code(u[0].code),  # as printed under the QR: 7KQ-2M9-XDV
        u[1].code.lower(),  # typed in lower case without dashes
        s.uri(u[3]),  # the QR's Digital Link on our host
        gs1,  # the same path on GS1's resolver
        f"(01){s.lot.gtin}(10){s.lot.lot_code}(21){u[4].serial}",  # an element string as printed
        f"]d201{s.lot.gtin}10{s.lot.lot_code}\x1d21{u[5].serial}",  # as a GS1 DataMatrix scanner types it
        f"(01) {s.lot.gtin} (21) {u[6].serial} (10) {s.lot.lot_code}",  # spaced, in another AI order
    ]
    # when read
    read = packing.read_units(session=session, actor=s.actor, text="\n".join(lines))
    # then each line is its unit, in line order, with nothing refused
    assert read.problems == [] and read.lines == 7
    assert read.refs == [_ref(u[i]) for i in (0, 1, 3, 2, 4, 5, 6)]
    assert read.lots == {s.lot.id: 7}


def test_lines_split_on_any_newline_blank_lines_count_and_invisible_characters_are_ignored(session: Session) -> None:
    s = _stock(session, 4)
    u = s.units
    text = (
        f"  {u[0].code}\t\r\n\r\n\u200b{display_code(u[1].code)}\u00a0\r{s.uri(u[2])}\n\n \n"
        f"{u[3].code[:3]} {u[3].code[3:6]} {u[3].code[6:]}\r\nnot-a-code\n"
    )
    read = packing.read_units(session=session, actor=s.actor, text=text)
    assert read.refs == [_ref(x) for x in u]
    # the bad line is numbered as the packer sees it: blank lines count
    assert _codes(read) == [(8, "unreadable")] and read.problems[0].text == "not-a-code"
    assert read.lines == 5


# --- every refusal of a line ---------------------------------------------------------------------------


def test_every_refused_line_has_its_own_code(session: Session) -> None:
    # given my units, one voided, one already packed, and another organisation's
    mine, theirs = _stock(session, 6), _stock(session, 1)
    u = mine.units
    capture(
        session=session,
        actor=mine.actor,
        items=[(EventType.DECOMMISSION, DecommissionIn(codes=[u[1].code], reason="nhãn bị nhòe"))],
    )
    capture(session=session, actor=mine.actor, items=[(EventType.PACK, PackIn(parent_id=SSCC, children=[_ref(u[2])]))])
    typo = u[0].code[:4] + ("0" if u[0].code[4] != "0" else "1") + u[0].code[5:]
    lines = {
        1: (u[0].code, None),
        2: ("hello world", "unreadable"),
        3: (typo, "code_mistyped"),
        4: (mine.uri(u[3], "https://example.com"), "not_our_link"),
        5: (f"{get_settings().public_base_url}/01/{mine.lot.gtin}/10/{mine.lot.lot_code}", "not_a_unit"),
        6: (f"(01){mine.lot.gtin}(10){mine.lot.lot_code}", "not_a_unit"),
        7: (new_code(), "unknown_unit"),
        8: (mine.uri(u[0]), "duplicate"),  # line 1's unit again, in another form
        9: (u[1].code, "void"),
        10: (theirs.units[0].code, "not_held"),
        11: (u[2].code, "already_packed"),
        12: (f"{get_settings().public_base_url}/01/{mine.lot.gtin}/10/{mine.lot.lot_code}/21/NOSUCH", "unknown_unit"),
        13: (f"{get_settings().public_base_url}/01/123/10/A/21/B", "unreadable"),
        14: (f"(01){mine.lot.gtin}(10){mine.lot.lot_code}(21){'X' * 21}", "unreadable"),
        15: (f"01{mine.lot.gtin}99ABC", "unreadable"),
        16: (u[3].code, None),
    }
    read = packing.read_units(session=session, actor=mine.actor, text="\n".join(text for text, _ in lines.values()))
    assert _codes(read) == [(n, code) for n, (_, code) in lines.items() if code]
    assert read.refs == [_ref(u[0]), _ref(u[3])]
    by_line = {p.line: p for p in read.problems}
    assert by_line[8].details == {"first": "1"}
    assert by_line[11].details == {"parent": SSCC}
    assert by_line[3].details == {"cause": "code_check"}


@pytest.mark.parametrize("status", [LotStatus.ON_HOLD, LotStatus.RECALLED, LotStatus.CANCELLED])
def test_a_unit_of_a_stopped_lot_is_refused_with_the_lots_state(session: Session, status: LotStatus) -> None:
    s = _stock(session, 1)
    s.lot.status = status
    session.add(s.lot)
    session.flush()
    read = packing.read_units(session=session, actor=s.actor, text=s.units[0].code)
    assert _codes(read) == [(1, f"lot_{status.value}")] and read.refs == []


def test_the_cartons_own_label_cannot_go_inside_it(session: Session) -> None:
    s = _stock(session, 2)
    parent = packing.read_parent(session=session, text=s.uri(s.units[0]))
    read = packing.read_units(
        session=session, actor=s.actor, text=f"{s.units[0].code}\n{s.units[1].code}", parent=parent
    )
    assert _codes(read) == [(1, "is_parent")] and read.refs == [_ref(s.units[1])]


def test_only_an_organisations_writer_may_read_lines_for_packing(session: Session) -> None:
    s = _stock(session, 1)
    inspector = Actor(role=Role.INSPECTOR, organisation_id=None, user_id=None)
    _refused(
        "not_a_writer", lambda: packing.read_units(session=session, actor=inspector, text=s.units[0].code), Forbidden
    )


# --- the carton ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        SSCC,
        f"(00){SSCC}",
        f"00{SSCC}",
        f" {SSCC[:9]} {SSCC[9:]} ",
        f"]C100{SSCC}",
        f"{get_settings().public_base_url}/00/{SSCC}",
        f"https://id.gs1.org/00/{SSCC}",
    ],
)
def test_an_sscc_in_any_form_is_the_18_digits(session: Session, typed: str) -> None:
    assert packing.read_parent(session=session, text=typed) == packing.Parent(id=SSCC, kind="sscc")


def test_a_unit_label_as_the_carton_is_its_canonical_digital_link(session: Session) -> None:
    s = _stock(session, 1)
    unit = s.units[0]
    for typed in (s.uri(unit), display_code(unit.code), s.uri(unit, "https://id.gs1.org")):
        parent = packing.read_parent(session=session, text=typed)
        assert parent == packing.Parent(id=s.uri(unit), kind="unit", unit_id=unit.id)


def test_every_refused_carton_code_has_its_own_code(session: Session) -> None:
    s, other = _stock(session, 3), _stock(session, 1)
    wrong = SSCC[:17] + str((int(SSCC[17]) + 1) % 10)
    base = get_settings().public_base_url
    for typed, code in (
        ("", "parent_missing"),
        ("  \u200b ", "parent_missing"),
        (wrong, "sscc_check_digit"),
        (f"(00){wrong}", "sscc_check_digit"),
        ("12345", "parent_unreadable"),
        ("THÙNG 1", "parent_unreadable"),
        (f"{base}/00/1234", "parent_unreadable"),
        (f"https://example.com/00/{SSCC}", "parent_not_ours"),
        (s.uri(s.units[0], "https://example.com"), "parent_not_ours"),
        (f"{base}/01/{s.lot.gtin}/10/{s.lot.lot_code}", "parent_not_a_unit"),
        (new_code(), "parent_unknown"),
    ):
        _refused(code, lambda typed=typed: packing.read_parent(session=session, text=typed))
    # the state of a carton's label or of an SSCC is judged when packing
    capture(
        session=session,
        actor=s.actor,
        items=[(EventType.DECOMMISSION, DecommissionIn(codes=[s.units[0].code], reason="nhãn rách"))],
    )
    capture(
        session=session,
        actor=other.actor,
        items=[(EventType.PACK, PackIn(parent_id=SSCC, children=[_ref(other.units[0])]))],
    )
    for parent, code in (
        (s.units[0].code, "parent_void"),
        (other.units[0].code, "parent_not_held"),
        (SSCC, "parent_taken"),
    ):
        error = _refused(
            "pack_refused",
            lambda parent=parent: packing.pack(session=session, actor=s.actor, parent=parent, codes=s.units[1].code),
        )
        assert isinstance(error, packing.PackRefused) and error.parent is not None and error.parent.code == code
        assert error.problems == [] and error.details["parent"] == code


# --- packing --------------------------------------------------------------------------------------------


def _packs(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Event).where(Event.type == EventType.PACK)).scalar_one()  # type: ignore[arg-type]


def test_packing_records_one_aggregation_the_api_reads_back(session: Session) -> None:
    s = _stock(session, 3)
    codes = "\n".join(display_code(u.code) for u in s.units)
    result = packing.pack(session=session, actor=s.actor, parent=f"(00){SSCC}", codes=codes, idempotency_key="k-1")
    # the JSON API's read of the lot's events shows the pack, carton and children
    events = list_events(session=session, actor=s.actor, event_type=EventType.PACK, lot_id=s.lot.id)
    assert [e.id for e in events] == result.event_ids
    assert events[0].epcis_type == "AggregationEvent" and events[0].action == "ADD"
    assert events[0].payload["parent_id"] == SSCC
    assert events[0].payload["children"] == [{"lot_id": s.lot.id, "serial": u.serial} for u in s.units]
    assert packing.contents(events[0].payload) == {s.lot.id: 3}
    inside = session.execute(select(Unit.serial).where(Unit.parent_id == SSCC)).scalars().all()  # type: ignore[arg-type]
    assert sorted(inside) == sorted(u.serial for u in s.units)
    # sent again with its key: the same answer, nothing more recorded (the units are packed by now)
    again = packing.pack(session=session, actor=s.actor, parent=SSCC, codes=codes, idempotency_key="k-1")
    assert again.replayed and again.event_ids == result.event_ids and _packs(session) == 1
    # the same key with other codes is a conflict, not a second pack
    _refused(
        "idempotency_key_reused",
        lambda: packing.pack(session=session, actor=s.actor, parent=SSCC, codes=s.units[0].code, idempotency_key="k-1"),
        Conflict,
    )
    # and without a key, packing them again is refused line by line
    error = _refused("pack_refused", lambda: packing.pack(session=session, actor=s.actor, parent=SSCC, codes=codes))
    assert [p.code for p in error.problems] == ["already_packed"] * 3  # type: ignore[attr-defined]


def test_a_refused_line_records_nothing_at_all(session: Session) -> None:
    s = _stock(session, 3)
    before = snapshot(session)
    codes = f"{s.units[0].code}\n{s.units[1].code}\nZZZ\n{s.units[2].code}"
    error = _refused(
        "pack_refused",
        lambda: packing.pack(session=session, actor=s.actor, parent=SSCC, codes=codes, idempotency_key="k-2"),
    )
    assert isinstance(error, packing.PackRefused) and error.lines == 4 and error.parent is None
    assert error.details["lines"] == [
        {"line": 3, "text": "ZZZ", "code": "unreadable", "details": {"cause": "code_length"}}
    ]
    assert snapshot(session) == before
    # nor does a refused carton code, or an empty list
    _refused(
        "pack_refused", lambda: packing.pack(session=session, actor=s.actor, parent="12345", codes=s.units[0].code)
    )
    _refused("no_codes", lambda: packing.pack(session=session, actor=s.actor, parent=SSCC, codes="\n \r\n"))
    assert snapshot(session) == before


def test_more_codes_than_one_pack_may_hold_are_refused(session: Session) -> None:
    s = _stock(session, 1)
    _refused(
        "too_many_codes",
        lambda: packing.pack(
            session=session, actor=s.actor, parent=SSCC, codes="\n".join([s.units[0].code] * (packing.MAX_UNITS + 1))
        ),
    )
    assert packing.MAX_UNITS == PackIn.model_fields["children"].metadata[1].max_length == 10_000


def test_two_thousand_lines_are_read_in_a_handful_of_queries_and_packed(session: Session) -> None:
    # given 2,000 labels of two lots, as a scanner sends them (one Digital Link, one human code)
    a, b = _stock(session, 1000), _stock(session, 1000)
    b_code = {u.id: u.code for u in b.units}
    shipped = f.ship(session, b.org, b.lot.id, a.org, "100", days_ago=0.5).shipment_id  # type: ignore[arg-type]
    f.receive(session, a.org, shipped, days_ago=0.4)  # type: ignore[arg-type]
    text = "\r\n".join([a.uri(u) for u in a.units] + [display_code(b_code[u.id]) for u in b.units])
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        read = packing.read_units(session=session, actor=a.actor, text=text)
        took = time.perf_counter() - started
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # then all 2,000 are read, with queries by the batch (not one per line)
    assert read.problems == [] and len(read.refs) == 2000 and read.lots == {a.lot.id: 1000, b.lot.id: 1000}
    assert len(statements) <= 20, len(statements)
    print(f"read 2,000 lines in {took * 1000:.0f} ms, {len(statements)} statements")
    # and packed into one pallet
    started = time.perf_counter()
    result = packing.pack(session=session, actor=a.actor, parent=SSCC, codes=text)
    print(f"packed 2,000 units in {(time.perf_counter() - started) * 1000:.0f} ms")
    packed = session.execute(select(func.count()).select_from(Unit).where(Unit.parent_id == SSCC)).scalar_one()  # type: ignore[arg-type]
    assert packed == 2000 and len(result.event_ids) == 1


def test_a_lot_has_loose_units_until_every_active_package_is_in_a_carton(session: Session) -> None:
    from trace.units import UnitStatus, has_loose_units

    # a lot with no labels has nothing to pack; labelled packages are loose
    bare = f.harvest(session, f.org(session)).lot_ids[0]
    assert not has_loose_units(session=session, lot_id=bare)
    s = _stock(session, 3)
    assert has_loose_units(session=session, lot_id=s.lot.id)  # type: ignore[arg-type]
    # packing some leaves the others loose
    packing.pack(session=session, actor=s.actor, parent=SSCC, codes="\n".join(u.code for u in s.units[:2]))
    assert has_loose_units(session=session, lot_id=s.lot.id)  # type: ignore[arg-type]
    # a voided label is no package to pack
    s.units[2].status = UnitStatus.VOID
    session.add(s.units[2])
    assert not has_loose_units(session=session, lot_id=s.lot.id)  # type: ignore[arg-type]
    # and with every package packed, none is loose
    s.units[2].status = UnitStatus.ACTIVE
    packing.pack(session=session, actor=s.actor, parent=SSCC, codes=s.units[2].code)
    assert not has_loose_units(session=session, lot_id=s.lot.id)  # type: ignore[arg-type]
