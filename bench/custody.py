"""Custody under a mixed concurrent load: several processes, several organisations, the same lots.

Run from the repository root::

    .venv/bin/python -m bench.custody [--database-url URL] [--seconds 20] [--processes 4] [--orgs 2]
                                      [--path api|domain|both] [--seed N] [--redis-url URL]

Cooperatives harvest fresh longan and ship it to processors and shops; processors receive it,
transform it into dried longan, label it (print runs and commissions) and ship it to shops; shops
receive and sell; anyone holding stock writes some off. Every process acts for every organisation
and picks its lot or shipment among the newest few the database shows it, so processes often reach
for the same stock at once and the rules refuse the losers (``exceeds_holding``, ``shipment_closed``,
``over_capacity``, ...). ``--path api``: each process is an HTTP client of ``uvicorn api.main:app
--workers 2``; ``--path domain``: each calls the domain layer on its own connection. Afterwards every
lot must balance: made (the log's harvest and transform outputs) = held (``holding``) + in transit
(open ``shipment`` rows) + consumed + sold + lost (the log's transform inputs, sales and losses), and
every holding must equal its custody deltas in the log; the exit status is 1 when one does not, or
when an answer was a 500.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col

from api import dberrors  # the one table of which database errors mean "send it again"
from bench.common import ADMIN, COMMUNE, ROOT, emit, free_port, migrate, server_version, table
from trace import locations, organisations, products, users
from trace.access import Actor, Role
from trace.errors import DomainError
from trace.events import chain
from trace.events.ledger import INPUT_OF, capture
from trace.events.models import Event, EventLot, EventType
from trace.lots import Holding, Lot, LotStatus, Shipment, ShipmentStatus
from trace.platform.db import make_engine, session_scope
from trace.printing.runs import PrintRunCreate, create_run

PASSWORD = "bench-password-Ab3!"
RETRY = {"write_conflict", "concurrent_conflict"}  # 409s that say "nothing saved, send it again"
ATTEMPTS = 10  # sends of one request while it meets a conflict
NEWEST = 3  # a process picks among the newest few lots or shipments it sees: the others do too
# What a process does next, by weight; each kind is done by an organisation that can.
MIX = {"harvest": 12, "ship": 20, "receive": 20, "transform": 10, "label": 10, "sell": 20, "loss": 4}


@dataclass(frozen=True)
class Org:
    id: int
    kind: str  # cooperative | processor | retailer
    email: str
    location_id: int  # a growing area, a packing facility, a shop
    product_id: int | None  # fresh longan (cooperative) or dried longan in 500 g boxes (processor)


def setup(engine: Engine, count: int) -> list[Org]:
    """``count`` cooperatives, processors and shops, each with a location, its product and a member who
    can sign in; through the domain layer, named after a run tag so a database can be used again."""
    tag = uuid.uuid4().int % 10**6
    shape = {
        "cooperative": ("growing_area", "Nhãn lồng tươi", "longan_fresh", None),
        "processor": ("packing_facility", "Long nhãn sấy, hộp 500 g", "longan_dried", Decimal("0.5")),
        "retailer": ("shop", None, None, None),
    }
    made = []
    with session_scope(engine) as s:
        for k in range(count):
            for i, (kind, (place, name, category, size)) in enumerate(shape.items()):
                org = organisations.create_organisation(
                    session=s,
                    actor=ADMIN,
                    data=organisations.OrganisationCreate(
                        kind=kind,  # type: ignore[arg-type]
                        name=f"{kind} custody {tag} {k}",
                        tax_code=f"97{tag:06d}{3 * k + i:02d}",
                        commune_code=COMMUNE,
                    ),
                )
                member = Actor(role=Role.MEMBER, organisation_id=org.id)
                location = locations.create_location(
                    session=s,
                    actor=member,
                    data=locations.LocationCreate(
                        kind=place,  # type: ignore[arg-type]
                        name=f"{place} {k}",
                        code=f"VN-HY-CUS-{tag}-{k}" if place == "growing_area" else None,
                        commune_code=COMMUNE,
                    ),
                )
                product = (
                    products.create_product(
                        session=s,
                        actor=member,
                        data=products.ProductCreate(name_vi=name, category=category, unit="kg", package_size=size),
                    )
                    if name and category
                    else None
                )
                email = f"custody{tag}-{kind}{k}@hytrace.test"
                users.create_user(
                    session=s,
                    email=email,
                    full_name="Người đo",
                    role=Role.MEMBER,
                    organisation_id=org.id,
                    password=PASSWORD,
                )
                made.append(Org(org.id, kind, email, location.id, product.id if product else None))  # type: ignore[arg-type]
    return made


class Answer:
    """One operation's outcome: "ok", a refusal's code, or an error (a 500, a broken connection)."""

    def __init__(self, outcome: str, body: Any = None, error: str | None = None, conflicts: int = 0) -> None:
        self.outcome, self.body, self.error, self.conflicts = outcome, body, error, conflicts


class ApiClient:
    """Sends operations as HTTP requests, one idempotency key each (kept when sent again)."""

    def __init__(self, base: str, orgs: list[Org]) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=120)
        self.tokens = {o.id: self._token(o.email) for o in orgs}

    def _token(self, email: str) -> str:
        answer = self.http.post("/auth/token", data={"username": email, "password": PASSWORD})
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def send(self, org: Org, kind: str, data: dict[str, Any]) -> Answer:
        path = f"/lots/{data.pop('lot_id')}/print-runs" if kind == "print_run" else f"/events/{kind}"
        headers = {
            "Authorization": f"Bearer {self.tokens[org.id]}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Prefer": "return=minimal",
        }
        conflicts = 0
        for _ in range(ATTEMPTS):
            try:
                answer = self.http.post(path, json=data, headers=headers)
            except httpx.HTTPError as error:
                return Answer("error", error=f"{path}: {type(error).__name__}: {error}", conflicts=conflicts)
            if answer.status_code < 300:
                return Answer("ok", answer.json(), conflicts=conflicts)
            if answer.status_code >= 500:
                return Answer("error", error=f"{path}: {answer.status_code} {answer.text[:300]}", conflicts=conflicts)
            code = str(answer.json().get("code"))
            if answer.status_code != 409 or code not in RETRY:
                return Answer(code, conflicts=conflicts)
            conflicts += 1
            time.sleep(random.uniform(0.02, 0.1))  # Retry-After says 1 s: a racer need not wait that long
        return Answer(code, conflicts=conflicts)

    def close(self) -> None:
        self.http.close()


class DomainClient:
    """Calls the domain layer on this process's own connection, one transaction per operation."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send(self, org: Org, kind: str, data: dict[str, Any]) -> Answer:
        actor = Actor(role=Role.MEMBER, organisation_id=org.id, name=f"bench {org.kind}")
        conflicts = 0
        for _ in range(ATTEMPTS):
            try:
                with session_scope(self.engine) as session:
                    if kind == "print_run":
                        lot_id = data["lot_id"]
                        request = PrintRunCreate.model_validate({k: v for k, v in data.items() if k != "lot_id"})
                        run = create_run(session=session, actor=actor, lot_id=lot_id, data=request)
                        body: Any = {"id": run.id}
                    else:
                        item = INPUT_OF[EventType(kind)].model_validate(data)
                        result = capture(session=session, actor=actor, items=[(EventType(kind), item)], minimal=True)
                        body = {"lot_ids": result.lot_ids}
                return Answer("ok", body, conflicts=conflicts)
            except DomainError as error:
                return Answer(error.code or type(error).__name__, conflicts=conflicts)
            except IntegrityError:
                pass  # a unique key a concurrent writer took: run again, as the API's server does
            except DBAPIError as error:
                if dberrors.fault_of(error) is not dberrors.WRITE_CONFLICT:
                    return Answer("error", error=f"{kind}: {type(error).__name__}: {error}", conflicts=conflicts)
            except Exception as error:
                return Answer("error", error=f"{kind}: {type(error).__name__}: {error}", conflicts=conflicts)
            conflicts += 1
            time.sleep(random.uniform(0.02, 0.1))
        return Answer("write_conflict", conflicts=conflicts)

    def close(self) -> None:
        pass


