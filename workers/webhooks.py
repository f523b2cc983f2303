"""Sending partner webhooks: glue between trace/webhooks.py's outbox and httpx (thin on purpose).

``webhooks.dispatch`` turns new events into deliveries and sends every due one; ``webhooks.deliver``
makes one attempt and, if it is to be retried, sends itself again with the backoff as countdown.
Both are safe to run twice: a delivery is claimed (its next attempt moved past a lease) before it is
sent, so two workers never send it at once, and a lost message is picked up by the next dispatch.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from celery.signals import worker_ready
from sqlmodel import Session

from trace import webhooks
from trace.platform.config import get_settings
from trace.platform.db import session_scope
from trace.platform.timeutil import utcnow
from workers.app import app

log = logging.getLogger(__name__)
Sessions = Callable[[], AbstractContextManager[Session]]


def _sessions() -> AbstractContextManager[Session]:
    return session_scope()


def _refused_address(url: str) -> str | None:
    """Why the target must not be called (it resolves to a private address), or None."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError as error:
        return f"cannot resolve {host}: {error}"
    loopback_ok = get_settings().webhook_allow_http_localhost
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global and not (loopback_ok and ip.is_loopback):
            return f"{host} resolves to a non-public address"
    return None


def post(outgoing: webhooks.Outgoing, *, timeout: float) -> tuple[int | None, str | None]:
    """One HTTP attempt: (status code, None) or (None, the network error)."""
    refused = _refused_address(outgoing.url)
    if refused:
        return None, refused
    try:
        # No redirects: a 3xx is an answer (the partner's to fix), and following it could lead anywhere.
        response = httpx.post(
            outgoing.url, content=outgoing.body, headers=outgoing.headers, timeout=timeout, follow_redirects=False
        )
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    return response.status_code, None


def attempt(delivery_id: int, *, sessions: Sessions = _sessions, now: datetime | None = None) -> float | None:
    """Make one attempt at a delivery if it is due; returns seconds until its retry, or None when it is
    done (delivered, failed, not due or taken by another worker)."""
    with sessions() as session:
        outgoing = webhooks.claim(session=session, delivery_id=delivery_id, now=now)
    if outgoing is None:
        return None
    status, error = post(outgoing, timeout=get_settings().webhook_timeout_seconds)
    with sessions() as session:
        row = webhooks.record_attempt(
            session=session, delivery_id=delivery_id, status_code=status, error=error, now=now
        )
        if row.status != webhooks.DeliveryStatus.PENDING:
            return None
        return max(0.0, (row.next_attempt_at - (now or utcnow())).total_seconds())


@app.task(name="webhooks.deliver", ignore_result=True)
def deliver(delivery_id: int) -> None:
    """One attempt at a delivery; a retry is scheduled with the backoff as countdown."""
    retry_in = attempt(delivery_id)
    if retry_in is not None:
        _send(delivery_id, countdown=retry_in)


def _send(delivery_id: int, countdown: float = 0) -> None:
    try:
        deliver.apply_async(args=[delivery_id], countdown=countdown, retry=False)
    except Exception:  # kombu raises several kinds for an unreachable broker; the next dispatch sends it
        log.warning("could not reach the broker; webhook delivery %s waits for the next dispatch", delivery_id)


def run_dispatch(*, sessions: Sessions = _sessions, send: Callable[[int], None] = _send) -> list[int]:
    """Create deliveries for new events, then send every due delivery; returns the ids sent."""
    with sessions() as session:
        webhooks.dispatch(session=session)
    with sessions() as session:
        ids = webhooks.due(session=session)
    for delivery_id in ids:
        send(delivery_id)
    return ids


@app.task(name="webhooks.dispatch", ignore_result=True)
def dispatch() -> int:
    """Scan for new events and enqueue due deliveries (run every ``webhook_dispatch_seconds``)."""
    return len(run_dispatch())


def _dispatch_forever(stop: threading.Event) -> None:
    while not stop.wait(max(1.0, get_settings().webhook_dispatch_seconds)):
        try:
            run_dispatch()
        except Exception:
            log.exception("webhook dispatch failed")


@worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    # Like the print-run sweeper: each worker looks for new events every few seconds (no beat to run).
    threading.Thread(
        target=_dispatch_forever, args=(threading.Event(),), name="webhook-dispatcher", daemon=True
    ).start()
