"""GS1 identifiers: GTIN, GLN, lot (AI 10) and serial (AI 21) validation and construction.

Pure functions, standard library only, so labels, workers and the API can all share them.
"""

from __future__ import annotations

from string import ascii_letters, digits

from trace.errors import InvalidIdentifier
from trace.errors import shown as quoted

__all__ = [
    "CSET82",
    "GTIN_LENGTHS",
    "gs1_check_digit",
    "gs1_prefix_country",
    "gtin_capacity",
    "gtin_display",
    "gtin_from_company_prefix",
    "is_valid_gln",
    "is_valid_gtin",
    "normalize_gln",
    "normalize_gtin",
    "validate_lot_code",
    "validate_serial",
]

CSET82: frozenset[str] = frozenset("!\"%&'()*+,-./:;<=>?_" + digits + ascii_letters)
"""GS1 AI encodable character set 82 (General Specifications, figure 7.11-1)."""

GTIN_LENGTHS: frozenset[int] = frozenset({8, 12, 13, 14})

_MAX_AI_TEXT = 20  # AI (10) and AI (21) are both X..20

# GS1 prefix -> our label. 952 is reserved by GS1 for demonstrations and examples.
_PREFIX_COUNTRY: dict[str, str] = {"893": "VN", "952": "DEMO"}


def _is_ascii_digits(value: str) -> bool:
    # str.isdigit alone accepts "²" and non-ASCII digits such as "٣", which no scanner emits.
    return value.isascii() and value.isdigit()


def gs1_check_digit(body: str) -> str:
    """Return the GS1 mod-10 check digit for a non-empty ASCII digit string."""
    if not isinstance(body, str) or not body or not _is_ascii_digits(body):
        raise InvalidIdentifier(
            f"Check digit body {body!r} must be a non-empty string of digits 0-9",
            code="check_digit_body",
            value=body,
        )
    # Weights alternate 3,1,3,... starting from the rightmost body digit, whatever the length.
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str(-total % 10)


def _check_numeric(value: object, kind: str, lengths: frozenset[int], shown: str) -> str:
    """Strip whitespace and validate digits, length and check digit of a numeric GS1 key."""
    if not isinstance(value, str):
        raise InvalidIdentifier(
            f"{kind.upper()} must be a string, got {type(value).__name__}",
            code=f"{kind}_type",
            value=repr(value),
        )
    text = value.strip()
    if not _is_ascii_digits(text):
        raise InvalidIdentifier(
            f"{kind.upper()} {quoted(value)} must contain only digits 0-9",
            code=f"{kind}_not_digits",
            value=value,
        )
    if len(text) not in lengths:
        raise InvalidIdentifier(
            f"{kind.upper()} {quoted(value)} has {len(text)} digits; expected {shown}",
            code=f"{kind}_length",
            value=value,
        )
    expected = gs1_check_digit(text[:-1])
    if text[-1] != expected:
        raise InvalidIdentifier(
            f"{kind.upper()} {quoted(text)} has check digit {text[-1]}; expected {expected}",
            code=f"{kind}_check_digit",
            value=text,
            expected=expected,
        )
    return text


def normalize_gtin(value: str) -> str:
    """Validate a GTIN-8/12/13/14 and return its 14-digit form."""
    return _check_numeric(value, "gtin", GTIN_LENGTHS, "8, 12, 13 or 14").zfill(14)


def is_valid_gtin(value: str) -> bool:
    """Tell whether ``value`` is a well-formed GTIN-8/12/13/14."""
    try:
        normalize_gtin(value)
    except InvalidIdentifier:
        return False
    return True


def gtin_display(gtin14: str) -> str:
    """Return the shortest natural form of a GTIN: GTIN-8, -12, -13 or -14."""
    full = normalize_gtin(gtin14)
    # Leading zeros are padding: a GTIN-8 fills 000000xxxxxxxx and a GTIN-12 00xxxxxxxxxxxx
    # (GS1 keeps those GTIN-13 prefixes free precisely so the forms cannot collide).
    for length in (8, 12, 13):
        if full[: 14 - length] == "0" * (14 - length):
            return full[14 - length :]
    return full


