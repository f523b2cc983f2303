"""Custody rules raced through HTTP: two real API processes on one database take 20 requests at once.

tests/trace/test_custody_locks.py races the domain functions on 20 connections of one process; here the
same rules are raced as a deployment sees them, through ``uvicorn`` on two ports (as two workers or two
hosts behind a balancer) sharing one database. Each request carries its own ``Idempotency-Key``; a
409 ``write_conflict`` (or ``concurrent_conflict``) that the server's own retries (api/retry.py) could
not settle is sent again by the client with the same key, as the answer asks, and then counted. After
each race the holdings equal the log, read from the database directly, and no answer is a 500. The
servers and their demo data are made once per database (PostgreSQL, skipped with the reason when no
server answers, and a SQLite file); each race harvests the lots it needs through the API.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, col

from tests.conftest import Databases, require
from tests.e2e.live import REDIS, ROOT, Server, another_process, demo_server, read_as, redis_up
from tests.services import postgres_base_url
from tests.trace.test_custody_locks import holdings_match_the_log
from trace.demo.data import DEMO_PASSWORD
from trace.events.models import Event, EventType
from trace.locations import Location, LocationKind
from trace.lots import Holding, Lot, LotStatus, Shipment
from trace.products import Product
from trace.tlog import note
from trace.units import Unit, UnitStatus
from trace.users import User

N = 20
COOP, PROC, INSPECTOR = "htx-nhanlong@example.com", "long-nhan@example.com", "qltt@example.com"  # trace/demo
CLIENT_ATTEMPTS = 10  # a client's sends of one request while it answers a conflict to send again
RETRY = {"write_conflict", "concurrent_conflict"}  # 409s that say "nothing saved, send it again"
REFUSED_SPEND = {"exceeds_holding", "not_holder"}  # the loser of a race for stock hears one of these


@dataclass
class Outcomes:
    """What the racers heard: "ok" or the refusal's code, per request; conflicts the clients retried."""

    codes: Counter[str] = field(default_factory=Counter)
    conflicts: Counter[str] = field(default_factory=Counter)  # 409s the clients sent again, by code
    bodies: list[dict[str, Any]] = field(default_factory=list)  # the successful answers

    def ok(self) -> int:
        return self.codes["ok"]

    def refused(self, codes: set[str]) -> int:
        return sum(n for code, n in self.codes.items() if code in codes)


