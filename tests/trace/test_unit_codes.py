"""Unit serials and human codes: the check character catches typing mistakes, a typed code is
forgiven what people get wrong harmlessly and refused otherwise, and registered values never repeat."""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from tests import factories as f
from trace import units
from trace.errors import Conflict, InvalidIdentifier
from trace.lots import Lot
from trace.units import (
    CODE_BODY,
    CODE_LENGTH,
    CROCKFORD,
    Unit,
    check_char,
    display_code,
    new_code,
    new_serial,
    normalize_code,
    register_units,
)

BODIES = st.text(alphabet=CROCKFORD, min_size=CODE_BODY, max_size=CODE_BODY)


def _with_check(body: str) -> str:
    return body + check_char(body)


def _accepted(code: str) -> bool:
    return check_char(code[:-1]) == code[-1]


def _swap(code: str, i: int) -> str:
    return code[:i] + code[i + 1] + code[i] + code[i + 2 :]


def _missed_transpositions(body: str, skip: Callable[[str, str], bool]) -> list[tuple[int, str, str]]:
    """Adjacent swaps of distinct characters the check accepts: every ordered pair of the
    alphabet at every pair of body positions, and every last body character with its check."""
    missed = []
    for i in range(CODE_BODY - 1):
        for a, b in itertools.permutations(CROCKFORD, 2):
            code = _with_check(body[:i] + a + b + body[i + 2 :])
            if not skip(a, b) and _accepted(_swap(code, i)):
                missed.append((i, a, b))
    for a in CROCKFORD:
        code = _with_check(body[:-1] + a)
        if code[-2] != code[-1] and not skip(code[-2], code[-1]) and _accepted(_swap(code, CODE_BODY - 1)):
            missed.append((CODE_BODY - 1, code[-2], code[-1]))
    return missed


@settings(max_examples=20, deadline=None)
@given(body=BODIES)
def test_the_check_character_catches_every_single_character_substitution(body: str) -> None:
    code = _with_check(body)
    assert _accepted(code)
    for i, wrong in itertools.product(range(CODE_LENGTH), CROCKFORD):
        if wrong != code[i]:
            assert not _accepted(code[:i] + wrong + code[i + 1 :]), (code, i, wrong)


@settings(max_examples=5, deadline=None)
@given(body=BODIES)
def test_the_check_character_catches_every_adjacent_transposition(body: str) -> None:
    assert _missed_transpositions(body, skip=lambda a, b: False) == []


_SPELLINGS = {ch: [ch, ch.lower()] for ch in CROCKFORD}
_SPELLINGS["0"] += ["O", "o"]
_SPELLINGS["1"] += ["I", "i", "L", "l"]


@settings(max_examples=100, deadline=None)
@given(body=BODIES, data=st.data())
def test_a_typed_code_is_forgiven_case_spaces_dashes_and_o_i_l(body: str, data: st.DataObject) -> None:
    code = _with_check(body)
    typed = "".join(
        data.draw(st.sampled_from(["", "", "-", " ", " - ", "\t"])) + data.draw(st.sampled_from(_SPELLINGS[ch]))
        for ch in code
    ) + data.draw(st.sampled_from(["", " ", "-"]))
    assert normalize_code(typed) == code


def test_o_i_and_l_are_read_as_the_digits_they_look_like() -> None:
    code = _with_check("01010KQ7")
    assert normalize_code("oIoL0-kq7" + code[-1].lower()) == code


def _refused(typed: str) -> str:
    with pytest.raises(InvalidIdentifier) as info:
        normalize_code(typed)
    return info.value.code


def test_a_typed_code_of_the_wrong_length_is_refused() -> None:
    code = new_code()
    assert _refused(code[:-1]) == "code_length"
    assert _refused(code + "0") == "code_length"
    assert _refused("") == "code_length"
    assert _refused("- -") == "code_length"


