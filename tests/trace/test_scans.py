"""Scan records: the network hash keeps a /24 (or /48) apart from its neighbours and never the IP;
coarse places and client hints; bulk writes that ignore a scan written twice; counts with scans not
yet written folded in exactly once; the thresholds that flag a copied code."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from tests import factories as f
from trace.lots import Lot
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow
from trace.printing import runs
from trace.scans.models import Scan
from trace.scans.record import (
    ScanIn,
    agent_of,
    assess,
    coarse_place,
    network_of,
    new_scan,
    set_place,
    stats,
    tally,
    write,
)
from trace.units import Unit

T0 = datetime(2026, 11, 20, 8, 30, 15, 123456, tzinfo=UTC)


def coded(session: Session, quantity: int = 2) -> tuple[int, list[int]]:
    """A lot with ``quantity`` printed unit codes: (lot id, unit ids)."""
    coop = f.org(session)
    lot = session.get(Lot, f.harvest(session, coop, "100").lot_ids[0])
    assert lot is not None and lot.id is not None
    run = runs.create_run(
        session=session, actor=f.member(coop), lot_id=lot.id, data=runs.PrintRunCreate(quantity=quantity)
    )
    units = session.execute(select(col(Unit.id)).where(col(Unit.print_run_id) == run.id).order_by(col(Unit.id)))
    return lot.id, list(units.scalars())


def scan(
    lot_id: int,
    unit_id: int | None,
    ip: str = "203.0.113.7",
    *,
    minutes: float = 0,
    place: tuple[float, float] | None = None,
) -> ScanIn:
    return new_scan(
        lot_id=lot_id,
        unit_id=unit_id,
        client_ip=ip,
        user_agent="Mozilla/5.0 (Linux; Android 14) Mobile",
        lang="vi",
        kind="page",
        place=place,
        at=T0 + timedelta(minutes=minutes),
    )


def rows(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Scan)).scalar_one())


# -- the network hash -------------------------------------------------------------------------------


def test_one_ipv4_slash_24_is_one_network_and_its_neighbours_are_others() -> None:
    same = {network_of(f"198.51.100.{host}") for host in (0, 1, 77, 255)}
    assert len(same) == 1
    others = {network_of(ip) for ip in ("198.51.101.1", "198.52.100.1", "199.51.100.1", "10.0.0.1")}
    assert len(others) == 4 and not others & same
    assert re.fullmatch(r"[0-9a-f]{16}", same.pop())


def test_one_ipv6_slash_48_is_one_network_and_the_next_is_another() -> None:
    inside = {network_of(ip) for ip in ("2001:db8:abcd::1", "2001:db8:abcd:ffff::2", "2001:DB8:ABCD:12:34:56:78:9")}
    assert len(inside) == 1
    assert network_of("2001:db8:abce::1") not in inside and network_of("2001:db9:abcd::1") not in inside


def test_an_ipv4_mapped_ipv6_address_is_its_ipv4_network() -> None:
    assert network_of("::ffff:203.0.113.9") == network_of("203.0.113.200")
    assert network_of("::ffff:203.0.114.9") != network_of("203.0.113.200")


@pytest.mark.parametrize(
    "garbage",
    [None, "", "unknown", "not an ip", "300.1.1.1", "1.2.3", "203.0.113.7:443", "2001:db8::zz", "\x00", "testclient"],
)
def test_an_unparsable_client_is_the_one_unknown_network(garbage: str | None) -> None:
    assert network_of(garbage) == network_of(None)
    assert network_of(garbage) not in {network_of("203.0.113.7"), network_of("2001:db8::1"), network_of("0.0.0.0")}


def test_the_hash_depends_on_the_secret_so_the_prefix_space_cannot_be_searched_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = network_of("203.0.113.7")
    monkeypatch.setenv("HYTRACE_SECRET_KEY", "another-secret-that-is-long-enough-456")
    get_settings.cache_clear()
    after = network_of("203.0.113.7")
    assert after != before and len(after) == 16
    assert network_of("203.0.113.99") == after  # still one value per /24


def test_no_part_of_the_ip_or_the_user_agent_is_stored(session: Session) -> None:
    lot_id, units = coded(session, 1)
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Zalo"
    written = new_scan(
        lot_id=lot_id,
        unit_id=units[0],
        client_ip="203.0.113.77",
        user_agent=ua,
        lang="vi",
        kind="page",
        place=(20.6464, 106.0511),
    )
    write(session=session, scans=[written])
    stored = session.execute(select(Scan).where(Scan.uid == written.uid)).scalar_one()  # type: ignore[arg-type]
    values = stored.model_dump()
    assert set(values) == {"id", "uid", "lot_id", "unit_id", "scanned_at", "network", "place", "agent", "lang", "kind"}
    text = " ".join(str(v) for v in values.values())
    for leak in ("203.0.113", "cb0071", "iPhone", "Zalo", "AppleWebKit", "20.646", "106.051"):
        assert leak not in text, leak
    assert (stored.agent, stored.place, stored.network) == ("mobile", "20.6,106.1", network_of("203.0.113.1"))


# -- places, agents, the scan itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon", "cell"),
    [
        (20.6464, 106.0511, "20.6,106.1"),
        (21.04, 106.06, "21.0,106.1"),
        (-0.04, -0.04, "0.0,0.0"),
        (-33.86, 151.21, "-33.9,151.2"),
        (90, 180, "90.0,180.0"),
        (-90, -180, "-90.0,-180.0"),
    ],
)
def test_a_shared_location_is_kept_only_to_a_tenth_of_a_degree(lat: float, lon: float, cell: str) -> None:
    assert coarse_place(lat, lon) == cell
    assert len(cell) <= 16


@pytest.mark.parametrize(
    ("lat", "lon"), [(90.01, 0), (-91, 0), (0, 180.5), (0, -181), (math.nan, 0), (0, math.inf), (-math.inf, 0)]
)
def test_an_impossible_location_is_no_place(lat: float, lon: float) -> None:
    assert coarse_place(lat, lon) is None


@pytest.mark.parametrize(
    ("ua", "hint", "agent"),
    [
        (
            "Mozilla/5.0 (Linux; Android 14; SM-A155F) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
            None,
            "mobile",
        ),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", None, "mobile"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36", None, "desktop"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15", None, "desktop"),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0", "?1", "mobile"),
        ("Mozilla/5.0 (Linux; Android 14) Mobile", "?0", "desktop"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "?1", "bot"),
        ("facebookexternalhit/1.1", None, "bot"),
        ("curl/8.5.0", None, "bot"),
        ("python-httpx/0.27", None, "bot"),
        (None, None, "other"),
        ("", None, "other"),
        ("Zalo", None, "other"),
    ],
)
def test_the_client_kind_comes_from_the_user_agent_and_the_mobile_hint(
    ua: str | None, hint: str | None, agent: str
) -> None:
    assert agent_of(ua, hint) == agent


def test_a_new_scan_carries_only_coarse_hints() -> None:
    local = datetime(2026, 11, 20, 15, 30, tzinfo=timezone(timedelta(hours=7)))
    made = new_scan(
        lot_id=3,
        unit_id=None,
        client_ip="::ffff:198.51.100.4",
        user_agent=None,
        lang=" EN-us ",
        kind="json",
        place=(21.0, 106.06),
        at=local,
    )
    assert (made.lot_id, made.unit_id, made.kind, made.agent, made.lang, made.place) == (
        3,
        None,
        "json",
        "other",
        "en-us",
        "21.0,106.1",
    )
    assert made.scanned_at == local and made.scanned_at.utcoffset() == timedelta(0)
    assert made.network == network_of("198.51.100.200") and re.fullmatch(r"[0-9a-f]{32}", made.uid)
    other = new_scan(lot_id=3, unit_id=None, client_ip=None, user_agent=None, lang="<script>", kind="page")
    assert other.uid != made.uid and other.lang is None and other.place is None
    assert abs(other.scanned_at - datetime.now(UTC)) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="kind"):
        new_scan(lot_id=3, unit_id=None, client_ip=None, user_agent=None, lang=None, kind="visit")


# -- writing ---------------------------------------------------------------------------------------


def test_writing_the_same_scans_again_adds_nothing(session: Session) -> None:
    lot_id, units = coded(session)
    batch = [scan(lot_id, units[0], f"198.51.{i}.1", minutes=i) for i in range(5)] + [scan(lot_id, None)]
    assert write(session=session, scans=batch) == 6
    # a retried batch, overlapping the first and repeating a scan inside itself
    again = [*batch[3:], scan(lot_id, units[1]), *batch[:1], *batch[:1]]
    assert write(session=session, scans=again) == 1
    assert write(session=session, scans=[]) == 0
    assert rows(session) == 7
    stored = session.execute(select(Scan).where(Scan.uid == batch[2].uid)).scalar_one()  # type: ignore[arg-type]
    assert stored.scanned_at == batch[2].scanned_at and stored.network == batch[2].network


# -- counting and judging --------------------------------------------------------------------------


def test_assess_flags_each_figure_when_it_reaches_its_setting() -> None:
    s = get_settings()
    below = dict(networks=s.scan_warn_networks - 1, places=s.scan_warn_places - 1)
    assert assess(**below) == (False, [])
    assert assess(**{**below, "networks": s.scan_warn_networks}) == (True, ["many_networks"])
    assert assess(**{**below, "places": s.scan_warn_places}) == (True, ["many_places"])
    assert assess(networks=s.scan_warn_networks, places=s.scan_warn_places) == (True, ["many_networks", "many_places"])


def test_the_thresholds_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_SCAN_WARN_NETWORKS", "2")
    get_settings.cache_clear()
    assert assess(networks=2, places=0) == (True, ["many_networks"])


def test_stats_of_a_unit_count_only_its_scans(session: Session) -> None:
    lot_id, (mine, other) = coded(session)
    write(
        session=session,
        scans=[
            scan(lot_id, mine, "198.51.100.1", minutes=10),
            scan(lot_id, mine, "198.51.100.2", minutes=0),
            scan(lot_id, mine, "198.51.101.1", minutes=5, place=(20.64, 106.05)),
            scan(lot_id, other, "192.0.2.1", minutes=-60, place=(21.0, 105.8)),
            scan(lot_id, None, "2001:db8::9", minutes=99),
        ],
    )
    found = stats(session=session, unit_id=mine)
    assert (found.count, found.networks, found.places) == (3, 2, 1)
    assert (found.first_at, found.last_at) == (T0, T0 + timedelta(minutes=10))
    assert found.first_at is not None and found.first_at.tzinfo is not None
    assert not found.suspicious and found.reasons == []
    whole = stats(session=session, lot_id=lot_id)
    assert (whole.count, whole.networks, whole.places) == (5, 4, 2)
    assert (whole.first_at, whole.last_at) == (T0 - timedelta(minutes=60), T0 + timedelta(minutes=99))
    empty = stats(session=session, unit_id=coded(session, 1)[1][0])
    assert (empty.count, empty.first_at, empty.last_at, empty.networks, empty.places) == (0, None, None, 0, 0)
    with pytest.raises(ValueError):
        stats(session=session)


def test_pending_scans_are_folded_in_without_counting_anything_twice(session: Session) -> None:
    lot_id, (mine, other) = coded(session)
    written = [
        scan(lot_id, mine, "198.51.100.1", minutes=0, place=(20.64, 106.05)),
        scan(lot_id, mine, "198.51.101.1", minutes=5),
    ]
    write(session=session, scans=written)
    pending = [
        written[1],  # committed while it was still listed as pending
        scan(lot_id, mine, "198.51.100.99", minutes=-30, place=(20.61, 106.04)),  # known network, known place
        scan(lot_id, mine, "192.0.2.1", minutes=20, place=(21.0, 105.8)),  # a new network and a new place
        scan(lot_id, other, "203.0.113.1", minutes=40),  # another unit's: not this one's
    ]
    found = stats(session=session, unit_id=mine, pending=pending + pending[1:2])
    assert (found.count, found.networks, found.places) == (4, 3, 2)
    assert (found.first_at, found.last_at) == (T0 - timedelta(minutes=30), T0 + timedelta(minutes=20))
    # the same figures once everything is written
    write(session=session, scans=pending)
    assert stats(session=session, unit_id=mine) == found
    # and from pending alone
    lone = stats(session=session, unit_id=other, pending=[pending[3]])
    assert (lone.count, lone.networks, lone.places, lone.first_at) == (1, 1, 0, T0 + timedelta(minutes=40))


def test_the_sources_of_a_code_are_its_distinct_networks_and_places_with_pending_ones(session: Session) -> None:
    lot_id, (mine, other) = coded(session)
    write(
        session=session,
        scans=[
            scan(lot_id, mine, "198.51.100.1", place=(20.64, 106.05)),
            scan(lot_id, mine, "198.51.100.2", minutes=1),
            scan(lot_id, mine, "198.51.101.1"),
            scan(lot_id, other, "192.0.2.1", place=(21.0, 105.8)),
        ],
    )
    pending = [scan(lot_id, mine, "203.0.113.5", place=(20.61, 106.04)), scan(lot_id, other, "203.0.114.5")]
    found, networks, places = tally(session=session, unit_id=mine, pending=pending)
    assert networks == {network_of("198.51.100.1"), network_of("198.51.101.1"), network_of("203.0.113.5")}
    assert places == {coarse_place(20.64, 106.05)} == {coarse_place(20.61, 106.04)}  # one cell
    assert (found.networks, found.places) == (3, 1)
    # the same count the database's figures give once everything is written
    write(session=session, scans=pending)
    assert len(networks) == stats(session=session, unit_id=mine).networks
    # a lot's are all its units'; and no more than asked for are read, the figures staying exact
    assert len(tally(session=session, lot_id=lot_id)[1]) == 5
    bounded, few, _ = tally(session=session, lot_id=lot_id, limit=2)
    assert len(few) == 2 and (bounded.networks, bounded.places) == (5, 2)
    with pytest.raises(ValueError):
        tally(session=session)


def test_one_network_scanning_a_code_again_and_again_never_flags_it(session: Session) -> None:
    # given a genuine code scanned far more often than any household would, all from one network,
    # each scan naming another place (?geo= or the share button: anyone can send any)
    lot_id, (unit_id, _) = coded(session)
    many = 150  # three times the old count warning's 50
    flood = [
        scan(lot_id, unit_id, f"198.51.100.{i % 250}", minutes=i, place=(20.0 + i / 10, 106.0)) for i in range(3 * many)
    ]
    write(session=session, scans=flood[:many])
    # then it is one network and one place (the first scan's), and not suspicious, written or pending
    found = stats(session=session, unit_id=unit_id, pending=flood[many:])
    assert (found.count, found.networks, found.places) == (3 * many, 1, 1)
    assert not found.suspicious and found.reasons == []
    write(session=session, scans=flood[many:])
    assert stats(session=session, unit_id=unit_id) == found


def test_a_code_scanned_from_many_networks_is_suspicious(session: Session) -> None:
    s = get_settings()
    lot_id, (spread, _) = coded(session)
    write(
        session=session,
        scans=[scan(lot_id, spread, f"198.51.{i}.1", minutes=i) for i in range(s.scan_warn_networks - 1)],
    )
    assert not stats(session=session, unit_id=spread).suspicious
    last = stats(session=session, unit_id=spread, pending=[scan(lot_id, spread, "192.0.2.1", minutes=60)])
    assert last.suspicious and last.reasons == ["many_networks"] and last.networks == s.scan_warn_networks


def test_a_place_counts_only_when_shared_on_a_networks_first_scan_of_the_code(session: Session) -> None:
    # given a code scanned from one network, then from a second network later naming other places
    s = get_settings()
    assert s.scan_warn_places < s.scan_warn_networks  # places flag before networks would
    lot_id, (unit_id, _) = coded(session)
    places = [(20.0 + i / 10, 106.0) for i in range(s.scan_warn_places + 2)]
    write(
        session=session,
        scans=[
            scan(lot_id, unit_id, "198.51.100.1", minutes=0),
            scan(lot_id, unit_id, "198.51.101.1", minutes=1, place=places[0]),
        ]
        + [scan(lot_id, unit_id, "198.51.100.1", minutes=2 + i, place=p) for i, p in enumerate(places[1:])],
    )
    # then the places declared from an already-seen network do not count: one place, from the second's first scan
    found = stats(session=session, unit_id=unit_id)
    assert (found.networks, found.places, found.suspicious) == (2, 1, False)
    # when new networks each share a place on their first scan (pending, then written)
    new = [
        scan(lot_id, unit_id, f"203.0.{113 + i}.9", minutes=30 + i, place=places[1 + i])
        for i in range(s.scan_warn_places - 1)
    ]
    found = stats(session=session, unit_id=unit_id, pending=new)
    # then they count, and the code is flagged at the setting
    assert (found.networks, found.places) == (2 + len(new), s.scan_warn_places)
    assert found.suspicious and found.reasons == ["many_places"]
    write(session=session, scans=new)
    assert stats(session=session, unit_id=unit_id) == found
    # and a place added later (the share button, within the hour) counts only on a network's first scan
    first_only = coded(session)
    lot2, (unit2, _) = first_only
    now = utcnow()
    first, again = (
        new_scan(lot_id=lot2, unit_id=unit2, client_ip="198.51.100.1", user_agent=None, lang=None, kind="page", at=at)
        for at in (now - timedelta(minutes=2), now - timedelta(minutes=1))
    )
    write(session=session, scans=[first, again])
    assert set_place(session=session, uid=again.uid, place="20.5,106.0")
    assert stats(session=session, unit_id=unit2).places == 0
    assert set_place(session=session, uid=first.uid, place="20.5,106.0")
    assert stats(session=session, unit_id=unit2).places == 1
    assert stats(session=session, lot_id=lot2).places == 1  # the lot's first scan from that network too
    assert not set_place(session=session, uid=first.uid, place="21.0,106.0")  # once


def test_scan_uids_are_uuid7_in_time_order_never_repeated_and_a_forked_process_draws_its_own() -> None:
    # A uid is the visitor's handle to add a place to a scan: 74 random bits, never repeated, a forked
    # worker not going on with its parent's pool of random bytes; and its time first, so that a round
    # of scans lands at the end of the uid index (the standard library reads the layout, RFC 9562).
    import os
    import time
    import uuid

    from trace.scans.record import new_uid

    before = time.time_ns() // 1_000_000
    mine = [new_uid() for _ in range(1000)]  # more than one pool's worth
    after = time.time_ns() // 1_000_000
    for uid in mine:
        parsed = uuid.UUID(hex=uid)
        assert (parsed.version, parsed.variant, parsed.hex) == (7, uuid.RFC_4122, uid)
        assert before <= parsed.int >> 80 <= after
    assert len(set(mine)) == len(mine)
    assert [uid[:12] for uid in mine] == sorted(uid[:12] for uid in mine)
    # the 74 random bits vary: no bit position below the time is fixed across a thousand uids
    randoms = [uuid.UUID(hex=uid).int & ((1 << 62) - 1 | 0xFFF << 64) for uid in mine]
    assert all(any(r >> bit & 1 for r in randoms) and not all(r >> bit & 1 for r in randoms) for bit in range(62))
    new_uid()  # the pool is part used: a child that kept it would draw the parent's next random bits
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(writer, "".join(new_uid() for _ in range(4)).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    theirs = os.read(reader, 4096).decode()
    os.close(reader)
    ours = "".join(new_uid() for _ in range(4))
    assert len(theirs) == 128
    tails = {uid[12:] for uid in mine} | {ours[i + 12 : i + 32] for i in range(0, 128, 32)}
    assert not {theirs[i + 12 : i + 32] for i in range(0, 128, 32)} & tails