class Picker:
    """What a process sees of the world, read afresh before each operation (and stale by the time it acts)."""

    def __init__(self, engine: Engine, orgs: list[Org], rng: random.Random, worker: int) -> None:
        self.engine, self.orgs, self.rng, self.worker, self.seq = engine, orgs, rng, worker, 0
        self.of_kind = {kind: [o for o in orgs if o.kind == kind] for kind in ("cooperative", "processor", "retailer")}

    def _held(self, org: Org, product_ids: set[int | None] | None = None) -> list[tuple[int, Decimal]]:
        """The newest few lots ``org`` holds some of (of these products), and how much."""
        query = (
            select(col(Holding.lot_id), col(Holding.quantity))
            .join(Lot, col(Lot.id) == col(Holding.lot_id))
            .where(
                col(Holding.organisation_id) == org.id, col(Holding.quantity) > 0, col(Lot.status) == LotStatus.ACTIVE
            )
            .order_by(col(Holding.lot_id).desc())
            .limit(NEWEST)
        )
        if product_ids is not None:
            query = query.where(col(Lot.product_id).in_(product_ids))
        with Session(self.engine) as session:
            return [(lot, Decimal(q)) for lot, q in session.execute(query)]

    def _open(self, org: Org) -> list[tuple[int, Decimal]]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(col(Shipment.id), col(Shipment.quantity) - col(Shipment.received_quantity))
                .where(col(Shipment.to_organisation_id) == org.id, col(Shipment.status) == ShipmentStatus.OPEN)
                .order_by(col(Shipment.id))
                .limit(NEWEST)
            )
            return [(sid, Decimal(left)) for sid, left in rows]

    def _code(self, letter: str) -> str:
        self.seq += 1
        return f"{letter}{self.worker}-{self.seq:06d}-{self.rng.randrange(10**6):06d}"

    def _qty(self, held: Decimal, low: int, high: int) -> str:
        """Often more than a stale view allows: the holder may have sold some meanwhile."""
        return str(min(Decimal(self.rng.randint(low, high)), held + self.rng.choice((0, 0, 5))))

    def next(self) -> tuple[Org, str, dict[str, Any]]:
        """The next operation (organisation, kind, body); a harvest when the drawn one finds nothing to act on."""
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        chosen = getattr(self, f"_{kind}")()
        return chosen if chosen is not None else self._harvest()

    def _harvest(self) -> tuple[Org, str, dict[str, Any]]:
        coop = self.rng.choice(self.of_kind["cooperative"])
        body = {
            "product_id": coop.product_id,
            "lot_code": self._code("H"),
            "quantity": str(self.rng.choice((50, 100, 200))),
            "location_id": coop.location_id,
        }
        return coop, "harvest", body

    def _ship(self) -> tuple[Org, str, dict[str, Any]] | None:
        org = self.rng.choice(self.of_kind["cooperative"] + self.of_kind["processor"])
        held = self._held(org)
        if not held:
            return None
        lot, qty = self.rng.choice(held)
        to = self.rng.choice(
            self.of_kind["retailer"] + (self.of_kind["processor"] if org.kind == "cooperative" else [])
        )
        body = {"lot_id": lot, "quantity": self._qty(qty, 5, 60), "destination_organisation_id": to.id}
        return org, "ship", body

    def _receive(self) -> tuple[Org, str, dict[str, Any]] | None:
        org = self.rng.choice(self.of_kind["processor"] + self.of_kind["retailer"])
        shipments = self._open(org)
        if not shipments:
            return None
        shipment, left = self.rng.choice(shipments)
        part = self.rng.random() < 0.3 and left > 10
        return org, "receive", {"shipment_id": shipment, **({"quantity": "10"} if part else {})}

    def _transform(self) -> tuple[Org, str, dict[str, Any]] | None:
        org = self.rng.choice(self.of_kind["processor"])
        fresh = {o.product_id for o in self.of_kind["cooperative"]}
        inputs = self._held(org, fresh)[: self.rng.randint(1, 2)]
        if not inputs:
            return None
        taken = [(lot, self._qty(qty, 20, 50)) for lot, qty in inputs]
        out = (sum(Decimal(q) for _, q in taken) * Decimal("0.2")).quantize(Decimal("0.001"))
        body = {
            "inputs": [{"lot_id": lot, "quantity": q} for lot, q in taken],
            "outputs": [{"product_id": org.product_id, "lot_code": self._code("T"), "quantity": str(out)}],
            "location_id": org.location_id,
        }
        return org, "transform", body

    def _label(self) -> tuple[Org, str, dict[str, Any]] | None:
        org = self.rng.choice(self.of_kind["cooperative"] + self.of_kind["processor"])
        held = self._held(org, {org.product_id})  # one's own product: packages of a known size
        if not held:
            return None
        lot, _ = self.rng.choice(held)
        count = self.rng.randint(5, 20)
        if self.rng.random() < 0.5:
            return org, "commission", {"lot_id": lot, "count": count}
        return org, "print_run", {"lot_id": lot, "kind": "unit", "quantity": count}

    def _sell(self) -> tuple[Org, str, dict[str, Any]] | None:
        org = self.rng.choice(self.of_kind["retailer"] * 3 + self.of_kind["processor"] + self.of_kind["cooperative"])
        held = self._held(org)
        if not held:
            return None
        lot, qty = self.rng.choice(held)
        return org, "sell", {"lot_id": lot, "quantity": self._qty(qty, 1, 15)}

    def _loss(self) -> tuple[Org, str, dict[str, Any]] | None:
        org = self.rng.choice(self.orgs)
        held = self._held(org)
        if not held:
            return None
        lot, qty = self.rng.choice(held)
        return org, "loss", {"lot_id": lot, "quantity": self._qty(qty, 1, 5), "reason": "spoilage"}


