"""The public origin pages, served from a per-process cache, with every scan recorded on the side.

A label is scanned far more often than its lot changes, so each API process keeps what a label's
page shows (facts, rendered HTML per language, JSON, linkset) and serves hits without a database
round trip or a worker thread. A cached page is only used while :func:`trace.platform.changes.generation`
is unchanged (any public write, here or in another process, moves it), and never longer than
``public_cache_seconds``: a recall shows on the next scan. Scan counts are read from the database
when a page is built and at most every ``STATS_SECONDS`` after, plus this process's own scans since.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

from api import i18n, pages
from trace import digital_link, origin, verification
from trace.access import Actor, Role
from trace.epcis import query as epcis_query
from trace.errors import NotFound
from trace.lots import Lot
from trace.platform import changes
from trace.platform.config import get_settings
from trace.platform.timeutil import local_zone
from trace.scans import record
from trace.scans.buffer import ScanBuffer
from trace.scans.record import ScanIn
from trace.transparency import journey as transparency
from trace.units import Unit, UnitLevel, display_code

log = logging.getLogger(__name__)
MAX_ENTRIES = 5_000  # pages kept per process (a page is ~20-40 KB with both languages)
STATS_SECONDS = 10.0  # how stale the database's scan counts on a page may grow
MAX_SHARED = 2_000  # labellings' shared pages kept per process
MISSING_SECONDS = 30.0  # how long an unknown code's answer is kept (new codes are printed all day)

# Placeholders in a rendered genuine block: none of them can come out of escaping or translation.
_COUNT, _PLACES, _FIRST, _UID = "\x00count\x00", "\x00places\x00", "\x00first\x00", "\x00uid\x00"

PUBLIC = Actor(role=Role.MEMBER, organisation_id=None, name="public")  # anybody: sees no organisation's private facts
Key = tuple[str, str | None, str | None]  # (gtin, lot, serial); lot None: the product page
SessionFactory = Callable[[], AbstractContextManager[Session]]
ConnectionFactory = Callable[[], AbstractContextManager[Connection]]


class Seen(SQLModel):
    """Earlier scans of the code, as the page tells them."""

    count: int
    first_at: datetime | None
    networks: int
    places: int
    suspicious: bool
    reasons: list[str]


# What a unit's page holds of the unit itself, in the HTML rendered once per labelling (see Shared): each
# letters and digits only, so no escaping, translation or URL encoding can change them.
_SERIAL, _CODE = "Zq7SERIALq7Z", "ZQ7CODEQ7"
_PLAIN = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@dataclass
class Shared:
    """What every unit of one labelling (commission event) of a lot shows alike, built once.

    Consumers scan different packages of the same lots: a unit's page is this plus its own row (URI,
    serial, human code, status), so a page never seen before costs a unit look-up and its scan counts,
    not a journey and a template (issue 17: 18-45 pages/s over 20,000 units before)."""

    generation: int
    built: float
    facts: origin.Origin
    html: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (lang, level) → placeholder page
    blocks: dict[tuple[str, bool, bool, bool], str] = field(default_factory=dict)  # the genuine block's variants
    heads: dict[str, tuple[str, str]] = field(default_factory=dict)  # level → (JSON head, its stand-in version)

    def _stand_in(self, level: str) -> origin.Origin:
        unit = Unit(serial=_SERIAL, code=_CODE, level=UnitLevel(level), lot_id=0, created_event_id="")
        return origin.for_unit(self.facts, unit=unit)

    def json_head(self, facts: origin.Origin) -> bytes:
        """The facts' JSON up to the scans, for ``facts`` (a plain, valid unit of this labelling)."""
        level = facts.level or "unit"
        if level not in self.heads:
            template = self._stand_in(level)
            self.heads[level] = (template.model_dump_json(), template.version)
        head, version = self.heads[level]
        serial, code = facts.serial or "", facts.code or ""
        made = head.replace(_SERIAL, serial).replace(display_code(_CODE), code).replace(version, facts.version)
        return made.encode()[:-1] + b',"scans":'

    def page(self, lang: str, facts: origin.Origin) -> tuple[bytes, bytes]:
        """The page around the genuine block for ``facts`` (a plain, valid unit of this labelling)."""
        key = (lang, facts.level or "unit")
        if key not in self.html:
            template = self._stand_in(facts.level or "unit")
            page = pages.render("public/origin.html", lang, o=template, path=urlsplit(template.uri).path, home="/")
            before, _, after = page.partition("<!--genuine-->")
            self.html[key] = (before, after)
        before, after = self.html[key]
        serial, code, shown = facts.serial or "", facts.code or "", display_code(_CODE)
        return (
            before.replace(_SERIAL, serial).replace(shown, code).encode(),
            after.replace(_SERIAL, serial).replace(shown, code).encode(),
        )


