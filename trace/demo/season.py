"""The demo season: a discrete-event walk through one longan season, and a batch of recent harvests."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from trace.access import Actor
from trace.demo.data import DESIGNATIONS, HOME, PRODUCTS, RIGHTS, TZ
from trace.designations import rights
from trace.designations.models import Designation
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import (
    BizTransaction,
    CaptureResult,
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
from trace.identifiers import gs1_check_digit
from trace.locations import Location
from trace.lots import Lot, held_by
from trace.organisations import Organisation
from trace.printing import runs
from trace.products import Product
from trace.recalls import holds, recall
from trace.recalls.models import ReasonIn
from trace.units import Unit

Q1, HALF = Decimal(1), Decimal("0.5")
DRY_FACTOR, MEAT_FACTOR = Decimal("0.2"), Decimal("2.5")  # 5 kg fresh → 1 kg dried; kg per bird


@dataclass
class Context:
    """The demo's organisations, who acts for each, its places and products, and the growing areas."""

    session: Session
    orgs: dict[str, Organisation]
    actors: dict[str, Actor]
    places: dict[str, Location]
    products: dict[str, Product]
    areas: list[Location]
    designations: dict[str, Designation]


def _portion(held: Decimal, share: Decimal, step: Decimal) -> Decimal:
    """``share`` of ``held`` rounded down to whole ``step``s (whole kg, boxes, heads), at least one step."""
    return min(held, max(step, (held * share / step).quantize(Q1, rounding=ROUND_FLOOR) * step))


def _inputs(product: str, day: date, rng: random.Random) -> list[InputUsed]:
    """Farming inputs, each applied long enough before ``day`` for its pre-harvest (withdrawal) interval."""
    if product == "chicken":
        return [
            InputUsed(kind="feed", name="Ngô, thóc tự trồng (dữ liệu mẫu)", applied_on=day - timedelta(days=1)),
            InputUsed(
                kind="veterinary",
                name="Vắc xin Newcastle (dữ liệu mẫu)",
                pre_harvest_interval_days=21,
                applied_on=day - timedelta(days=rng.randint(40, 60)),
            ),
        ]
    return [
        InputUsed(
            kind="fertiliser",
            name="Phân NPK 12-5-10 (dữ liệu mẫu)",
            dose="1,5 kg/cây",
            applied_on=day - timedelta(days=rng.randint(35, 50)),
        ),
        InputUsed(
            kind="pesticide",
            name="Thuốc trừ sâu sinh học (dữ liệu mẫu)",
            active_ingredient="Abamectin",
            dose="10 ml/bình 16 l",
            applied_on=day - timedelta(days=rng.randint(15, 25)),
            pre_harvest_interval_days=14,
        ),
    ]