def worker(
    index: int, url: str, base: str | None, orgs: list[Org], seconds: float, seed: int, start: Any
) -> dict[str, Any]:
    """One process: sign in (API) or connect (domain), wait for the others, then act until the time is up."""
    engine = make_engine(url, pool_size=2)
    try:
        client: ApiClient | DomainClient = ApiClient(base, orgs) if base else DomainClient(engine)
    except Exception:
        start.abort()  # nobody waits for a process that will never arrive
        raise
    picker = Picker(engine, orgs, random.Random(seed + index), index)
    tally: dict[str, Counter[str]] = {}
    conflicts: Counter[str] = Counter()
    errors: list[str] = []
    start.wait(timeout=120)
    deadline = time.monotonic() + seconds
    began = time.monotonic()
    while time.monotonic() < deadline:
        org, kind, body = picker.next()
        answer = client.send(org, kind, body)
        tally.setdefault(kind, Counter())[answer.outcome] += 1
        conflicts[kind] += answer.conflicts
        if answer.error and len(errors) < 20:
            errors.append(answer.error)
    elapsed = time.monotonic() - began
    client.close()
    engine.dispose()
    return {
        "tally": {k: dict(v) for k, v in tally.items()},
        "conflicts": dict(conflicts),
        "errors": errors,
        "seconds": elapsed,
    }


