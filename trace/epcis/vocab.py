"""Identifiers and vocabulary both ways: our rows ↔ EPC / EPC class / GS1 Digital Link URIs, CBV words, UOMs.

URIs we write:
- a lot: ``urn:epc:class:lgtin:<company prefix>.<indicator+item ref>.<lot>`` when its GTIN is under the
  instance's company prefix (the only prefix whose length we know), else the GS1 Digital Link
  ``<public base>/01/<GTIN-14>/10/<lot>`` (EPCIS 2.0 accepts both);
- a unit: ``<public base>/01/<GTIN-14>/10/<lot>/21/<serial>`` (an SGTIN would drop the lot, and our
  serials are unique per lot, not per GTIN);
- a place or party with a GLN: ``https://id.gs1.org/414/<GLN>`` / ``.../417/<GLN>``; without one, our own
  ``<public base>/epcis/id/location/<kind>/<code>`` (or ``.../location/<id>`` when it has no code) and
  ``<public base>/epcis/id/org/<tax code>``.
We read those and the other common forms (SGTIN, LGTIN, SGLN, Digital Links of any host).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from trace.errors import InvalidIdentifier
from trace.identifiers import gs1_check_digit, normalize_gln, normalize_gtin
from trace.platform.config import get_settings

CONTEXT_URL = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
NAMESPACE = "https://hytrace.vn/ns/epcis#"
PREFIX = "hytrace"
# Our extension terms, and the CBV master-data namespace (declared again so any reader can expand it).
EXTRA_CONTEXT = {PREFIX: NAMESPACE, "cbvmda": "urn:epcglobal:cbv:mda:"}
GS1_ID = "https://id.gs1.org"

# UN/ECE Recommendation 20 codes, as CBV's quantity uom wants them.
UOM = {"kg": "KGM", "g": "GRM", "t": "TNE", "l": "LTR", "head": "H87", "piece": "H87", "box": "BX", "bag": "BG"}
CBV_BTT = (
    "bol",
    "cert",
    "desadv",
    "inv",
    "pedigree",
    "po",
    "poc",
    "prodorder",
    "recadv",
    "rma",
    "testprd",
    "testres",
    "upevt",
)
# EPC URI escapes (GS1 Tag Data Standard, table A-1): these CSET 82 characters are %-encoded in URNs.
_URN_ESCAPE = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
_URN_TABLE = str.maketrans(_URN_ESCAPE)
_CLASS_LGTIN = re.compile(r"^urn:epc:class:lgtin:(\d{6,12})\.(\d{1,7})\.(.+)$")
_ID_SGTIN = re.compile(r"^urn:epc:id:sgtin:(\d{6,12})\.(\d{1,7})\.(.+)$")
_ID_SGLN = re.compile(r"^urn:epc:id:sgln:(\d{6,12})\.(\d{0,6})\.(.*)$")
_ID_SSCC = re.compile(r"^urn:epc:id:sscc:(\d{6,12})\.(\d{5,11})$")
_DL_PATH = re.compile(r"^(?:.*?)/(01|414|417|00)/([0-9]{13,18})((?:/[0-9]{2,4}/[^/]+)*)/?$")


def base() -> str:
    """The instance's public base URL (no trailing slash)."""
    return get_settings().public_base_url


def _urn_escape(text: str) -> str:
    return text.translate(_URN_TABLE)


def _dl_escape(text: str) -> str:
    return quote(text, safe="-._~'()*!,;=:@")  # what GS1 Digital Link leaves as it is, minus '/' '%' '?' '#'


def lot_class(gtin: str, lot_code: str, prefix: str | None = None) -> str:
    """The EPC class URI of a lot (LGTIN when the company prefix is ours, else a Digital Link)."""
    prefix = get_settings().gtin_company_prefix if prefix is None else prefix
    if prefix and gtin[1 : 1 + len(prefix)] == prefix:
        item = gtin[0] + gtin[1 + len(prefix) : 13]
        return f"urn:epc:class:lgtin:{prefix}.{item}.{_urn_escape(lot_code)}"
    return f"{base()}/01/{gtin}/10/{_dl_escape(lot_code)}"


