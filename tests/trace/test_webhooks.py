"""Partner webhooks: signatures, the retry schedule, who may subscribe to what, a dispatcher that
never delivers an event twice, and real HTTP deliveries to a receiver on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from contextlib import nullcontext
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from tests import factories as f
from trace import webhooks
from trace.access import Role
from trace.epcis.document import schema_errors
from trace.epcis.ids import lookup
from trace.errors import Forbidden, RuleViolation
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import ShipIn
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow
from trace.webhooks import DeliveryStatus, WebhookCreate, WebhookDelivery, WebhookSubscription
from workers import webhooks as worker

SECRET = "whsec_test"


@pytest.fixture(autouse=True)
def _local_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_WEBHOOK_ALLOW_HTTP_LOCALHOST", "true")
    monkeypatch.setenv("HYTRACE_WEBHOOK_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("HYTRACE_WEBHOOK_TIMEOUT_SECONDS", "5")
    get_settings.cache_clear()


# --------------------------------------------------------------------------- signing and schedule


def test_a_signature_verifies_and_a_tampered_or_stale_one_does_not() -> None:
    body = json.dumps({"event": {"id": "e1", "note": "Nhãn lồng"}}, ensure_ascii=False).encode()
    now = 1_790_000_000
    header = webhooks.sign(SECRET, body, now)
    assert header.startswith(f"t={now},v1=")
    assert webhooks.verify(SECRET, body, header, now=now + 10)
    assert not webhooks.verify(SECRET, body + b" ", header, now=now)  # tampered body
    assert not webhooks.verify("whsec_other", body, header, now=now)  # another secret
    assert not webhooks.verify(SECRET, body, header, now=now + webhooks.TOLERANCE_SECONDS + 1)  # replayed later
    assert not webhooks.verify(SECRET, body, header.replace(f"t={now}", f"t={now + 5}"), now=now)  # new timestamp
    for broken in ("", "t=abc,v1=00", "v1=00", f"t={now}"):
        assert not webhooks.verify(SECRET, body, broken, now=now)


def test_the_signature_is_the_documented_hmac() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    mac = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.sign("k", body, 1_700_000_000) == f"t=1700000000,v1={mac}"


def test_the_backoff_grows_with_bounded_jitter_and_stays_at_the_last_step() -> None:
    rng = random.Random(7)
    for _ in range(200):
        delays = [webhooks.backoff(n, rng) for n in range(1, 10)]
        assert all(a < b for a, b in itertools.pairwise(delays[:7]))  # grows while the schedule does
        for n, delay in enumerate(delays, start=1):
            base = webhooks.BACKOFF_SECONDS[min(n, len(webhooks.BACKOFF_SECONDS)) - 1]
            assert base * 0.9 <= delay <= base * 1.1
    assert len({round(webhooks.backoff(1, rng), 3) for _ in range(20)}) > 1  # jittered


@pytest.mark.parametrize(
    ("code", "status", "retried"),
    [
        (200, DeliveryStatus.DELIVERED, False),
        (204, DeliveryStatus.DELIVERED, False),
        (500, DeliveryStatus.PENDING, True),
        (503, DeliveryStatus.PENDING, True),
        (None, DeliveryStatus.PENDING, True),
        (408, DeliveryStatus.PENDING, True),
        (429, DeliveryStatus.PENDING, True),
        (400, DeliveryStatus.FAILED, False),
        (404, DeliveryStatus.FAILED, False),
        (301, DeliveryStatus.FAILED, False),
    ],
)
def test_what_an_answer_does_to_a_delivery(
    session: Session, code: int | None, status: DeliveryStatus, retried: bool
) -> None:
    delivery = _one_delivery(session)
    now = utcnow()
    row = webhooks.record_attempt(
        session=session,
        delivery_id=delivery.id,
        status_code=code,  # type: ignore[arg-type]
        error="ConnectError" if code is None else None,
        now=now,
    )
    assert (row.status, row.attempts, row.last_status_code) == (status, 1, code)
    if retried:
        assert 27 <= (row.next_attempt_at - now).total_seconds() <= 33
    assert (row.delivered_at is not None) == (status == DeliveryStatus.DELIVERED)


def test_after_the_last_attempt_a_delivery_fails(session: Session) -> None:
    delivery = _one_delivery(session)
    for attempt in range(1, 6):
        row = webhooks.record_attempt(session=session, delivery_id=delivery.id, status_code=502)  # type: ignore[arg-type]
        assert row.status == (DeliveryStatus.FAILED if attempt == 5 else DeliveryStatus.PENDING)
    assert row.last_error == "HTTP 502"


# --------------------------------------------------------------------------- subscribing


def _grower(session: Session) -> Any:
    grower = f.org(session)
    return grower, f.product(session, grower)


def test_an_organisation_admin_subscribes_to_its_own_events_and_products(session: Session) -> None:
    grower, product = _grower(session)
    admin = f.member(grower, Role.ORG_ADMIN)
    by_org = webhooks.create_subscription(
        session=session,
        actor=admin,
        data=WebhookCreate(url="https://partner.example.vn/hooks", organisation_id=grower.id),
    )
    by_product = webhooks.create_subscription(
        session=session, actor=admin, data=WebhookCreate(url="http://127.0.0.1:9/hook", product_id=product.id)
    )
    assert by_org.secret.startswith("whsec_") and by_org.secret != by_product.secret
    stored = session.get(WebhookSubscription, by_org.id)
    assert stored is not None and stored.owner_organisation_id == grower.id and stored.secret == by_org.secret


def test_another_organisations_events_are_refused_except_to_the_province_admin(session: Session) -> None:
    grower, product = _grower(session)
    other = f.org(session)
    nosy = f.member(other, Role.ORG_ADMIN)
    for data in (
        WebhookCreate(url="https://x.example.vn/h", organisation_id=grower.id),
        WebhookCreate(url="https://x.example.vn/h", product_id=product.id),
    ):
        with pytest.raises(Forbidden) as error:
            webhooks.create_subscription(session=session, actor=nosy, data=data)
        assert error.value.code == "not_your_events"
        assert webhooks.create_subscription(session=session, actor=f.ADMIN, data=data).id
    with pytest.raises(Forbidden):  # a member, not an administrator, of the organisation
        webhooks.create_subscription(
            session=session,
            actor=f.member(grower),
            data=WebhookCreate(url="https://x.example.vn/h", organisation_id=grower.id),
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://partner.example.vn/h",
        "ftp://x.example.vn/h",
        "https://10.0.0.5/h",
        "https://169.254.169.254/latest",
        "https://[::1]/h",
        "https://user:pw@x.example.vn/",
        "https:///nohost",
    ],
)
def test_a_webhook_url_must_be_https_to_a_public_host(session: Session, url: str) -> None:
    grower, _ = _grower(session)
    with pytest.raises(RuleViolation) as error:
        webhooks.create_subscription(
            session=session,
            actor=f.member(grower, Role.ORG_ADMIN),
            data=WebhookCreate(url=url, organisation_id=grower.id),
        )
    assert error.value.code == "bad_webhook_url"


def test_plain_http_to_this_machine_needs_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert webhooks.check_url("http://127.0.0.1:8080/h")
    monkeypatch.setenv("HYTRACE_WEBHOOK_ALLOW_HTTP_LOCALHOST", "false")
    get_settings.cache_clear()
    with pytest.raises(RuleViolation):
        webhooks.check_url("http://127.0.0.1:8080/h")


def test_exactly_one_filter() -> None:
    with pytest.raises(ValueError):
        WebhookCreate(url="https://x.example.vn/h")
    with pytest.raises(ValueError):
        WebhookCreate(url="https://x.example.vn/h", product_id=1, organisation_id=1)


# --------------------------------------------------------------------------- dispatching


def _deliveries(session: Session, subscription_id: int) -> list[str]:
    return list(
        session.execute(
            select(WebhookDelivery.event_id)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(col(WebhookDelivery.id))
        ).scalars()
    )


def test_the_dispatcher_delivers_each_new_event_once(session: Session) -> None:
    # given events before and after a subscription
    grower, product = _grower(session)
    f.harvest(session, grower, prod=product)
    sub = webhooks.create_subscription(
        session=session,
        actor=f.member(grower, Role.ORG_ADMIN),
        data=WebhookCreate(url="https://p.example.vn/h", product_id=product.id),
    )
    later = [f.harvest(session, grower, prod=product).events[0].id for _ in range(2)]
    f.harvest(session, grower)  # another product: not this subscription's
    # when the dispatcher runs twice
    first = webhooks.dispatch(session=session)
    second = webhooks.dispatch(session=session)
    # then
    assert sorted(_deliveries(session, sub.id)) == sorted(later) and len(first) == 2 and second == []
    # and an event that committed late with an earlier record time than the mark is still found
    row = session.get(WebhookSubscription, sub.id)
    assert row is not None and row.cursor_time is not None
    row.cursor_time = utcnow() + timedelta(minutes=2)
    session.add(row)
    late = f.harvest(session, grower, prod=product).events[0].id
    assert len(webhooks.dispatch(session=session)) == 1 and late in _deliveries(session, sub.id)
    assert webhooks.dispatch(session=session) == []


def test_a_partner_hears_of_shipments_to_it_without_the_senders_private_fields(session: Session) -> None:
    grower, product = _grower(session)
    buyer = f.org(session, "processor")
    sub = webhooks.create_subscription(
        session=session,
        actor=f.member(buyer, Role.ORG_ADMIN),
        data=WebhookCreate(url="https://p.example.vn/h", organisation_id=buyer.id),
    )
    lot = f.harvest(session, grower, prod=product, note="Giá nội bộ").lot_ids[0]
    ship = (
        capture(
            session=session,
            actor=f.member(grower),
            items=[
                (
                    EventType.SHIP,
                    ShipIn(
                        lot_id=lot,
                        quantity=Decimal(10),
                        destination_organisation_id=buyer.id,
                        note="Chiết khấu riêng 7%",  # type: ignore[arg-type]
                        event_time=f.when(1),
                    ),
                )
            ],
        )
        .events[0]
        .id
    )
    assert _deliveries(session, sub.id) == [] and webhooks.dispatch(session=session)
    assert _deliveries(session, sub.id) == [ship]  # the harvest was the grower's alone
    delivery = session.execute(select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == sub.id)).scalar_one()
    outgoing = webhooks.claim(session=session, delivery_id=delivery)
    assert outgoing is not None
    body = json.loads(outgoing.body)
    assert (body["event"]["id"], body["event"]["redacted"], body["subscription_id"], body["delivery_id"]) == (
        ship,
        True,
        sub.id,
        delivery,
    )
    # the EPCIS form keeps the sender's private facts out too (the note is the grower's)
    assert "Chiết khấu" not in json.dumps(body, ensure_ascii=False)
    assert body["epcis"]["epcisBody"]["eventList"][0]["bizStep"] == "shipping"
    assert webhooks.claim(session=session, delivery_id=delivery) is None  # claimed: not sent twice at once


def test_a_deleted_subscription_gets_nothing_more(session: Session) -> None:
    grower, product = _grower(session)
    admin = f.member(grower, Role.ORG_ADMIN)
    sub = webhooks.create_subscription(
        session=session, actor=admin, data=WebhookCreate(url="https://p.example.vn/h", product_id=product.id)
    )
    f.harvest(session, grower, prod=product)
    webhooks.dispatch(session=session)
    webhooks.delete_subscription(session=session, actor=admin, subscription_id=sub.id)
    f.harvest(session, grower, prod=product)
    assert webhooks.dispatch(session=session) == []
    statuses = session.execute(
        select(WebhookDelivery.status, WebhookDelivery.last_error).where(WebhookDelivery.subscription_id == sub.id)
    ).all()
    assert [tuple(s) for s in statuses] == [(DeliveryStatus.FAILED, "subscription deleted")]


def test_a_due_delivery_is_queued_once_until_its_lease_runs_out(session: Session) -> None:
    # The dispatcher runs every few seconds; a delivery already on the queue is not sent again each time.
    delivery = _one_delivery(session)
    now = utcnow()
    assert webhooks.due(session=session, now=now) == [delivery.id]
    assert webhooks.due(session=session, now=now + timedelta(seconds=30)) == []
    # a message lost with its worker: after the lease the next dispatch sends the delivery again
    assert webhooks.due(session=session, now=now + timedelta(minutes=5)) == [delivery.id]
    # a retry is queued by the worker itself (countdown): dispatches leave it alone past its due time
    row = webhooks.record_attempt(session=session, delivery_id=delivery.id, status_code=500, now=now)
    assert webhooks.due(session=session, now=row.next_attempt_at + timedelta(seconds=1)) == []
    assert webhooks.due(session=session, now=row.next_attempt_at + timedelta(minutes=5)) == [delivery.id]


def _one_delivery(session: Session) -> WebhookDelivery:
    grower, product = _grower(session)
    sub = webhooks.create_subscription(
        session=session, actor=f.ADMIN, data=WebhookCreate(url="https://p.example.vn/h", product_id=product.id)
    )
    f.harvest(session, grower, prod=product)
    (delivery_id,) = webhooks.dispatch(session=session)
    row = session.get(WebhookDelivery, delivery_id)
    assert row is not None and row.subscription_id == sub.id
    return row


# --------------------------------------------------------------------------- real HTTP


class Receiver:
    """A partner's endpoint on 127.0.0.1 answering a script of status codes, recording each request."""

    def __init__(self, answers: list[int]) -> None:
        self.answers, self.requests = answers, []  # type: ignore[var-annotated]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body, time.time()))
                status = outer.answers.pop(0) if outer.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hytrace"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _subscribe(session: Session, url: str) -> tuple[Any, Any, webhooks.WebhookIssued]:
    grower, product = _grower(session)
    sub = webhooks.create_subscription(
        session=session, actor=f.member(grower, Role.ORG_ADMIN), data=WebhookCreate(url=url, product_id=product.id)
    )
    return grower, product, sub


