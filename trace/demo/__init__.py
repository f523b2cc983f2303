"""The demo data set: invented organisations, places and products, and one longan season of events.

Everything goes through the domain functions (organisations, users, locations, products and
``events.ledger.capture``), so every business rule applies and each organisation's hash chain is
built. Nothing here commits: the caller (the CLI) commits once, so a failed load leaves nothing.

All parties, people, codes and GTINs are invented and say so ("dữ liệu mẫu"); GTINs use GS1
prefix 952, which GS1 keeps for demonstrations. Communes are real (``trace/data``). A fixed random
seed makes every load identical except event ids, record times and unit serials (random by design).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from trace import admin_units
from trace.access import Actor, Role
from trace.certifications import CertificationCreate, CertificationKind, record_certification
from trace.demo.data import (
    AREAS,
    CERTIFICATES,
    DEMO_PASSWORD,
    DEMO_TAX_CODE,
    DESIGNATIONS,
    HOME,
    ORGS,
    PLACES,
    PRODUCTS,
    RIGHTS,
    SEASON_END,
    SEED,
    TAX_PREFIX,
    TZ,
    USERS,
    demo_gtin,
    growing_area_communes,
)
from trace.demo.images import add_demo_images
from trace.demo.season import Context, Season, count, recent_batch
from trace.designations import registry
from trace.designations.models import Designation, RightToUse
from trace.digital_link import unit_uri
from trace.errors import RuleViolation, Unauthenticated
from trace.events.models import Event
from trace.locations import Location, LocationCreate, LocationKind, create_location
from trace.lots import Lot
from trace.organisations import Organisation, OrganisationCreate, create_organisation
from trace.platform.config import get_settings
from trace.products import Product, ProductCreate, create_product
from trace.units import Unit, UnitStatus, display_code
from trace.users import User, authenticate, create_user, ensure_admin, hash_password

__all__ = [
    "AREAS",
    "CERTIFICATES",
    "DEMO_PASSWORD",
    "DEMO_TAX_CODE",
    "DESIGNATIONS",
    "HOME",
    "ORGS",
    "PLACES",
    "PRODUCTS",
    "RIGHTS",
    "SEASON_END",
    "SEED",
    "TAX_PREFIX",
    "TZ",
    "USERS",
    "DemoSummary",
    "demo_gtin",
    "growing_area_communes",
    "load_demo",
]


@dataclass
class DemoSummary:
    """What the demo data set holds, and where to look first."""

    created: bool  # this call loaded the data set
    added_events: int  # events recorded by this call
    organisations: int
    users: int
    locations: int
    products: int
    lots: int
    events: int
    showcase_lot_id: int
    showcase_gtin: str
    showcase_lot_code: str
    showcase_serial: str | None
    showcase_code: str | None
    growing_area_codes: list[str]
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # email, role, password
    designations: int = 0
    rights: int = 0

    def describe(self) -> str:
        """A short text for the command line."""
        base = get_settings().public_base_url
        head = ("Loaded" if self.created else "Demo data already present") + (
            f" (+{self.added_events} events of recent harvests)" if not self.created and self.added_events else ""
        )
        lines = [
            f"{head}: hytrace demo data (dữ liệu mẫu) — {self.organisations} organisations, {self.users} users, "
            f"{self.locations} locations, {self.products} products, {self.lots} lots, {self.events} events.",
            f"Showcase: dried longan, GTIN {self.showcase_gtin}, lot {self.showcase_lot_code} "
            f"(lot id {self.showcase_lot_id}), made from harvests at two growing areas.",
            f"  Trace it (signed in as the admin): GET /api/v1/lots/{self.showcase_lot_id}/trace?direction=backward",
            f"  FSMA 204 spreadsheet: GET /api/v1/lots/{self.showcase_lot_id}/trace.csv?direction=backward",
        ]
        lines.append(
            f"Designations: {self.designations} in the public registry (GET /api/v1/designations, no login), "
            f"{self.rights} rights to use granted by their holders."
        )
        if self.showcase_serial:
            uri = unit_uri(
                base_url=base, gtin=self.showcase_gtin, lot=self.showcase_lot_code, serial=self.showcase_serial
            )
            lines.append(f"  A demo box's label (open it, or scan its QR from the print run's PDF): {uri}")
            if self.showcase_code:
                lines.append(
                    f"  The code printed under that QR, to type in: {display_code(self.showcase_code)}"
                    f"  (GET /api/v1/codes/check?code={self.showcase_code})"
                )
        lines.append("Demo logins (published demo passwords: never load the demo on a real instance):")
        lines += [f"  {email:<32} {role:<10} {password}" for email, role, password in self.logins]
        return "\n".join(lines)


def load_demo(*, session: Session, reload: bool = False) -> DemoSummary:
    """Load the demo data set once; ``reload`` on a loaded database adds a batch of recent harvests.

    Events are append-only, so nothing is ever deleted or replaced: without ``reload`` a second
    call only reports what is there; with ``reload`` it also harvests each growing area and the
    chicken farm a few hours ago (new lots, left at the producers for a live demo of shipping and
    labelling). Refused when ``HYTRACE_ENVIRONMENT=production``: demo users have published passwords.
    """
    if get_settings().environment == "production":
        raise RuleViolation("The demo data set is not loaded on a production instance", code="demo_in_production")
    present = session.exec(select(Organisation.id).where(Organisation.tax_code == DEMO_TAX_CODE)).first()
    if present is None:
        admin_password = _create(session)
        added = Season(_context(session), rng=random.Random(SEED), year=_season_year(datetime.now(TZ))).run()
        return _summary(session, created=True, added=added, admin_password=admin_password)
    added = recent_batch(_context(session), random.Random(SEED + 1)) if reload else 0
    return _summary(session, created=False, added=added, admin_password=None)


def _season_year(now: datetime) -> int:
    # The 2026 season; on a clock still before its end, the latest season that is over.
    year = 2026
    while datetime(year, *SEASON_END, tzinfo=TZ) > now:
        year -= 1
    return year


def _create(session: Session) -> str | None:
    """The organisations, users, places and products; returns how the admin signs in if we made it."""
    settings = get_settings()
    made = ensure_admin(session=session, email=settings.admin_email, password=settings.admin_password or DEMO_PASSWORD)
    admin = session.exec(select(User).where(User.email == settings.admin_email.strip().lower())).one()
    root = Actor(role=Role.ADMIN, organisation_id=None, user_id=admin.id, name="demo loader")
    orgs = {}
    for key, (kind, name, suffix, commune, extra) in ORGS.items():
        data = OrganisationCreate(
            kind=kind,
            name=name,
            tax_code=TAX_PREFIX + suffix,
            commune_code=commune,
            address=f"Số 1 đường Mẫu, {admin_units.commune(commune).name}",  # type: ignore[union-attr]
            **extra,
        )
        orgs[key] = create_organisation(session=session, actor=root, data=data)
    shared = hash_password(DEMO_PASSWORD)  # one (slow, salted) argon2 run for the one published password
    for key, email, name, role in USERS:
        user = create_user(session=session, email=email, full_name=name, role=role, organisation_id=orgs[key].id)
        user.password_hash = shared
    actors = _actors(session, orgs)
    rng = random.Random(SEED)
    for n, (commune, former) in enumerate(growing_area_communes(), start=1):
        create_location(
            session=session,
            actor=actors["coop"],
            data=LocationCreate(
                kind=LocationKind.GROWING_AREA,
                name=f"Vùng trồng nhãn số {n} (dữ liệu mẫu)",
                code=f"VN-HY-NL-DEMO-{n:02d}",
                commune_code=commune,
                former_commune_code=former,
                latitude=round(20.65 + rng.uniform(-0.04, 0.02), 5),
                longitude=round(106.05 + rng.uniform(-0.02, 0.04), 5),
                area_ha=round(rng.uniform(2.5, 8.0), 1),
            ),
        )
    for owner, place_kind, place_name, code, place_commune, place_former in PLACES.values():
        create_location(
            session=session,
            actor=actors[owner],
            data=LocationCreate(
                kind=place_kind,
                name=place_name,
                code=code,
                commune_code=place_commune,
                former_commune_code=place_former,
            ),
        )
    for key, (org, _, _, name, name_en, category, unit, size) in PRODUCTS.items():
        create_product(
            session=session,
            actor=actors[org],
            data=ProductCreate(
                name_vi=name,
                name_en=name_en,
                category=category,
                unit=unit,
                gtin=demo_gtin(key),
                package_size=Decimal(size) if size else None,
            ),
        )
    add_demo_images(session=session, actors=actors)
    for spec in DESIGNATIONS.values():
        registry.create_designation(
            session=session,
            actor=root,
            data=registry.DesignationCreate(
                kind=spec.kind,
                name_vi=spec.name_vi,
                name_en=spec.name_en,
                registration_number=spec.registration_number,
                decision_number=spec.decision_number,
                decision_date=spec.decision_date,
                holder_organisation_id=orgs[spec.holder].id,  # type: ignore[arg-type]
                categories=spec.categories,
                derived_categories=spec.derived_categories,
                inherit_rule=spec.inherit_rule,
                area_former_districts=spec.area_former_districts,
                area_former_communes=spec.area_former_communes,
                rules_text=spec.rules_text,
            ),
        )
    year = _season_year(datetime.now(TZ))
    for owner, cert_kind, stars, number, issuer, product_keys, (before, after) in CERTIFICATES:
        covered = [session.exec(select(Product).where(Product.gtin == demo_gtin(key))).one().id for key in product_keys]
        record_certification(
            session=session,
            actor=root,
            data=CertificationCreate(
                kind=CertificationKind(cert_kind),
                stars=stars,
                number=number,
                issuer=issuer,
                organisation_id=orgs[owner].id,
                product_ids=[i for i in covered if i is not None],
                valid_from=date(year - before, 3, 1),
                valid_to=date(year + after, 2, 28),
            ),
        )
    return ("HYTRACE_ADMIN_PASSWORD" if settings.admin_password else DEMO_PASSWORD) if made else None


def _actors(session: Session, orgs: dict[str, Organisation]) -> dict[str, Actor]:
    """Who acts for each organisation: its first demo user."""
    actors: dict[str, Actor] = {}
    for key, email, name, role in USERS:
        user = session.exec(select(User).where(User.email == email)).one()
        actors.setdefault(key, Actor(role=role, organisation_id=orgs[key].id, user_id=user.id, name=name))
    return actors


def _context(session: Session) -> Context:
    """The demo's organisations, actors, places and products, read back from the database."""
    orgs = {
        key: session.exec(select(Organisation).where(Organisation.tax_code == TAX_PREFIX + spec[2])).one()
        for key, spec in ORGS.items()
    }
    places = {
        key: session.exec(
            select(Location).where(Location.organisation_id == orgs[spec[0]].id, Location.kind == spec[1])
        ).one()
        for key, spec in PLACES.items()
    }
    areas = list(
        session.exec(
            select(Location)
            .where(Location.organisation_id == orgs["coop"].id, Location.kind == LocationKind.GROWING_AREA)
            .order_by(col(Location.id))
        )
    )
    products = {key: session.exec(select(Product).where(Product.gtin == demo_gtin(key))).one() for key in PRODUCTS}
    designations = {
        key: session.exec(
            select(Designation).where(
                Designation.name_vi == spec.name_vi, Designation.holder_organisation_id == orgs[spec.holder].id
            )
        ).one()
        for key, spec in DESIGNATIONS.items()
    }
    return Context(session, orgs, _actors(session, orgs), places, products, areas, designations)


