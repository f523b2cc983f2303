"""What anyone sees after scanning a label: the public facts of a unit, a lot or a product.

Built with no actor: private fields stay private (events redacted as for the public, farming inputs
only where the producer chose to show them, a farm household named only with consent, no GPS).
The public page caches what this returns per process; nothing here knows of HTTP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import PrivateAttr
from sqlalchemy import select as select_columns
from sqlmodel import Field, Session, SQLModel, col, select

from trace import admin_units, digital_link, lineage, product_images, verification
from trace.certifications import (
    CertificateStatus,
    Certification,
    certificates_for_lot,
    valid_on,
)
from trace.designations.models import ClaimStatus, Designation
from trace.events.models import Event, EventLot, EventType
from trace.lineage import Direction
from trace.locations import Location
from trace.lots import Lot, LotEdge, LotStatus
from trace.organisations import Organisation, public_name
from trace.platform import timeutil
from trace.platform.config import get_settings
from trace.platform.timeutil import local_zone, localise
from trace.products import Product
from trace.recalls.recall import covering
from trace.transparency import journey as transparency
from trace.units import Unit, UnitLevel, UnitStatus, display_code

# Steps a consumer is shown; the rest (codes voided, rights granted, corrections) are bookkeeping.
JOURNEY = (
    EventType.HARVEST,
    EventType.SHIP,
    EventType.RECEIVE,
    EventType.TRANSFORM,
    EventType.PACK,
    EventType.COMMISSION,
    EventType.STORE,
    EventType.SELL,
    EventType.INSPECT,
    EventType.HOLD,
    EventType.RELEASE,
    EventType.RECALL,
)


class PlaceView(SQLModel):
    """A place as the public sees it: its name, commune and province today, and the commune before 2025."""

    name: str
    kind: str
    code: str | None = None  # planting-area or packing-facility code
    commune: str | None = None
    province: str | None = None
    former_commune: str | None = None


class PartyView(SQLModel):
    """An organisation as the public sees it."""

    name: str
    kind: str
    commune: str | None = None
    province: str | None = None


class StepView(SQLModel):
    """One step of the journey: who did what, where and when."""

    kind: EventType
    at: datetime  # local time where it was recorded
    who: str
    where: PlaceView | None = None
    to: str | None = None  # a shipment's receiver
    product_name: str
    product_name_en: str | None = None
    lot_code: str
    quantity: Decimal | None = None
    unit: str | None = None
    inputs: list[dict[str, Any]] = Field(default_factory=list)  # farming inputs, where the producer made them public
    reason: str | None = None  # for holds, releases and recalls
    _event_id: str = PrivateAttr(default="")

    @property
    def event_id(self) -> str:
        """The event this step tells (its EPCIS form answers gs1:epcis; never shown on the page)."""
        return self._event_id


class AlertView(SQLModel):
    """Why a consumer must not eat or sell this: a hold, a recall, a cancelled lot or a voided code."""

    kind: Literal["recalled", "on_hold", "cancelled", "void"]
    reason: str | None = None
    since: datetime | None = None
    by: str | None = None
    source_lot_code: str | None = None  # the lot the recall started from, when it is another
    source_product_name: str | None = None


class CertificateView(CertificateStatus):
    """A certificate shown for the product: valid when the lot (or its input) was harvested."""

    holder: str
    lot_code: str


class DesignationView(SQLModel):
    """A designation the lot may carry, with what the consumer needs to check it."""

    designation_id: int
    kind: str
    name: str
    name_en: str | None = None
    registration_number: str | None = None
    decision_number: str | None = None
    decision_date: date | None = None
    authority: str
    holder: str
    area: list[str] = Field(default_factory=list)  # as granted, over the pre-2025 districts
    source: str  # claimed at harvest, or carried over from an input by the designation's rules


class LogView(SQLModel):
    """Where the journey stands in the province's public log (README, "The public log")."""

    events: int  # the journey's events
    included: int  # in the newest signed checkpoint, their audit paths and commitments checked
    pending: int  # recorded but not yet in a signed checkpoint (within seconds)
    failed: int  # whose check failed: the log or the event was altered
    tree_size: int | None = None
    signed_at: datetime | None = None  # local time
    witnesses: list[str] = Field(default_factory=list)  # who cosigned that checkpoint


class ImageView(SQLModel):
    path: str
    width: int
    height: int