def test_a_typed_code_with_a_character_outside_the_alphabet_is_refused() -> None:
    code = new_code()
    for wrong in ("U", "u", "*", "Ư", "#"):
        assert _refused(wrong + code[1:]) == "code_characters", wrong


def test_a_mistyped_code_fails_its_check() -> None:
    code = new_code()
    wrong = CROCKFORD[(CROCKFORD.index(code[3]) + 1) % 32]
    assert _refused(code[:3] + wrong + code[4:]) == "code_check"
    assert _refused(display_code(code[:3] + wrong + code[4:]).lower()) == "code_check"


def test_a_code_is_displayed_in_three_groups_of_three() -> None:
    code = new_code()
    assert display_code(code) == f"{code[0:3]}-{code[3:6]}-{code[6:9]}"
    assert normalize_code(display_code(code)) == code


def test_new_codes_are_checked_crockford_codes_that_do_not_repeat() -> None:
    codes = [new_code() for _ in range(2000)]
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CROCKFORD) and normalize_code(c) == c for c in codes)
    assert len(set(codes)) == len(codes)


def test_a_serial_is_ten_crockford_characters_carrying_fifty_random_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    value = 0x2_5A5A_5A5A_5A5A  # any 50-bit value

    def randbits(k: int) -> int:
        asked.append(k)
        return value & ((1 << k) - 1)

    monkeypatch.setattr(units.secrets, "randbits", randbits)
    serial = new_serial()
    assert asked == [50]
    assert len(serial) == 10 and set(serial) <= set(CROCKFORD)
    # every one of the 50 bits shows in the serial: flipping any of them changes it
    for bit in range(50):
        value ^= 1 << bit
        assert new_serial() != serial, bit
        value ^= 1 << bit
    monkeypatch.undo()
    drawn = {new_serial() for _ in range(2000)}
    assert len(drawn) == 2000 and all(len(s) == 10 and set(s) <= set(CROCKFORD) for s in drawn)


def _scripted(monkeypatch: pytest.MonkeyPatch, scripts: dict[int, list[str]]) -> None:
    """Make the random source return the given strings, per length, in order (then fail loudly)."""
    streams: dict[int, Iterator[str]] = {length: iter(values) for length, values in scripts.items()}
    monkeypatch.setattr(units, "_random_base32", lambda length: next(streams[length]))


def _scripted_then_random(monkeypatch: pytest.MonkeyPatch, scripts: dict[int, list[str]]) -> None:
    """The given strings per length first, then real random ones."""
    real = units._random_base32
    streams: dict[int, Iterator[str]] = {length: iter(values) for length, values in scripts.items()}
    monkeypatch.setattr(units, "_random_base32", lambda length: next(streams[length], None) or real(length))


