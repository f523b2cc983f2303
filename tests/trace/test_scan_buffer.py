"""Scan buffers: scans added from many threads are all written, once, by the background thread or
on close; a failed write keeps them for the next round; through Redis, two processes' buffers on one
list drain it together without losing or repeating a scan, even when a drainer's lock lapses."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from tests import factories as f
from tests.conftest import migrate, require
from trace.lots import Lot
from trace.platform.config import get_settings
from trace.platform.db import session_scope
from trace.printing import runs
from trace.scans import buffer as scan_buffer
from trace.scans.buffer import MemoryBuffer, RedisBuffer, ScanBuffer, open_buffer
from trace.scans.models import Scan
from trace.scans.record import ScanIn, new_scan, stats
from trace.units import Unit

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Place:
    engine: Engine
    lot_id: int
    unit_ids: list[int]


@pytest.fixture
def place(fresh: tuple[str, Engine]) -> Place:
    """A database of its own (buffers commit from their own threads) with a lot and two unit codes."""
    url, engine = fresh
    migrate(url)
    with session_scope(engine) as s:
        coop = f.org(s)
        lot = s.get(Lot, f.harvest(s, coop, "100").lot_ids[0])
        assert lot is not None and lot.id is not None
        run = runs.create_run(session=s, actor=f.member(coop), lot_id=lot.id, data=runs.PrintRunCreate(quantity=2))
        units = list(
            s.execute(select(col(Unit.id)).where(col(Unit.print_run_id) == run.id).order_by(col(Unit.id))).scalars()
        )
    return Place(engine, lot.id, [u for u in units if u is not None])


def scan(p: Place, i: int = 0, unit: int | None = 0) -> ScanIn:
    return new_scan(
        lot_id=p.lot_id,
        unit_id=None if unit is None else p.unit_ids[unit],
        client_ip=f"10.{i % 250}.{i // 250}.1",
        user_agent="Mozilla/5.0 (Linux; Android 14) Mobile",
        lang="vi",
        kind="page",
    )


def stored(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(col(Scan.uid))).scalars())


def add_from_threads(buffer: ScanBuffer, p: Place, threads: int, each: int) -> set[str]:
    made: list[list[ScanIn]] = [
        [scan(p, t * each + i, unit=None if i % 3 == 0 else i % 2) for i in range(each)] for t in range(threads)
    ]
    go = threading.Barrier(threads)

    def run(batch: list[ScanIn]) -> None:
        go.wait()
        for item in batch:
            buffer.add(item)

    workers = [threading.Thread(target=run, args=(batch,)) for batch in made]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {s.uid for batch in made for s in batch}


def wait_for(condition: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_SCAN_FLUSH_SECONDS", "0.02")
    get_settings.cache_clear()


# -- in process ------------------------------------------------------------------------------------


def test_scans_added_from_many_threads_are_all_written_once_on_close(place: Place, quick: None) -> None:
    # given a running buffer and 8 threads adding 400 scans each while it flushes
    buffer = MemoryBuffer(place.engine)
    buffer.start()
    made = add_from_threads(buffer, place, threads=8, each=400)
    # when it is closed
    buffer.close()
    # then every scan is in the database exactly once, and nothing is pending
    uids = stored(place.engine)
    assert len(uids) == len(made) == 3200 and set(uids) == made
    assert buffer.pending() == [] and buffer.pending(unit_id=place.unit_ids[0]) == []


def test_the_background_thread_writes_without_close_and_pending_covers_the_gap(place: Place, quick: None) -> None:
    buffer = MemoryBuffer(place.engine)
    held = [scan(place, i) for i in range(3)] + [scan(place, 9, unit=1), scan(place, 10, unit=None)]
    for item in held:
        buffer.add(item)
    # before any round: pending, by unit and by lot
    assert {s.uid for s in buffer.pending(unit_id=place.unit_ids[0])} == {s.uid for s in held[:3]}
    assert [s.uid for s in buffer.pending(unit_id=place.unit_ids[1])] == [held[3].uid]
    assert {s.uid for s in buffer.pending(lot_id=place.lot_id)} == {s.uid for s in held}
    assert buffer.pending(unit_id=place.unit_ids[0], lot_id=place.lot_id + 1) == []
    with session_scope(place.engine, write=False) as s:
        assert stats(session=s, unit_id=place.unit_ids[0], pending=buffer.pending(unit_id=place.unit_ids[0])).count == 3
    buffer.start()
    try:
        wait_for(lambda: len(stored(place.engine)) == 5)
        wait_for(lambda: buffer.pending() == [])
    finally:
        buffer.close()
    with session_scope(place.engine, write=False) as s:
        assert stats(session=s, lot_id=place.lot_id, pending=buffer.pending(lot_id=place.lot_id)).count == 5


def test_a_failed_write_keeps_the_scans_and_the_next_round_writes_them(
    place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a write that fails once, as when the database is briefly unreachable
    real, calls = scan_buffer.write, []

    def flaky(**kwargs: object) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT INTO scan", {}, Exception("connection refused"))
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_buffer, "write", flaky)
    buffer = MemoryBuffer(place.engine)
    made = [scan(place, i) for i in range(7)]
    for item in made:
        buffer.add(item)
    # when a round fails
    assert buffer.flush() == 0
    # then nothing was dropped: still pending, and the next round writes all of it
    assert stored(place.engine) == [] and len(buffer.pending(unit_id=place.unit_ids[0])) == 7
    buffer.add(later := scan(place, 99))
    assert buffer.flush() == 8
    assert set(stored(place.engine)) == {s.uid for s in made} | {later.uid} and buffer.pending() == []


def test_a_missing_table_is_survived_and_the_scans_written_once_it_is_back(place: Place) -> None:
    buffer = MemoryBuffer(place.engine)
    with place.engine.begin() as conn:
        conn.execute(text("ALTER TABLE scan RENAME TO scan_away"))
    for i in range(5):
        buffer.add(scan(place, i))
    assert buffer.flush() == 0 and len(buffer.pending()) == 5
    with place.engine.begin() as conn:
        conn.execute(text("ALTER TABLE scan_away RENAME TO scan"))
    buffer.close()
    assert len(stored(place.engine)) == 5 and buffer.pending() == []


def test_a_scan_of_an_unknown_lot_is_dropped_without_blocking_the_others(place: Place) -> None:
    buffer = MemoryBuffer(place.engine)
    good = [scan(place, i) for i in range(3)]
    bad = new_scan(lot_id=place.lot_id + 1000, unit_id=None, client_ip=None, user_agent=None, lang=None, kind="page")
    for item in [good[0], bad, *good[1:]]:
        buffer.add(item)
    assert buffer.flush() == 3
    assert set(stored(place.engine)) == {s.uid for s in good} and buffer.pending() == []


def test_the_configured_buffer_is_redis_when_a_url_is_set(monkeypatch: pytest.MonkeyPatch, place: Place) -> None:
    assert isinstance(open_buffer(place.engine), MemoryBuffer)
    monkeypatch.setenv("HYTRACE_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("HYTRACE_CELERY_QUEUE", "hytrace-test-q")
    get_settings.cache_clear()
    configured = open_buffer(place.engine)
    assert isinstance(configured, RedisBuffer) and configured.key == "hytrace:hytrace-test-q:scans"


# -- through Redis ---------------------------------------------------------------------------------


@pytest.fixture
def redis_key() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        up = bool(client.ping())
    except redis.RedisError:
        up = False
    require(up, f"Redis at {REDIS_URL}")
    key = f"hytrace:test:{uuid.uuid4().hex}:scans"
    yield key
    client.delete(*client.keys(f"{key}*"))
    client.close()


def test_two_buffers_on_one_list_drain_it_together_without_loss_or_repeats(
    place: Place, redis_key: str, quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two processes' buffers on one Redis list, small batches so drains interleave
    monkeypatch.setattr(scan_buffer, "BATCH", 50)
    first, second = RedisBuffer(place.engine, REDIS_URL, redis_key), RedisBuffer(place.engine, REDIS_URL, redis_key)
    first.start()
    second.start()
    # when each gets scans from 4 threads
    made: set[str] = set()
    adders = [
        threading.Thread(target=lambda b=b: made.update(add_from_threads(b, place, threads=4, each=300)))
        for b in (first, second)
    ]
    for a in adders:
        a.start()
    for a in adders:
        a.join()
    first.close()
    second.close()
    # then each scan is written exactly once, the list is empty and nothing is pending
    uids = stored(place.engine)
    assert len(uids) == len(set(uids)) == len(made) == 2400 and set(uids) == made
    assert redis.Redis.from_url(REDIS_URL).llen(redis_key) == 0
    assert first.pending() == [] and second.pending() == []


def test_scans_pushed_but_not_yet_drained_stay_pending(place: Place, redis_key: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    buffer = RedisBuffer(place.engine, REDIS_URL, redis_key)
    made = [scan(place, i) for i in range(3)]
    for item in made:
        buffer.add(item)
    # another process holds the drain lock: the scans reach Redis but not the database
    client.set(f"{redis_key}:lock", "someone else")
    assert buffer.flush() == 0
    assert client.llen(redis_key) == 3 and stored(place.engine) == []
    assert {s.uid for s in buffer.pending(unit_id=place.unit_ids[0])} == {s.uid for s in made}
    client.delete(f"{redis_key}:lock")
    assert buffer.flush() == 3
    assert buffer.pending() == [] and client.llen(redis_key) == 0
    client.close()


def test_a_drainer_whose_lock_lapsed_never_trims_what_another_has_not_written(
    place: Place, redis_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a slow drainer whose lock lapses mid-batch: a second drainer takes over, drains the list,
    # and new scans arrive before the slow one finishes its write
    monkeypatch.setattr(scan_buffer, "BATCH", 5)
    client = redis.Redis.from_url(REDIS_URL)
    slow, other = RedisBuffer(place.engine, REDIS_URL, redis_key), RedisBuffer(place.engine, REDIS_URL, redis_key)
    late = [scan(place, 100 + i, unit=1) for i in range(5)]
    real_write, stalls = slow._write, list[int]()

    def stalled(scans: list[ScanIn]) -> int:
        if not stalls:
            stalls.append(1)
            client.delete(f"{redis_key}:lock")  # the lock lapses
            assert other.flush() == 10  # the other drains all of it (writing this batch too)
            for item in late:
                other.add(item)
            other._push()  # and more arrives, not yet drained
        return real_write(scans)

    monkeypatch.setattr(slow, "_write", stalled)
    early = [scan(place, i) for i in range(10)]
    for item in early:
        slow.add(item)
    # when the slow drainer finishes its batch and tries to trim
    slow.flush()
    # then the late scans are still in the list, and the next round writes them: nothing lost
    assert client.llen(redis_key) == 5
    assert other.flush() == 5
    assert set(stored(place.engine)) == {s.uid for s in early + late}
    slow.close()
    other.close()
    assert slow.pending() == [] and other.pending() == []
    client.close()
