"""Key paging's core: a cursor names its list and a key of the right types; "after the key" is exact for
keys of several columns in mixed directions (ties on the first column included) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlmodel import Session, col, select

from tests import factories as f
from trace.errors import RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.query import EVENT_ORDER
from trace.events.schemas import HarvestIn
from trace.platform.paging import key_order, page, paged, slice_page


def test_a_cursor_round_trips_its_key_and_names_its_list() -> None:
    moment = datetime(2026, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=7)))
    cursor = EVENT_ORDER.encode((moment, "abc"))
    assert EVENT_ORDER.decode(cursor) == (moment.astimezone(UTC), "abc")
    # a zone-less time read back from SQLite is a UTC instant, not local time
    assert EVENT_ORDER.decode(EVENT_ORDER.encode((datetime(2026, 7, 1, 2, 30), "abc")))[0] == moment
    other = key_order("lots", (col(Event.id), int, True))
    with pytest.raises(RuleViolation) as refused:
        other.decode(cursor)
    assert refused.value.code == "bad_cursor" and "lots" in refused.value.details["reason"]


def test_pages_after_a_key_of_mixed_directions_lose_and_repeat_nothing(session: Session) -> None:
    # given events sharing instants (newest first, ties broken by id ascending)
    grower = f.org(session)
    prod, loc = f.product(session, grower), f.location(session, grower)
    times = [f.when(d) for d in (3, 2, 1)]
    items = [
        (
            EventType.HARVEST,
            HarvestIn(
                product_id=prod.id,  # type: ignore[arg-type]
                lot_code=f"K{i}",
                quantity=Decimal(1),
                location_id=loc.id,  # type: ignore[arg-type]
                event_time=times[i % 3],
            ),
        )
        for i in range(10)
    ]
    ids = set(capture(session=session, actor=f.member(grower), items=items).event_ids)  # type: ignore[arg-type]
    query = select(Event).where(col(Event.id).in_(ids))
    expected = [e.id for e in session.exec(query.order_by(*EVENT_ORDER.order_by()))]
    # when walked three at a time
    walked: list[str] = []
    cursor = None
    while True:
        rows = page(
            session.exec(paged(query, EVENT_ORDER, cursor=cursor, offset=0, limit=3)),
            EVENT_ORDER,
            limit=3,
            key=lambda e: (e.event_time, e.id),
        )
        walked += [e.id for e in rows]
        if rows.next is None:
            break
        cursor = rows.next
    # then
    assert walked == expected and len(expected) == 10


def test_slice_pages_walk_python_lists_like_database_ones() -> None:
    order = key_order("numbers", (col(Event.id), int, True))
    rows = list(range(20, 0, -1))
    walked, cursor = [], None
    while True:
        found = slice_page(rows, order, cursor=cursor, offset=0, limit=6, key=lambda n: (n,))
        walked += found
        if found.next is None:
            break
        cursor = found.next
    assert walked == rows