class Season:
    """A discrete-event walk through the season: actions run in time order and schedule what follows."""

    def __init__(self, ctx: Context, *, rng: random.Random, year: int) -> None:
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
        for i in range(len(RIGHTS)):  # the holders grant rights to use in early spring, before the season
            self.later(self.at(3, 2, 9) + timedelta(hours=i), self.grant, i)
        pairs = [(0, 1), (2, 3), (0, 2), (1, 3), (0, 3), (1, 2)]
        for i in range(14):  # harvests every three days, two growing areas a day, 14 July – 22 August
            for j, area in enumerate(pairs[i % len(pairs)]):
                # The first day's two harvests both go to the processor: the showcase dried lot.
                dest = "proc" if i == 0 or j == 0 else "dist"
                self.later(
                    self.at(7, 14, 6) + timedelta(days=3 * i, minutes=90 * j),
                    self.harvest,
                    area,
                    dest,
                    i == 2 and j == 1,
                )
        for i in range(8):
            self.later(self.at(7, 15, 14) + timedelta(days=6 * i), self.dry)
        for month, day in ((7, 20), (8, 8), (8, 26), (9, 15)):
            self.later(self.at(month, day, 5), self.chicken)
        while self.queue:
            when, _, action, args = heapq.heappop(self.queue)
            action(when, *args)
        self.hold_and_recall()
        return self.count

    def hold_and_recall(self) -> None:
        """After the season (so at today's date): the market inspector holds a fresh longan lot
        pending a residue test and lifts the hold; the farm recalls its last flock, and with it
        the meat made from it."""
        session = self.c.session
        fresh = max(lot for lot, kind in self.kind.items() if kind == "fresh")
        holds.hold(
            session=session,
            actor=self.c.actors["qltt"],
            lot_id=fresh,
            data=ReasonIn(reason="Tạm giữ chờ kết quả kiểm nghiệm dư lượng thuốc bảo vệ thực vật (dữ liệu mẫu)"),
        )
        holds.release(
            session=session,
            actor=self.c.actors["qltt"],
            lot_id=fresh,
            data=ReasonIn(reason="Kết quả kiểm nghiệm đạt; giải tỏa (dữ liệu mẫu)"),
        )
        flock = max(lot for lot, kind in self.kind.items() if kind == "chicken")
        recall.recall(
            session=session,
            actor=self.c.actors["farm"],
            lot_id=flock,
            data=ReasonIn(reason="Đàn gà nghi nhiễm bệnh; thu hồi để kiểm tra thú y (dữ liệu mẫu)"),
        )
        self.count += 3

    def grant(self, when: datetime, i: int) -> None:
        """A designation's holder grants a producer the right to use it, for five calendar years."""
        key, grantee, decision, products, place, quota = RIGHTS[i]
        rights.grant_right(
            session=self.c.session,
            actor=self.c.actors[DESIGNATIONS[key].holder],
            designation_id=self.c.designations[key].id,  # type: ignore[arg-type]
            data=rights.RightCreate(
                organisation_id=self.c.orgs[grantee].id,  # type: ignore[arg-type]
                decision_number=decision,
                valid_from=when.date(),
                valid_to=date(self.year + 4, 12, 31),
                product_ids=[self.c.products[p].id for p in products],  # type: ignore[misc]
                location_ids=[self.c.places[place].id] if place else [],  # type: ignore[list-item]
                annual_label_quota=quota,
                event_time=when,
            ),
        )
        self.count += 1

    def harvest(self, when: datetime, area: int, dest: str, mistaken: bool) -> None:
        day, qty = when.date(), Decimal(self.rng.randrange(400, 901, 10))
        lot = self.cap(
            "coop",
            EventType.HARVEST,
            HarvestIn(
                product_id=self.c.products["fresh"].id,  # type: ignore[arg-type]
                lot_code=f"NL{day:%y%m%d}-{area + 1}",
                quantity=qty,
                location_id=self.c.areas[area].id,
                event_time=when,
                expiry_date=day + timedelta(days=10),
                inputs_used=_inputs("fresh", day, self.rng),
                designation_ids=[self.c.designations["longan"].id],  # type: ignore[list-item]
            ),
        ).lot_ids[0]
        self.kind[lot] = "fresh"
        self.later(when + timedelta(hours=4), self.mistake if mistaken else self.ship, "coop", lot, qty, dest)

    def ship(self, when: datetime, sender: str, lot: int, qty: Decimal, dest: str) -> None:
        n = next(self.docs)
        docs = [
            BizTransaction(type="inv", id=f"DEMO-HD-{n:05d}"),
            BizTransaction(type="desadv", id=f"DEMO-PGH-{n:05d}"),
        ]
        shipment = self.cap(
            sender,
            EventType.SHIP,
            ShipIn(
                lot_id=lot,
                quantity=qty,
                destination_organisation_id=self.c.orgs[dest].id,  # type: ignore[arg-type]
                destination_location_id=self.home(dest),
                location_id=self.home(sender),
                event_time=when,
                biz_transactions=docs,
            ),
        ).shipment_id
        self.later(when + timedelta(hours=2), self.receive, dest, shipment, lot)

    def mistake(self, when: datetime, sender: str, lot: int, qty: Decimal, dest: str) -> None:
        """A shipment keyed against the wrong buyer; declared erroneous and recorded again below."""
        wrong = (
            self.cap(
                sender,
                EventType.SHIP,
                ShipIn(
                    lot_id=lot,
                    quantity=qty,
                    destination_organisation_id=self.c.orgs["shop2"].id,  # type: ignore[arg-type]
                    event_time=when,
                    biz_transactions=[BizTransaction(type="desadv", id="DEMO-PGH-SAI-001")],
                ),
            )
            .events[0]
            .id
        )
        self.later(when + timedelta(minutes=40), self.correct, sender, wrong, lot, qty, dest)

    def correct(self, when: datetime, sender: str, wrong: str, lot: int, qty: Decimal, dest: str) -> None:
        self.cap(
            sender,
            EventType.CORRECTION,
            CorrectionIn(
                event_id=wrong,
                reason="incorrect_data",
                event_time=when,
                note="Nhập nhầm bên nhận; lô hàng giao cho nhà phân phối (dữ liệu mẫu)",
            ),
        )
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
                self.later(
                    when + timedelta(days=1, hours=-2), self.inspect, lot, "pass", "Nhãn mác, mã truy xuất đầy đủ"
                )
        else:
            step = HALF if kind == "dried" else Q1
            if kind == "fresh" and kind not in self.inspected:
                self.inspected.add(kind)
                self.later(
                    when + timedelta(hours=1), self.inspect, lot, "warning", "Một số chùm bị dập; cần bảo quản mát"
                )
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
        self.cap(
            who,
            EventType.SELL,
            SellIn(
                lot_id=lot,
                quantity=_portion(self.held(who, lot), share, step),
                location_id=self.home(who),
                event_time=when,
            ),
        )

    def sell_out(self, when: datetime, who: str, lot: int, step: Decimal) -> None:
        held = self.held(who, lot)
        if self.kind[lot] == "fresh" and self.rng.random() < 0.35 and held > 2:
            spoiled = _portion(held, Decimal("0.05"), Q1)
            self.cap(
                who,
                EventType.LOSS,
                LossIn(lot_id=lot, quantity=spoiled, reason="spoilage", location_id=self.home(who), event_time=when),
            )
            held -= spoiled
        if held > 0:
            self.later(when + timedelta(hours=2), self.sell, who, lot, Decimal(1), step)

    def inspect(self, when: datetime, lot: int, result: str, note: str) -> None:
        self.cap(
            "qltt",
            EventType.INSPECT,
            InspectIn(
                lot_id=lot,
                result=result,  # type: ignore[arg-type]
                event_time=when,
                note=f"{note} (dữ liệu mẫu)",
            ),
        )

    def dry(self, when: datetime) -> None:
        """Fresh longan received since the last run becomes dried longan (5 kg → 1 kg)."""
        lots, self.pending = self.pending, []
        if not lots:
            return
        inputs = [TransformInput(lot_id=lot, quantity=self.held("proc", lot)) for lot in lots]
        total = sum((i.quantity for i in inputs), Decimal(0))
        out = self.cap(
            "proc",
            EventType.TRANSFORM,
            TransformIn(
                inputs=inputs,
                outputs=[
                    TransformOutput(
                        product_id=self.c.products["dried"].id,  # type: ignore[arg-type]
                        lot_code=f"LN{when:%y%m%d}",
                        quantity=total * DRY_FACTOR,
                        expiry_date=when.date() + timedelta(days=365),
                    )
                ],
                conversion=Conversion(input_unit="kg", output_unit="kg", factor=DRY_FACTOR),
                location_id=self.home("proc"),
                event_time=when,
                kde={"drying_hours": 36, "moisture_percent": 18},
            ),
        ).lot_ids[0]
        self.kind[out] = "dried"
        self.showcase = self.showcase or out
        self.later(when + timedelta(hours=18), self.label, out)

    def label(self, when: datetime, lot: int) -> None:
        """Print 40 box labels (a print run on A4 4×10 decal sheets), pack them in two cartons
        (SSCCs), keep the rest, ship 60 %. The showcase run loses one label to a smudge: voided."""
        session = self.c.session
        run = runs.create_run(
            session=session,
            actor=self.c.actors["proc"],
            lot_id=lot,
            data=runs.PrintRunCreate(
                quantity=40, format="a4-4x10", packed_on=when.date(), location_id=self.home("proc"), event_time=when
            ),
        )
        self.count += 1
        units = session.exec(select(Unit).where(Unit.print_run_id == run.id).order_by(col(Unit.id))).all()
        if lot == self.showcase:
            self.later(when + timedelta(minutes=30), self.void, run.id, units[-1].code)  # type: ignore[arg-type]
            units = units[:-1]
        serials = [u.serial for u in units]
        for k in range(2):
            self.later(when + timedelta(hours=1 + k), self.pack, lot, serials[20 * k : 20 * k + 20])
        self.later(when + timedelta(hours=3), self.store, "proc", lot)
        self.later(
            when + timedelta(days=1),
            self.ship,
            "proc",
            lot,
            _portion(self.held("proc", lot), Decimal("0.6"), HALF),
            "dist",
        )

    def void(self, when: datetime, run: int, code: str) -> None:
        runs.void_codes(
            session=self.c.session,
            actor=self.c.actors["proc"],
            run_id=run,
            data=runs.VoidIn(codes=[code], reason="Nhãn bị nhòe mực khi in (dữ liệu mẫu)", event_time=when),
        )
        self.count += 1

    def pack(self, when: datetime, lot: int, serials: list[str]) -> None:
        body = "0" + PRODUCTS["dried"][1] + f"{next(self.cartons):09d}"  # an SSCC: extension, prefix, serial
        self.cap(
            "proc",
            EventType.PACK,
            PackIn(
                parent_id=body + gs1_check_digit(body),
                location_id=self.home("proc"),
                event_time=when,
                children=[UnitRef(lot_id=lot, serial=s) for s in serials],
            ),
        )

    def chicken(self, when: datetime) -> None:
        day, heads = when.date(), Decimal(self.rng.randint(24, 40))
        lot = self.cap(
            "farm",
            EventType.HARVEST,
            HarvestIn(
                product_id=self.c.products["chicken"].id,  # type: ignore[arg-type]
                lot_code=f"GDT{day:%y%m%d}",
                quantity=heads,
                location_id=self.home("farm"),
                event_time=when,
                inputs_used=_inputs("chicken", day, self.rng),
                designation_ids=[self.c.designations["chicken"].id],  # type: ignore[list-item]
            ),
        ).lot_ids[0]
        self.kind[lot] = "chicken"
        self.later(when + timedelta(hours=2), self.sell, "farm", lot, Decimal("0.01"), Q1)  # one bird at the gate
        self.later(when + timedelta(hours=4), self.ship, "farm", lot, heads - 1, "proc")

    def slaughter(self, when: datetime, lot: int) -> None:
        heads = self.held("proc", lot)
        meat = self.cap(
            "proc",
            EventType.TRANSFORM,
            TransformIn(
                inputs=[TransformInput(lot_id=lot, quantity=heads)],
                outputs=[
                    TransformOutput(
                        product_id=self.c.products["meat"].id,  # type: ignore[arg-type]
                        lot_code=f"TG{when:%y%m%d}",
                        quantity=heads * MEAT_FACTOR,
                        expiry_date=when.date() + timedelta(days=7),
                    )
                ],
                conversion=Conversion(input_unit="head", output_unit="kg", factor=MEAT_FACTOR),
                location_id=self.home("proc"),
                event_time=when,
            ),
        ).lot_ids[0]
        self.kind[meat] = "meat"
        self.later(when + timedelta(hours=3), self.ship, "proc", meat, heads * MEAT_FACTOR, "dist")