def test_register_units_retries_repeated_and_taken_values(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a lot with a unit, and a unit with a code in another lot
    coop = f.org(session)
    harvest = f.harvest(session, coop, "100")
    lot_id, event_id = harvest.lot_ids[0], harvest.event_ids[0]
    other_lot = f.harvest(session, coop, "100").lot_ids[0]
    ((old_serial, _),) = register_units(session=session, lot_id=lot_id, count=1, event_id=event_id)
    ((_, old_code),) = register_units(session=session, lot_id=other_lot, count=1, event_id=event_id)
    s1, s2, s3 = "1" * 10, "2" * 10, "3" * 10
    b1, b2, b3 = "1" * 8, "2" * 8, "3" * 8
    old_body = old_code[:-1]
    # when the random source repeats itself and hits values already taken (each row's serial and code
    # are drawn separately: the insert skips a row that repeats either, and the row is drawn again)
    _scripted_then_random(monkeypatch, {10: [s1, s1, old_serial, s2, old_serial, s3], 8: [b1, old_body, b1, b2, b3]})
    made = register_units(session=session, lot_id=lot_id, count=3, event_id=event_id)
    # then it has three new values of each, none repeated and none taken
    serials_made, codes_made = [s for s, _ in made], [c for _, c in made]
    assert len(made) == len(set(serials_made)) == len(set(codes_made)) == 3
    assert old_serial not in serials_made and old_code not in codes_made
    assert {s1, s2} <= set(serials_made) or {s1, s3} <= set(serials_made) or {s2, s3} <= set(serials_made)
    serials = list(session.exec(select(Unit.serial).where(Unit.lot_id == lot_id)))
    assert sorted(serials) == sorted([old_serial, *serials_made])
    codes = list(session.exec(select(Unit.code).where(col(Unit.lot_id).in_([lot_id, other_lot]))))
    assert len(codes) == len(set(codes)) == 5
    assert _with_check(old_body) == old_code and {c for _, c in made} & {_with_check(b) for b in (b1, b2, b3)}


def test_register_units_gives_unique_serials_and_codes_in_bulk(session: Session) -> None:
    coop = f.org(session)
    harvest = f.harvest(session, coop, "100")
    made = register_units(session=session, lot_id=harvest.lot_ids[0], count=1500, event_id=harvest.event_ids[0])
    assert len({s for s, _ in made}) == len({c for _, c in made}) == 1500
    stored = dict(session.exec(select(Unit.serial, Unit.code).where(Unit.lot_id == harvest.lot_ids[0])).all())
    assert stored == dict(made)


def test_named_serials_taken_meanwhile_are_the_callers_conflict(session: Session) -> None:
    coop = f.org(session)
    harvest = f.harvest(session, coop, "100")
    lot_id, event_id = harvest.lot_ids[0], harvest.event_ids[0]
    ((taken, _),) = register_units(session=session, lot_id=lot_id, count=1, event_id=event_id)
    with pytest.raises(Conflict) as refused:
        register_units(session=session, lot_id=lot_id, count=2, event_id=event_id, serials=["NEWSERIAL1", taken])
    assert refused.value.code == "unit_exists" and taken in str(refused.value)


# --- twenty registrations of one lot at once, on PostgreSQL -------------------------------------------------

POOL = [f"R{i:09d}" for i in range(3000)]  # a tiny serial space: the racers must collide


def _register_racing(url: str, lot_id: int, start: Any, racer: int) -> list[str]:
    import random
    import threading

    from trace.platform.db import make_engine, session_scope

    units.new_serial = lambda bits=50: random.choice(POOL)  # type: ignore[assignment]
    engine = make_engine(url, pool_size=12)
    made: list[str] = []
    start.wait()

    def worker(n: int) -> None:
        with session_scope(engine) as session:
            # as a commission does (trace/events/capture.py): under the lot's row lock
            session.execute(select(Lot).where(Lot.id == lot_id).with_for_update())
            written = register_units(session=session, lot_id=lot_id, count=100, event_id=f"race-{racer}-{n}")
        made.extend(serial for serial, _ in written)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    return made


def test_twenty_registrations_of_one_lot_at_once_give_every_unit_once(postgres_engine: Engine) -> None:
    # given a lot, on PostgreSQL; when 20 registrations of 100 units each run at once in two processes,
    # drawing serials from a space so small that they collide all the time
    with Session(postgres_engine) as session:
        harvest = f.harvest(session, f.org(session), "100")
        session.commit()
    lot_id = harvest.lot_ids[0]
    url = postgres_engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Event()
    with context.Pool(2) as pool:
        results = [pool.apply_async(_register_racing, (url, lot_id, start, racer)) for racer in range(2)]
        start.set()
        made = [serial for r in results for serial in r.get(timeout=300)]
    # then all 2,000 were registered, each serial once, each run with its 100
    with Session(postgres_engine) as session:
        rows = session.exec(select(Unit.serial, Unit.created_event_id).where(Unit.lot_id == lot_id)).all()
    assert len(made) == len(set(made)) == len(rows) == 2000
    assert sorted(made) == sorted(serial for serial, _ in rows)
    per_run = Counter(event for _, event in rows)
    assert len(per_run) == 20 and set(per_run.values()) == {100}
