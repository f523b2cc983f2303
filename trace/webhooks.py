"""Partner webhooks: subscriptions to a product's or an organisation's events, an outbox of
deliveries, their signatures and their retry schedule. No HTTP here: ``workers/webhooks.py`` sends.

A dispatcher scans the log for events recorded since each subscription's high-water mark and adds
one delivery per (subscription, event) — a unique pair, so running it twice (or in two workers at
once) delivers nothing twice. It looks back a few minutes behind the mark, because a transaction
that began earlier can commit an event with an earlier record time after later ones were seen.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import model_validator
from sqlalchemy import Index, UniqueConstraint, exists, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, Role, require_org_admin
from trace.epcis import query as epcis_query
from trace.errors import Forbidden, NotFound, RuleViolation
from trace.events.models import Event, EventLot
from trace.events.query import get_event
from trace.lots import Lot
from trace.organisations import get_organisation
from trace.platform.config import get_settings
from trace.platform.paging import Page, key_order, page, paged
from trace.platform.sqltypes import enum_type
from trace.platform.timeutil import utcnow
from trace.products import get_product

SIGNATURE_HEADER = "X-Hytrace-Signature"
DELIVERY_HEADER = "X-Hytrace-Delivery"
SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300  # a signature older (or newer) than this is refused: a replayed request fails
BACKOFF_SECONDS = (30, 120, 600, 3600, 6 * 3600, 12 * 3600, 24 * 3600)  # then the last, again
JITTER = 0.1  # ±10 %: retries of many deliveries after an outage do not all arrive at once
LOOKBACK = timedelta(minutes=5)
SCAN_BATCH = 500
RETRY_STATUSES = frozenset({408, 429})  # the partner asks us to come back later


# The dispatcher (and the portal's trace-code feed) read the log in record-time order; the event table
# is indexed by event time only. Declared here, beside its first reader, so trace/events stays as it is.
RECORD_TIME_INDEX = Index("ix_event_record_time", Event.__table__.c.record_time, Event.__table__.c.id)  # type: ignore[attr-defined]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookSubscription(SQLModel, table=True):
    """A partner's standing request to be told of one product's or one organisation's events."""

    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    owner_organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    url: str = Field(max_length=500)
    secret: str = Field(max_length=100)  # kept as given: it signs every delivery (not a password)
    product_id: int | None = Field(default=None, foreign_key="product.id")
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    created_by_user_id: int | None = None
    created_by_api_key_id: int | None = None
    cursor_time: datetime | None = None  # the latest record time the dispatcher has seen


class WebhookDelivery(SQLModel, table=True):
    """One event owed to one subscription (the outbox row), and how its attempts went."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhook_subscription.id")
    event_id: str = Field(foreign_key="event.id", max_length=36)
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=enum_type(DeliveryStatus, length=10))
    attempts: int = 0
    next_attempt_at: datetime
    queued_until: datetime | None = None  # a message for its next attempt is on the queue until then
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class WebhookCreate(SQLModel):
    url: str = Field(min_length=8, max_length=500, description="https URL that receives POSTed events")
    product_id: int | None = Field(default=None, description="Events touching lots of this product")
    organisation_id: int | None = Field(default=None, description="Events this organisation recorded or was sent")

    @model_validator(mode="after")
    def _one_filter(self) -> WebhookCreate:
        if (self.product_id is None) == (self.organisation_id is None):
            raise ValueError("give exactly one of product_id and organisation_id")
        return self


class WebhookPublic(SQLModel):
    id: int
    owner_organisation_id: int | None
    url: str
    product_id: int | None
    organisation_id: int | None
    active: bool
    created_at: datetime


class WebhookIssued(WebhookPublic):
    secret: str  # shown once: the partner verifies signatures with it


class DeliveryPublic(SQLModel):
    id: int
    subscription_id: int
    event_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


# --------------------------------------------------------------------------- signing (pure)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, body: bytes, header: str, *, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` of ``now``."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return any(
        hmac.compare_digest(expected, value)
        for key, value in (item.split("=", 1) for item in header.split(","))
        if key == "v1"
    )


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failed attempts (1, 2, …): the schedule with jitter."""
    base = BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]
    return base * (1 + (rng or random).uniform(-JITTER, JITTER))