@dataclass
class Entry:
    """One label's page as this process last built it."""

    generation: int
    built: float
    facts: origin.Origin | None = None
    product: origin.ProductOrigin | None = None
    missing: str | None = None  # why the code is not genuine
    html: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # lang -> (before, after) the genuine block
    blocks: dict[tuple[str, bool, bool, bool], str] = field(default_factory=dict)  # the genuine block's variants
    json_head: bytes = b""  # the facts' JSON up to the scans, made when first asked for (PublicPages.json)
    linkset: bytes = b""  # made when first asked for (PublicPages.linkset)
    stats: record.ScanStats | None = None
    stats_at: float = 0.0
    added: int = 0  # this process's scans since the stats were read
    first_local: datetime | None = None
    refreshing: bool = False
    epcis: bytes = b""  # the journey as an EPCIS document (gs1:epcis), built when first asked for
    epcis_proofs: bytes = b""  # the same with the public log's inclusion proofs (``&proofs=1``)
    networks: set[str] = field(default_factory=set)  # where the code was scanned from (record.tally)
    places: set[str] = field(default_factory=set)
    shared: Shared | None = None  # the labelling's page this unit's is made from (a plain, valid unit)
    # The express path's answer headers by (ETag, https), ready to send (api/express.py).
    express: dict[tuple[str, bool], Any] = field(default_factory=dict)

    def seen(self) -> Seen:
        """Earlier scans: the database's count plus this process's own since."""
        stats = self.stats
        count = (stats.count if stats else 0) + self.added
        # The networks and places known at the last read, with every scan's since: a copied code scanned
        # on six networks in a minute is flagged at the sixth, not at the next read of the counts.
        networks = max(stats.networks if stats else 0, len(self.networks))
        places = max(stats.places if stats else 0, len(self.places))
        # A lot code is printed on every package of the lot: many networks are normal, as the
        # inspector's check says (counted, not judged).
        unit = self.facts is not None and self.facts.scope == "unit"
        suspicious, reasons = record.assess(networks=networks, places=places) if unit else (False, [])
        first = stats.first_at if stats and stats.first_at else self.first_local
        # Built on every scan from known-good values: no validation needed.
        return Seen.model_construct(
            count=count,
            first_at=first.astimezone(local_zone()) if first else None,
            networks=networks,
            places=places,
            suspicious=suspicious,
            reasons=reasons,
        )


def _plain(facts: origin.Origin) -> bool:
    """Whether a unit's page can be its labelling's shared page with the stand-ins replaced."""
    return facts.valid and set(facts.serial or "") <= _PLAIN


@contextmanager
def _connection_of(sessions: SessionFactory) -> Iterator[Connection]:
    with sessions() as session:
        yield session.connection()