def normalize_gln(value: str) -> str:
    """Validate a 13-digit GLN (surrounding whitespace ignored) and return it."""
    return _check_numeric(value, "gln", frozenset({13}), "13")


def is_valid_gln(value: str) -> bool:
    """Tell whether ``value`` is a well-formed GLN."""
    try:
        normalize_gln(value)
    except InvalidIdentifier:
        return False
    return True


def _check_ai_text(value: object, kind: str, label: str) -> str:
    """Validate a CSET 82 field of 1..20 characters, as AI (10) and AI (21) require."""
    if not isinstance(value, str):
        raise InvalidIdentifier(
            f"{label} must be a string, got {type(value).__name__}",
            code=f"{kind}_type",
            value=repr(value),
        )
    if not 1 <= len(value) <= _MAX_AI_TEXT:
        raise InvalidIdentifier(
            f"{label} {quoted(value)} has {len(value)} characters; expected 1 to {_MAX_AI_TEXT}",
            code=f"{kind}_length",
            value=value,
        )
    for position, char in enumerate(value):
        if char not in CSET82:
            raise InvalidIdentifier(
                f"{label} {quoted(value)} contains {char!r} at position {position}, "
                "which is not in GS1 character set 82",
                code=f"{kind}_charset",
                value=value,
                character=char,
                position=position,
            )
    return value


def validate_lot_code(value: str) -> str:
    """Validate a batch/lot number, GS1 AI (10), and return it unchanged."""
    return _check_ai_text(value, "lot_code", "Lot code")


def validate_serial(value: str) -> str:
    """Validate a serial number, GS1 AI (21), and return it unchanged."""
    return _check_ai_text(value, "serial", "Serial number")


def _check_company_prefix(company_prefix: object) -> str:
    if not isinstance(company_prefix, str) or not _is_ascii_digits(company_prefix):
        raise InvalidIdentifier(
            f"company_prefix {company_prefix!r} must contain only digits 0-9",
            code="company_prefix_not_digits",
            value=repr(company_prefix),
        )
    if not 6 <= len(company_prefix) <= 12:
        raise InvalidIdentifier(
            f"company_prefix {company_prefix!r} has {len(company_prefix)} digits; expected 6 to 12",
            code="company_prefix_length",
            value=company_prefix,
        )
    return company_prefix


def gtin_capacity(company_prefix: str) -> int:
    """Return how many GTIN-13s a GS1 company prefix can number."""
    return 10 ** (12 - len(_check_company_prefix(company_prefix)))


def gtin_from_company_prefix(company_prefix: str, item_reference: int) -> str:
    """Build the GTIN-14 (indicator 0) of the GTIN-13 for ``item_reference`` under a prefix."""
    capacity = gtin_capacity(company_prefix)
    # bool is an int subclass; True as an item reference is a bug upstream, not item 1.
    if isinstance(item_reference, bool) or not isinstance(item_reference, int):
        raise InvalidIdentifier(
            f"item_reference {item_reference!r} must be an integer",
            code="item_reference_type",
            value=repr(item_reference),
        )
    if not 0 <= item_reference < capacity:
        raise InvalidIdentifier(
            f"item_reference {item_reference} is outside 0..{capacity - 1} for company prefix {company_prefix!r}",
            code="gtin_capacity_exhausted",
            company_prefix=company_prefix,
            item_reference=item_reference,
            capacity=capacity,
        )
    width = 12 - len(company_prefix)
    # A 12-digit prefix numbers exactly one item and leaves no room for a reference digit.
    body = company_prefix + (str(item_reference).zfill(width) if width else "")
    return "0" + body + gs1_check_digit(body)


def gs1_prefix_country(gtin14: str) -> str | None:
    """Return "VN" (893) or "DEMO" (952) for the GTIN's GS1 prefix, else None."""
    full = normalize_gtin(gtin14)
    # A GTIN-8 carries its GS1-8 prefix in its own first three digits, not after the padding.
    prefix = full[6:9] if full.startswith("000000") else full[1:4]
    return _PREFIX_COUNTRY.get(prefix)
