"""The demo data set: invented organisations, places and products, and one longan season of events.

Everything goes through the domain functions (organisations, users, locations, products and
``events.ledger.capture``), so every business rule applies and each organisation's hash chain is
built. Nothing here commits: the caller (the CLI) commits once, so a failed load leaves nothing.

All parties, people, codes and GTINs are invented and say so ("dữ liệu mẫu"); GTINs use GS1
prefix 952, which GS1 keeps for demonstrations. Communes are real (``trace/data``). A fixed random
seed makes every load identical except event ids, record times and unit serials (random by design).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from trace import admin_units
from trace.access import Actor, Role
from trace.config import get_settings
from trace.errors import RuleViolation, Unauthenticated
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.schemas import (
    BizTransaction,
    CaptureResult,
    CommissionIn,
    Conversion,
    CorrectionIn,
    HarvestIn,
    InputUsed,
    InspectIn,
    LossIn,
    PackIn,
    ReceiveIn,
    SellIn,
    ShipIn,
    StoreIn,
    TransformIn,
    TransformInput,
    TransformOutput,
    UnitRef,
)
from trace.identifiers import gs1_check_digit, gtin_from_company_prefix
from trace.locations import Location, LocationCreate, LocationKind, create_location
from trace.lots import Lot, held_by
from trace.organisations import Organisation, OrganisationCreate, OrgKind, create_organisation
from trace.products import Product, ProductCreate, create_product
from trace.units import Unit
from trace.users import User, authenticate, create_user, ensure_admin, hash_password

SEED = 2026
DEMO_PASSWORD = "hytrace-demo-2026"  # a published demo password: never use on a real instance
TAX_PREFIX = "99995200"  # invented tax codes 99995200NN; no real Vietnamese code looks like this
DEMO_TAX_CODE = TAX_PREFIX + "00"  # the marker: the demo Department of Science and Technology
TZ = timezone(timedelta(hours=7), "ICT")
SEASON_END = (10, 15)  # the last event of the season is before 15 October
Q1, HALF = Decimal(1), Decimal("0.5")

# key: (kind, name, tax suffix, commune code, extra fields)
ORGS: dict[str, tuple[OrgKind, str, str, str, dict[str, Any]]] = {
    "dost": (OrgKind.AUTHORITY, "Sở Khoa học và Công nghệ tỉnh Hưng Yên (dữ liệu mẫu)", "00", "11953", {}),
    "qltt": (OrgKind.AUTHORITY, "Đội Quản lý thị trường số 1 (dữ liệu mẫu)", "01", "11953", {}),
    "coop": (OrgKind.COOPERATIVE, "HTX Nhãn lồng Hồng Châu (dữ liệu mẫu)", "02", "11980",
             {"practices_public": True, "name_en": "Hong Chau Longan Cooperative (sample data)"}),
    "farm": (OrgKind.FARM, "Hộ chăn nuôi gà Đông Tảo Trần Văn Mẫu (dữ liệu mẫu)", "03", "12070",
             {"contact_person": "Trần Văn Mẫu", "personal_name_consent": False}),
    "proc": (OrgKind.PROCESSOR, "Công ty TNHH Long nhãn Phố Hiến (dữ liệu mẫu)", "04", "12364", {}),
    "dist": (OrgKind.DISTRIBUTOR, "Công ty TNHH Phân phối Nông sản Sông Hồng (dữ liệu mẫu)", "05", "12103", {}),
    "shop1": (OrgKind.RETAILER, "Cửa hàng Đặc sản Phố Hiến (dữ liệu mẫu)", "06", "11953", {}),
    "shop2": (OrgKind.RETAILER, "Cửa hàng Nông sản sạch Văn Giang (dữ liệu mẫu)", "07", "12019", {}),
}
# (org key, email, full name, role)
USERS = [
    ("dost", "so-khcn@example.com", "Lê Thị Mẫu", Role.ORG_ADMIN),
    ("qltt", "qltt@example.com", "Đỗ Văn Kiểm", Role.INSPECTOR),
    ("coop", "htx-nhanlong@example.com", "Nguyễn Thị Mẫu", Role.ORG_ADMIN),
    ("coop", "xavien-nhanlong@example.com", "Phạm Văn Mẫu", Role.MEMBER),
    ("farm", "trai-ga@example.com", "Trần Văn Mẫu", Role.ORG_ADMIN),
    ("proc", "long-nhan@example.com", "Vũ Thị Mẫu", Role.ORG_ADMIN),
    ("dist", "phan-phoi@example.com", "Hoàng Văn Mẫu", Role.ORG_ADMIN),
    ("shop1", "cuahang-phohien@example.com", "Bùi Thị Mẫu", Role.ORG_ADMIN),
    ("shop2", "cuahang-vangiang@example.com", "Đặng Văn Mẫu", Role.ORG_ADMIN),
]
# Growing areas of the cooperative: (pre-2025 district, pre-2025 commune); today's commune follows.
AREAS = [("Thành phố Hưng Yên", "Xã Quảng Châu"), ("Thành phố Hưng Yên", "Xã Hoàng Hanh"),
         ("Thành phố Hưng Yên", "Xã Tân Hưng"), ("Kim Động", "Xã Ngọc Thanh")]  # the last was split
# key: (org, kind, name, code, commune, former commune)
PLACES: dict[str, tuple[str, LocationKind, str, str | None, str, str | None]] = {
    "farm": ("farm", LocationKind.FARM, "Trại gà Đông Tảo (dữ liệu mẫu)", None, "12070", "12208"),
    "plant": ("proc", LocationKind.PACKING_FACILITY, "Xưởng sấy và đóng gói (dữ liệu mẫu)",
              "VN-HY-PH-DEMO-01", "12364", None),
    "wh": ("dist", LocationKind.WAREHOUSE, "Kho Mỹ Hào (dữ liệu mẫu)", None, "12103", None),
    "shop1": ("shop1", LocationKind.SHOP, "Quầy Phố Hiến (dữ liệu mẫu)", None, "11953", None),
    "shop2": ("shop2", LocationKind.SHOP, "Quầy Văn Giang (dữ liệu mẫu)", None, "12019", None),
}
HOME = {"proc": "plant", "dist": "wh", "shop1": "shop1", "shop2": "shop2", "farm": "farm"}
# key: (org, company prefix, item reference, name, name_en, category, unit, package size)
PRODUCTS: dict[str, tuple[str, str, int, str, str, str, str, str | None]] = {
    "fresh": ("coop", "9520001", 1, "Nhãn lồng Hưng Yên tươi (dữ liệu mẫu)",
              "Hung Yen longan, fresh (sample data)", "longan_fresh", "kg", None),
    "dried": ("proc", "9520002", 1, "Long nhãn Hưng Yên sấy khô, hộp 500 g (dữ liệu mẫu)",
              "Dried Hung Yen longan, 500 g box (sample data)", "longan_dried", "kg", "0.5"),
    "meat": ("proc", "9520002", 2, "Thịt gà Đông Tảo đóng khay (dữ liệu mẫu)",
             "Packed Dong Tao chicken meat (sample data)", "chicken_meat", "kg", "1"),
    "chicken": ("farm", "9520003", 1, "Gà Đông Tảo, gà sống (dữ liệu mẫu)",
                "Dong Tao chicken, live (sample data)", "chicken_live", "head", None),
}
DRY_FACTOR, MEAT_FACTOR = Decimal("0.2"), Decimal("2.5")  # 5 kg fresh → 1 kg dried; kg per bird


def demo_gtin(key: str) -> str:
    """The GTIN-14 of a demo product (GS1 prefix 952: demonstrations only)."""
    _, prefix, ref, *_ = PRODUCTS[key]
    return gtin_from_company_prefix(prefix, ref)


def growing_area_communes() -> list[tuple[str, str]]:
    """(today's commune, pre-2025 commune) of each demo growing area, from the real unit lists."""
    out = []
    for district, name in AREAS:
        former = next(f for f in admin_units.former_communes_in_district(district) if f.name == name)
        out.append((former.current_codes[0], former.code))
    return out


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
    growing_area_codes: list[str]
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # email, role, password

    def describe(self) -> str:
        """A short text for the command line."""
        base = get_settings().public_base_url
        head = ("Loaded" if self.created else "Demo data already present") + (
            f" (+{self.added_events} events of recent harvests)" if not self.created and self.added_events else "")
        lines = [
            f"{head}: hytrace demo data (dữ liệu mẫu) — {self.organisations} organisations, {self.users} users, "
            f"{self.locations} locations, {self.products} products, {self.lots} lots, {self.events} events.",
            f"Showcase: dried longan, GTIN {self.showcase_gtin}, lot {self.showcase_lot_code} "
            f"(lot id {self.showcase_lot_id}), made from harvests at two growing areas.",
            f"  Trace it (signed in as the admin): GET /api/v1/lots/{self.showcase_lot_id}/trace?direction=backward",
            f"  FSMA 204 spreadsheet: GET /api/v1/lots/{self.showcase_lot_id}/trace.csv?direction=backward",
        ]
        if self.showcase_serial:
            # The public resolver page for this URI arrives with the public-page issue.
            lines.append(f"  A unit's GS1 Digital Link: {base}/01/{self.showcase_gtin}/10/{self.showcase_lot_code}"
                         f"/21/{self.showcase_serial}")
        lines.append("Demo logins (published demo passwords: never load the demo on a real instance):")
        lines += [f"  {email:<32} {role:<10} {password}" for email, role, password in self.logins]
        return "\n".join(lines)


@dataclass
class _Ctx:
    session: Session
    orgs: dict[str, Organisation]
    actors: dict[str, Actor]
    places: dict[str, Location]
    products: dict[str, Product]
    areas: list[Location]


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
        added = _Season(_context(session), rng=random.Random(SEED), year=_season_year(datetime.now(TZ))).run()
        return _summary(session, created=True, added=added, admin_password=admin_password)
    added = _recent_batch(_context(session), random.Random(SEED + 1)) if reload else 0
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
        data = OrganisationCreate(kind=kind, name=name, tax_code=TAX_PREFIX + suffix, commune_code=commune,
                                  address=f"Số 1 đường Mẫu, {admin_units.commune(commune).name}",  # type: ignore[union-attr]
                                  **extra)
        orgs[key] = create_organisation(session=session, actor=root, data=data)
    shared = hash_password(DEMO_PASSWORD)  # one (slow, salted) argon2 run for the one published password
    for key, email, name, role in USERS:
        user = create_user(session=session, email=email, full_name=name, role=role, organisation_id=orgs[key].id)
        user.password_hash = shared
    actors = _actors(session, orgs)
    rng = random.Random(SEED)
    for n, (commune, former) in enumerate(growing_area_communes(), start=1):
        create_location(session=session, actor=actors["coop"], data=LocationCreate(
            kind=LocationKind.GROWING_AREA, name=f"Vùng trồng nhãn số {n} (dữ liệu mẫu)",
            code=f"VN-HY-NL-DEMO-{n:02d}", commune_code=commune, former_commune_code=former,
            latitude=round(20.65 + rng.uniform(-0.04, 0.02), 5), longitude=round(106.05 + rng.uniform(-0.02, 0.04), 5),
            area_ha=round(rng.uniform(2.5, 8.0), 1)))
    for owner, place_kind, place_name, code, place_commune, place_former in PLACES.values():
        create_location(session=session, actor=actors[owner], data=LocationCreate(
            kind=place_kind, name=place_name, code=code, commune_code=place_commune, former_commune_code=place_former))
    for key, (org, _, _, name, name_en, category, unit, size) in PRODUCTS.items():
        create_product(session=session, actor=actors[org], data=ProductCreate(
            name_vi=name, name_en=name_en, category=category, unit=unit, gtin=demo_gtin(key),
            package_size=Decimal(size) if size else None))
    return ("HYTRACE_ADMIN_PASSWORD" if settings.admin_password else DEMO_PASSWORD) if made else None


def _actors(session: Session, orgs: dict[str, Organisation]) -> dict[str, Actor]:
    """Who acts for each organisation: its first demo user."""
    actors: dict[str, Actor] = {}
    for key, email, name, role in USERS:
        user = session.exec(select(User).where(User.email == email)).one()
        actors.setdefault(key, Actor(role=role, organisation_id=orgs[key].id, user_id=user.id, name=name))
    return actors


def _context(session: Session) -> _Ctx:
    """The demo's organisations, actors, places and products, read back from the database."""
    orgs = {key: session.exec(select(Organisation).where(Organisation.tax_code == TAX_PREFIX + spec[2])).one()
            for key, spec in ORGS.items()}
    places = {key: session.exec(select(Location).where(Location.organisation_id == orgs[spec[0]].id,
                                                       Location.kind == spec[1])).one()
              for key, spec in PLACES.items()}
    areas = list(session.exec(select(Location).where(Location.organisation_id == orgs["coop"].id,
                                                     Location.kind == LocationKind.GROWING_AREA).order_by(col(Location.id))))
    products = {key: session.exec(select(Product).where(Product.gtin == demo_gtin(key))).one() for key in PRODUCTS}
    return _Ctx(session, orgs, _actors(session, orgs), places, products, areas)


def _portion(held: Decimal, share: Decimal, step: Decimal) -> Decimal:
    """``share`` of ``held`` rounded down to whole ``step``s (whole kg, boxes, heads), at least one step."""
    return min(held, max(step, (held * share / step).quantize(Q1, rounding=ROUND_FLOOR) * step))


def _inputs(product: str, day: date, rng: random.Random) -> list[InputUsed]:
    """Farming inputs, each applied long enough before ``day`` for its pre-harvest (withdrawal) interval."""
    if product == "chicken":
        return [InputUsed(kind="feed", name="Ngô, thóc tự trồng (dữ liệu mẫu)", applied_on=day - timedelta(days=1)),
                InputUsed(kind="veterinary", name="Vắc xin Newcastle (dữ liệu mẫu)", pre_harvest_interval_days=21,
                          applied_on=day - timedelta(days=rng.randint(40, 60)))]
    return [InputUsed(kind="fertiliser", name="Phân NPK 12-5-10 (dữ liệu mẫu)", dose="1,5 kg/cây",
                      applied_on=day - timedelta(days=rng.randint(35, 50))),
            InputUsed(kind="pesticide", name="Thuốc trừ sâu sinh học (dữ liệu mẫu)", active_ingredient="Abamectin",
                      dose="10 ml/bình 16 l", applied_on=day - timedelta(days=rng.randint(15, 25)),
                      pre_harvest_interval_days=14)]


class _Season:
    """A discrete-event walk through the season: actions run in time order and schedule what follows."""

    def __init__(self, ctx: _Ctx, *, rng: random.Random, year: int) -> None:
        self.c, self.rng, self.year = ctx, rng, year
        self.queue: list[tuple[datetime, int, Callable[..., None], tuple[Any, ...]]] = []
        self.tick, self.docs, self.cartons = itertools.count(), itertools.count(1), itertools.count(1)
        self.kind: dict[int, str] = {}  # lot id -> product key
        self.pending: list[int] = []  # fresh lots received by the processor, not yet dried
        self.showcase: int | None = None
        self.inspected: set[str] = set()
        self.next_shop = itertools.cycle(["shop1", "shop2"])
        self.count = 0

    def at(self, month: int, day: int, hour: int) -> datetime:
        return datetime(self.year, month, day, hour, tzinfo=TZ)

    def later(self, when: datetime, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.queue, (when, next(self.tick), action, args))

    def cap(self, who: str, kind: EventType, data: SQLModel) -> CaptureResult:
        self.count += 1
        return capture(session=self.c.session, actor=self.c.actors[who], items=[(kind, data)])

    def held(self, who: str, lot: int) -> Decimal:
        return held_by(session=self.c.session, lot_id=lot, organisation_id=self.c.orgs[who].id)  # type: ignore[arg-type]

    def home(self, who: str) -> int | None:
        return self.c.places[HOME[who]].id if who in HOME else None

    def run(self) -> int:
        pairs = [(0, 1), (2, 3), (0, 2), (1, 3), (0, 3), (1, 2)]
        for i in range(14):  # harvests every three days, two growing areas a day, 14 July – 22 August
            for j, area in enumerate(pairs[i % len(pairs)]):
                # The first day's two harvests both go to the processor: the showcase dried lot.
                dest = "proc" if i == 0 or j == 0 else "dist"
                self.later(self.at(7, 14, 6) + timedelta(days=3 * i, minutes=90 * j), self.harvest, area, dest, i == 2 and j == 1)
        for i in range(8):
            self.later(self.at(7, 15, 14) + timedelta(days=6 * i), self.dry)
        for month, day in ((7, 20), (8, 8), (8, 26), (9, 15)):
            self.later(self.at(month, day, 5), self.chicken)
        while self.queue:
            when, _, action, args = heapq.heappop(self.queue)
            action(when, *args)
        return self.count

    def harvest(self, when: datetime, area: int, dest: str, mistaken: bool) -> None:
        day, qty = when.date(), Decimal(self.rng.randrange(400, 901, 10))
        lot = self.cap("coop", EventType.HARVEST, HarvestIn(
            product_id=self.c.products["fresh"].id, lot_code=f"NL{day:%y%m%d}-{area + 1}", quantity=qty,  # type: ignore[arg-type]
            location_id=self.c.areas[area].id, event_time=when, expiry_date=day + timedelta(days=10),
            inputs_used=_inputs("fresh", day, self.rng))).lot_ids[0]
        self.kind[lot] = "fresh"
        self.later(when + timedelta(hours=4), self.mistake if mistaken else self.ship, "coop", lot, qty, dest)

    def ship(self, when: datetime, sender: str, lot: int, qty: Decimal, dest: str) -> None:
        n = next(self.docs)
        docs = [BizTransaction(type="inv", id=f"DEMO-HD-{n:05d}"), BizTransaction(type="desadv", id=f"DEMO-PGH-{n:05d}")]
        shipment = self.cap(sender, EventType.SHIP, ShipIn(
            lot_id=lot, quantity=qty, destination_organisation_id=self.c.orgs[dest].id,  # type: ignore[arg-type]
            destination_location_id=self.home(dest), location_id=self.home(sender), event_time=when,
            biz_transactions=docs)).shipment_id
        self.later(when + timedelta(hours=2), self.receive, dest, shipment, lot)

    def mistake(self, when: datetime, sender: str, lot: int, qty: Decimal, dest: str) -> None:
        """A shipment keyed against the wrong buyer; declared erroneous and recorded again below."""
        wrong = self.cap(sender, EventType.SHIP, ShipIn(
            lot_id=lot, quantity=qty, destination_organisation_id=self.c.orgs["shop2"].id, event_time=when,  # type: ignore[arg-type]
            biz_transactions=[BizTransaction(type="desadv", id="DEMO-PGH-SAI-001")])).events[0].id
        self.later(when + timedelta(minutes=40), self.correct, sender, wrong, lot, qty, dest)

    def correct(self, when: datetime, sender: str, wrong: str, lot: int, qty: Decimal, dest: str) -> None:
        self.cap(sender, EventType.CORRECTION, CorrectionIn(
            event_id=wrong, reason="incorrect_data", event_time=when,
            note="Nhập nhầm bên nhận; lô hàng giao cho nhà phân phối (dữ liệu mẫu)"))
        self.later(when + timedelta(minutes=10), self.ship, sender, lot, qty, dest)

    def receive(self, when: datetime, who: str, shipment: int, lot: int) -> None:
        self.cap(who, EventType.RECEIVE, ReceiveIn(shipment_id=shipment, location_id=self.home(who), event_time=when))
        kind = self.kind[lot]
        if who == "proc":
            if kind == "fresh":
                self.pending.append(lot)
            else:
                self.later(when + timedelta(hours=18), self.slaughter, lot)
        elif who == "dist":
            self.later(when + timedelta(hours=1), self.store, who, lot)
            self.later(when + timedelta(days=1), self.to_shops, lot)
            if kind in ("dried", "meat") and kind not in self.inspected and (kind == "meat" or lot == self.showcase):
                self.inspected.add(kind)
                self.later(when + timedelta(days=1, hours=-2), self.inspect, lot, "pass", "Nhãn mác, mã truy xuất đầy đủ")
        else:
            step = HALF if kind == "dried" else Q1
            if kind == "fresh" and kind not in self.inspected:
                self.inspected.add(kind)
                self.later(when + timedelta(hours=1), self.inspect, lot, "warning", "Một số chùm bị dập; cần bảo quản mát")
            self.later(when + timedelta(hours=3), self.sell, who, lot, Decimal("0.5"), step)
            self.later(when + timedelta(days=5 if kind == "dried" else 1), self.sell_out, who, lot, step)

    def store(self, when: datetime, who: str, lot: int) -> None:
        self.cap(who, EventType.STORE, StoreIn(lot_id=lot, location_id=self.home(who), event_time=when))  # type: ignore[arg-type]

    def to_shops(self, when: datetime, lot: int) -> None:
        held = self.held("dist", lot)
        if self.kind[lot] == "dried":  # boxes go to both shops
            half = _portion(held, Decimal("0.5"), HALF)
            self.ship(when, "dist", lot, half, "shop1")
            self.ship(when + timedelta(minutes=30), "dist", lot, held - half, "shop2")
        else:
            self.ship(when, "dist", lot, held, next(self.next_shop))

    def sell(self, when: datetime, who: str, lot: int, share: Decimal, step: Decimal) -> None:
        self.cap(who, EventType.SELL, SellIn(lot_id=lot, quantity=_portion(self.held(who, lot), share, step),
                                              location_id=self.home(who), event_time=when))

    def sell_out(self, when: datetime, who: str, lot: int, step: Decimal) -> None:
        held = self.held(who, lot)
        if self.kind[lot] == "fresh" and self.rng.random() < 0.35 and held > 2:
            spoiled = _portion(held, Decimal("0.05"), Q1)
            self.cap(who, EventType.LOSS, LossIn(lot_id=lot, quantity=spoiled, reason="spoilage",
                                                 location_id=self.home(who), event_time=when))
            held -= spoiled
        if held > 0:
            self.later(when + timedelta(hours=2), self.sell, who, lot, Decimal(1), step)

    def inspect(self, when: datetime, lot: int, result: str, note: str) -> None:
        self.cap("qltt", EventType.INSPECT, InspectIn(lot_id=lot, result=result, event_time=when,  # type: ignore[arg-type]
                                                      note=f"{note} (dữ liệu mẫu)"))

    def dry(self, when: datetime) -> None:
        """Fresh longan received since the last run becomes dried longan (5 kg → 1 kg)."""
        lots, self.pending = self.pending, []
        if not lots:
            return
        inputs = [TransformInput(lot_id=lot, quantity=self.held("proc", lot)) for lot in lots]
        total = sum((i.quantity for i in inputs), Decimal(0))
        out = self.cap("proc", EventType.TRANSFORM, TransformIn(
            inputs=inputs, outputs=[TransformOutput(
                product_id=self.c.products["dried"].id, lot_code=f"LN{when:%y%m%d}", quantity=total * DRY_FACTOR,  # type: ignore[arg-type]
                expiry_date=when.date() + timedelta(days=365))],
            conversion=Conversion(input_unit="kg", output_unit="kg", factor=DRY_FACTOR),
            location_id=self.home("proc"), event_time=when, kde={"drying_hours": 36, "moisture_percent": 18})).lot_ids[0]
        self.kind[out] = "dried"
        self.showcase = self.showcase or out
        self.later(when + timedelta(hours=18), self.label, out)

    def label(self, when: datetime, lot: int) -> None:
        """Commission 40 boxes, pack them in two cartons (SSCCs), keep the rest, ship 60 %."""
        serials = self.cap("proc", EventType.COMMISSION, CommissionIn(
            lot_id=lot, count=40, location_id=self.home("proc"), event_time=when)).serials
        for k in range(2):
            self.later(when + timedelta(hours=1 + k), self.pack, lot, serials[20 * k:20 * k + 20])
        self.later(when + timedelta(hours=3), self.store, "proc", lot)
        self.later(when + timedelta(days=1), self.ship, "proc", lot,
                   _portion(self.held("proc", lot), Decimal("0.6"), HALF), "dist")

    def pack(self, when: datetime, lot: int, serials: list[str]) -> None:
        body = "0" + PRODUCTS["dried"][1] + f"{next(self.cartons):09d}"  # an SSCC: extension, prefix, serial
        self.cap("proc", EventType.PACK, PackIn(
            parent_id=body + gs1_check_digit(body), location_id=self.home("proc"), event_time=when,
            children=[UnitRef(lot_id=lot, serial=s) for s in serials]))

    def chicken(self, when: datetime) -> None:
        day, heads = when.date(), Decimal(self.rng.randint(24, 40))
        lot = self.cap("farm", EventType.HARVEST, HarvestIn(
            product_id=self.c.products["chicken"].id, lot_code=f"GDT{day:%y%m%d}", quantity=heads,  # type: ignore[arg-type]
            location_id=self.home("farm"), event_time=when, inputs_used=_inputs("chicken", day, self.rng))).lot_ids[0]
        self.kind[lot] = "chicken"
        self.later(when + timedelta(hours=2), self.sell, "farm", lot, Decimal("0.01"), Q1)  # one bird at the gate
        self.later(when + timedelta(hours=4), self.ship, "farm", lot, heads - 1, "proc")

    def slaughter(self, when: datetime, lot: int) -> None:
        heads = self.held("proc", lot)
        meat = self.cap("proc", EventType.TRANSFORM, TransformIn(
            inputs=[TransformInput(lot_id=lot, quantity=heads)],
            outputs=[TransformOutput(product_id=self.c.products["meat"].id, lot_code=f"TG{when:%y%m%d}",  # type: ignore[arg-type]
                                     quantity=heads * MEAT_FACTOR, expiry_date=when.date() + timedelta(days=7))],
            conversion=Conversion(input_unit="head", output_unit="kg", factor=MEAT_FACTOR),
            location_id=self.home("proc"), event_time=when)).lot_ids[0]
        self.kind[meat] = "meat"
        self.later(when + timedelta(hours=3), self.ship, "proc", meat, heads * MEAT_FACTOR, "dist")


def _recent_batch(ctx: _Ctx, rng: random.Random) -> int:
    """One harvest at each growing area and one at the chicken farm, a few hours ago."""
    start = datetime.now(TZ) - timedelta(hours=3)
    k = _count(ctx.session, Lot, Lot.product_id == ctx.products["fresh"].id)  # new codes on every reload
    items: list[tuple[str, HarvestIn]] = []
    for n, area in enumerate(ctx.areas):
        when = start + timedelta(minutes=20 * n)
        items.append(("coop", HarvestIn(
            product_id=ctx.products["fresh"].id, lot_code=f"NL{when:%y%m%d}-{n + 1}-{k + n + 1}",  # type: ignore[arg-type]
            quantity=Decimal(rng.randrange(300, 701, 10)), location_id=area.id, event_time=when,
            expiry_date=when.date() + timedelta(days=10), inputs_used=_inputs("fresh", when.date(), rng))))
    when = start + timedelta(hours=1, minutes=30)
    items.append(("farm", HarvestIn(
        product_id=ctx.products["chicken"].id, lot_code=f"GDT{when:%y%m%d}-{k + 1}",  # type: ignore[arg-type]
        quantity=Decimal(rng.randint(12, 20)), location_id=ctx.places["farm"].id, event_time=when,
        inputs_used=_inputs("chicken", when.date(), rng))))
    for who, data in items:
        capture(session=ctx.session, actor=ctx.actors[who], items=[(EventType.HARVEST, data)])
    return len(items)


def _count(session: Session, model: type[SQLModel], *where: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def _summary(session: Session, *, created: bool, added: int, admin_password: str | None) -> DemoSummary:
    orgs = [o.id for o in session.exec(select(Organisation).where(col(Organisation.tax_code).startswith(TAX_PREFIX)))]
    settings = get_settings()
    admin_email = settings.admin_email.strip().lower()
    dried = session.exec(select(Product.id).where(Product.gtin == demo_gtin("dried"))).one()
    showcase = session.exec(select(Lot).where(Lot.product_id == dried).order_by(col(Lot.id))).first()
    assert showcase is not None and showcase.id is not None
    if admin_password is None:  # an account we did not create: name the demo password only if it opens it
        try:
            authenticate(session=session, email=admin_email, password=settings.admin_password or DEMO_PASSWORD)
            admin_password = "HYTRACE_ADMIN_PASSWORD" if settings.admin_password else DEMO_PASSWORD
        except Unauthenticated:
            admin_password = "(existing account, password unchanged)"
    return DemoSummary(
        created=created, added_events=added, organisations=len(orgs),
        users=_count(session, User, col(User.organisation_id).in_(orgs)) + 1,
        locations=_count(session, Location, col(Location.organisation_id).in_(orgs)),
        products=_count(session, Product, col(Product.organisation_id).in_(orgs)),
        lots=_count(session, Lot, col(Lot.producer_organisation_id).in_(orgs)),
        events=_count(session, Event, col(Event.organisation_id).in_(orgs)),
        showcase_lot_id=showcase.id, showcase_gtin=showcase.gtin, showcase_lot_code=showcase.lot_code,
        showcase_serial=session.exec(select(Unit.serial).where(Unit.lot_id == showcase.id).order_by(col(Unit.id))).first(),
        growing_area_codes=[f"VN-HY-NL-DEMO-{n:02d}" for n in range(1, len(AREAS) + 1)],
        logins=[(admin_email, Role.ADMIN.value, admin_password)]
        + [(email, role.value, DEMO_PASSWORD) for _, email, _, role in USERS],
    )
