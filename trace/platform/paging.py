"""Key (cursor) paging: a page starts after the key of the previous page's last row, so page N reads
the same index range as page 1, where ``OFFSET n`` reads and throws away n rows first.

A cursor is opaque to clients: base64url of ``[list name, key values...]``. It names the list it was
made for (a lots cursor is refused by the events list) and its values are checked against the key's
types. It carries no filter and no organisation: the list's own visibility filter is applied to every
page, so a forged cursor can move where a page starts, never what the reader may see.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from trace.errors import RuleViolation

T = TypeVar("T")
MAX_CURSOR = 512  # characters; a real cursor is well under 100


class Page(list[T]):
    """One page of a list, as a plain list (callers that index or loop keep working) plus ``next``:
    the cursor of the page after it, None on the last page."""

    next: str | None = None


def bad_cursor(reason: str) -> RuleViolation:
    """The refusal of a cursor this list did not make."""
    return RuleViolation(f"The cursor is not valid here: {reason}", code="bad_cursor", reason=reason)


@dataclass(frozen=True)
class KeyOrder:
    """How a list is ordered: its name, and its key columns with their types and directions. The last
    column must be unique (the primary key) so that the key names one row."""

    name: str
    columns: tuple[Any, ...]
    types: tuple[type, ...]  # int, str or datetime per column
    descending: tuple[bool, ...]

    def order_by(self) -> list[Any]:
        """The ORDER BY of the list."""
        return [c.desc() if d else c.asc() for c, d in zip(self.columns, self.descending, strict=True)]

    def after(self, key: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after ``key`` in this order."""
        ors = []
        for i, (column, value, desc) in enumerate(zip(self.columns, key, self.descending, strict=True)):
            equal = [c == v for c, v in zip(self.columns[:i], key[:i], strict=True)]
            ors.append(and_(*equal, column < value if desc else column > value))
        first, low, desc = self.columns[0], key[0], self.descending[0]
        # The leading bound repeats what the OR says: it is what lets the database start its index scan
        # at the key (an OR alone is read as a filter over the index from its first entry).
        bound = first <= low if desc else first >= low
        return and_(bound, or_(*ors)) if len(ors) > 1 else ors[0]

    def encode(self, key: Sequence[Any]) -> str:
        """The opaque cursor of a row's key."""
        values = [_instant(v).isoformat() if isinstance(v, datetime) else v for v in key]
        raw = json.dumps([self.name, *values], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, cursor: str) -> tuple[Any, ...]:
        """The key a cursor carries, or :class:`RuleViolation` (``bad_cursor``) with the reason."""
        if len(cursor) > MAX_CURSOR:
            raise bad_cursor("too long")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            found = json.loads(raw.decode())
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise bad_cursor("not a cursor this service made") from None
        if not isinstance(found, list) or not found or found[0] != self.name:
            raise bad_cursor(f"not a cursor of the {self.name} list")
        values = found[1:]
        if len(values) != len(self.types):
            raise bad_cursor("wrong number of key values")
        return tuple(_value(v, t) for v, t in zip(values, self.types, strict=True))


def _instant(moment: datetime) -> datetime:
    # Instants are stored in UTC; SQLite hands them back without a zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _value(value: Any, kind: type) -> Any:
    # bool is an int to Python; JSON true is not an id.
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 2**63 - 1:
            raise bad_cursor("key out of range")
        return value
    if kind is str and isinstance(value, str) and len(value) <= 200:
        return value
    if kind is datetime and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise bad_cursor("key is not a time") from None
        if moment.tzinfo is None:
            raise bad_cursor("key time has no zone")
        return moment.astimezone(UTC)
    raise bad_cursor("key of the wrong type")


def key_order(name: str, *columns: tuple[Any, type, bool]) -> KeyOrder:
    """A :class:`KeyOrder` from ``(column, type, descending)`` triples."""
    return KeyOrder(
        name, tuple(c for c, _, _ in columns), tuple(t for _, t, _ in columns), tuple(d for _, _, d in columns)
    )


def start(order: KeyOrder, cursor: str | None, offset: int) -> tuple[Any, ...] | None:
    """The decoded key a page starts after; a cursor and an offset together are refused (which wins?)."""
    if cursor is None:
        return None
    if offset:
        raise bad_cursor("give a cursor or an offset, not both")
    return order.decode(cursor)


def paged(query: Any, order: KeyOrder, *, cursor: str | None, offset: int, limit: int) -> Any:
    """``query`` ordered by the key, starting after the cursor (or at ``offset``, the slow legacy way),
    one row more than ``limit``: that row tells whether a next page exists."""
    key = start(order, cursor, offset)
    if key is not None:
        query = query.where(order.after(key))
    return query.order_by(*order.order_by()).offset(offset).limit(limit + 1)


def page(rows: Iterable[T], order: KeyOrder, *, limit: int, key: Callable[[T], Sequence[Any]]) -> Page[T]:
    """The first ``limit`` rows as a :class:`Page`, with the cursor after the last when more follow."""
    found: Page[T] = Page(rows)
    more = len(found) > limit
    del found[limit:]
    if more and found:
        found.next = order.encode(key(found[-1]))
    return found


def slice_page(
    rows: Sequence[T],
    order: KeyOrder,
    *,
    cursor: str | None,
    offset: int,
    limit: int,
    key: Callable[[T], Sequence[Any]],
) -> Page[T]:
    """Key paging over rows already ordered in Python (small lists filtered after the query)."""
    after = start(order, cursor, offset)
    if after is not None:
        sign = tuple(-1 if d else 1 for d in order.descending)

        def rank(values: Sequence[Any]) -> tuple[Any, ...]:
            # Only ints are compared in Python here (ids); other types go through the database.
            return tuple(s * v for s, v in zip(sign, values, strict=True))

        rows = [r for r in rows if rank(key(r)) > rank(after)]
    return page(rows[offset : offset + limit + 1], order, limit=limit, key=key)
