"""Tamper evidence: each event hashes its canonical content together with its predecessor's hash.

Chains are per organisation, so writers of different organisations never wait on one row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from trace.events import batch
from trace.events.models import ChainHead, Event

GENESIS = "0" * 64
HASHED_FIELDS = (
    "id",
    "organisation_id",
    "seq",
    "type",
    "epcis_type",
    "action",
    "biz_step",
    "disposition",
    "event_time",
    "event_tz_offset",
    "record_time",
    "actor_user_id",
    "actor_api_key_id",
    "location_id",
    "location_version",
    "source_organisation_id",
    "destination_organisation_id",
    "lot_id",
    "biz_transactions",
    "payload",
    "corrects_event_id",
    "prev_hash",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, Decimal):
        return str(value)
    return value


def canonical(event: Event) -> bytes:
    """The bytes that are hashed: sorted-key JSON of every content field."""
    # The instance dict first: SQLModel's attribute access costs ~1 µs a field on the hot path.
    loaded = event.__dict__
    data = {name: _plain(loaded[name] if name in loaded else getattr(event, name)) for name in HASHED_FIELDS}
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def compute_hash(event: Event) -> str:
    """SHA-256 of the event's canonical content (which includes the previous hash)."""
    return hashlib.sha256(canonical(event)).hexdigest()


def lock_head(*, session: Session, organisation_id: int) -> ChainHead:
    """The organisation's chain head under its row lock (the last lock a write takes: lots come first)."""
    # Within one capture call the head is locked (FOR UPDATE) once and then kept in its cache.
    call = batch.current(session)
    head = call.heads.get(organisation_id) if call is not None else None
    if head is None:
        head = session.exec(
            select(ChainHead)
            .where(ChainHead.organisation_id == organisation_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
    if head is None:
        # An organisation's first event: two at once both insert, and the second fails on the
        # primary key (a conflict the server retries), never a fork of the chain.
        head = ChainHead(organisation_id=organisation_id, seq=0, hash=GENESIS)
    if call is not None:
        call.heads[organisation_id] = head
    return head


def append(*, session: Session, event: Event) -> Event:
    """Give the event its place in its organisation's chain and seal it."""
    head = lock_head(session=session, organisation_id=event.organisation_id)
    event.seq = head.seq + 1
    event.prev_hash = head.hash
    event.hash = compute_hash(event)
    head.seq, head.hash = event.seq, event.hash
    session.add(head)
    session.add(event)
    return event


@dataclass
class ChainReport:
    """What verifying the log found: ``ok`` or the first broken link."""

    ok: bool
    organisations: int
    events: int
    broken_event_id: str | None = None
    broken_organisation_id: int | None = None
    broken_seq: int | None = None
    reason: str | None = None


def verify(
    *, session: Session, organisation_id: int | None = None, on_progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Recompute every hash and link, oldest first; stop at the first break (``on_progress``: events read)."""
    heads = session.exec(
        select(ChainHead).where(ChainHead.organisation_id == organisation_id)
        if organisation_id is not None
        else select(ChainHead).order_by(ChainHead.organisation_id)  # type: ignore[arg-type]
    ).all()
    counted = 0
    for head in heads:
        prev, expected_seq = GENESIS, 1
        rows = session.exec(
            select(Event)
            .where(Event.organisation_id == head.organisation_id)
            .order_by(Event.seq)  # type: ignore[arg-type]
            .execution_options(yield_per=2000)
        )
        for event in rows:
            counted += 1
            if on_progress is not None and counted % 5000 == 0:
                on_progress(counted)
            reason = None
            if event.seq != expected_seq:
                reason = f"sequence gap: expected {expected_seq}, found {event.seq}"
            elif event.prev_hash != prev:
                reason = "previous-hash link does not match the preceding event"
            elif compute_hash(event) != event.hash:
                reason = "content does not match its hash (the row was altered)"
            if reason:
                return ChainReport(False, len(heads), counted, event.id, head.organisation_id, event.seq, reason)
            prev, expected_seq = event.hash, expected_seq + 1
        if expected_seq - 1 != head.seq or prev != head.hash:
            return ChainReport(
                False,
                len(heads),
                counted,
                None,
                head.organisation_id,
                expected_seq,
                "events are missing at the end of the chain (deleted rows)",
            )
    return ChainReport(True, len(heads), counted)