class Origin(verification.CodeCheck):
    """The consumer page's facts (JSON clients get the same)."""

    scope: Literal["unit", "lot"]  # what the label names
    product_category: str
    product_description: str | None = None
    image: ImageView | None = None
    producer: PartyView
    growing_areas: list[PlaceView] = Field(default_factory=list)
    harvested_on: list[date] = Field(default_factory=list)
    designations: list[DesignationView] = Field(default_factory=list)  # shown: valid when the lot was made
    certificates: list[CertificateView] = Field(default_factory=list)
    journey: list[StepView] = Field(default_factory=list)
    alert: AlertView | None = None
    public_log: LogView | None = None
    version: str = ""  # a digest of every fact above (the page's ETag is built on it)
    _row_ids: tuple[int, int | None] = PrivateAttr(default=(0, None))

    @property
    def row_ids(self) -> tuple[int, int | None]:
        """The lot's and unit's row ids (scans point at them; never shown)."""
        return self._row_ids


class ProductOrigin(SQLModel):
    """The product page (``/01/{gtin}``): the trade item and who makes it."""

    gtin: str
    uri: str
    product_name: str
    product_name_en: str | None = None
    product_category: str
    product_description: str | None = None
    image: ImageView | None = None
    producer: PartyView
    certificates: list[CertificateStatus] = Field(default_factory=list)
    version: str = ""


def _party(org: Organisation) -> PartyView:
    unit = admin_units.commune(org.commune_code) if org.commune_code else None
    return PartyView(
        name=public_name(org),
        kind=org.kind.value,
        commune=unit.name if unit else None,
        province=unit.province_name if unit else None,
    )


def _place(location: Location) -> PlaceView:
    unit = admin_units.commune(location.commune_code)
    old = admin_units.former_commune(location.former_commune_code) if location.former_commune_code else None
    return PlaceView(
        name=location.name,
        kind=location.kind.value,
        code=location.code,
        commune=unit.name if unit else None,
        province=unit.province_name if unit else None,
        former_commune=f"{old.name}, {old.district_name}, {old.province_name}" if old else None,
    )


def _image(session: Session, product_id: int) -> ImageView | None:
    found = product_images.image_info(session=session, product_id=product_id)
    return ImageView(path=found[0], width=found[1], height=found[2]) if found else None


def _digest(model: SQLModel) -> str:
    return hashlib.sha256(model.model_dump_json(exclude={"version"}).encode()).hexdigest()[:20]


class _Names:
    """Organisations, places and products read once each."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.orgs: dict[int, Organisation | None] = {}
        self.places: dict[int, PlaceView | None] = {}
        self.products: dict[int, Product | None] = {}

    def org(self, org_id: int | None) -> str | None:
        if org_id is None:
            return None
        if org_id not in self.orgs:
            self.orgs[org_id] = self.session.get(Organisation, org_id)
        org = self.orgs[org_id]
        return public_name(org) if org else None

    def place(self, location_id: int | None) -> PlaceView | None:
        if location_id is None:
            return None
        if location_id not in self.places:
            location = self.session.get(Location, location_id)
            self.places[location_id] = _place(location) if location else None
        return self.places[location_id]

    def practices_public(self, org_id: int) -> bool:
        """Whether the organisation publishes its farming practices (inputs) on its lots' pages."""
        self.org(org_id)
        org = self.orgs[org_id]
        return bool(org and org.practices_public)

    def product(self, product_id: int) -> Product | None:
        if product_id not in self.products:
            self.products[product_id] = self.session.get(Product, product_id)
        return self.products[product_id]


class _Step:
    """What the journey reads of one event: its columns, never its payload (a commission's may be MBs)."""

    __slots__ = (
        "destination_organisation_id",
        "event_time",
        "event_tz_offset",
        "id",
        "location_id",
        "organisation_id",
        "record_time",
        "rows",
        "type",
    )

    def __init__(self, row: Any) -> None:
        (
            self.id,
            self.type,
            self.event_time,
            self.event_tz_offset,
            self.record_time,
            self.organisation_id,
            self.location_id,
            self.destination_organisation_id,
        ) = row[5:]
        self.rows: list[Any] = []


# The only steps whose payload the page shows: a harvest's farming inputs, a hold's or recall's reason.
_SHOWN_PAYLOAD = (EventType.HARVEST, EventType.HOLD, EventType.RELEASE, EventType.RECALL)