def recent_batch(ctx: Context, rng: random.Random) -> int:
    """One harvest at each growing area and one at the chicken farm, a few hours ago."""
    start = datetime.now(TZ) - timedelta(hours=3)
    k = count(ctx.session, Lot, Lot.product_id == ctx.products["fresh"].id)  # new codes on every reload
    items: list[tuple[str, HarvestIn]] = []
    for n, area in enumerate(ctx.areas):
        when = start + timedelta(minutes=20 * n)
        items.append(
            (
                "coop",
                HarvestIn(
                    product_id=ctx.products["fresh"].id,  # type: ignore[arg-type]
                    lot_code=f"NL{when:%y%m%d}-{n + 1}-{k + n + 1}",
                    quantity=Decimal(rng.randrange(300, 701, 10)),
                    location_id=area.id,
                    event_time=when,
                    expiry_date=when.date() + timedelta(days=10),
                    inputs_used=_inputs("fresh", when.date(), rng),
                    designation_ids=[ctx.designations["longan"].id],  # type: ignore[list-item]
                ),
            )
        )
    when = start + timedelta(hours=1, minutes=30)
    items.append(
        (
            "farm",
            HarvestIn(
                product_id=ctx.products["chicken"].id,  # type: ignore[arg-type]
                lot_code=f"GDT{when:%y%m%d}-{k + 1}",
                quantity=Decimal(rng.randint(12, 20)),
                location_id=ctx.places["farm"].id,
                event_time=when,
                inputs_used=_inputs("chicken", when.date(), rng),
                designation_ids=[ctx.designations["chicken"].id],  # type: ignore[list-item]
            ),
        )
    )
    for who, data in items:
        capture(session=ctx.session, actor=ctx.actors[who], items=[(EventType.HARVEST, data)])
    return len(items)


def count(session: Session, model: type[SQLModel], *where: Any) -> int:
    """How many rows of ``model`` match ``where``."""
    return int(session.exec(select(func.count()).select_from(model).where(*where)).one())