def _summary(session: Session, *, created: bool, added: int, admin_password: str | None) -> DemoSummary:
    orgs = [o.id for o in session.exec(select(Organisation).where(col(Organisation.tax_code).startswith(TAX_PREFIX)))]
    settings = get_settings()
    admin_email = settings.admin_email.strip().lower()
    dried = session.exec(select(Product.id).where(Product.gtin == demo_gtin("dried"))).one()
    showcase = session.exec(select(Lot).where(Lot.product_id == dried).order_by(col(Lot.id))).first()
    assert showcase is not None and showcase.id is not None
    unit = session.exec(
        select(Unit).where(Unit.lot_id == showcase.id, Unit.status == UnitStatus.ACTIVE).order_by(col(Unit.id))
    ).first()
    if admin_password is None:  # an account we did not create: name the demo password only if it opens it
        try:
            authenticate(session=session, email=admin_email, password=settings.admin_password or DEMO_PASSWORD)
            admin_password = "HYTRACE_ADMIN_PASSWORD" if settings.admin_password else DEMO_PASSWORD
        except Unauthenticated:
            admin_password = "(existing account, password unchanged)"
    return DemoSummary(
        created=created,
        added_events=added,
        organisations=len(orgs),
        users=count(session, User, col(User.organisation_id).in_(orgs)) + 1,
        locations=count(session, Location, col(Location.organisation_id).in_(orgs)),
        products=count(session, Product, col(Product.organisation_id).in_(orgs)),
        lots=count(session, Lot, col(Lot.producer_organisation_id).in_(orgs)),
        events=count(session, Event, col(Event.organisation_id).in_(orgs)),
        showcase_lot_id=showcase.id,
        showcase_gtin=showcase.gtin,
        showcase_lot_code=showcase.lot_code,
        showcase_serial=unit.serial if unit else None,
        showcase_code=unit.code if unit else None,
        growing_area_codes=[f"VN-HY-NL-DEMO-{n:02d}" for n in range(1, len(AREAS) + 1)],
        designations=count(session, Designation, col(Designation.holder_organisation_id).in_(orgs)),
        rights=count(session, RightToUse, col(RightToUse.organisation_id).in_(orgs)),
        logins=[(admin_email, Role.ADMIN.value, admin_password)]
        + [(email, role.value, DEMO_PASSWORD) for _, email, _, role in USERS],
    )
