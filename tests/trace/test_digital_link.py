"""GS1 Digital Link URIs: what we build reads back (in ours and in biip), every valid form parses,
every invalid one is refused with a machine-readable reason."""

from __future__ import annotations

import re
import string
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import require
from trace.digital_link import (
    DigitalLink,
    build_uri,
    lot_uri,
    parse,
    parse_path,
    product_uri,
    unit_uri,
)
from trace.errors import InvalidIdentifier
from trace.identifiers import CSET82

# The standard's percent-encodings for CSET 82 (URI Syntax ABNF: Exclamation = "%21", ...).
# '"' is listed literally there, but RFC 3986 has no place for it unencoded, so it is %22.
STANDARD_ESCAPES = {
    "!": "%21",
    '"': "%22",
    "%": "%25",
    "&": "%26",
    "'": "%27",
    "(": "%28",
    ")": "%29",
    "*": "%2A",
    "+": "%2B",
    ",": "%2C",
    "/": "%2F",
    ":": "%3A",
    ";": "%3B",
    "<": "%3C",
    "=": "%3D",
    ">": "%3E",
    "?": "%3F",
}
# CSET 82 characters RFC 3986 allows bare in a path segment: scanners and other printers emit them.
BARE_IN_PATH = "!&'()*+,;=:"

BASES = ["https://truyxuat.hungyen.gov.vn", "http://127.0.0.1:8000", "https://example.vn/dl", "https://example.vn/dl/"]
GTIN14 = "09520123456788"  # GTIN-13 9520123456788 (952: GS1's prefix for examples)


