"""Time helpers: the one ``today()`` is the province's calendar day, whatever the server's clock zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

import pytest

from trace.platform import timeutil

# 20:30 UTC on 31 December is already 03:30 on 1 January in Asia/Ho_Chi_Minh (UTC+7).
NEW_YEAR_IN_HANOI = datetime(2025, 12, 31, 20, 30, tzinfo=UTC)


class _Frozen(datetime):
    """``datetime`` whose ``now`` is always NEW_YEAR_IN_HANOI, in whatever zone it is asked for."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _Frozen:  # type: ignore[override]
        return cls.fromtimestamp(NEW_YEAR_IN_HANOI.timestamp(), tz or UTC)


def test_today_is_the_local_date_not_the_utc_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: the server's clock reads 31 December (UTC), the province is already in 1 January
    monkeypatch.setattr(timeutil, "datetime", _Frozen)
    assert str(timeutil.local_zone()) == "Asia/Ho_Chi_Minh"
    # when / then
    assert timeutil.today() == date(2026, 1, 1)
    assert timeutil.utcnow().date() == date(2025, 12, 31)