def test_a_real_receiver_gets_the_signed_event(session: Session) -> None:
    with Receiver([200]) as partner:
        grower, product, sub = _subscribe(session, partner.url)
        event_id = f.harvest(session, grower, prod=product).events[0].id
        sent = worker.run_dispatch(
            sessions=lambda: nullcontext(session),
            send=lambda i: worker.attempt(i, sessions=lambda: nullcontext(session)),
        )
    assert len(sent) == 1 and len(partner.requests) == 1
    headers, body, _ = partner.requests[0]
    # the partner's check, exactly as docs/webhooks.md describes it
    assert webhooks.verify(sub.secret, body, headers["X-Hytrace-Signature"])
    assert not webhooks.verify(sub.secret, body.replace(b"harvest", b"harvesT"), headers["X-Hytrace-Signature"])
    payload = json.loads(body)
    assert payload["event"]["id"] == event_id and payload["event"]["type"] == "harvest"
    assert headers["X-Hytrace-Delivery"] == str(payload["delivery_id"]) == str(sent[0])
    # the same event as an EPCIS 2.0 document, valid against GS1's schema, with the id /epcis/events knows it by
    assert schema_errors(payload["epcis"]) == []
    (epcis_event,) = payload["epcis"]["epcisBody"]["eventList"]
    stored = lookup(session.connection(), [epcis_event["eventID"]])
    assert stored == {epcis_event["eventID"]: event_id} and epcis_event["eventID"].startswith("ni:///sha-256;")
    assert epcis_event["bizStep"] == "commissioning"
    row = session.get(WebhookDelivery, sent[0])
    assert row is not None and (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.DELIVERED, 1, 200)