def check_digit(body: str) -> str:
    """GS1 mod-10, written out independently: weights 3,1,3,... from the right of the body."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


gtins = (
    st.sampled_from([8, 12, 13, 14])
    .flatmap(lambda n: st.text(string.digits, min_size=n - 1, max_size=n - 1))
    .map(lambda b: b + check_digit(b))
)
texts = st.text(alphabet=sorted(CSET82), min_size=1, max_size=20)
bases = st.sampled_from(BASES)


def host_of(base: str) -> str:
    return base.split("://")[1].split("/")[0].split(":")[0]


def fields(link: DigitalLink) -> tuple[str, str | None, str | None, str | None]:
    return link.gtin, link.cpv, link.lot, link.serial


def refusal(uri: str, **kwargs: Any) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as info:
        parse(uri, **kwargs)
    return info.value


# --- building ---------------------------------------------------------------------------------


def test_product_lot_and_unit_uris_put_qualifiers_in_the_standard_order() -> None:
    base = "https://truyxuat.hungyen.gov.vn"
    assert product_uri(base_url=base, gtin="9520123456788") == f"{base}/01/{GTIN14}"
    assert lot_uri(base_url=base, gtin=GTIN14, lot="L1") == f"{base}/01/{GTIN14}/10/L1"
    assert unit_uri(base_url=base + "/", gtin=GTIN14, lot="L1", serial="7") == f"{base}/01/{GTIN14}/10/L1/21/7"
    assert (
        build_uri(base_url="https://example.vn/dl", gtin="95200002", serial="S", cpv="V", lot="L")
        == "https://example.vn/dl/01/00000095200002/22/V/10/L/21/S"
    )


@pytest.mark.parametrize("char", sorted(CSET82))
def test_each_cset82_character_is_written_as_the_standard_says(char: str) -> None:
    uri = unit_uri(base_url="https://x.vn", gtin=GTIN14, lot=f"A{char}", serial=f"{char}B")
    expected = STANDARD_ESCAPES.get(char, char)
    assert uri == f"https://x.vn/01/{GTIN14}/10/A{expected}/21/{expected}B"


def test_the_escape_table_is_cset82_less_the_uri_unreserved_characters() -> None:
    unreserved = set(string.ascii_letters + string.digits + "-._")
    assert set(STANDARD_ESCAPES) == CSET82 - unreserved


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"gtin": "09520123456789"}, "gtin_check_digit"),
        ({"gtin": GTIN14, "lot": "lô 1"}, "lot_code_charset"),
        ({"gtin": GTIN14, "lot": "L" * 21}, "lot_code_length"),
        ({"gtin": GTIN14, "lot": "L", "serial": ""}, "serial_length"),
        ({"gtin": GTIN14, "serial": "a~b"}, "serial_charset"),
        ({"gtin": GTIN14, "cpv": "V" * 21}, "dl_too_long"),
    ],
)
def test_building_refuses_what_the_standard_cannot_carry(kwargs: dict[str, str], code: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        build_uri(base_url="https://x.vn", **kwargs)
    assert info.value.code == code


@pytest.mark.parametrize("base", ["ftp://x.vn", "x.vn", "https:///dl", "https://x.vn/?a=1", "https://x.vn/01/dl"])
def test_a_bad_base_url_is_a_programming_error(base: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        product_uri(base_url=base, gtin=GTIN14)


# --- round trips ------------------------------------------------------------------------------


@given(base=bases, gtin=gtins, lot=st.none() | texts, serial=st.none() | texts, cpv=st.none() | texts)
def test_what_we_build_parses_back_to_the_same_normalised_values(
    base: str, gtin: str, lot: str | None, serial: str | None, cpv: str | None
) -> None:
    uri = build_uri(base_url=base, gtin=gtin, lot=lot, serial=serial, cpv=cpv)
    link = parse(uri, hosts=[host_of(base)])
    assert fields(link) == (gtin.rjust(14, "0"), cpv, lot, serial)
    assert link.host == host_of(base) and link.attributes == {} and link.params == {}
    # Only unreserved characters and %XX escapes may follow the base.
    assert re.fullmatch(r"(/|[A-Za-z0-9._-]|%[0-9A-F]{2})+", uri[len(base.rstrip("/")) :])


def _non_canonical(uri: str, base: str, gtin: str) -> str:
    """The same link as another printer might write it: short GTIN, bare sub-delims, lower-case
    escapes, a trailing slash and a query."""
    tail = uri[len(base.rstrip("/")) :].replace(f"/01/{gtin.rjust(14, '0')}", f"/01/{gtin}")
    for char in BARE_IN_PATH:
        tail = tail.replace(STANDARD_ESCAPES[char], char)
    tail = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), tail)
    return f"{base.rstrip('/')}{tail}/?17=261231&linkType=gs1:pip"


@given(base=bases, gtin=gtins, lot=st.none() | texts, serial=st.none() | texts)
def test_parse_then_build_is_canonical_and_idempotent(
    base: str, gtin: str, lot: str | None, serial: str | None
) -> None:
    canonical = build_uri(base_url=base, gtin=gtin, lot=lot, serial=serial)
    variant = parse(_non_canonical(canonical, base, gtin))
    assert fields(variant) == fields(parse(canonical))
    assert variant.attributes == {"17": "261231"} and variant.params == {"linkType": "gs1:pip"}
    assert variant.uri(base) == canonical
    assert parse(variant.uri(base)).uri(base) == canonical
    assert base.rstrip("/") + parse(canonical).path == canonical


# --- biip, an independent reader ----------------------------------------------------------------


@pytest.fixture(scope="module")
def biip() -> ModuleType:
    try:
        import biip
    except ImportError:
        biip = None  # type: ignore[assignment]
    require(biip is not None, "biip is not installed (pip install -e '.[test]')")
    return biip


def biip_reads(biip: ModuleType, uri: str) -> tuple[str, str | None, str | None]:
    result = biip.parse(uri)
    assert result.gs1_digital_link_uri is not None, result.gs1_digital_link_uri_error
    strings = result.gs1_digital_link_uri.element_strings
    lot, serial = strings.get(ai="10"), strings.get(ai="21")
    return (strings.get(ai="01").value, lot and lot.value, serial and serial.value)


@pytest.mark.parametrize(
    ("lot", "serial"), [("L2025-01", "000123"), ("A/B%1", "S?1&2"), ("(x)*+,:;=", "!\"'<>"), ("%25%2F", "-._")]
)
def test_biip_reads_back_what_we_write(biip: ModuleType, lot: str, serial: str) -> None:
    uri = unit_uri(base_url="https://example.vn/dl", gtin="9520123456788", lot=lot, serial=serial)
    assert biip_reads(biip, uri) == (GTIN14, lot, serial)


@given(base=bases, gtin=gtins, lot=st.none() | texts, serial=st.none() | texts)
def test_biip_agrees_on_any_link_we_build(
    biip: ModuleType, base: str, gtin: str, lot: str | None, serial: str | None
) -> None:
    uri = build_uri(base_url=base, gtin=gtin, lot=lot, serial=serial)
    assert biip_reads(biip, uri) == (gtin.rjust(14, "0"), lot, serial)


# --- every valid form ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"https://h.vn/01/{GTIN14}", (GTIN14, None, None, None)),
        (f"https://h.vn/01/{GTIN14}/10/L1", (GTIN14, None, "L1", None)),
        (f"https://h.vn/01/{GTIN14}/10/L1/21/S1", (GTIN14, None, "L1", "S1")),
        (f"https://h.vn/01/{GTIN14}/10/L1/21/S1/", (GTIN14, None, "L1", "S1")),
        (f"https://h.vn/01/{GTIN14}/22/V-1/10/L1/21/S1", (GTIN14, "V-1", "L1", "S1")),
        (f"https://h.vn/01/{GTIN14}/22/V-1", (GTIN14, "V-1", None, None)),
        (f"https://h.vn/01/{GTIN14}/21/S1", (GTIN14, None, None, "S1")),
        (f"https://h.vn/01/{GTIN14}/10/A%2FB%2fC%25", (GTIN14, None, "A/B/C%", None)),
        (f"https://h.vn/01/{GTIN14}/10/%41%2d1", (GTIN14, None, "A-1", None)),
        (f"https://h.vn/01/{GTIN14}/10/(a)!*", (GTIN14, None, "(a)!*", None)),
        ("https://h.vn/01/95200002/10/L", ("00000095200002", None, "L", None)),
        ("https://h.vn/01/614141123452", ("00614141123452", None, None, None)),
        ("https://h.vn/01/9520123456788", (GTIN14, None, None, None)),
        (f"https://h.vn/a/b/01/{GTIN14}/10/L", (GTIN14, None, "L", None)),
        (f"HTTPS://H.VN/01/{GTIN14}#top", (GTIN14, None, None, None)),
    ],
)
def test_every_valid_form_is_read(uri: str, expected: tuple[str, str | None, str | None, str | None]) -> None:
    link = parse(uri)
    assert fields(link) == expected and link.host == "h.vn"


def test_the_query_splits_into_gs1_attributes_and_other_parameters() -> None:
    link = parse(f"https://h.vn/01/{GTIN14}/10/L1?17=261231&3103=000500&linkType=gs1%3Apip;lang=vi&7007=2501%2F2")
    assert link.attributes == {"17": "261231", "3103": "000500", "7007": "2501/2"}
    assert link.params == {"linkType": "gs1:pip", "lang": "vi"}
    assert link.lot == "L1"


def test_parse_path_reads_what_a_resolver_sees() -> None:
    link = parse_path(f"/dl/01/{GTIN14}/10/A%2FB/21/7", "17=261231&lang=en")
    assert fields(link) == (GTIN14, None, "A/B", "7") and link.host is None
    assert link.attributes == {"17": "261231"} and link.params == {"lang": "en"}
    assert link.path == f"/01/{GTIN14}/10/A%2FB/21/7"


# --- every refusal ------------------------------------------------------------------------------

G = f"https://h.vn/01/{GTIN14}"


@pytest.mark.parametrize(
    ("uri", "code", "named"),
    [
        ("https://h.vn/01/09520123456789", "dl_bad_gtin", "check digit 9; expected 8"),
        ("https://h.vn/01/95201234567", "dl_bad_gtin", "11 digits"),
        ("https://h.vn/01/0952O123456788", "dl_bad_gtin", "only digits"),
        ("https://h.vn/01/%2009520123456788", "dl_bad_gtin", "spaces"),
        (f"{G}/21/S/10/L", "dl_order", "(10) must come before AI (21)"),
        (f"{G}/10/L/22/V", "dl_order", "(22) must come before AI (10)"),
        (f"{G}?10=L", "dl_order", "belongs in the path"),
        (f"{G}/99/x", "dl_unknown_ai", "AI (99)"),
        (f"{G}/lot/L", "dl_unknown_ai", "AI (lot)"),
        (f"{G}?12345=1", "dl_unknown_ai", "'12345'"),
        (f"{G}/10/a/10/b", "dl_duplicate_ai", "AI (10) appears twice"),
        (f"{G}/01/{GTIN14}", "dl_duplicate_ai", "AI (01) appears twice"),
        (f"{G}?17=261231&17=270101", "dl_duplicate_ai", "AI (17)"),
        (f"{G}/10/L?10=L", "dl_duplicate_ai", "AI (10)"),
        (f"{G}/10/a%20b", "dl_bad_chars", "' ' at position 1"),
        (f"{G}/10/l%C3%B4", "dl_bad_chars", "'ô'"),
        (f"{G}/21/a~b", "dl_bad_chars", "'~'"),
        (f"{G}/22/%FF", "dl_bad_chars", "Consumer product variant"),
        (f"{G}?17=26%2012", "dl_bad_chars", "AI (17)"),
        (f"{G}/10/{'L' * 21}", "dl_too_long", "21 characters"),
        (f"{G}/10/L/21/{'%2F' * 21}", "dl_too_long", "Serial number"),
        ("ftp://h.vn/01/09520123456788", "dl_malformed", "http(s)"),
        ("/01/09520123456788", "dl_malformed", "http(s)"),
        ("https://h.vn/gtin/09520123456788", "dl_malformed", "no /01/"),
        (f"{G}/10", "dl_malformed", "AI (10) and no value"),
        (f"{G}//10/L", "dl_malformed", "empty segment"),
        (f"{G}/10/L%2", "dl_malformed", "two hex digits"),
        (f"{G}?17=", "dl_malformed", "no value"),
        ("https://[::1/01/09520123456788", "dl_malformed", "not a valid URI"),
    ],
)
def test_invalid_forms_are_refused_with_a_reason(uri: str, code: str, named: str) -> None:
    error = refusal(uri)
    assert error.code == code, error.message
    assert named in error.message


def test_a_refusal_is_an_invalid_identifier_with_details() -> None:
    error = refusal(f"{G}/21/S/10/L")
    assert error.details["ai"] == "10" and isinstance(error, InvalidIdentifier)
    assert refusal("https://h.vn/01/09520123456789").details["cause"] == "gtin_check_digit"


def test_a_non_string_is_malformed() -> None:
    assert refusal(b"https://h.vn/01/09520123456788").code == "dl_malformed"  # type: ignore[arg-type]


# --- hosts --------------------------------------------------------------------------------------

HOSTS = ["truyxuat.hungyen.gov.vn", "QR.hytrace.vn", "127.0.0.1:8000"]


@pytest.mark.parametrize(
    "uri",
    [
        f"https://truyxuat.hungyen.gov.vn/01/{GTIN14}",
        f"https://qr.hytrace.vn/01/{GTIN14}/10/L",
        f"http://Truyxuat.HungYen.gov.vn./01/{GTIN14}",
        f"http://127.0.0.1:8000/01/{GTIN14}",
    ],
)
def test_links_on_our_hosts_are_accepted(uri: str) -> None:
    assert parse(uri, hosts=HOSTS).gtin == GTIN14


@pytest.mark.parametrize(
    "uri",
    [
        f"https://id.gs1.org/01/{GTIN14}",
        f"https://truyxuat.hungyen.gov.vn.evil.com/01/{GTIN14}",
        f"https://evil.com/truyxuat.hungyen.gov.vn/01/{GTIN14}",
        f"http://127.0.0.1:9000/01/{GTIN14}",
    ],
)
def test_links_on_other_hosts_are_not_ours(uri: str) -> None:
    error = refusal(uri, hosts=HOSTS)
    assert error.code == "dl_not_ours" and error.details["host"] in error.message


def test_a_base_url_may_stand_for_a_host_and_no_hosts_means_any() -> None:
    uri = f"http://127.0.0.1:8000/01/{GTIN14}"
    assert parse(uri, hosts=["http://127.0.0.1:8000/dl"]).host == "127.0.0.1"
    assert parse(f"https://anything.example/01/{GTIN14}").host == "anything.example"
    assert refusal(uri, hosts=[]).code == "dl_not_ours"
    assert parse(uri, hosts="127.0.0.1").host == "127.0.0.1"
    assert refusal(uri, hosts="127.0.0").code == "dl_not_ours"
