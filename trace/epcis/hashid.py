"""The CBV 2.0 EPCIS event hash id: a canonical pre-hash string of an event, hashed with SHA-256.

CBV 2.0 §8.9 (and its reference implementation, RalphTro/epcis-event-hash-generator): ``eventType=``
then the standard fields in a fixed order, each ``name=value`` with values canonicalised (times in
UTC to the millisecond with ``Z``, CBV words as their web URIs, numbers without padding, GS1 keys as
constrained canonical Digital Links), list items sorted, then every user extension (names expanded
to ``{namespace}local``) sorted; recordTime, eventID and errorDeclaration take no part. Nothing is
joined by separators. The id is ``ni:///sha-256;<hex>?ver=CBV2.0``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from trace.epcis.vocab import EXTRA_CONTEXT, canonical_dl

CBV = "https://ref.gs1.org/cbv/"
_OLD_URNS = (("urn:epcglobal:cbv:bizstep:", CBV + "BizStep-"), ("urn:epcglobal:cbv:disp:", CBV + "Disp-"),
             ("urn:epcglobal:cbv:btt:", CBV + "BTT-"), ("urn:epcglobal:cbv:sdt:", CBV + "SDT-"),
             ("urn:epcglobal:cbv:er:", CBV + "ER-"))
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_EPC_LISTS = ("epcList", "inputEPCList", "childEPCs", "outputEPCList")
# The standard fields, in the order they enter the pre-hash string.
ORDER = ("eventTime", "eventTimeZoneOffset", "certificationInfo", "parentID", "epcList", "inputEPCList",
         "childEPCs", "quantityList", "childQuantityList", "inputQuantityList", "outputEPCList",
         "outputQuantityList", "action", "transformationID", "bizStep", "disposition", "persistentDisposition",
         "readPoint", "bizLocation", "bizTransactionList", "sourceList", "destinationList", "sensorElementList")
_NUMERIC_START = frozenset("0123456789+-.iInN")  # what float() might read (inf, nan included)
IGNORED = frozenset({"type", "recordTime", "eventID", "errorDeclaration", "@context"})
_PAIRS = {"bizTransactionList": ("bizTransaction", "BTT-"), "sourceList": ("source", "SDT-"),
          "destinationList": ("destination", "SDT-")}


def _time(value: str) -> str:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    # Rounded (not cut) to the millisecond, as the reference implementation does.
    moment = moment.replace(microsecond=0) + timedelta(microseconds=round(moment.microsecond, -3))
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def _number(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):
        return text
    return str(int(number)) if int(number) == number else str(number)


def canon(value: Any) -> str:
    """A value's canonical text: old CBV URNs as web URIs, numbers plain, GS1 keys as canonical Digital Links."""
    if isinstance(value, bool):
        return _canon_text(str(value))
    if isinstance(value, float):
        return _number(repr(value))
    if isinstance(value, int):
        return str(value)
    return _canon_text(str(value).strip())


@lru_cache(maxsize=65536)
def _canon_text(text: str) -> str:
    # Cached: places, parties and CBV words recur in every event of a batch.
    if text.startswith("urn:epcglobal:cbv:"):
        for old, new in _OLD_URNS:
            text = text.replace(old, new)
    if text[:1] in _NUMERIC_START:
        text = _number(text)
    if text.startswith(("urn:epc:", "http")):
        try:
            converted = canonical_dl(text)
        except Exception:  # a malformed key is hashed as it was written
            converted = None
        return converted or text
    return text


def _vocab(value: str, kind: str) -> str:
    """A bare CBV word (``shipping``) as its web URI; URIs stay as they are."""
    return canon(value if ":" in value else CBV + kind + value)


def _expand(name: str, namespaces: Mapping[str, str]) -> str:
    head, sep, local = name.partition(":")
    if sep and head in namespaces:
        return "{" + namespaces[head] + "}" + local
    return name


def _generic(name: str, value: Any, namespaces: Mapping[str, str]) -> list[str]:
    """Pre-hash pieces of an extension element (one per item when it is a list)."""
    if isinstance(value, list):
        return [piece for item in value for piece in _generic(name, item, namespaces)]
    if isinstance(value, dict):
        inner = sorted(piece for key, child in value.items() for piece in _generic(_expand(key, namespaces), child, namespaces))
        return [name + "".join(inner)]
    if value is None:
        return [name]
    text = canon(value)
    return [name + ("=" + text if text else "")]


def _field(name: str, value: Any, namespaces: Mapping[str, str]) -> str:
    if name in ("eventTime",):
        return f"{name}={_time(value)}"
    if name in _EPC_LISTS:
        items = sorted("epc=" + canon(v) for v in value)
        return name + "".join(items) if items else ""
    if name in _QUANTITY_LISTS:
        items = []
        for element in value:
            text = "quantityElement" + "epcClass=" + canon(element["epcClass"])
            if element.get("quantity") is not None:
                text += "quantity=" + canon(element["quantity"])
            if element.get("uom"):
                text += "uom=" + canon(element["uom"])
            items.append(text)
        return name + "".join(sorted(items)) if items else ""
    if name in ("readPoint", "bizLocation"):
        return name + "id=" + canon(value["id"])
    if name in _PAIRS:
        key, kind = _PAIRS[name]
        items = sorted(("type=" + _vocab(item["type"], kind) if item.get("type") else "") + key + "=" + canon(item[key])
                       for item in value)
        return name + "".join(items) if items else ""
    if name == "bizStep":
        return name + "=" + _vocab(value, "BizStep-")
    if name == "disposition":
        return name + "=" + _vocab(value, "Disp-")
    if name == "persistentDisposition":
        parts = [f"{k}={_vocab(v, 'Disp-')}" for k in ("set", "unset") for v in sorted(value.get(k, []))]
        return name + "".join(parts) if parts else ""
    if name == "certificationInfo":
        values = value if isinstance(value, list) else [value]
        return "".join(sorted(f"{name}={canon(v)}" for v in values))
    return "".join(_generic(name, value, namespaces))


def pre_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The canonical pre-hash string of an EPCIS event (a JSON-LD event object)."""
    names = {**EXTRA_CONTEXT, **(namespaces or {})}
    parts = ["eventType=" + str(event["type"])]
    for name in ORDER:
        if name in event and event[name] not in (None, "", [], {}):
            parts.append(_field(name, event[name], names))
    rest = sorted(piece for name, value in event.items() if name not in IGNORED and name not in ORDER
                  for piece in _generic(_expand(name, names), value, names))
    return "".join(parts) + "".join(rest)


def hash_id(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The event's EPCIS event hash id, ``ni:///sha-256;…?ver=CBV2.0``."""
    digest = hashlib.sha256(pre_hash(event, namespaces).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


def namespaces_of(context: Any) -> dict[str, str]:
    """The prefix → namespace map of a document's ``@context`` (its object members)."""
    found: dict[str, str] = {}
    for item in context if isinstance(context, list) else [context]:
        if isinstance(item, dict):
            found.update({k: v for k, v in item.items() if isinstance(v, str)})
    return found