def test_a_failing_receiver_is_retried_with_growing_delays_and_gets_the_event_once(session: Session) -> None:
    with Receiver([500, 500, 200]) as partner:
        grower, product, _ = _subscribe(session, partner.url)
        f.harvest(session, grower, prod=product)
        (delivery_id,) = webhooks.dispatch(session=session)
        clock = utcnow()
        waits = []
        while True:
            retry_in = worker.attempt(delivery_id, sessions=lambda: nullcontext(session), now=clock)
            if retry_in is None:
                break
            # not due before its time
            assert (
                worker.attempt(
                    delivery_id, sessions=lambda: nullcontext(session), now=clock + timedelta(seconds=retry_in - 1)
                )
                is None
            )
            waits.append(retry_in)
            clock += timedelta(seconds=retry_in)
        # the dispatcher and a stray message find nothing more to send
        assert (
            webhooks.dispatch(session=session) == []
            and webhooks.due(session=session, now=clock + timedelta(days=9)) == []
        )
        assert worker.attempt(delivery_id, sessions=lambda: nullcontext(session), now=clock + timedelta(days=9)) is None
    assert [len(b) > 0 for _, b, _ in partner.requests] == [True, True, True]
    assert len(waits) == 2 and 27 <= waits[0] <= 33 and 108 <= waits[1] <= 132
    bodies = {json.loads(b)["delivery_id"] for _, b, _ in partner.requests}
    assert bodies == {delivery_id}
    row = session.get(WebhookDelivery, delivery_id)
    assert row is not None and (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 3)
    assert (
        session.execute(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == row.subscription_id)
        ).scalar_one()
        == 1
    )


