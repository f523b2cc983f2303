"""GS1 Digital Link URIs for products, lots and units: build them, and read them back.

GS1 Digital Link Standard: URI Syntax (1.2 and later): ``{base}/01/{GTIN-14}``, then the GTIN's key
qualifiers, each optional but in this order: consumer product variant (22), batch/lot (10),
serial (21). Data attributes such as expiry (17) ride in the query string. Pure functions,
standard library only: callers pass the base URL and the hosts they answer for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote, urlsplit

from trace.errors import InvalidIdentifier, shown
from trace.identifiers import CSET82, normalize_gtin, validate_lot_code, validate_serial

__all__ = [
    "DigitalLink",
    "build_uri",
    "lot_uri",
    "parse",
    "parse_path",
    "product_uri",
    "unit_uri",
]

# Path order the standard fixes for a GTIN: the key, then (22), (10), (21).
_ORDER: tuple[str, ...] = ("01", "22", "10", "21")
_NAMES = {"01": "GTIN", "22": "Consumer product variant", "10": "Lot code", "21": "Serial number"}
_MAX_TEXT = 20  # AIs (22), (10) and (21) are all X..20
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_QUERY_SPLIT = re.compile(r"[&;]")  # the standard's ABNF allows both as query delimiters


@dataclass(frozen=True)
class DigitalLink:
    """A GTIN and its key qualifiers as read from a GS1 Digital Link, plus its query."""

    gtin: str
    lot: str | None = None
    serial: str | None = None
    cpv: str | None = None
    attributes: dict[str, str] = field(default_factory=dict, hash=False)
    params: dict[str, str] = field(default_factory=dict, hash=False)
    host: str | None = None

    @property
    def path(self) -> str:
        """The canonical path ``/01/{GTIN-14}[/22/…][/10/…][/21/…]``, values percent-encoded."""
        return _path(self.gtin, self.cpv, self.lot, self.serial)

    def uri(self, base_url: str) -> str:
        """The canonical URI of this GTIN, lot or unit under ``base_url`` (query dropped)."""
        return build_uri(base_url=base_url, gtin=self.gtin, lot=self.lot, serial=self.serial, cpv=self.cpv)


def _fail(code: str, message: str, **details: object) -> InvalidIdentifier:
    return InvalidIdentifier(message, code=code, **details)


def _encode(value: str) -> str:
    # The standard percent-encodes every CSET 82 character outside RFC 3986 "unreserved":
    # ! " % & ' ( ) * + , / : ; < = > ?  — exactly what quote() escapes with safe="" (it keeps
    # only A-Z a-z 0-9 - . _ ~, and ~ is not in CSET 82). Hex digits come out upper case.
    return quote(value, safe="")


def _path(gtin: str, cpv: str | None, lot: str | None, serial: str | None) -> str:
    pairs = zip(_ORDER, (gtin, cpv, lot, serial), strict=True)
    return "".join(f"/{ai}/{_encode(value)}" for ai, value in pairs if value is not None)


def _base(base_url: str) -> str:
    # A base URL is configuration, not scanned input: a bad one is a programming error.
    try:
        parts = urlsplit(base_url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or parts.query or parts.fragment:
        raise ValueError(f"base_url {base_url!r} must be an http(s) URL with a host and no query")
    if "01" in parts.path.split("/"):
        raise ValueError(
            f"base_url {base_url!r} has a path segment '01', which parse() would take for the start of the GTIN"
        )
    return base_url.rstrip("/")


def _check_text(ai: str, value: str) -> str:
    """Validate a decoded (22), (10) or (21) value: 1..20 characters of CSET 82."""
    label = _NAMES[ai]
    if len(value) > _MAX_TEXT:
        raise _fail(
            "dl_too_long",
            f"{label} {shown(value)} has {len(value)} characters; at most {_MAX_TEXT} are allowed",
            ai=ai,
            value=value,
        )
    for position, char in enumerate(value):
        if char not in CSET82:
            raise _fail(
                "dl_bad_chars",
                f"{label} {shown(value)} contains {char!r} at position "
                f"{position}, which is not in GS1 character set 82",
                ai=ai,
                value=value,
                character=char,
                position=position,
            )
    return value


def build_uri(
    *, base_url: str, gtin: str, lot: str | None = None, serial: str | None = None, cpv: str | None = None
) -> str:
    """Return the canonical GS1 Digital Link URI of a product, lot or unit under ``base_url``."""
    return _base(base_url) + _path(
        normalize_gtin(gtin),
        None if cpv is None else _check_text("22", cpv),
        None if lot is None else validate_lot_code(lot),
        None if serial is None else validate_serial(serial),
    )


def product_uri(*, base_url: str, gtin: str) -> str:
    """Return the GS1 Digital Link URI of a product: ``/01/{GTIN-14}``."""
    return build_uri(base_url=base_url, gtin=gtin)


def lot_uri(*, base_url: str, gtin: str, lot: str) -> str:
    """Return the GS1 Digital Link URI of a lot: ``/01/{GTIN-14}/10/{lot}``."""
    return build_uri(base_url=base_url, gtin=gtin, lot=lot)


def unit_uri(*, base_url: str, gtin: str, lot: str, serial: str) -> str:
    """Return the GS1 Digital Link URI of a unit: ``/01/{GTIN-14}/10/{lot}/21/{serial}``."""
    return build_uri(base_url=base_url, gtin=gtin, lot=lot, serial=serial)


def _decode(raw: str, where: str) -> str:
    if _BAD_ESCAPE.search(raw):
        raise _fail("dl_malformed", f"{where} {shown(raw)} has a '%' that is not followed by two hex digits", value=raw)
    # Invalid UTF-8 decodes to U+FFFD, which the CSET 82 check then refuses.
    return unquote(raw)


def _allowed(hosts: Iterable[str]) -> set[str]:
    # Entries may be bare hosts, host:port, or whole base URLs (the instance's public_base_url).
    names = set()
    for entry in [hosts] if isinstance(hosts, str) else hosts:  # one host, not its characters
        entry = entry.strip().lower()
        names.add((urlsplit(entry).netloc if "://" in entry else entry).rstrip("."))
    return names


def parse(uri: str, *, hosts: Iterable[str] | None = None) -> DigitalLink:
    """Read a GS1 Digital Link URI; when ``hosts`` is given, refuse one on any other host."""
    if not isinstance(uri, str):
        raise _fail("dl_malformed", f"A Digital Link must be a string, got {type(uri).__name__}", value=repr(uri))
    try:
        parts = urlsplit(uri.strip())
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise _fail("dl_malformed", f"{shown(uri)} is not a valid URI: {exc}", value=uri) from None
    if parts.scheme not in ("http", "https") or not host:
        raise _fail("dl_malformed", f"{shown(uri)} is not an http(s) URI with a host", value=uri)
    host = host.rstrip(".")
    if hosts is not None:
        allowed = _allowed(hosts)
        if host not in allowed and f"{host}:{port}" not in allowed:
            raise _fail(
                "dl_not_ours",
                f"Host {shown(host)} is not one this instance answers for "
                f"({', '.join(sorted(allowed)) or 'none configured'})",
                value=uri,
                host=host,
            )
    return replace(parse_path(parts.path, parts.query), host=host)


def parse_path(path: str, query: str = "") -> DigitalLink:
    """Read the GS1 part of a raw, still percent-encoded URI path (after any prefix) and query."""
    segments = path.split("/")
    if len(segments) > 1 and segments[-1] == "":
        segments.pop()  # one trailing slash is harmless
    if "01" not in segments:
        raise _fail("dl_malformed", f"Path {shown(path)} has no /01/{{GTIN}}", value=path)
    pairs = segments[segments.index("01") :]
    if "" in pairs:
        raise _fail("dl_malformed", f"Path {shown(path)} has an empty segment after /01/", value=path)
    if len(pairs) % 2:
        raise _fail(
            "dl_malformed", f"Path {shown(path)} ends with AI ({pairs[-1]}) and no value", value=path, ai=pairs[-1]
        )
    values: dict[str, str] = {}
    for key, raw in zip(pairs[::2], pairs[1::2], strict=True):
        if key in values:
            raise _fail("dl_duplicate_ai", f"AI ({key}) appears twice in path {shown(path)}", value=path, ai=key)
        if key not in _ORDER:
            raise _fail(
                "dl_unknown_ai",
                f"AI ({key}) in path {shown(path)} is not a GTIN key qualifier; expected (22), (10) or (21)",
                value=path,
                ai=key,
            )
        after = [ai for ai in values if _ORDER.index(ai) > _ORDER.index(key)]
        if after:
            raise _fail(
                "dl_order",
                f"AI ({key}) must come before AI ({after[0]}) in path {shown(path)}; the order is /01/…/22/…/10/…/21/…",
                value=path,
                ai=key,
            )
        values[key] = _decode(raw, f"AI ({key}) value")
    raw_gtin = values["01"]
    try:
        # normalize_gtin forgives the spaces of a typed form; a URI that encodes them is wrong.
        if raw_gtin != raw_gtin.strip():
            raise _fail("gtin_not_digits", f"GTIN {shown(raw_gtin)} has spaces around it")
        gtin = normalize_gtin(raw_gtin)
    except InvalidIdentifier as exc:
        raise _fail("dl_bad_gtin", f"{exc.message} (in path {shown(path)})", value=raw_gtin, cause=exc.code) from None
    for ai in ("22", "10", "21"):
        if ai in values:
            _check_text(ai, values[ai])
    attributes, params = _query(query, set(values))
    return DigitalLink(
        gtin=gtin,
        cpv=values.get("22"),
        lot=values.get("10"),
        serial=values.get("21"),
        attributes=attributes,
        params=params,
    )


def _query(query: str, in_path: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split a query into GS1 data attributes (all-digit keys) and other parameters."""
    attributes: dict[str, str] = {}
    params: dict[str, str] = {}
    for item in _QUERY_SPLIT.split(query):
        if not item:
            continue
        raw_key, _, raw_value = item.partition("=")
        key, value = _decode(raw_key, "Query key"), _decode(raw_value, "Query value")
        # The standard reserves all-digit keys for AIs; anything else is an extension parameter.
        if not (key.isascii() and key.isdigit()):
            params[key] = value  # a repeated parameter keeps its last value
            continue
        if key in in_path or key in attributes:
            raise _fail("dl_duplicate_ai", f"AI ({key}) is given twice", ai=key, value=query)
        if key in _ORDER:
            raise _fail(
                "dl_order",
                f"AI ({key}) is a key or key qualifier of the GTIN and belongs in the path, not the query",
                ai=key,
                value=query,
            )
        if not 2 <= len(key) <= 4:
            raise _fail(
                "dl_unknown_ai",
                f"Query key {shown(key)} is not a GS1 Application Identifier (2 to 4 digits)",
                ai=key,
                value=query,
            )
        if not value:
            raise _fail("dl_malformed", f"AI ({key}) in the query has no value", ai=key, value=query)
        bad = [char for char in value if char not in CSET82]
        if bad:
            raise _fail(
                "dl_bad_chars",
                f"AI ({key}) value {shown(value)} contains {bad[0]!r}, which is not in GS1 character set 82",
                ai=key,
                value=value,
                character=bad[0],
            )
        attributes[key] = value
    return attributes, params