@dataclass
class Stage:
    """Two API processes on one database with the demo data; the demo's cooperative, processor, inspector."""

    one: Server
    two: Server
    tokens: dict[str, str]
    coop_id: int
    proc_id: int
    fresh_id: int  # the cooperative's fresh longan, in kg, no package size: one label per kg
    dried_id: int  # the processor's dried longan
    area_id: int  # one of the cooperative's growing areas

    @property
    def engine(self) -> Engine:
        return self.one.engine

    def headers(self, who: str, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", "Idempotency-Key": key or uuid4().hex}

    def post(self, who: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A setup request through the first process; it must succeed."""
        answer = httpx.post(f"{self.one.base}/api/v1{path}", json=body, headers=self.headers(who), timeout=60)
        assert answer.status_code in (200, 201, 202), answer.text
        return dict(answer.json())

    def harvest(self, qty: str) -> int:
        body = {"product_id": self.fresh_id, "lot_code": _code(), "quantity": qty, "location_id": self.area_id}
        return int(self.post(COOP, "/events/harvest", body)["lot_ids"][0])

    def ship(self, lot_id: int, qty: str) -> dict[str, Any]:
        body = {"lot_id": lot_id, "quantity": qty, "destination_organisation_id": self.proc_id}
        return self.post(COOP, "/events/ship", body)

    def receive(self, shipment_id: int) -> None:
        self.post(PROC, "/events/receive", {"shipment_id": shipment_id})

    def race(self, requests: list[tuple[str, str, dict[str, Any]]]) -> Outcomes:
        """Send every (who, path, body) at once from a thread pool, even ones to the first process and
        odd ones to the second; each request its own idempotency key, kept when it is sent again."""
        bases = [self.one.base, self.two.base]
        start = threading.Barrier(len(requests))
        outcomes = Outcomes()
        guard = threading.Lock()
        failures: list[str] = []

        def send(index: int) -> None:
            who, path, body = requests[index]
            headers = self.headers(who)
            with httpx.Client(base_url=f"{bases[index % 2]}/api/v1", timeout=120) as client:
                start.wait()
                for _ in range(CLIENT_ATTEMPTS):
                    answer = client.post(path, json=body, headers=headers)
                    if answer.status_code < 300 or answer.status_code >= 500:
                        code = "ok" if answer.status_code < 300 else f"http_{answer.status_code}"
                        break
                    code = str(answer.json().get("code"))
                    if answer.status_code != 409 or code not in RETRY:
                        break
                    with guard:
                        outcomes.conflicts[code] += 1
                    time.sleep(random.uniform(0.05, 0.2))  # Retry-After says 1 s; a racer need not wait so long
            with guard:
                outcomes.codes[code] += 1
                if answer.status_code < 300:
                    outcomes.bodies.append(answer.json())
                if answer.status_code >= 500:
                    failures.append(f"{path} -> {answer.status_code}: {answer.text[:500]}")

        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            for done in [pool.submit(send, i) for i in range(len(requests))]:
                done.result(timeout=180)
        assert not failures, (failures, self.one.tail(), self.two.tail())
        return outcomes


def _code() -> str:
    return f"R{uuid4().hex[:12].upper()}"


def _token(base: str, email: str) -> str:
    answer = httpx.post(f"{base}/api/v1/auth/token", data={"username": email, "password": DEMO_PASSWORD}, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


WITNESS = note.Signer(note.generate_key("witness.test", witness=True)[0])


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def stage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """The demo on a fresh database of the parameter's kind, served by two API processes."""
    tmp = tmp_path_factory.mktemp(f"races-{request.param}")
    extra: dict[str, str] = {}
    if request.param == "postgresql":
        base = postgres_base_url()
        require(base is not None, "no PostgreSQL server (set HYTRACE_TEST_POSTGRES_URL)")
        dbs = Databases(base, tmp)
        if redis_up():  # print runs send jobs; without Redis the embedded broker would land in ./data
            extra = {"HYTRACE_REDIS_URL": REDIS, "HYTRACE_CELERY_QUEUE": f"races-{uuid4().hex[:8]}"}
    else:
        dbs = Databases(None, tmp)
    extra["HYTRACE_TLOG_WITNESS_KEYS"] = WITNESS.verifier_key
    try:
        with demo_server(dbs.new(), tmp, **extra) as one, another_process(one, tmp) as two:
            with Session(one.engine) as session:
                org_of = dict(
                    session.execute(
                        select(col(User.email), col(User.organisation_id)).where(col(User.email).in_([COOP, PROC]))
                    ).all()
                )
                coop, proc = org_of[COOP], org_of[PROC]
                fresh, dried = (
                    session.execute(
                        select(col(Product.id)).where(col(Product.organisation_id) == org, col(Product.category) == cat)
                    ).scalar_one()
                    for org, cat in ((coop, "longan_fresh"), (proc, "longan_dried"))
                )
                area = session.execute(
                    select(func.min(col(Location.id))).where(
                        col(Location.organisation_id) == coop, col(Location.kind) == LocationKind.GROWING_AREA
                    )
                ).scalar_one()
            yield Stage(
                one=one,
                two=two,
                tokens={who: _token(one.base, who) for who in (COOP, PROC, INSPECTOR)},
                coop_id=coop,
                proc_id=proc,
                fresh_id=fresh,
                dried_id=dried,
                area_id=area,
            )
    finally:
        dbs.drop_all()
        if "HYTRACE_CELERY_QUEUE" in extra:
            _purge(extra["HYTRACE_CELERY_QUEUE"])


@pytest.fixture(autouse=True)
def _served_settings(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    # This process verifies the servers' log: the EPCIS ids it recomputes hash URIs under their base URL.
    read_as(stage.one.env, monkeypatch)


def _purge(queue: str) -> None:
    """Drop the print-run jobs no worker will take (best effort)."""
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(REDIS).delete(queue)


def _shipped(stage: Stage, lot_id: int) -> Decimal:
    with Session(stage.engine) as session:
        total = session.execute(select(func.sum(Shipment.quantity)).where(col(Shipment.lot_id) == lot_id)).scalar()
    return Decimal(total or 0)


def _ships(stage: Stage, lot_id: int, path: str, qty: str) -> list[tuple[str, str, dict[str, Any]]]:
    body = {"lot_id": lot_id, "quantity": qty, "destination_organisation_id": stage.proc_id}
    return [(COOP, path, body)] * N


def test_twenty_ships_of_a_whole_lot_through_two_processes_ship_it_once(stage: Stage) -> None:
    lot = stage.harvest("100")
    outcomes = stage.race(_ships(stage, lot, "/events/ship", "100"))
    assert outcomes.ok() == 1 and outcomes.refused(REFUSED_SPEND) == N - 1, outcomes
    assert _shipped(stage, lot) == Decimal(100)
    holdings_match_the_log(stage.engine, [lot])


def test_twenty_ships_of_a_quarter_through_two_processes_ship_four(stage: Stage) -> None:
    lot = stage.harvest("100")
    outcomes = stage.race(_ships(stage, lot, "/events/ship", "25"))
    assert outcomes.ok() == 4 and outcomes.refused(REFUSED_SPEND) == N - 4, outcomes
    assert _shipped(stage, lot) == Decimal(100)
    with Session(stage.engine) as session:
        found = session.get(Lot, lot)
        assert found is not None and found.status == LotStatus.ACTIVE  # in transit, not consumed
    holdings_match_the_log(stage.engine, [lot])


def test_twenty_transforms_of_a_whole_lot_through_two_processes_consume_it_once(stage: Stage) -> None:
    # given the processor holding a 100 kg lot of fresh longan
    lot = stage.harvest("100")
    stage.receive(int(stage.ship(lot, "100")["shipment_id"]))
    requests = [
        (
            PROC,
            "/events/transform",
            {
                "inputs": [{"lot_id": lot, "quantity": "100"}],
                "outputs": [{"product_id": stage.dried_id, "lot_code": _code(), "quantity": "30"}],
            },
        )
        for _ in range(N)
    ]
    outcomes = stage.race(requests)
    assert outcomes.ok() == 1 and outcomes.refused(REFUSED_SPEND) == N - 1, outcomes
    made = [int(i) for body in outcomes.bodies for i in body["lot_ids"]]
    with Session(stage.engine) as session:
        found = session.get(Lot, lot)
        assert found is not None and found.status == LotStatus.CONSUMED
    holdings_match_the_log(stage.engine, [lot, *made])


def test_twenty_print_runs_through_two_processes_take_no_more_than_the_lots_capacity(stage: Stage) -> None:
    lot = stage.harvest("20")  # 20 kg of a product without a package size: 20 labels
    outcomes = stage.race([(COOP, f"/lots/{lot}/print-runs", {"kind": "unit", "quantity": 5})] * N)
    assert outcomes.ok() == 4 and outcomes.codes["over_capacity"] == N - 4, outcomes
    with Session(stage.engine) as session:
        codes = session.execute(
            select(func.count()).select_from(Unit).where(col(Unit.lot_id) == lot, col(Unit.status) == UnitStatus.ACTIVE)
        ).scalar_one()
    assert codes == 20


def test_twenty_receipts_of_one_shipment_through_two_processes_receive_it_once(stage: Stage) -> None:
    # given the processor holding 40 kg of the lot and 60 kg more on the way
    lot = stage.harvest("100")
    stage.receive(int(stage.ship(lot, "40")["shipment_id"]))
    second = int(stage.ship(lot, "60")["shipment_id"])
    outcomes = stage.race([(PROC, "/events/receive", {"shipment_id": second})] * N)
    assert outcomes.ok() == 1 and outcomes.codes["shipment_closed"] == N - 1, outcomes
    with Session(stage.engine) as session:
        held = session.get(Holding, (lot, stage.proc_id))
        assert held is not None and held.quantity == Decimal(100)
        receipts = session.execute(
            select(func.count())
            .select_from(Event)
            .where(col(Event.type) == EventType.RECEIVE, col(Event.lot_id) == lot)
        ).scalar_one()
    assert receipts == 2
    holdings_match_the_log(stage.engine, [lot])


def test_twenty_sales_over_the_holding_through_two_processes_sell_what_is_held(stage: Stage) -> None:
    lot = stage.harvest("70")
    outcomes = stage.race([(COOP, "/events/sell", {"lot_id": lot, "quantity": "10"})] * N)
    assert outcomes.ok() == 7 and outcomes.refused(REFUSED_SPEND) == N - 7, outcomes
    with Session(stage.engine) as session:
        held = session.get(Holding, (lot, stage.coop_id))
        assert held is None or held.quantity == Decimal(0)
    holdings_match_the_log(stage.engine, [lot])


def test_ships_racing_a_recall_through_two_processes_never_ship_a_recalled_lot(stage: Stage) -> None:
    lot = stage.harvest("100")
    requests = _ships(stage, lot, "/events/ship", "5")
    requests.insert(N // 2, (INSPECTOR, f"/lots/{lot}/recall", {"reason": "Dư lượng thuốc bảo vệ thực vật cao"}))
    outcomes = stage.race(requests)
    assert set(outcomes.codes) <= {"ok", "lot_recalled"}, outcomes
    with Session(stage.engine) as session:
        times: dict[EventType, datetime] = dict(
            session.execute(
                select(col(Event.type), func.max(Event.record_time))
                .where(col(Event.lot_id) == lot, col(Event.type).in_([EventType.SHIP, EventType.RECALL]))
                .group_by(col(Event.type))
            ).all()
        )
        ships = session.execute(
            select(func.count()).select_from(Event).where(col(Event.lot_id) == lot, col(Event.type) == EventType.SHIP)
        ).scalar_one()
        found = session.get(Lot, lot)
    # the recall won or each ship did: every ship recorded was decided before the recall took the lot
    assert found is not None and found.status == LotStatus.RECALLED and EventType.RECALL in times
    assert ships == outcomes.ok() - 1 and _shipped(stage, lot) == Decimal(5 * ships)
    if ships:
        assert times[EventType.SHIP] < times[EventType.RECALL]
    holdings_match_the_log(stage.engine, [lot])


def test_twenty_corrections_of_one_event_through_two_processes_reverse_it_once(stage: Stage) -> None:
    lot = stage.harvest("100")
    shipped = stage.ship(lot, "30")["event_ids"][0]
    body = {"event_id": shipped, "reason": "incorrect_data"}
    outcomes = stage.race([(COOP, "/events/correction", body)] * N)
    assert outcomes.ok() == 1 and outcomes.codes["already_corrected"] == N - 1, outcomes
    with Session(stage.engine) as session:
        held = session.get(Holding, (lot, stage.coop_id))
        assert held is not None and held.quantity == Decimal(100)
    holdings_match_the_log(stage.engine, [lot])


def test_twenty_copies_of_a_cosignature_at_once_keep_one(stage: Stage) -> None:
    # given the demo's events appended and signed (what a worker does), and a witness's cosignature of it
    done = subprocess.run(
        [sys.executable, "-m", "trace.cli", "tlog-tick"], cwd=ROOT, env=stage.one.env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    signed = httpx.get(f"{stage.one.base}/api/v1/log/checkpoint", timeout=10).text
    body = note.split(signed)[0]
    cosigned = (body + "\n" + note.cosign(body, WITNESS, int(time.time()))).encode()
    # when twenty copies arrive at once, through both processes
    bases = [stage.one.base, stage.two.base] * 10
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(
                lambda base: httpx.post(
                    f"{base}/api/v1/log/cosignatures",
                    content=cosigned,
                    headers={"Content-Type": "text/plain"},
                    timeout=30,
                ),
                bases,
            )
        )
    # then every one was answered as kept, and one row holds it
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers if a.status_code != 200]
    with stage.engine.connect() as c:
        size = note.Checkpoint.parse(body).size
        rows = c.execute(text("SELECT count(*) FROM tlog_cosignature WHERE size = :s"), {"s": size}).scalar_one()
    assert rows == 1
