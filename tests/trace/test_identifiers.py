"""Tests for trace.identifiers: GS1 check digits, GTIN/GLN normalisation, AI (10)/(21) text."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trace.errors import InvalidIdentifier, RuleViolation
from trace.identifiers import (
    CSET82,
    gs1_check_digit,
    gs1_prefix_country,
    gtin_capacity,
    gtin_display,
    gtin_from_company_prefix,
    is_valid_gln,
    is_valid_gtin,
    normalize_gln,
    normalize_gtin,
    validate_lot_code,
    validate_serial,
)

DIGITS = string.digits


def oracle_valid(number: str) -> bool:
    """Independent check: weights 1,3,1,... from the right over the whole number sum to 0 mod 10."""
    return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(reversed(number))) % 10 == 0


def error_code(fn: Callable[..., Any], *args: Any) -> str:
    with pytest.raises(InvalidIdentifier) as info:
        fn(*args)
    return info.value.code


digit_bodies = st.text(DIGITS, min_size=1, max_size=30)
gtin_lengths = st.sampled_from([8, 12, 13, 14])


@st.composite
def valid_gtins(draw: st.DrawFn) -> str:
    length = draw(gtin_lengths)
    body = draw(st.text(DIGITS, min_size=length - 1, max_size=length - 1))
    return body + gs1_check_digit(body)


# Characters a user might type that GS1 CSET 82 forbids.
NOT_CSET82 = st.one_of(
    st.sampled_from([" ", "#", "Đ", "@", "$", "\t", "\n", "é", "ư", "~", "[", "\\", "`", "\x00"]),
    st.characters().filter(lambda c: c not in CSET82),
)
cset82_text = st.text(st.sampled_from(sorted(CSET82)), min_size=1, max_size=20)


# --- check digit -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("400638133393", "1"),  # EAN-13 4006381333931
        ("952123454321", "3"),  # 3+2+9+4+15+4+9+2+3+2+15+9 = 77 -> 3
        ("03600029145", "2"),  # UPC-A 036000291452
        ("9638507", "4"),  # EAN-8 96385074
        ("0", "0"),
        ("1", "7"),
    ],
)
def test_check_digit_examples(body: str, expected: str) -> None:
    assert gs1_check_digit(body) == expected


@pytest.mark.parametrize("body", ["", "12a4", "12 4", "١٢٣", "²"])
def test_check_digit_rejects_non_digit_body(body: str) -> None:
    assert error_code(gs1_check_digit, body) == "check_digit_body"


@given(digit_bodies)
def test_check_digit_completes_a_valid_number(body: str) -> None:
    assert oracle_valid(body + gs1_check_digit(body))


@given(valid_gtins())
def test_any_body_plus_check_digit_is_a_valid_gtin(gtin: str) -> None:
    assert is_valid_gtin(gtin)


# --- GTIN ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "gtin14"),
    [
        ("4006381333931", "04006381333931"),
        ("9521234543213", "09521234543213"),
        ("036000291452", "00036000291452"),
        ("96385074", "00000096385074"),
        ("10614141000415", "10614141000415"),
        ("  4006381333931\n", "04006381333931"),
    ],
)
def test_normalize_gtin_examples(value: str, gtin14: str) -> None:
    assert normalize_gtin(value) == gtin14


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("4006381333932", "gtin_check_digit"),
        ("036000291453", "gtin_check_digit"),
        ("400638133393", "gtin_check_digit"),  # a 13-digit body read as a GTIN-12
        ("", "gtin_not_digits"),
        ("1234567", "gtin_length"),
        ("123456789012345", "gtin_length"),
        ("4006381 333931", "gtin_not_digits"),
        ("400638133393X", "gtin_not_digits"),
        ("-4006381333931", "gtin_not_digits"),
        ("４００６３８１３３３９３１", "gtin_not_digits"),  # full-width digits
    ],
)
def test_normalize_gtin_rejects(value: str, code: str) -> None:
    assert error_code(normalize_gtin, value) == code
    assert not is_valid_gtin(value)


def test_check_digit_error_names_value_and_expected_digit() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        normalize_gtin("4006381333932")
    assert isinstance(info.value, RuleViolation)
    assert "4006381333932" in info.value.message
    assert "expected 1" in info.value.message
    assert info.value.details["expected"] == "1"


def test_non_string_gtin_is_rejected_cleanly() -> None:
    assert error_code(normalize_gtin, 4006381333931) == "gtin_type"
    assert not is_valid_gtin(None)  # type: ignore[arg-type]


@given(valid_gtins())
def test_normalize_gtin_pads_to_14_preserving_the_number(gtin: str) -> None:
    full = normalize_gtin(gtin)
    assert len(full) == 14
    assert full.endswith(gtin)
    assert int(full) == int(gtin)


@given(valid_gtins())
def test_normalize_gtin_is_idempotent(gtin: str) -> None:
    once = normalize_gtin(gtin)
    assert normalize_gtin(once) == once


@given(valid_gtins(), st.data())
def test_any_single_digit_error_is_detected(gtin: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(gtin) - 1))
    new = data.draw(st.sampled_from([d for d in DIGITS if d != gtin[i]]))
    assert not is_valid_gtin(gtin[:i] + new + gtin[i + 1 :])


def transposition_detected(a: int, b: int) -> bool:
    # Neighbours carry weights 3 and 1, so swapping changes the sum by 2*(a-b); mod 10 that is
    # zero exactly when a-b is a multiple of 5, i.e. |a-b| == 5 for distinct digits.
    return abs(a - b) != 5


@given(valid_gtins(), st.data())
def test_adjacent_transposition_detected_unless_digits_differ_by_5(gtin: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(gtin) - 2))
    assume(gtin[i] != gtin[i + 1])
    swapped = gtin[:i] + gtin[i + 1] + gtin[i] + gtin[i + 2 :]
    assert is_valid_gtin(swapped) is not transposition_detected(int(gtin[i]), int(gtin[i + 1]))


def test_transposition_condition_exhaustively() -> None:
    undetected = set()
    for pos in range(12):  # every adjacent pair of a GTIN-13, the check digit included
        free = 0 if pos > 1 else 6  # a position outside the pair, tuned to make it valid
        for a in range(10):
            for b in range(10):
                if a == b:
                    continue
                for filler in DIGITS:  # weight 3 or 1 at `free` reaches every residue
                    digits = ["0"] * 13
                    digits[free] = filler
                    digits[pos], digits[pos + 1] = str(a), str(b)
                    gtin = "".join(digits)
                    if is_valid_gtin(gtin):
                        break
                assert is_valid_gtin(gtin)
                swapped = gtin[:pos] + gtin[pos + 1] + gtin[pos] + gtin[pos + 2 :]
                if is_valid_gtin(swapped):
                    undetected.add((a, b))
                assert is_valid_gtin(swapped) is not transposition_detected(a, b)
    assert undetected == {(a, b) for a in range(10) for b in range(10) if abs(a - b) == 5}


@pytest.mark.parametrize(
    ("gtin14", "shown"),
    [
        ("04006381333931", "4006381333931"),
        ("00036000291452", "036000291452"),
        ("00000096385074", "96385074"),
        ("10614141000415", "10614141000415"),
        ("4006381333931", "4006381333931"),
    ],
)
def test_gtin_display_examples(gtin14: str, shown: str) -> None:
    assert gtin_display(gtin14) == shown


@given(valid_gtins())
def test_gtin_display_round_trips(gtin: str) -> None:
    full = normalize_gtin(gtin)
    shown = gtin_display(full)
    assert len(shown) in {8, 12, 13, 14}
    assert len(shown) <= len(gtin)
    assert normalize_gtin(shown) == full


# --- GLN -------------------------------------------------------------------------------


def test_normalize_gln() -> None:
    assert normalize_gln("0614141000005") == "0614141000005"
    assert normalize_gln(" 9521234000006 ") == "9521234000006"
    assert is_valid_gln("9521234000006")
    assert error_code(normalize_gln, "0614141000006") == "gln_check_digit"
    assert error_code(normalize_gln, "614141000005") == "gln_length"
    assert error_code(normalize_gln, "00614141000005") == "gln_length"
    assert error_code(normalize_gln, "061414100000O") == "gln_not_digits"
    assert not is_valid_gln("0614141000006")


@given(st.text(DIGITS, min_size=12, max_size=12))
def test_any_gln_body_with_check_digit_is_valid(body: str) -> None:
    assert normalize_gln(body + gs1_check_digit(body)) == body + gs1_check_digit(body)


# --- lot codes and serials ---------------------------------------------------------------


def test_cset82_has_82_characters() -> None:
    assert len(CSET82) == 82
    assert set("!\"%&'()*+,-./:;<=>?_") <= CSET82
    assert not CSET82 & set(" #$@[\\]^`{|}~")


@pytest.mark.parametrize("fn", [validate_lot_code, validate_serial])
@given(value=cset82_text)
def test_cset82_text_of_length_1_to_20_passes(fn: Callable[[str], str], value: str) -> None:
    assert fn(value) == value


@given(
    prefix=st.text(st.sampled_from(sorted(CSET82)), max_size=10),
    bad=NOT_CSET82,
    suffix=st.text(st.sampled_from(sorted(CSET82)), max_size=9),
)
def test_lot_code_with_foreign_character_fails(prefix: str, bad: str, suffix: str) -> None:
    value = prefix + bad + suffix
    with pytest.raises(InvalidIdentifier) as info:
        validate_lot_code(value)
    assert info.value.code == "lot_code_charset"
    assert info.value.details["position"] == len(prefix)
    assert error_code(validate_serial, value) == "serial_charset"


@pytest.mark.parametrize("value", ["", "A" * 21, "L" * 40])
def test_lot_code_length_limits(value: str) -> None:
    assert error_code(validate_lot_code, value) == "lot_code_length"
    assert error_code(validate_serial, value) == "serial_length"


def test_lot_code_examples() -> None:
    assert validate_lot_code("LOT-2024/07.A") == "LOT-2024/07.A"
    assert validate_lot_code("A" * 20) == "A" * 20
    assert validate_serial("SN_0001") == "SN_0001"
    assert error_code(validate_lot_code, "Lô 1") == "lot_code_charset"
    assert error_code(validate_lot_code, 123) == "lot_code_type"


# --- company prefix allocation ------------------------------------------------------------

company_prefixes = st.text(DIGITS, min_size=6, max_size=12)


@given(company_prefixes, st.data())
def test_allocated_gtins_are_valid_and_start_with_prefix(prefix: str, data: st.DataObject) -> None:
    ref = data.draw(st.integers(0, gtin_capacity(prefix) - 1))
    gtin = gtin_from_company_prefix(prefix, ref)
    assert len(gtin) == 14 and gtin[0] == "0"
    assert gtin[1:].startswith(prefix)
    assert is_valid_gtin(gtin) and oracle_valid(gtin)
    assert normalize_gtin(gtin) == gtin
    assert int(gtin[1 + len(prefix) : 13] or "0") == ref


@given(company_prefixes, st.data())
def test_distinct_item_references_give_distinct_gtins(prefix: str, data: st.DataObject) -> None:
    capacity = gtin_capacity(prefix)
    assume(capacity > 1)
    a = data.draw(st.integers(0, capacity - 1))
    b = data.draw(st.integers(0, capacity - 1).filter(lambda n: n != a))
    assert gtin_from_company_prefix(prefix, a) != gtin_from_company_prefix(prefix, b)


def test_company_prefix_examples() -> None:
    assert gtin_from_company_prefix("9521234", 54321) == "09521234543213"
    assert gtin_capacity("9521234") == 100_000
    assert gtin_capacity("893123456789") == 1
    assert gtin_from_company_prefix("893123456789", 0) == "0893123456789" + gs1_check_digit("893123456789")


@pytest.mark.parametrize(
    ("prefix", "ref", "code"),
    [
        ("9521234", 100_000, "gtin_capacity_exhausted"),
        ("9521234", -1, "gtin_capacity_exhausted"),
        ("893123456789", 1, "gtin_capacity_exhausted"),
        ("95212", 1, "company_prefix_length"),
        ("9521234567890", 0, "company_prefix_length"),
        ("952A234", 1, "company_prefix_not_digits"),
        ("", 1, "company_prefix_not_digits"),
        ("9521234", True, "item_reference_type"),
        ("9521234", 1.0, "item_reference_type"),
    ],
)
def test_company_prefix_rejects(prefix: str, ref: int, code: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        gtin_from_company_prefix(prefix, ref)
    assert info.value.code == code
    if code.startswith("company_prefix"):
        assert "company_prefix" in info.value.message


# --- GS1 prefix -> country -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("gtin", "country"),
    [
        ("09521234543213", "DEMO"),
        ("9521234543213", "DEMO"),
        (gtin_from_company_prefix("89312345", 42), "VN"),
        ("18931234500019"[:-1] + gs1_check_digit("1893123450001"), "VN"),  # indicator 1
        ("8931234" + gs1_check_digit("8931234"), "VN"),  # GTIN-8 with GS1-8 prefix 893
        ("4006381333931", None),
        ("036000291452", None),
        ("00000096385074", None),
    ],
)
def test_gs1_prefix_country(gtin: str, country: str | None) -> None:
    assert gs1_prefix_country(gtin) == country