def check_url(url: str) -> str:
    """A target partners may register: https to a public host (plain http to this machine only when
    the settings allow it, for tests and local development)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    local = host in ("localhost", "127.0.0.1", "::1")
    if parts.scheme == "http" and local and get_settings().webhook_allow_http_localhost:
        return url
    if parts.scheme != "https" or not host or parts.username or parts.password:
        raise RuleViolation("The webhook URL must be https://host/…", code="bad_webhook_url")
    if local or not public_host(host):
        raise RuleViolation("The webhook URL must name a public host", code="bad_webhook_url")
    return url


def public_host(host: str) -> bool:
    """False for an IP literal in a private, loopback, link-local or reserved range (a partner must not
    make our workers call the instance's own network)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True  # a name: the worker checks what it resolves to before connecting
    return address.is_global


# --------------------------------------------------------------------------- subscriptions


def _reader(subscription: WebhookSubscription) -> Actor:
    """Who the subscription reads as: what GET /api/v1/events would show its owner."""
    if subscription.owner_organisation_id is None:
        return Actor(role=Role.ADMIN, organisation_id=None, name="webhook")
    return Actor(role=Role.MEMBER, organisation_id=subscription.owner_organisation_id, name="webhook")


def create_subscription(*, session: Session, actor: Actor, data: WebhookCreate) -> WebhookIssued:
    """Subscribe: the province admin to anything; an organisation's administrator to its own
    organisation's events or its own products' (what it reads through the events API)."""
    if data.product_id is not None:
        target_org = get_product(session=session, product_id=data.product_id).organisation_id
    else:
        assert data.organisation_id is not None
        target_org = get_organisation(session=session, organisation_id=data.organisation_id).id  # type: ignore[assignment]
    if not actor.is_admin:
        if actor.organisation_id is None:
            raise Forbidden("Only an organisation's administrator subscribes to webhooks", code="org_admin_only")
        require_org_admin(actor, actor.organisation_id)
        if target_org != actor.organisation_id:
            raise Forbidden(
                "You may subscribe only to your own organisation's events and products", code="not_your_events"
            )
    url = check_url(data.url)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = WebhookSubscription(
        owner_organisation_id=None if actor.is_admin else actor.organisation_id,
        url=url,
        secret=secret,
        product_id=data.product_id,
        organisation_id=data.organisation_id,
        created_by_user_id=actor.user_id,
        created_by_api_key_id=actor.api_key_id,
    )
    session.add(row)
    session.flush()
    return WebhookIssued.model_validate(row, update={"secret": secret})


def _visible_subscriptions(actor: Actor) -> Any:
    query = select(WebhookSubscription)
    if not actor.is_admin:
        if actor.organisation_id is None:
            raise Forbidden("Only an organisation's administrator manages webhooks", code="org_admin_only")
        require_org_admin(actor, actor.organisation_id)
        query = query.where(WebhookSubscription.owner_organisation_id == actor.organisation_id)
    return query


def list_subscriptions(*, session: Session, actor: Actor) -> list[WebhookSubscription]:
    """The actor's organisation's subscriptions (every one for the province admin), newest first."""
    return list(session.exec(_visible_subscriptions(actor).order_by(col(WebhookSubscription.id).desc())))


def get_subscription(*, session: Session, actor: Actor, subscription_id: int) -> WebhookSubscription:
    """One subscription the actor manages, else NotFound."""
    row = session.exec(_visible_subscriptions(actor).where(WebhookSubscription.id == subscription_id)).first()
    if row is None:
        raise NotFound(f"Webhook {subscription_id} not found")
    return row  # type: ignore[no-any-return]


def delete_subscription(*, session: Session, actor: Actor, subscription_id: int) -> WebhookSubscription:
    """Stop a subscription: no new deliveries; those still pending fail. Kept for the record."""
    row = get_subscription(session=session, actor=actor, subscription_id=subscription_id)
    row.active = False
    session.add(row)
    session.exec(
        update(WebhookDelivery)
        .where(  # type: ignore[call-overload]
            col(WebhookDelivery.subscription_id) == row.id,
            col(WebhookDelivery.status) == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.FAILED, last_error="subscription deleted")
    )
    session.flush()
    return row


DELIVERY_ORDER = key_order("deliveries", (col(WebhookDelivery.id), int, True))  # newest first


def list_deliveries(
    *,
    session: Session,
    actor: Actor,
    subscription_id: int,
    status: DeliveryStatus | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[WebhookDelivery]:
    """A subscription's deliveries, newest first (failed ones show why)."""
    get_subscription(session=session, actor=actor, subscription_id=subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    rows = session.exec(paged(query, DELIVERY_ORDER, cursor=cursor, offset=0, limit=limit))
    return page(rows, DELIVERY_ORDER, limit=limit, key=lambda x: (x.id,))


# --------------------------------------------------------------------------- dispatching


def _matching(subscription: WebhookSubscription) -> Any:
    if subscription.product_id is not None:
        return col(Event.id).in_(
            select(EventLot.event_id)
            .join(Lot, col(Lot.id) == col(EventLot.lot_id))
            .where(Lot.product_id == subscription.product_id)
        )
    org = subscription.organisation_id
    return or_(
        col(Event.organisation_id) == org,
        col(Event.source_organisation_id) == org,
        col(Event.destination_organisation_id) == org,
    )


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(WebhookDelivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
        .returning(col(WebhookDelivery.id))
    )
    return [row[0] for row in session.execute(statement)]


def dispatch(*, session: Session, now: datetime | None = None) -> list[int]:
    """Add a delivery for every event a subscription should hear of and has not; returns their ids."""
    now = now or utcnow()
    created: list[int] = []
    for sub in session.exec(select(WebhookSubscription).where(WebhookSubscription.active == True)).all():  # noqa: E712
        reader = _reader(sub)
        since = max(sub.created_at, (sub.cursor_time or sub.created_at) - LOOKBACK)
        seen = sub.cursor_time
        after: tuple[datetime, str] | None = None
        while True:
            query = select(Event.id, Event.record_time).where(
                Event.record_time >= since,
                _matching(sub),
                ~exists().where(
                    col(WebhookDelivery.subscription_id) == sub.id, col(WebhookDelivery.event_id) == col(Event.id)
                ),
            )
            if after is not None:
                query = query.where(
                    or_(
                        col(Event.record_time) > after[0],
                        (col(Event.record_time) == after[0]) & (col(Event.id) > after[1]),
                    )
                )
            batch = session.exec(query.order_by(col(Event.record_time), col(Event.id)).limit(SCAN_BATCH)).all()
            new = []
            for event_id, recorded in batch:
                seen = recorded if seen is None else max(seen, recorded)
                try:
                    get_event(session=session, actor=reader, event_id=event_id)
                except NotFound:
                    continue  # not the subscriber's to read
                new.append(
                    {
                        "subscription_id": sub.id,
                        "event_id": event_id,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
            if new:
                created += _insert_new(session, new)
            if len(batch) < SCAN_BATCH:
                break
            after = (batch[-1][1], batch[-1][0])
        if seen is not None and seen != sub.cursor_time:
            sub.cursor_time = seen
            session.add(sub)
    session.flush()
    return created


def _queue_lease() -> timedelta:
    """How long a delivery sent to the queue is left to its message before a dispatch sends it again."""
    settings = get_settings()
    return timedelta(seconds=4 * settings.webhook_dispatch_seconds + settings.webhook_timeout_seconds + 60)


def due(*, session: Session, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Take the pending deliveries whose attempt is due and that no queued message is about to make,
    oldest first; they count as queued for a lease (a message lost with a worker is replaced after it)."""
    now = now or utcnow()
    ids = list(
        session.exec(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                col(WebhookDelivery.next_attempt_at) <= now,
                or_(col(WebhookDelivery.queued_until).is_(None), col(WebhookDelivery.queued_until) <= now),
            )
            .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
            .limit(limit)
        ).all()
    )
    if ids:
        session.exec(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(ids))  # type: ignore[call-overload]
            .values(queued_until=now + _queue_lease())
        )
    return ids  # type: ignore[return-value]


# --------------------------------------------------------------------------- delivering


@dataclass(frozen=True)
class Outgoing:
    """One attempt, ready to send: where, what and the headers that sign it."""

    delivery_id: int
    url: str
    body: bytes
    headers: dict[str, str]


def payload(*, event: dict[str, Any], epcis: dict[str, Any], subscription_id: int, delivery_id: int) -> dict[str, Any]:
    """What a partner receives: the event as our API shows it, and the same event as an EPCIS 2.0
    document (GS1's JSON-LD, for partners whose systems speak EPCIS)."""
    return {
        "type": "event",
        "subscription_id": subscription_id,
        "delivery_id": delivery_id,
        "event": event,
        "epcis": epcis,
    }


def claim(*, session: Session, delivery_id: int, now: datetime | None = None) -> Outgoing | None:
    """Take a due delivery for one attempt (None if it is not due, done, or another worker has it)."""
    now = now or utcnow()
    lease = now + timedelta(seconds=get_settings().webhook_timeout_seconds + 60)
    taken = session.exec(
        update(WebhookDelivery)
        .where(  # type: ignore[call-overload]
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.status) == DeliveryStatus.PENDING,
            col(WebhookDelivery.next_attempt_at) <= now,
        )
        .values(next_attempt_at=lease)
    )
    if taken.rowcount != 1:
        return None
    delivery = session.get(WebhookDelivery, delivery_id)
    assert delivery is not None
    session.refresh(delivery)
    sub = session.get(WebhookSubscription, delivery.subscription_id)
    assert sub is not None
    try:
        if not sub.active:
            raise NotFound("subscription deleted")
        event = get_event(session=session, actor=_reader(sub), event_id=delivery.event_id)
    except NotFound as error:
        _finish(delivery, DeliveryStatus.FAILED, now, error=str(error))
        session.add(delivery)
        session.flush()
        return None
    epcis = epcis_query.document_of(session=session, actor=_reader(sub), event_ids=[delivery.event_id])
    body = json.dumps(
        payload(
            event=event.model_dump(mode="json"),
            epcis=epcis,
            subscription_id=sub.id,  # type: ignore[arg-type]
            delivery_id=delivery_id,
        ),
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(sub.secret, body, int(now.timestamp())),
        DELIVERY_HEADER: str(delivery_id),
        "User-Agent": "hytrace-webhooks/1",
    }
    session.flush()
    return Outgoing(delivery_id, sub.url, body, headers)


def _finish(delivery: WebhookDelivery, status: DeliveryStatus, now: datetime, *, error: str | None = None) -> None:
    delivery.status = status
    delivery.last_error = error[:500] if error else None
    if status == DeliveryStatus.DELIVERED:
        delivery.delivered_at = now


def record_attempt(
    *,
    session: Session,
    delivery_id: int,
    status_code: int | None,
    error: str | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> WebhookDelivery:
    """What an attempt got: 2xx delivers; 408, 429, 5xx and network errors retry on the schedule until
    the last attempt; any other answer (a 4xx, a redirect) is the partner's to fix and fails at once."""
    now = now or utcnow()
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} not found")
    delivery.attempts += 1
    delivery.last_status_code = status_code
    if status_code is not None and 200 <= status_code < 300:
        _finish(delivery, DeliveryStatus.DELIVERED, now)
    else:
        reason = error or f"HTTP {status_code}"
        transient = status_code is None or status_code >= 500 or status_code in RETRY_STATUSES
        if not transient or delivery.attempts >= get_settings().webhook_max_attempts:
            _finish(delivery, DeliveryStatus.FAILED, now, error=reason)
        else:
            delivery.last_error = reason[:500]
            delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts, rng))
            # The worker sends its retry itself (a countdown message): dispatches leave it to that.
            delivery.queued_until = delivery.next_attempt_at + _queue_lease()
    session.add(delivery)
    session.flush()
    return delivery
