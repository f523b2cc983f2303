"""Periods in the province's local calendar, and month buckets that work the same on SQLite and PostgreSQL.

Instants are stored in UTC; a month is a local month. Rather than a dialect's date functions (strftime on
SQLite, date_trunc with a zone on PostgreSQL), each month's bounds are turned into UTC instants here and
the database sorts each row into its month with a CASE over those bounds: the same SQL on both databases,
correct for any zone the instance is configured in, and the range filter can use the column's index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from trace.errors import RuleViolation
from trace.platform.timeutil import local_zone

MAX_MONTHS = 120  # ten years: a report longer than that is several reports


@dataclass(frozen=True)
class Month:
    """A local calendar month and its bounds as UTC instants."""

    year: int
    month: int
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """``2026-07``."""
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Period:
    """From ``start`` to ``end`` (local dates, both included)."""

    start: date
    end: date

    @property
    def start_utc(self) -> datetime:
        """The period's first instant, in UTC."""
        return local_start(self.start)

    @property
    def end_utc(self) -> datetime:
        """The instant after the period's last day, in UTC."""
        return local_start(date.fromordinal(self.end.toordinal() + 1))

    @property
    def years(self) -> list[int]:
        """The calendar years the period touches."""
        return list(range(self.start.year, self.end.year + 1))

    def months(self) -> list[Month]:
        """The local months the period touches, the first and last cut to the period."""
        out: list[Month] = []
        year, month = self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            nxt = (year + 1, 1) if month == 12 else (year, month + 1)
            low = max(local_start(date(year, month, 1)), self.start_utc)
            high = min(local_start(date(nxt[0], nxt[1], 1)), self.end_utc)
            out.append(Month(year, month, low, high))
            year, month = nxt
        return out


def local_start(day: date) -> datetime:
    """Midnight at the start of a local day, as a UTC instant."""
    return datetime(day.year, day.month, day.day, tzinfo=local_zone()).astimezone(UTC)


def year_period(year: int) -> Period:
    """A whole calendar year."""
    return make_period(date(year, 1, 1), date(year, 12, 31))


def make_period(start: date, end: date) -> Period:
    """A period, refused (with a code) when it runs backwards, is too long or lies outside 2000-2100."""
    if end < start:
        raise RuleViolation("The period ends before it starts", code="period_backwards")
    if start.year < 2000 or end.year > 2100:
        raise RuleViolation("A period lies between 2000 and 2100", code="period_out_of_range")
    if (end.year - start.year) * 12 + end.month - start.month + 1 > MAX_MONTHS:
        raise RuleViolation(f"A period is at most {MAX_MONTHS} months long", code="period_too_long")
    return Period(start, end)


def bucket(column: Any, months: list[Month]) -> ColumnElement[Any]:
    """The index of a row's month in ``months`` (rows outside the period: NULL)."""
    return case(*[(column < m.end, i) for i, m in enumerate(months)], else_=None)


def per_month(
    session: Session, column: Any, months: list[Month], *where: Any, value: Any = None, froms: Any = None
) -> list[int]:
    """One figure per month: rows counted (or ``value`` summed) whose ``column`` falls in each month.

    Grouped in a subquery: PostgreSQL does not see a CASE with bound parameters in SELECT and in GROUP BY
    as the same expression, so the outer query groups by the subquery's column instead."""
    if not months:
        return []
    rows = select(bucket(column, months).label("m"), (literal(1) if value is None else value).label("v"))
    if froms is not None:
        rows = rows.select_from(froms)
    sub = rows.where(column >= months[0].start, column < months[-1].end, *where).subquery()
    grouped = select(sub.c.m, func.coalesce(func.sum(sub.c.v), 0)).group_by(sub.c.m)
    out = [0] * len(months)
    for index, total in session.execute(grouped).all():
        if index is not None:
            out[int(index)] = int(total)
    return out