def _run_worker(args: tuple[Any, ...]) -> dict[str, Any]:
    return worker(*args)


@contextmanager
def api_server(url: str, log: Path, redis_url: str) -> Iterator[str]:
    """``uvicorn api.main:app --workers 2`` on a free loopback port; its base URL; stopped at the end."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HYTRACE_")},
        "HYTRACE_DATABASE_URL": url,
        "HYTRACE_ENVIRONMENT": "development",
        "HYTRACE_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "HYTRACE_REDIS_URL": redis_url,  # empty: the embedded broker (print runs send their jobs to it)
        "HYTRACE_RATE_LIMIT_AUTHENTICATED_PER_MINUTE": "0",  # every process signs in as every organisation
        "HYTRACE_RATE_LIMIT_LOGIN_PER_MINUTE": "1000000",
        "FORWARDED_ALLOW_IPS": "",
    }
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--workers", "2", "--host", "127.0.0.1"]
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [*command, "--port", str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn exited ({server.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not answer within 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def balance(engine: Engine) -> dict[str, Any]:
    """Every lot: made = held + in transit + consumed + sold + lost; every holding = its deltas in the log."""
    zero = Decimal(0)
    with Session(engine) as session:
        corrected = select(col(Event.corrects_event_id)).where(col(Event.corrects_event_id).is_not(None))
        flows = session.execute(
            select(col(EventLot.lot_id), col(Event.type), col(EventLot.role), func.sum(EventLot.quantity))
            .join(Event, col(Event.id) == col(EventLot.event_id))
            .where(col(Event.id).not_in(corrected), col(Event.corrects_event_id).is_(None))
            .group_by(col(EventLot.lot_id), col(Event.type), col(EventLot.role))
        ).all()
        held = dict(
            session.execute(select(col(Holding.lot_id), func.sum(Holding.quantity)).group_by(col(Holding.lot_id))).all()
        )
        transit = dict(
            session.execute(
                select(col(Shipment.lot_id), func.sum(col(Shipment.quantity) - col(Shipment.received_quantity)))
                .where(col(Shipment.status) == ShipmentStatus.OPEN)
                .group_by(col(Shipment.lot_id))
            ).all()
        )
        lots = dict(
            session.execute(select(col(Lot.id), col(Lot.quantity)).where(col(Lot.status) != LotStatus.CANCELLED)).all()
        )
        holdings = {
            (lot, org): Decimal(q)
            for lot, org, q in session.execute(
                select(col(Holding.lot_id), col(Holding.organisation_id), col(Holding.quantity))
            )
        }
        deltas = {
            (lot, org): Decimal(q)
            for lot, org, q in session.execute(
                select(col(EventLot.lot_id), col(EventLot.organisation_id), func.sum(EventLot.delta))
                .where(col(EventLot.organisation_id).is_not(None), col(EventLot.event_id).not_in(corrected))
                .group_by(col(EventLot.lot_id), col(EventLot.organisation_id))
            )
        }
    terms: dict[int, dict[str, Decimal]] = {}
    for lot, kind, role, qty in flows:
        name = {
            (EventType.HARVEST, "output"): "made",
            (EventType.TRANSFORM, "output"): "made",
            (EventType.TRANSFORM, "input"): "consumed",
            (EventType.SELL, "object"): "sold",
            (EventType.LOSS, "object"): "lost",
        }.get((EventType(kind), role))
        if name:
            row = terms.setdefault(lot, {})
            row[name] = row.get(name, zero) + Decimal(qty or 0)
    unbalanced = []
    for lot in sorted(set(lots) | set(terms) | set(held) | set(transit)):
        t = terms.get(lot, {})
        made = t.get("made", zero)
        parts = {
            "held": Decimal(held.get(lot) or 0),
            "in_transit": Decimal(transit.get(lot) or 0),
            "consumed": t.get("consumed", zero),
            "sold": t.get("sold", zero),
            "lost": t.get("lost", zero),
        }
        if made != sum(parts.values()) or Decimal(lots.get(lot) or 0) != made:
            unbalanced.append(
                {
                    "lot": lot,
                    "made": str(made),
                    "lot_quantity": str(lots.get(lot)),
                    **{k: str(v) for k, v in parts.items()},
                }
            )
    off = sorted({k for k in holdings.keys() | deltas.keys() if holdings.get(k, zero) != deltas.get(k, zero)})
    totals = {
        name: sum((t.get(name, zero) for t in terms.values()), zero) for name in ("made", "consumed", "sold", "lost")
    }
    totals["held"] = sum((Decimal(v or 0) for v in held.values()), zero)
    totals["in_transit"] = sum((Decimal(v or 0) for v in transit.values()), zero)
    return {
        "lots": len(lots),
        "unbalanced": unbalanced[:10],
        "unbalanced_count": len(unbalanced),
        "holdings": len(holdings),
        "holdings_off": [
            {"lot": lot, "org": org, "held": str(holdings.get((lot, org))), "log": str(deltas.get((lot, org)))}
            for lot, org in off[:10]
        ],
        "holdings_off_count": len(off),
        "totals_kg": {k: str(v) for k, v in totals.items()},
        "ok": not unbalanced and not off,
    }


def run(
    url: str, path: str, orgs: list[Org], processes: int, seconds: float, seed: int, redis_url: str
) -> dict[str, Any]:
    """One load of ``seconds`` from ``processes`` processes, then the balance of every lot."""
    engine = make_engine(url, pool_size=2)
    with tempfile.TemporaryDirectory(prefix="hytrace_custody_") as tmp:
        with api_server(url, Path(tmp) / "uvicorn.log", redis_url) if path == "api" else _nothing() as base:
            ctx = mp.get_context("spawn")
            with ctx.Manager() as manager:
                start = manager.Barrier(processes + 1)
                jobs = [(i, url, base, orgs, seconds, seed, start) for i in range(processes)]
                with ctx.Pool(processes) as pool:
                    pending = pool.map_async(_run_worker, jobs)
                    start.wait(timeout=180)  # every process signed in or connected
                    began = time.monotonic()
                    results = pending.get(timeout=seconds + 300)
                    wall = time.monotonic() - began
    tally: dict[str, Counter[str]] = {}
    conflicts: Counter[str] = Counter()
    errors = [e for r in results for e in r["errors"]]
    for r in results:
        for kind, counts in r["tally"].items():
            tally.setdefault(kind, Counter()).update(counts)
        conflicts.update(r["conflicts"])
    recorded = sum(c["ok"] for c in tally.values())
    sent = sum(sum(c.values()) for c in tally.values())
    with session_scope(engine, write=False) as session:
        report = chain.verify(session=session)
    out = {
        "path": path,
        "processes": processes,
        "seconds": round(wall, 2),
        "operations": sent,
        "events": recorded,
        "events_per_s": round(recorded / wall, 1),
        "refused": dict(
            sum((Counter({k: v for k, v in c.items() if k not in ("ok", "error")}) for c in tally.values()), Counter())
        ),
        "by_kind": {k: dict(v) for k, v in sorted(tally.items())},
        "conflicts_retried": dict(conflicts),
        "errors": sum(c["error"] for c in tally.values()),
        "error_samples": errors[:5],
        "balance": balance(engine),
        "chain_ok": report.ok,
        "database": server_version(engine),
    }
    engine.dispose()
    return out


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """The given database, migrated to head; or a fresh SQLite file, removed afterwards."""
    if url:
        migrate(url)
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="hytrace_bench_") as tmp:
        fresh = f"sqlite:///{Path(tmp) / 'custody.db'}"
        migrate(fresh)
        yield fresh


def main() -> None:
    """Parse the options, load and check each path, print the figures; exit 1 when a lot does not balance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="the database to load (migrated first); default a fresh SQLite file")
    parser.add_argument("--seconds", type=float, default=20, help="load time per path (default 20)")
    parser.add_argument("--processes", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--orgs", type=int, default=2, help="cooperatives, processors and shops, of each (default 2)")
    parser.add_argument("--path", choices=("api", "domain", "both"), default="both")
    parser.add_argument("--seed", type=int, default=20261127, help="random seed of the processes' choices")
    parser.add_argument("--redis-url", default="", help="the API's broker for print-run jobs (default: embedded)")
    args = parser.parse_args()
    results = []
    failed = False
    with database(args.database_url) as url:
        for path in ("api", "domain") if args.path == "both" else (args.path,):
            engine = make_engine(url, pool_size=2)
            orgs = setup(engine, args.orgs)
            engine.dispose()
            print(f"[{path}] {args.processes} processes, {len(orgs)} organisations, {args.seconds:g} s ...", flush=True)
            result = run(url, path, orgs, args.processes, args.seconds, args.seed, args.redis_url)
            results.append(result)
            failed = failed or not result["balance"]["ok"] or result["errors"] > 0 or not result["chain_ok"]
            _print(result)
    emit("custody", {"processes": args.processes, "orgs": args.orgs, "results": results})
    sys.exit(1 if failed else 0)


def _print(r: dict[str, Any]) -> None:
    print()
    rows = []
    for kind, counts in r["by_kind"].items():
        refused = sum(v for k, v in counts.items() if k not in ("ok", "error"))
        rows.append(
            [
                kind,
                sum(counts.values()),
                counts.get("ok", 0),
                refused,
                r["conflicts_retried"].get(kind, 0),
                counts.get("error", 0),
            ]
        )
    print(table(["operation", "sent", "ok", "refused", "conflicts retried", "errors"], rows))
    print()
    refused = sorted(r["refused"].items(), key=lambda kv: -kv[1])
    print("refused races by code: " + (", ".join(f"{code} {n:,}" for code, n in refused) or "none"))
    b = r["balance"]
    print(
        f"{r['path']}: {r['events']:,} events in {r['seconds']} s = {r['events_per_s']:,} events/s "
        f"({r['operations']:,} operations, {r['database']}); chain {'ok' if r['chain_ok'] else 'BROKEN'}"
    )
    print("totals (kg): " + ", ".join(f"{k} {v}" for k, v in b["totals_kg"].items()))
    verdict = "ok" if b["ok"] else "FAILED"
    print(
        f"invariant {verdict}: {b['lots']:,} lots, made = held + in transit + consumed + sold + lost "
        f"({b['unbalanced_count']} off); {b['holdings']:,} holdings = the log's deltas ({b['holdings_off_count']} off)"
    )
    for row in b["unbalanced"] + b["holdings_off"]:
        print(f"  {row}")
    if r["errors"]:
        print(f"ERRORS: {r['errors']} (first: {r['error_samples']})")


if __name__ == "__main__":
    main()
