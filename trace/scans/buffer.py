"""Scan buffers: a page view adds its scan in memory and moves on; a background thread writes the
scans in bulk. In-process when there is no Redis; through a Redis list shared by every API process
when there is, so one process at a time drains it into the database.

Nothing is dropped: a failed write keeps the scans for the next round, and a clean shutdown
(:meth:`ScanBuffer.close`) writes everything. A scan stays in :meth:`ScanBuffer.pending` until it
is committed, and :func:`trace.scans.record.stats` counts a scan that is in both only once.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from trace.lots import Lot
from trace.platform.config import get_settings
from trace.platform.db import session_scope
from trace.platform.sqltypes import in_chunks
from trace.scans.record import FIELDS, ScanIn, write
from trace.units import Unit

log = logging.getLogger(__name__)

BATCH = 2000  # scans per transaction: short write locks on SQLite, bounded statements everywhere
CLOSE_TIMEOUT = 30.0  # how long close() keeps retrying before it gives up (and says so)


class ScanBuffer:
    """Scans held in this process until written; subclasses say how they are written."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()  # guards the queue and the indexes; held for microseconds
        self._flushing = threading.Lock()  # one round at a time (the thread, flush(), close())
        self._queue: list[ScanIn] = []  # added, not yet handed to the database (or to Redis)
        # Every scan not yet committed, by unit and by lot, for the page's counts.
        self._by_unit: dict[int, dict[str, ScanIn]] = {}
        self._by_lot: dict[int, dict[str, ScanIn]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0

    def add(self, scan: ScanIn) -> None:
        """Keep a scan for the next round: O(1), thread-safe, no I/O."""
        with self._lock:
            self._queue.append(scan)
            if scan.unit_id is not None:
                self._by_unit.setdefault(scan.unit_id, {})[scan.uid] = scan
            self._by_lot.setdefault(scan.lot_id, {})[scan.uid] = scan

    def amend(self, uid: str, place: str) -> bool:
        """Add a shared place to a scan still waiting here; False when it has already left the buffer."""
        with self._lock:
            for index, scan in enumerate(self._queue):
                if scan.uid == uid:
                    if scan.place is None:
                        changed = dataclasses.replace(scan, place=place)
                        self._queue[index] = changed
                        for held, key in ((self._by_unit, scan.unit_id), (self._by_lot, scan.lot_id)):
                            if key is not None and uid in held.get(key, {}):
                                held[key][uid] = changed
                    return True
        return False

    def pending(self, *, unit_id: int | None = None, lot_id: int | None = None) -> list[ScanIn]:
        """Scans this process holds that are not yet committed (all of them when no filter is given)."""
        with self._lock:
            if unit_id is not None:
                found = list(self._by_unit.get(unit_id, {}).values())
                return [s for s in found if s.lot_id == lot_id] if lot_id is not None else found
            if lot_id is not None:
                return list(self._by_lot.get(lot_id, {}).values())
            return [s for scans in self._by_lot.values() for s in scans.values()]

    def flush(self) -> int:
        """Write what is buffered now (keeping it for the next round on failure); rows inserted."""
        with self._flushing:
            try:
                written = self._round()
            except Exception:
                self._failed("scan flush failed")
                return 0
            if self._failures:
                log.warning("scans are being written again after %d failed round(s)", self._failures)
                self._failures = 0
            return written

    def start(self) -> None:
        """Flush every ``scan_flush_seconds`` in a background thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="scan-buffer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write everything held (retrying for up to ``CLOSE_TIMEOUT`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        deadline = time.monotonic() + CLOSE_TIMEOUT
        while self._unsettled():
            self.flush()
            if not self._unsettled():
                break
            if time.monotonic() > deadline:
                log.error("scan buffer closed with %d scan(s) not written", self._unsettled())
                break
            time.sleep(0.05)

    # -- for subclasses -------------------------------------------------------------------------

    def _round(self) -> int:
        raise NotImplementedError

    def _unsettled(self) -> int:
        """Scans not yet known to be committed."""
        with self._lock:
            return sum(len(scans) for scans in self._by_lot.values())

    def _take(self) -> list[ScanIn]:
        with self._lock:
            taken, self._queue = self._queue, []
        return taken

    def _give_back(self, scans: list[ScanIn]) -> None:
        if scans:
            with self._lock:
                self._queue[:0] = scans  # first in, first written

    def _settled(self, scans: Iterable[ScanIn]) -> None:
        """Scans now committed: no longer pending."""
        with self._lock:
            for scan in scans:
                for index, key in ((self._by_unit, scan.unit_id), (self._by_lot, scan.lot_id)):
                    if key is None:
                        continue
                    held = index.get(key)
                    if held is not None:
                        held.pop(scan.uid, None)
                        if not held:
                            del index[key]

    def _write(self, scans: Sequence[ScanIn]) -> int:
        try:
            with session_scope(self.engine, write=True) as session:
                return write(session=session, scans=scans)
        except IntegrityError:
            pass  # a scan naming a lot or unit that does not exist: it would block every later round
        with session_scope(self.engine, write=True) as session:
            known = (
                _existing(session, Lot, {s.lot_id for s in scans}),
                _existing(session, Unit, {s.unit_id for s in scans if s.unit_id is not None}),
            )
            good = [s for s in scans if s.lot_id in known[0] and (s.unit_id is None or s.unit_id in known[1])]
            log.error("dropping %d scan(s) of unknown lots or units", len(scans) - len(good))
            return write(session=session, scans=good)

    def _failed(self, what: str) -> None:
        # The first failure of a run says why; the next ones only now and then (the thread retries twice a second).
        self._failures += 1
        if self._failures == 1 or self._failures % 120 == 0:
            log.warning(
                "%s (%d round(s) so far); %d scan(s) kept for the next round",
                what,
                self._failures,
                self._unsettled(),
                exc_info=True,
            )

    def _run(self) -> None:
        interval = get_settings().scan_flush_seconds
        while not self._stop.wait(interval):
            self.flush()


def _existing(session: Session, table: type[Lot] | type[Unit], ids: set[int]) -> set[int]:
    found: set[int] = set()
    for chunk in in_chunks(sorted(ids)):
        found.update(session.execute(select(col(table.id)).where(col(table.id).in_(chunk))).scalars())
    return found


class MemoryBuffer(ScanBuffer):
    """Scans kept in this process and written with :func:`write` in bulk."""

    def _round(self) -> int:
        batch = self._take()
        written = 0
        for start in range(0, len(batch), BATCH):
            chunk = batch[start : start + BATCH]
            try:
                written += self._write(chunk)
            except Exception:
                self._give_back(batch[start:])
                raise
            self._settled(chunk)
        return written


_TRIM = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
return redis.call('INCRBY', KEYS[3], tonumber(ARGV[2]))
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _encode(scan: ScanIn) -> str:
    values = [getattr(scan, name) for name in FIELDS]
    values[FIELDS.index("scanned_at")] = scan.scanned_at.isoformat()
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def _decode(item: bytes | str) -> ScanIn | None:
    try:
        values: dict[str, Any] = dict(zip(FIELDS, json.loads(item), strict=True))
        values["scanned_at"] = datetime.fromisoformat(values["scanned_at"])
        return ScanIn(**values)
    except (ValueError, TypeError, KeyError):
        log.error("dropping an unreadable scan from Redis: %r", item[:200])
        return None


class RedisBuffer(ScanBuffer):
    """Scans pushed to a Redis list shared by every process, drained into the database by one at a time.

    Each round: the local batch is RPUSHed (with a running count of scans ever pushed); then, under
    a short lock (SET NX PX), batches are read from the head of the list (LRANGE), written (a uid
    already written adds nothing), committed, and only then trimmed (LTRIM, with a running count of
    scans ever trimmed) -- and only while the lock is still ours, so two drainers never trim one
    batch twice. A crash between the commit and the trim re-sends rows the uid makes harmless. A
    process's scans stay pending until the trimmed count passes the pushed count of their push.
    """

    LOCK_MS = 30_000  # longer than any batch's write; a crashed drainer's lock lapses on its own

    def __init__(self, engine: Engine, url: str, key: str) -> None:
        super().__init__(engine)
        self.key = key
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._lock_key, self._pushed_key, self._trimmed_key = f"{key}:lock", f"{key}:pushed", f"{key}:trimmed"
        self._trim = self._redis.register_script(_TRIM)
        self._release = self._redis.register_script(_RELEASE)
        self._sent: list[tuple[int, list[ScanIn]]] = []  # pushed, not yet known to be committed: (last seq, scans)

    def keys(self) -> list[str]:
        """Every Redis key this buffer uses (for cleaning up after tests)."""
        return [self.key, self._lock_key, self._pushed_key, self._trimmed_key]

    def _round(self) -> int:
        self._push()
        written, trimmed = self._drain()
        if trimmed is None:
            trimmed = int(self._redis.get(self._trimmed_key) or 0)
        self._confirm(trimmed)
        return written

    def _push(self) -> None:
        batch = self._take()
        for start in range(0, len(batch), BATCH):
            chunk = batch[start : start + BATCH]
            try:
                pipe = self._redis.pipeline(transaction=True)  # the list and its count move together
                pipe.rpush(self.key, *[_encode(s) for s in chunk])
                pipe.incrby(self._pushed_key, len(chunk))
                _, pushed = pipe.execute()
            except Exception:
                self._give_back(batch[start:])
                raise
            self._sent.append((int(pushed), chunk))

    def _drain(self) -> tuple[int, int | None]:
        """Write the list's head batches while holding the lock; (rows inserted, trimmed count or None)."""
        token = uuid.uuid4().hex
        if not self._redis.set(self._lock_key, token, nx=True, px=self.LOCK_MS):
            return 0, None  # another process is draining
        written, trimmed = 0, None
        try:
            while True:
                items = self._redis.lrange(self.key, 0, BATCH - 1)
                if not items:
                    break
                scans = [s for s in map(_decode, items) if s is not None]
                written += self._write(scans)
                result = int(self._trim(keys=[self.key, self._lock_key, self._trimmed_key], args=[token, len(items)]))
                if result < 0:  # the lock lapsed: someone else drains (and trims) this batch
                    log.warning("scan drain lock on %s lapsed mid-batch; another process takes over", self.key)
                    return written, None
                trimmed = result
        finally:
            self._release(keys=[self._lock_key], args=[token])
        return written, trimmed

    def _confirm(self, trimmed: int) -> None:
        """Scans whose push the trimmed count has passed are committed: no longer pending."""
        done = list(itertools.takewhile(lambda sent: sent[0] <= trimmed, self._sent))
        if done:
            del self._sent[: len(done)]
            self._settled(s for _, scans in done for s in scans)


def open_buffer(engine: Engine) -> ScanBuffer:
    """The configured buffer, not started: Redis when ``redis_url`` is set, else in-process."""
    settings = get_settings()
    if settings.redis_url:
        return RedisBuffer(engine, settings.redis_url, f"hytrace:{settings.celery_queue}:scans")
    return MemoryBuffer(engine)