class PublicPages:
    """The cache, the scan buffer and how to build a page; one per application."""

    def __init__(
        self, sessions: SessionFactory, buffer: ScanBuffer | None, connections: ConnectionFactory | None = None
    ) -> None:
        """``connections``: for the one-statement reads of a unit's page (default: a session's connection)."""
        self.sessions, self.buffer = sessions, buffer
        self.connections = connections or (lambda: _connection_of(sessions))
        # Whether a unit's page is read on the event loop (the database a local SQLite file: set as the
        # application starts) or in a worker thread (a database across the network).
        self.inline = False
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        self._building: dict[Key, asyncio.Future[Entry]] = {}
        # Per (lot id, labelling): few (a lot has a labelling per print run), so many more are kept.
        self.shared: OrderedDict[tuple[int, str], Shared] = OrderedDict()
        self._shared_lock = threading.Lock()  # pages are built in worker threads

    # ------------------------------------------------------------------ building

    def _build(self, key: Key, link: digital_link.DigitalLink, generation: int, *, quick: bool = True) -> Entry:
        """A label's page; ``quick``: a unit's first tried from its labelling's shared page (False when the
        caller already tried)."""
        if quick and key[1] is not None and key[2] is not None:
            made = self._quick(link, generation)
            if made is not None:
                return made
        entry = Entry(generation=generation, built=time.monotonic())
        with self.sessions() as session:
            try:
                if key[1] is None:
                    base_url = get_settings().public_base_url
                    entry.product = origin.product_page(session=session, gtin=key[0], base_url=base_url)
                else:
                    entry.facts, entry.shared = self._facts(session, link, generation)
                    entry.stats, (entry.networks, entry.places) = self._counts(session, entry.facts)
                    entry.stats_at = entry.built
            except NotFound as error:
                entry.missing = error.message
        return entry

    def _quick(self, link: digital_link.DigitalLink, generation: int) -> Entry | None:
        """A unit's page from its labelling's shared page, kept here: the unit and its scan figures in one
        statement (two once it has been scanned), no session, no transaction. None: build it in full
        (the labelling's page is not kept, or the unit is unknown and :meth:`_facts` says why)."""
        for attempt in (1, 2):
            try:
                with self.connections() as connection:
                    return self._quick_on(connection, link, generation)
            except DBAPIError as error:  # a connection the database dropped: once more, on a new one
                if not error.connection_invalidated or attempt == 2:
                    raise
        return None

    def _quick_on(self, connection: Connection, link: digital_link.DigitalLink, generation: int) -> Entry | None:
        built = time.monotonic()
        looked = verification.first_look(connection=connection, link=link)
        if looked is None:
            return None
        unit, kept = looked
        shared = self._kept_shared((unit.lot_id, unit.created_event_id), generation)
        if shared is None:
            return None
        facts = origin.for_unit(shared.facts, unit=unit)
        pending = self.buffer.pending(unit_id=unit.id) if self.buffer else []
        figures = None if kept is None else (kept.scans, kept.first_at, kept.last_at, kept.networks, kept.places)
        stats, networks, places = record.read_tally(
            connection=connection, unit_id=unit.id, pending=pending, kept=figures
        )
        return Entry(
            generation=generation,
            built=built,
            facts=facts,
            shared=shared if _plain(facts) else None,
            stats=stats,
            stats_at=built,
            networks=networks,
            places=places,
        )

    def _facts(
        self, session: Session, link: digital_link.DigitalLink, generation: int
    ) -> tuple[origin.Origin, Shared | None]:
        """A label's facts; a unit's from its labelling's shared facts (built once per labelling)."""
        if link.serial is None:
            lot, _ = verification.find(session=session, link=link)
            return origin.build(session=session, lot=lot, unit=None), None
        lot_id, unit = verification.locate(session=session, link=link)
        key = (lot_id, unit.created_event_id)
        found = self._kept_shared(key, generation)
        if found is None:
            read = session.get(Lot, lot_id)
            assert read is not None
            built = origin.shared(session=session, lot=read, labelling=unit.created_event_id)
            found = Shared(generation=generation, built=time.monotonic(), facts=built)
            with self._shared_lock:
                self.shared[key] = found
                self.shared.move_to_end(key)
                while len(self.shared) > MAX_SHARED:
                    self.shared.popitem(last=False)
        facts = origin.for_unit(found.facts, unit=unit)
        return facts, found if _plain(facts) else None

    def _kept_shared(self, key: tuple[int, str], generation: int) -> Shared | None:
        """The labelling's shared page, if this process keeps one that is still current."""
        with self._shared_lock:
            found = self.shared.get(key)
        ttl = get_settings().public_cache_seconds
        if found is None or found.generation != generation or time.monotonic() - found.built >= ttl:
            return None
        return found

    def _epcis(self, found: origin.Origin) -> bytes:
        with self.sessions() as session:
            document = epcis_query.document_of(
                session=session, actor=PUBLIC, event_ids=[s.event_id for s in found.journey]
            )
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    async def epcis(self, entry: Entry, *, proofs: bool = False) -> bytes:
        """The journey's events as an EPCIS 2.0 document, as anybody may read them (no private facts);
        ``proofs``: with each event's inclusion proof in the newest signed checkpoint of the public log."""
        if proofs:
            if not entry.epcis_proofs and entry.facts is not None:
                entry.epcis_proofs = await anyio.to_thread.run_sync(self._epcis_proofs, entry.facts)
            return entry.epcis_proofs
        if not entry.epcis and entry.facts is not None:
            entry.epcis = await anyio.to_thread.run_sync(self._epcis, entry.facts)
        return entry.epcis

    def _epcis_proofs(self, found: origin.Origin) -> bytes:
        with self.sessions() as session:
            event_ids = [s.event_id for s in found.journey]
            document = epcis_query.document_of(session=session, actor=PUBLIC, event_ids=event_ids)
            document["hytrace:publicLog"] = transparency.proofs(session=session, event_ids=event_ids)
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    async def json_with_proofs(self, entry: Entry, seen: Seen) -> bytes:
        """The facts as JSON with the journey's inclusion proofs."""
        assert entry.facts is not None
        facts = entry.facts

        def build() -> dict[str, Any]:
            with self.sessions() as session:
                return transparency.proofs(session=session, event_ids=[s.event_id for s in facts.journey])

        body = json.loads(self.json(entry, seen))
        body["public_log_proofs"] = await anyio.to_thread.run_sync(build)
        return json.dumps(body, ensure_ascii=False).encode()

    def _counts(self, session: Session, found: origin.Origin) -> tuple[record.ScanStats, tuple[set[str], set[str]]]:
        """The code's scan counts, the networks they came from and the places that count (record.tally).
        Scans this process holds but has not written yet count too (distinct, not twice)."""
        lot_id, unit_id = found.row_ids
        if unit_id is not None:
            pending = self.buffer.pending(unit_id=unit_id) if self.buffer else []
            stats, networks, places = record.tally(session=session, unit_id=unit_id, pending=pending)
        else:
            pending = self.buffer.pending(lot_id=lot_id) if self.buffer else []
            stats, networks, places = record.tally(session=session, lot_id=lot_id, pending=pending)
        return stats, (networks, places)

    async def get(self, key: Key, link: digital_link.DigitalLink) -> Entry:
        """The page of a label: cached while nothing public changed, else built in a worker thread."""
        now, generation = time.monotonic(), changes.generation()
        entry = self.entries.get(key)
        if entry is not None and entry.generation == generation:
            ttl = MISSING_SECONDS if entry.missing else get_settings().public_cache_seconds
            if now - entry.built < ttl:
                if entry.facts is not None and now - entry.stats_at > STATS_SECONDS and not entry.refreshing:
                    entry.refreshing = True
                    asyncio.get_running_loop().create_task(self._refresh(entry))
                return entry
        tried = self.inline and key[1] is not None and key[2] is not None
        if tried:
            # On the event loop: a local SQLite read of about 0.1 ms costs less than the hop to a worker
            # thread and back (a unit's first scan took twice as long in a thread).
            quick = self._quick(link, generation)
            if quick is not None:
                return self._keep(key, quick)
        waiting = self._building.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            entry = self._keep(key, await anyio.to_thread.run_sync(self._build_in_thread, key, link, generation, tried))
            future.set_result(entry)
            return entry
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._building[key]

    def _build_in_thread(self, key: Key, link: digital_link.DigitalLink, generation: int, tried: bool) -> Entry:
        return self._build(key, link, generation, quick=not tried)

    def _keep(self, key: Key, entry: Entry) -> Entry:
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > MAX_ENTRIES:
            self.entries.popitem(last=False)
        return entry

    async def _refresh(self, entry: Entry) -> None:
        try:

            def read() -> tuple[record.ScanStats, tuple[set[str], set[str]]]:
                with self.sessions() as session:
                    return self._counts(session, entry.facts)  # type: ignore[arg-type]

            started = time.monotonic()
            stats, (networks, places) = await anyio.to_thread.run_sync(read)
            # The read counted this process's scans up to its start, written or not; those since are
            # few, and counted from the next refresh on. The networks only grow: each member is a real
            # network that scanned this code, so keeping what this process saw meanwhile never overcounts.
            # The places are the database's: a place this process took as a network's first may have
            # come after another process's first scan from that network, and would then not count.
            entry.stats, entry.stats_at, entry.added = stats, started, 0
            entry.networks |= networks
            entry.places = places
        except Exception:  # the page goes on with the counts it has; the next scan tries again
            log.warning("scan counts could not be refreshed", exc_info=True)
        finally:
            entry.refreshing = False

    # ------------------------------------------------------------------ scans

    def record(
        self,
        entry: Entry,
        *,
        kind: str,
        client: str | None,
        user_agent: str | None,
        mobile_hint: str | None,
        lang: str | None,
        place: tuple[float, float] | None = None,
    ) -> ScanIn | None:
        """Count a scan of the entry's label (in this process at once; in the database in bulk)."""
        found = entry.facts
        if found is None or self.buffer is None:
            return None
        lot_id, unit_id = found.row_ids
        scan = record.new_scan(
            lot_id=lot_id,
            unit_id=unit_id,
            client_ip=client,
            user_agent=user_agent,
            mobile_hint=mobile_hint,
            lang=lang,
            kind=kind,
            place=place,
        )
        self.buffer.add(scan)
        # A place counts only from a network new to the code (record.tally): re-scans from one network,
        # each naming another place, are one visitor (or one forger), not a code copied far and wide.
        if scan.network not in entry.networks and len(entry.networks) < record.SOURCES_KEPT:
            # bounded: past the warning, the read counts carry on
            entry.networks.add(scan.network)
            if scan.place is not None and len(entry.places) < record.SOURCES_KEPT:
                entry.places.add(scan.place)
        if entry.first_local is None:
            entry.first_local = scan.scanned_at
        entry.added += 1
        return scan

    # ------------------------------------------------------------------ rendering

    def html(self, entry: Entry, lang: str, seen: Seen, path: str, scan: ScanIn | None = None) -> bytes:
        """The page: the cached body (already UTF-8) around this scan's genuineness block."""
        assert entry.facts is not None
        parts = entry.html.get(lang)
        if parts is None:
            if entry.shared is not None:
                parts = entry.html[lang] = entry.shared.page(lang, entry.facts)
            else:
                page = pages.render("public/origin.html", lang, o=entry.facts, path=path, home="/")
                before, _, after = page.partition("<!--genuine-->")
                parts = entry.html[lang] = (before.encode(), after.encode())
        share = scan is not None and entry.facts.scope == "unit"
        variant = (lang, seen.suspicious, seen.count > 0, share)
        # The block tells only whether the code is valid and what it names: alike for a labelling's units.
        blocks = entry.shared.blocks if entry.shared is not None else entry.blocks
        block = blocks.get(variant)
        if block is None:
            # Rendering the block through Jinja on every scan cost a quarter of the page's time: render
            # each variant once with placeholders, and fill in this scan's figures.
            block = blocks[variant] = pages.render(
                "public/genuine.html",
                lang,
                o=entry.facts,
                suspicious=seen.suspicious,
                scanned=seen.count > 0,
                count=_COUNT,
                places=_PLACES,
                first=_FIRST,
                scan_uid=_UID if share else None,
            )
        block = (
            block.replace(_COUNT, i18n.number(seen.count, lang))
            .replace(_PLACES, _at_least(max(seen.networks, seen.places), lang))
            .replace(_FIRST, i18n.moment(seen.first_at, lang))
            .replace(_UID, scan.uid if scan else "")
        )
        return parts[0] + block.encode() + parts[1]

    def json(self, entry: Entry, seen: Seen) -> bytes:
        """The same facts as JSON, with the scans before this one."""
        if not entry.json_head:
            assert entry.facts is not None
            if entry.shared is not None:
                entry.json_head = entry.shared.json_head(entry.facts)
            else:
                entry.json_head = entry.facts.model_dump_json().encode()[:-1] + b',"scans":'
        return entry.json_head + seen.model_dump_json().encode() + b"}"

    def linkset(self, entry: Entry) -> bytes:
        """The label's RFC 9264 linkset."""
        if not entry.linkset:
            facts = entry.facts
            assert facts is not None
            made = linkset(facts.uri, facts.gtin, get_settings().public_base_url)
            entry.linkset = json.dumps(made, ensure_ascii=False).encode()
        return entry.linkset


