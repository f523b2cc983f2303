"""Time helpers: events keep UTC instants plus the offset they were recorded in."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from trace.platform.config import get_settings


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (how every column stores time)."""
    return datetime.now(UTC)


@lru_cache
def local_zone() -> ZoneInfo:
    """The instance's time zone (Asia/Ho_Chi_Minh by default)."""
    return ZoneInfo(get_settings().timezone)


def today() -> date:
    """Today's date where the goods are (the instance's zone), whatever the server's clock zone."""
    return datetime.now(local_zone()).date()


def to_utc(value: datetime) -> tuple[datetime, str]:
    """Split an aware or naive (local) datetime into aware UTC and its ``+HH:MM`` offset."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=local_zone())
    offset = value.utcoffset() or timedelta(0)
    return value.astimezone(UTC), format_offset(offset)


def format_offset(offset: timedelta) -> str:
    """``timedelta(hours=7)`` → ``+07:00``."""
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_offset(text: str) -> timezone:
    """``+07:00`` → a fixed-offset timezone."""
    sign = -1 if text.startswith("-") else 1
    hours, minutes = text[1:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def localise(instant: datetime, offset: str) -> datetime:
    """A UTC instant plus an offset string → the datetime as it was recorded there."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(parse_offset(offset))


QUARTER = timedelta(minutes=15)  # every zone's offset is a multiple of it: local days and months are whole quarters


def quarter_hour(at: datetime) -> datetime:
    """The start of the quarter hour (UTC) an instant falls in; a naive instant is UTC, as stored."""
    step = int(QUARTER.total_seconds())
    seconds = math.floor((at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp())
    return datetime.fromtimestamp(seconds - seconds % step, UTC)