def test_an_unreachable_receiver_is_a_network_error_to_retry(session: Session) -> None:
    with Receiver([]) as partner:
        url = partner.url
    # the server is closed: nothing listens on that port any more
    grower, product, _ = _subscribe(session, url)
    f.harvest(session, grower, prod=product)
    (delivery_id,) = webhooks.dispatch(session=session)
    assert worker.attempt(delivery_id, sessions=lambda: nullcontext(session)) is not None
    row = session.get(WebhookDelivery, delivery_id)
    assert row is not None and row.status == DeliveryStatus.PENDING and row.last_status_code is None
    assert row.last_error and "Connect" in row.last_error


def test_a_real_celery_worker_finds_the_event_and_delivers_it(databases: Any, tmp_path: Any) -> None:
    """The wiring: a worker process (Redis broker) whose dispatcher thread finds a committed event and
    whose ``webhooks.deliver`` task sends it, signed."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, migrate, require
    from tests.e2e.test_worker import REDIS, _redis_up
    from trace.platform.db import make_engine, session_scope

    require(_redis_up(), "Redis is not running on 127.0.0.1:6379")
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=2)
    queue = f"hytrace-webhooks-{os.getpid()}"
    env = {
        **os.environ,
        "HYTRACE_DATABASE_URL": url,
        "HYTRACE_REDIS_URL": REDIS,
        "HYTRACE_CELERY_QUEUE": queue,
        "HYTRACE_WEBHOOK_ALLOW_HTTP_LOCALHOST": "true",
        "HYTRACE_WEBHOOK_DISPATCH_SECONDS": "1",
    }
    with Receiver([]) as partner:
        with session_scope(engine) as session:
            grower, product, sub = _subscribe(session, partner.url)
            event_id = f.harvest(session, grower, prod=product).events[0].id
        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers.app",
                    "worker",
                    "--pool",
                    "solo",
                    "--loglevel",
                    "WARNING",
                    "-Q",
                    queue,
                    "-n",
                    f"{queue}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.time() + 60
                while not partner.requests and time.time() < deadline:
                    time.sleep(0.2)
            finally:
                worker.terminate()
                worker.wait(timeout=20)
    engine.dispose()
    assert len(partner.requests) == 1, (tmp_path / "worker.log").read_text()
    headers, body, _ = partner.requests[0]
    assert webhooks.verify(sub.secret, body, headers["X-Hytrace-Signature"])
    assert json.loads(body)["event"]["id"] == event_id