def unit_uri(gtin: str, lot_code: str, serial: str) -> str:
    """The Digital Link of a unit."""
    return f"{base()}/01/{gtin}/10/{_dl_escape(lot_code)}/21/{_dl_escape(serial)}"


def location_uri(*, location_id: int, gln: str | None, kind: str, code: str | None) -> str:
    """A location's URI: its GLN's Digital Link, or ours (by planting-area/facility code, else by id)."""
    if gln:
        return f"{GS1_ID}/414/{gln}"
    if code:
        return f"{base()}/epcis/id/location/{kind}/{quote(code, safe='')}"
    return f"{base()}/epcis/id/location/{location_id}"


def party_uri(*, gln: str | None, tax_code: str) -> str:
    """An organisation's URI: its party GLN, or ours by tax code."""
    if gln:
        return f"{GS1_ID}/417/{gln}"
    return f"{base()}/epcis/id/org/{quote(tax_code, safe='')}"


def withheld_party_uri(organisation_id: int) -> str:
    """A household's URI for a reader who may not see who it is: our number for it, nothing more."""
    return f"{base()}/epcis/id/party/{organisation_id}"


def biz_transaction_uri(value: str) -> str:
    """A business document id as a URI (ids that are URIs already stay as they are)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value):
        return value
    return f"{base()}/epcis/id/bt/{quote(value, safe='')}"


def biz_transaction_id(uri: str) -> str:
    """The document id a :func:`biz_transaction_uri` came from."""
    ours = f"{base()}/epcis/id/bt/"
    return unquote(uri[len(ours) :]) if uri.startswith(ours) else uri


def parent_uri(parent: str) -> str:
    """A carton's or pallet's id as a URI: an SSCC's Digital Link, a URI as given, else ours."""
    if re.fullmatch(r"\d{18}", parent):
        return f"{GS1_ID}/00/{parent}"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", parent):
        return parent
    return f"{base()}/epcis/id/parent/{quote(parent, safe='')}"


# --------------------------------------------------------------------------- reading URIs


@dataclass(frozen=True)
class Ref:
    """What a URI names: ``kind`` is lot, unit, gln_location, location_code, location_id, gln_party,
    party_tax_code, party_id or other; the other fields are filled for the kinds that have them."""

    kind: str
    gtin: str | None = None
    lot: str | None = None
    serial: str | None = None
    gln: str | None = None
    code: str | None = None
    location_kind: str | None = None
    number: int | None = None


@lru_cache(maxsize=4096)
def _gtin_from(prefix: str, item: str) -> str:
    # Cached: the lots of one product share it (a bad one raises, and is not cached).
    body = item[:1] + prefix + item[1:]
    if len(body) != 13:
        raise InvalidIdentifier(
            f"{prefix}.{item} is not a company prefix and item reference of 13 digits", code="epc_bad_gtin"
        )
    return body + gs1_check_digit(body)


def _gln_from(prefix: str, ref: str) -> str:
    body = prefix + ref
    if len(body) != 12:
        raise InvalidIdentifier(
            f"{prefix}.{ref} is not a company prefix and location reference of 12 digits", code="epc_bad_gln"
        )
    return body + gs1_check_digit(body)


def _ours(uri: str) -> str | None:
    """The path after ``/epcis/id/`` of one of our own URIs (any of our public hosts), else None."""
    parts = urlsplit(uri)
    hosts = get_settings().public_hosts
    if parts.netloc.lower() not in hosts or not parts.path.startswith("/epcis/id/"):
        return None
    return parts.path[len("/epcis/id/") :]


