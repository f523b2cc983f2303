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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from trace.epcis.vocab import EXTRA_CONTEXT, canonical_dl

CBV = "https://ref.gs1.org/cbv/"
_OLD_URNS = (
    ("urn:epcglobal:cbv:bizstep:", CBV + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", CBV + "Disp-"),
    ("urn:epcglobal:cbv:btt:", CBV + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", CBV + "SDT-"),
    ("urn:epcglobal:cbv:er:", CBV + "ER-"),
)
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_EPC_LISTS = ("epcList", "inputEPCList", "childEPCs", "outputEPCList")
# The standard fields, in the order they enter the pre-hash string.
ORDER = (
    "eventTime",
    "eventTimeZoneOffset",
    "certificationInfo",
    "parentID",
    "epcList",
    "inputEPCList",
    "childEPCs",
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "action",
    "transformationID",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
)
_NUMERIC_START = frozenset("0123456789+-.iInN")  # what float() might read (inf, nan included)
IGNORED = frozenset({"type", "recordTime", "eventID", "errorDeclaration", "@context"})
_PAIRS = {
    "bizTransactionList": ("bizTransaction", "BTT-"),
    "sourceList": ("source", "SDT-"),
    "destinationList": ("destination", "SDT-"),
}


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
    if type(value) is str:  # the common case first: a plain string, its text cached
        text = _TEXTS.get(value)
        if text is None:
            text = _remember(value)
        return text
    if isinstance(value, bool):
        return _canon_text(str(value))
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, int):
        return str(value)
    return _canon_text(str(value).strip())


# Plain strings → canonical text: places, parties, lots and CBV words recur in every event of a batch
# (a dict read costs a third of an lru_cache call; emptied when full).
_TEXTS: dict[str, str] = {}
_TEXTS_MAX = 65536


def _remember(value: str) -> str:
    if len(_TEXTS) >= _TEXTS_MAX:
        _TEXTS.clear()
    text = _TEXTS[value] = _canon_text(value.strip())
    return text


def _float(value: float) -> str:
    """``_number(repr(value))`` without reading the text back."""
    if value != value or value in (_INF, -_INF):
        return repr(value)
    whole = int(value)
    return str(whole) if whole == value else repr(value)


_INF = float("inf")


@lru_cache(maxsize=65536)
def _canon_text(text: str) -> str:
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


class _Names:
    """A prefix → namespace map and the expanded form of each name met (names recur event after event)."""

    __slots__ = ("expanded", "namespaces")

    def __init__(self, namespaces: Mapping[str, str]) -> None:
        self.namespaces = namespaces
        self.expanded: dict[str, str] = {}

    def expand(self, name: str) -> str:
        found = self.expanded.get(name)
        if found is None:
            if len(self.expanded) >= _TEXTS_MAX:
                self.expanded.clear()
            found = self.expanded[name] = _expand(name, self.namespaces)
        return found


def _expand(name: str, namespaces: Mapping[str, str]) -> str:
    head, sep, local = name.partition(":")
    if sep and head in namespaces:
        return "{" + namespaces[head] + "}" + local
    return name


_DEFAULT_NAMES = _Names(dict(EXTRA_CONTEXT))


def _generic(name: str, value: Any, names: _Names) -> list[str]:
    """Pre-hash pieces of an extension element (one per item when it is a list)."""
    if type(value) is str:
        text = canon(value)
        return [name + "=" + text if text else name]
    if isinstance(value, list):
        return [piece for item in value for piece in _generic(name, item, names)]
    if isinstance(value, dict):
        expand = names.expand
        inner = [piece for key, child in value.items() for piece in _generic(expand(key), child, names)]
        inner.sort()
        return [name + "".join(inner)]
    if value is None:
        return [name]
    text = canon(value)
    return [name + ("=" + text if text else "")]


def _event_time(name: str, value: Any) -> str:
    return f"{name}={_time(value)}"


def _epcs(name: str, value: Any) -> str:
    items = sorted(["epc=" + canon(v) for v in value])
    return name + "".join(items) if items else ""


def _quantities(name: str, value: Any) -> str:
    items = []
    for element in value:
        text = "quantityElementepcClass=" + canon(element["epcClass"])
        quantity = element.get("quantity")
        if quantity is not None:
            text += "quantity=" + canon(quantity)
        uom = element.get("uom")
        if uom:
            text += "uom=" + canon(uom)
        items.append(text)
    items.sort()
    return name + "".join(items) if items else ""


def _point(name: str, value: Any) -> str:
    return name + "id=" + canon(value["id"])


def _pairs(name: str, value: Any) -> str:
    key, kind = _PAIRS[name]
    items = sorted(
        [
            ("type=" + _vocab(item["type"], kind) if item.get("type") else "") + key + "=" + canon(item[key])
            for item in value
        ]
    )
    return name + "".join(items) if items else ""


def _biz_step(name: str, value: Any) -> str:
    return name + "=" + _vocab(value, "BizStep-")


def _disposition(name: str, value: Any) -> str:
    return name + "=" + _vocab(value, "Disp-")


def _persistent(name: str, value: Any) -> str:
    parts = [f"{k}={_vocab(v, 'Disp-')}" for k in ("set", "unset") for v in sorted(value.get(k, []))]
    return name + "".join(parts) if parts else ""


def _certification(name: str, value: Any) -> str:
    values = value if isinstance(value, list) else [value]
    return "".join(sorted(f"{name}={canon(v)}" for v in values))


# How each standard field enters the pre-hash string (the others are read like extensions).
_FIELDS: dict[str, Callable[[str, Any], str]] = {
    "eventTime": _event_time,
    "certificationInfo": _certification,
    **dict.fromkeys(_EPC_LISTS, _epcs),
    **dict.fromkeys(_QUANTITY_LISTS, _quantities),
    "readPoint": _point,
    "bizLocation": _point,
    **dict.fromkeys(_PAIRS, _pairs),
    "bizStep": _biz_step,
    "disposition": _disposition,
    "persistentDisposition": _persistent,
}
_POSITION = {name: (index, _FIELDS.get(name)) for index, name in enumerate(ORDER)}
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def _member(name: str, value: Any, names: _Names) -> tuple[int, str] | None:
    """One member's place (its index in ORDER; -1 for an extension) and pre-hash text; None if it has none.
    (A list extension has one piece per item: :func:`pre_hash` splits those itself.)"""
    known = _POSITION.get(name)
    if known is not None:
        if value is None or value in _EMPTY:
            return None
        index, field = known
        return index, field(name, value) if field is not None else "".join(_generic(name, value, names))
    if name in IGNORED:
        return None
    return -1, "".join(_generic(names.expand(name), value, names))


# (name, text value) → _member(): most members of our events are one of a few words, places or parties.
_MEMBERS: dict[tuple[str, str], tuple[int, str] | None] = {}


def pre_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The canonical pre-hash string of an EPCIS event (a JSON-LD event object)."""
    names = _Names({**EXTRA_CONTEXT, **namespaces}) if namespaces else _DEFAULT_NAMES
    members = _MEMBERS if names is _DEFAULT_NAMES else None
    # One pass over the event's members: standard fields keep ORDER's place, the rest sort as extensions.
    standard: list[tuple[int, str]] = []
    rest: list[str] = []
    for name, value in event.items():
        if type(value) is str and members is not None and name != "eventTime":  # (times are all different)
            try:
                found = members[(name, value)]
            except KeyError:
                if len(members) >= _TEXTS_MAX:
                    members.clear()
                found = members[(name, value)] = _member(name, value, names)
            if found is not None:
                if found[0] < 0:
                    rest.append(found[1])
                else:
                    standard.append(found)
            continue
        known = _POSITION.get(name)
        if known is not None:
            if value is not None and value not in _EMPTY:
                index, field = known
                standard.append(
                    (index, field(name, value) if field is not None else "".join(_generic(name, value, names)))
                )
        elif name not in IGNORED:
            rest += _generic(names.expand(name), value, names)
    standard.sort()
    rest.sort()
    return "eventType=" + str(event["type"]) + "".join([text for _, text in standard]) + "".join(rest)


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
