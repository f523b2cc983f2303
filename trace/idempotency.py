"""Rows written once per idempotency key: a request sent again finds the row its first attempt made."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from trace.errors import Conflict, RuleViolation

Row = TypeVar("Row", bound=SQLModel)


def in_progress() -> Conflict:
    """The answer to a key whose first request has not finished yet."""
    return Conflict("A request with this idempotency key is being processed; retry", code="retry")


def insert_once(*, session: Session, row: Row, replay: Callable[[], Row | None]) -> Row:
    """Add ``row`` (which carries its request's key under a unique index).

    When the same key was sent twice at once and the other request's row took the index first,
    that row stands (``replay`` finds it, or refuses a key reused for something else); while it
    is not yet committed, the caller is asked to retry.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        if row in session:
            session.expunge(row)
        found = replay()
        if found is None:
            raise in_progress() from None
        return found
    return row


def checked_key(key: str | None) -> str | None:
    """An idempotency key as given (1 to 100 characters), or None when there is none."""
    if key is not None and not 1 <= len(key) <= 100:
        raise RuleViolation("An idempotency key has 1 to 100 characters", code="bad_idempotency_key")
    return key


def key_reused(what: str) -> Conflict:
    """The answer to a key sent again with other values than its first request's."""
    return Conflict(f"This idempotency key was used for a different {what}", code="idempotency_key_reused")
