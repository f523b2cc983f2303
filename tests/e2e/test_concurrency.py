"""Rules that read state to decide a write, held across API processes on PostgreSQL.

SQLite's one writer at a time hides races, and so do threads sharing one process's pool: here two
real API processes on one PostgreSQL database take 20 requests at once, as a deployment with
``uvicorn --workers 2`` or two hosts behind a balancer would.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import httpx
from sqlalchemy import func, select
from sqlmodel import Session, col

from tests.conftest import Databases, require
from tests.e2e.live import another_process, demo_server
from tests.services import postgres_base_url
from trace.events.models import Event, EventType
from trace.lots import Holding, Lot, LotStatus
from trace.users import User

SHOP_LOGIN = ("cuahang-phohien@example.com", "hytrace-demo-2026")  # the demo's first shop (trace/demo)
INSPECTIONS = 20


def _token(base: str) -> str:
    answer = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": SHOP_LOGIN[0], "password": SHOP_LOGIN[1]}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_inspections_and_a_sale_of_everything_through_two_processes_never_inspect_after_the_sale(
    tmp_path: Path,
) -> None:
    base = postgres_base_url()
    require(base is not None, "no PostgreSQL server (set HYTRACE_TEST_POSTGRES_URL)")
    dbs = Databases(base, tmp_path)
    try:
        with demo_server(dbs.new(), tmp_path) as one, another_process(one, tmp_path) as two:
            # given the demo's shop holding stock of an active lot, signed in on both processes
            with Session(one.engine) as session:
                shop_id, lot_id, held = session.execute(
                    select(col(Holding.organisation_id), col(Holding.lot_id), col(Holding.quantity))
                    .join(User, col(User.organisation_id) == col(Holding.organisation_id))
                    .join(Lot, col(Lot.id) == col(Holding.lot_id))
                    .where(
                        col(User.email) == SHOP_LOGIN[0], col(Holding.quantity) > 0, col(Lot.status) == LotStatus.ACTIVE
                    )
                    .order_by(col(Holding.lot_id))
                    .limit(1)
                ).one()
                before = session.execute(
                    select(func.max(col(Event.seq))).where(col(Event.organisation_id) == shop_id)
                ).scalar_one()
            bases = [one.base, two.base]
            headers = {"Authorization": f"Bearer {_token(one.base)}"}
            start = threading.Barrier(INSPECTIONS + 1)
            inspected: list[int] = []
            sold: list[int] = []

            def send(index: int, path: str, body: dict[str, object], answers: list[int]) -> None:
                with httpx.Client(base_url=bases[index % 2], timeout=60) as client:
                    start.wait()
                    answer = client.post(path, json=body, headers={**headers, "Idempotency-Key": uuid4().hex})
                answers.append(answer.status_code)
                if answer.status_code == 403:
                    assert answer.json()["code"] == "not_holder", answer.text

            # when it sends 20 inspections at once, split over the two processes, while its till sells
            # everything it holds of the lot through one of them
            threads = [
                threading.Thread(
                    target=send, args=(i, "/api/v1/events/inspect", {"lot_id": lot_id, "result": "pass"}, inspected)
                )
                for i in range(INSPECTIONS)
            ] + [
                threading.Thread(
                    target=send,
                    args=(1, "/api/v1/events/sell", {"lot_id": lot_id, "quantity": str(Decimal(held))}, sold),
                )
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert sold == [201] and len(inspected) == INSPECTIONS and set(inspected) <= {201, 403}, (
                sold,
                inspected,
            )
            # then, in the shop's chain since (the order its events were committed in), every inspection it
            # recorded came before the sale, and every one refused is one that came after it
            with Session(one.engine) as session:
                kinds = list(
                    session.execute(
                        select(col(Event.type))
                        .where(col(Event.organisation_id) == shop_id, col(Event.seq) > (before or 0))
                        .order_by(col(Event.seq))
                    ).scalars()
                )
            assert EventType.INSPECT not in kinds[kinds.index(EventType.SELL) + 1 :], kinds
            assert kinds.count(EventType.INSPECT) == inspected.count(201)
    finally:
        dbs.drop_all()