def _at_least(value: int, lang: str) -> str:
    # The figures keep SOURCES_KEPT networks of a code (trace/scans/tallies.py): past it, "at least".
    return i18n.number(value, lang) + ("+" if value >= record.SOURCES_KEPT else "")


# ---------------------------------------------------------------------- GS1 resolver documents

GS1 = "https://gs1.org/voc/"
LINK_TYPES = ("pip", "traceability", "certificationInfo", "epcis", "defaultLink")


def linkset(anchor: str, gtin: str, base_url: str) -> dict[str, Any]:
    """An RFC 9264 linkset for a label: our link types, each in both languages."""
    product = digital_link.product_uri(base_url=base_url, gtin=gtin)

    def links(href: str, title_vi: str, title_en: str, media: str = "text/html") -> list[dict[str, Any]]:
        return [
            {"href": href, "title": title_vi, "type": media, "hreflang": ["vi"]},
            {
                "href": href + ("&" if "?" in href else "?") + "lang=en",
                "title": title_en,
                "type": media,
                "hreflang": ["en"],
            },
        ]

    return {
        "linkset": [
            {
                "anchor": anchor,
                GS1 + "pip": links(product, "Thông tin sản phẩm", "Product information"),
                GS1 + "traceability": [
                    *links(anchor, "Hành trình sản phẩm", "The product's journey"),
                    {"href": anchor, "title": "Traceability (JSON)", "type": "application/json"},
                ],
                GS1 + "certificationInfo": [
                    {
                        "href": f"{anchor}?linkType=gs1:certificationInfo",
                        "title": "Chỉ dẫn địa lý, nhãn hiệu và chứng nhận / Designations and certificates",
                        "type": "application/json",
                    }
                ],
                GS1 + "epcis": [
                    {"href": f"{anchor}?linkType=gs1:epcis", "title": "Sự kiện / Events", "type": "application/ld+json"}
                ],  # an EPCIS 2.0 document
                GS1 + "defaultLink": links(anchor, "Nguồn gốc sản phẩm", "Product origin"),
            }
        ]
    }


def resolver_description(base_url: str) -> dict[str, Any]:
    """``/.well-known/gs1resolver``: what this resolver answers (GS1 Digital Link resolver conventions)."""
    return {
        "name": "hytrace — Truy xuất nguồn gốc nông sản Hưng Yên",
        "resolverRoot": base_url,
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [{"namespace": GS1, "prefix": "gs1:", "profile": "https://gs1.org/voc/?show=linktypes"}],
        "linkTypes": [f"gs1:{name}" for name in LINK_TYPES],
        "linkTypeDefaultCanBeLinkset": True,
        "supportedContextValuesEnumerated": {"lang": ["vi", "en"]},
        "validatingResolver": True,
        "contentNegotiation": ["text/html", "application/json", "application/linkset+json"],
        "contact": base_url,
    }