def _on_path(event: _Step, lot: Lot, root: Lot, consumers: dict[int, set[int]]) -> bool:
    """An ancestor's shipments count only towards the organisations that went on to make this lot;
    the root lot's own steps all count."""
    if lot.id == root.id or event.type not in (EventType.SHIP, EventType.RECEIVE):
        return True
    makers = consumers.get(lot.id, set())  # type: ignore[arg-type]
    if event.type == EventType.SHIP:
        return event.destination_organisation_id in makers
    return event.organisation_id in makers


def _journey(
    session: Session, root: Lot, labelling: str | None, lots: dict[int, Lot], edges: list[LotEdge], names: _Names
) -> list[StepView]:
    """The steps a consumer is shown, read in O(journey events): event columns and lot rows, the payloads
    of the few kinds that show one; of the per-unit steps, a unit's page tells only its own commission."""
    ids = list(lots)
    # Who consumed each ancestor on the way to this lot (the transformers along the path).
    consumers: dict[int, set[int]] = {}
    for edge in edges:
        child = lots.get(edge.child_lot_id)
        if child is not None:
            consumers.setdefault(edge.parent_lot_id, set()).add(child.producer_organisation_id)
    found = session.execute(
        select_columns(
            col(EventLot.event_id),
            col(EventLot.lot_id),
            col(EventLot.quantity),
            col(EventLot.unit),
            col(EventLot.role),
            col(Event.id),
            col(Event.type),
            col(Event.event_time),
            col(Event.event_tz_offset),
            col(Event.record_time),
            col(Event.organisation_id),
            col(Event.location_id),
            col(Event.destination_organisation_id),
        )
        .join(Event, col(Event.id) == col(EventLot.event_id))
        .where(col(EventLot.lot_id).in_(ids), col(Event.type).in_(JOURNEY))
        .order_by(col(EventLot.id))
    ).all()
    events: dict[str, _Step] = {}
    for link in found:
        if labelling is not None and link[6] == EventType.COMMISSION and link[0] != labelling:
            continue  # another unit's labels: not this package's story
        events.setdefault(link[0], _Step(link)).rows.append(link)
    corrected = (
        set(
            session.execute(
                select_columns(col(Event.corrects_event_id)).where(col(Event.corrects_event_id).in_(list(events)))
            ).scalars()
        )
        if events
        else set()
    )
    shown = [e for e in events.values() if e.id not in corrected]
    # Events stamped to the same minute (a form's time) keep the order they were recorded in.
    shown.sort(key=lambda e: (e.event_time, e.record_time, e.id))
    wanted_payloads = [e.id for e in shown if e.type in _SHOWN_PAYLOAD]
    payloads: dict[str, dict[str, Any]] = (
        dict(
            session.execute(
                select_columns(col(Event.id), col(Event.payload)).where(col(Event.id).in_(wanted_payloads))
            ).all()
        )  # type: ignore[arg-type]
        if wanted_payloads
        else {}
    )
    steps: list[StepView] = []
    for event in shown:
        # A transformation is told once, on its output on the path; other events on their lot.
        wanted = "output" if event.type == EventType.TRANSFORM else "object"
        row: Any = next((r for r in event.rows if r[4] == wanted), event.rows[0])
        lot = lots[row[1]]
        if not _on_path(event, lot, root, consumers):
            continue
        product = names.product(lot.product_id)
        payload = payloads.get(event.id) or {}
        inputs = (
            payload.get("inputs_used")
            if event.type == EventType.HARVEST and names.practices_public(event.organisation_id)
            else None
        )
        steps.append(
            StepView(
                kind=event.type,
                at=localise(event.event_time, event.event_tz_offset),
                who=names.org(event.organisation_id) or "",
                where=names.place(event.location_id),
                to=names.org(event.destination_organisation_id) if event.type == EventType.SHIP else None,
                product_name=product.name_vi if product else "",
                product_name_en=product.name_en if product else None,
                lot_code=lot.lot_code,
                quantity=row[2],
                unit=row[3],
                inputs=list(inputs or []),
                reason=payload.get("reason")
                if event.type in (EventType.HOLD, EventType.RELEASE, EventType.RECALL)
                else None,
            )
        )
        steps[-1]._event_id = event.id  # type: ignore[assignment]
    return steps