def read(uri: str) -> Ref:
    """What an EPC, EPC class, Digital Link or one of our URIs identifies (``other`` when we cannot tell)."""
    if m := _CLASS_LGTIN.match(uri):
        return Ref("lot", gtin=normalize_gtin(_gtin_from(m[1], m[2])), lot=unquote(m[3]))
    if m := _ID_SGTIN.match(uri):
        return Ref("unit", gtin=normalize_gtin(_gtin_from(m[1], m[2])), serial=unquote(m[3]))
    if m := _ID_SGLN.match(uri):
        return Ref("gln_location", gln=normalize_gln(_gln_from(m[1], m[2])))
    path = _ours(uri)
    if path is not None:
        bits = [unquote(b) for b in path.split("/")]
        if bits[0] == "location" and len(bits) == 3:
            return Ref("location_code", location_kind=bits[1], code=bits[2])
        if bits[0] == "location" and len(bits) == 2 and bits[1].isdigit():
            return Ref("location_id", number=int(bits[1]))
        if bits[0] == "org" and len(bits) == 2:
            return Ref("party_tax_code", code=bits[1])
        if bits[0] == "party" and len(bits) == 2 and bits[1].isdigit():
            return Ref("party_id", number=int(bits[1]))
        return Ref("other")
    if uri.startswith(("https://", "http://")) and (m := _DL_PATH.match(urlsplit(uri).path)):
        key, value, rest = m[1], m[2], m[3]
        pairs = rest.strip("/").split("/") if rest else []
        quals = {pairs[i]: unquote(pairs[i + 1]) for i in range(0, len(pairs) - 1, 2)}
        if key == "01":
            gtin = normalize_gtin(value)
            if "21" in quals:
                return Ref("unit", gtin=gtin, lot=quals.get("10"), serial=quals["21"])
            if "10" in quals:
                return Ref("lot", gtin=gtin, lot=quals["10"])
            return Ref("other", gtin=gtin)
        if key == "414":
            return Ref("gln_location", gln=normalize_gln(value))
        if key == "417":
            return Ref("gln_party", gln=normalize_gln(value))
    return Ref("other")


def canonical_dl(uri: str) -> str | None:
    """The constrained canonical GS1 Digital Link of a URI carrying a GS1 key (CBV 2.0 hash id rules),
    or None for any other URI."""
    if m := _CLASS_LGTIN.match(uri):
        return f"{GS1_ID}/01/{_gtin_from(m[1], m[2]).zfill(14)}/10/{_dl_escape(unquote(m[3]))}"
    if m := _ID_SGTIN.match(uri):
        return f"{GS1_ID}/01/{_gtin_from(m[1], m[2]).zfill(14)}/21/{_dl_escape(unquote(m[3]))}"
    if m := _ID_SGLN.match(uri):
        gln = _gln_from(m[1], m[2])
        return f"{GS1_ID}/414/{gln}" + (f"/254/{_dl_escape(unquote(m[3]))}" if m[3] not in ("", "0") else "")
    if m := _ID_SSCC.match(uri):
        body = m[2][:1] + m[1] + m[2][1:]
        return f"{GS1_ID}/00/{body}{gs1_check_digit(body)}"
    if uri.startswith(("https://", "http://")) and (m := _DL_PATH.match(urlsplit(uri).path)):
        key, value, rest = m[1], m[2], m[3]
        pairs = rest.strip("/").split("/") if rest else []
        quals = {pairs[i]: pairs[i + 1] for i in range(0, len(pairs) - 1, 2)}
        if key == "01":
            value = value.zfill(14)
            # The lowest level only: a serial identifies the unit without its lot.
            if "21" in quals:
                return f"{GS1_ID}/01/{value}/21/{quals['21']}"
            if "10" in quals:
                return f"{GS1_ID}/01/{value}/10/{quals['10']}"
        return f"{GS1_ID}/{key}/{value}" + "".join(f"/{k}/{v}" for k, v in quals.items() if key == "414" and k == "254")
    return None