def _local(moment: datetime) -> datetime:
    """A stored instant (UTC, naive on SQLite) in the instance's time zone."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(local_zone())


def _alert(session: Session, lot: Lot, unit: Unit | None, names: _Names) -> AlertView | None:
    if lot.status == LotStatus.RECALLED:
        found = covering(session=session, lot_id=lot.id)  # type: ignore[arg-type]
        if found is None:
            return AlertView(kind="recalled")
        source = session.get(Lot, found.lot_id)
        product = names.product(source.product_id) if source else None
        other = source is not None and source.id != lot.id
        return AlertView(
            kind="recalled",
            reason=found.reason,
            since=_local(found.created_at),
            by=names.org(found.organisation_id),
            source_lot_code=source.lot_code if other and source else None,
            source_product_name=product.name_vi if other and product else None,
        )
    if lot.status == LotStatus.ON_HOLD:
        held = session.exec(
            select(Event)
            .join(EventLot, col(EventLot.event_id) == Event.id)
            .where(EventLot.lot_id == lot.id, Event.type == EventType.HOLD)
            .order_by(col(Event.event_time).desc())
            .limit(1)
        ).first()  # type: ignore[arg-type]
        return AlertView(
            kind="on_hold",
            reason=held.payload.get("reason") if held else None,
            since=localise(held.event_time, held.event_tz_offset) if held else None,
            by=names.org(held.organisation_id) if held else None,
        )
    if lot.status == LotStatus.CANCELLED:
        return AlertView(kind="cancelled")
    if unit is not None and unit.status == UnitStatus.VOID:
        return AlertView(kind="void")
    return None


def _designations(session: Session, claims: list[ClaimStatus]) -> list[DesignationView]:
    out = []
    for claim in claims:
        found = session.get(Designation, claim.designation_id)
        if found is None or not claim.valid_at_harvest:
            continue
        out.append(
            DesignationView(
                designation_id=claim.designation_id,
                kind=found.kind.value,
                name=found.name_vi,
                name_en=found.name_en,
                registration_number=found.registration_number,
                decision_number=found.decision_number,
                decision_date=found.decision_date,
                authority=found.authority,
                holder=claim.holder_name,
                area=list(found.area_former_districts),
                source=claim.source.value,
            )
        )
    return out


def _certificates(session: Session, lots: Iterable[Lot], names: _Names) -> list[CertificateView]:
    out: dict[int, CertificateView] = {}
    for lot in lots:
        for status in certificates_for_lot(session=session, lot=lot):
            if status.shown and status.certification_id not in out:
                out[status.certification_id] = CertificateView(
                    **status.model_dump(), holder=names.org(lot.producer_organisation_id) or "", lot_code=lot.lot_code
                )
    return list(out.values())


def _log(session: Session, journey: list[StepView]) -> LogView:
    found = transparency.status(session=session, event_ids=[step.event_id for step in journey])
    return LogView(
        events=found.events,
        included=found.included,
        pending=found.pending,
        failed=len(found.failed),
        tree_size=found.tree_size,
        signed_at=_local(found.signed_at) if found.signed_at else None,
        witnesses=found.witnesses,
    )


def build(*, session: Session, lot: Lot, unit: Unit | None) -> Origin:
    """The public facts of a lot, or of one unit of it."""
    if unit is None:
        return shared(session=session, lot=lot, labelling=None)
    return for_unit(shared(session=session, lot=lot, labelling=unit.created_event_id), unit=unit)


def shared(*, session: Session, lot: Lot, labelling: str | None) -> Origin:
    """What every unit of one labelling (commission event) of a lot shares, as the lot's facts; the lot's
    own page when ``labelling`` is None (every labelling of the lot on its journey).

    A page process builds this once per labelling and derives each unit's page with :func:`for_unit`:
    consumers scan different packages of the same lots, and a unit's own facts are a row away."""
    check = verification.answer(session=session, lot=lot, unit=None)
    names = _Names(session)
    ids = lineage.lot_ids(session=session, lot_id=lot.id, direction=Direction.BACKWARD)  # type: ignore[arg-type]
    lots: dict[int, Lot] = {row.id: row for row in session.exec(select(Lot).where(col(Lot.id).in_(ids)))}  # type: ignore[misc]
    edges = list(session.exec(select(LotEdge).where(col(LotEdge.child_lot_id).in_(ids))))
    made = {edge.child_lot_id for edge in edges}  # lots made from others; the rest were harvested
    harvested = sorted(
        (other for other in lots.values() if other.id not in made), key=lambda other: (other.production_date, other.id)
    )
    areas: dict[int, PlaceView] = {}
    for other in harvested:
        place = names.place(other.origin_location_id)
        if place is not None:
            areas.setdefault(other.origin_location_id, place)  # type: ignore[arg-type]
    product = names.product(lot.product_id)
    assert product is not None
    producer = session.get(Organisation, lot.producer_organisation_id)
    assert producer is not None
    journey = _journey(session, lot, labelling, lots, edges, names)
    origin = Origin(
        **check.model_dump(),
        scope="lot",
        product_category=product.category,
        product_description=product.description,
        image=_image(session, product.id),  # type: ignore[arg-type]
        producer=_party(producer),
        growing_areas=list(areas.values()),
        harvested_on=sorted({other.production_date for other in harvested}),
        designations=_designations(session, check.claims),
        certificates=_certificates(session, [lot, *[o for o in lots.values() if o.id != lot.id]], names),
        journey=journey,
        alert=_alert(session, lot, None, names),
        public_log=_log(session, journey),
    )
    origin.version = _digest(origin)
    origin._row_ids = (lot.id, None)  # type: ignore[assignment]
    return origin


class UnitFacts(Protocol):
    """What a unit's page reads of its row: a :class:`~trace.units.Unit` or a
    :class:`~trace.verification.UnitRow`."""

    @property
    def id(self) -> int | None: ...
    @property
    def serial(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def level(self) -> UnitLevel: ...
    @property
    def status(self) -> UnitStatus: ...


def for_unit(found: Origin, *, unit: UnitFacts) -> Origin:
    """One unit's facts from its labelling's :func:`shared` facts: its URI, codes and status (no database)."""
    void = unit.status == UnitStatus.VOID
    status = "void" if void else found.status  # as verification.answer judges a unit
    uri = digital_link.unit_uri(
        base_url=get_settings().public_base_url, gtin=found.gtin, lot=found.lot_code, serial=unit.serial
    )
    code = display_code(unit.code)
    out = found.model_copy(
        update={
            "scope": "unit",
            "uri": uri,
            "code": code,
            "serial": unit.serial,
            "level": unit.level.value,
            "status": status,
            "valid": status == "valid",
            # a lot's alert comes first, as on the lot's page; a voided code's only when the lot has none
            "alert": found.alert or (AlertView(kind="void") if void else None),
        }
    )
    # The shared facts' digest and what this unit changes of them (the fields above follow from these):
    # a digest of every fact, as the lot's page has, without serialising the whole journey per unit.
    own = "\x00".join((found.version, uri, code, unit.serial, unit.level.value, status))
    out.version = hashlib.sha256(own.encode()).hexdigest()[:20]
    out._row_ids = (found.row_ids[0], unit.id)  # type: ignore[assignment]
    return out


def of_link(*, session: Session, link: digital_link.DigitalLink) -> Origin:
    """The facts a scanned Digital Link of a lot or unit leads to (404 ``not_genuine`` when unknown)."""
    lot, unit = verification.find(session=session, link=link)
    return build(session=session, lot=lot, unit=unit)


def product_page(*, session: Session, gtin: str, base_url: str) -> ProductOrigin:
    """The product's own page (a label's ``gs1:pip`` link)."""
    product = session.execute(select(Product).where(col(Product.gtin) == gtin)).scalar_one_or_none()
    if product is None:
        raise verification.not_genuine(f"GTIN {gtin}")
    owner = session.get(Organisation, product.organisation_id)
    assert owner is not None
    today = timeutil.today()
    certs = session.execute(
        select(Certification)
        .where(col(Certification.organisation_id) == owner.id)
        .order_by(col(Certification.valid_from).desc())
    ).scalars()
    shown = [
        CertificateStatus(
            certification_id=c.id,
            kind=c.kind,
            stars=c.stars,
            number=c.number,
            issuer=c.issuer,  # type: ignore[arg-type]
            valid_from=c.valid_from,
            valid_to=c.valid_to,
            revoked_on=None,
            valid_at_harvest=True,
            valid_today=True,
            shown=True,
        )
        for c in certs
        if valid_on(c, today) and (not c.product_ids or product.id in c.product_ids)
    ]
    page = ProductOrigin(
        gtin=gtin,
        uri=digital_link.product_uri(base_url=base_url, gtin=gtin),
        product_name=product.name_vi,
        product_name_en=product.name_en,
        product_category=product.category,
        product_description=product.description,
        image=_image(session, product.id),
        producer=_party(owner),
        certificates=shown,
    )  # type: ignore[arg-type]
    page.version = _digest(page)
    return page
