"""Alembic migrations on the configured database kind: up, down, up again; the schema matches the
models; old rows survive an upgrade; the event log is append-only after every upgrade."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from tests.conftest import alembic_config
from tests.services import populate
from trace.events import chain
from trace.events.models import Event, EventLot
from trace.organisations import Organisation
from trace.platform.db import session_scope
from trace.printing import artefacts
from trace.printing.models import CHUNK_BYTES, PrintArtefact, PrintRun
from trace.schema import metadata
from trace.users import User, authenticate, hash_password

FIRST = "0001"  # its schema never changes, so rows written at it are a fixed starting point
BEFORE_CHUNKS = "0017"  # print files lay whole in print_artefact.content until 0018


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def _user_tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _assert_append_only(engine: Engine) -> None:
    """UPDATE and DELETE on event and event_lot are refused by the database itself."""
    with Session(engine) as s:
        event = s.exec(select(Event)).first()
        row = s.exec(select(EventLot)).first()
    assert event is not None and row is not None
    statements = [
        sa.update(Event).where(col(Event.id) == event.id).values(disposition="forged"),
        sa.delete(Event).where(col(Event.id) == event.id),
        sa.update(EventLot).where(col(EventLot.id) == row.id).values(role="forged"),
        sa.delete(EventLot).where(col(EventLot.id) == row.id),
    ]
    for statement in statements:
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    if engine.dialect.name == "postgresql":
        for table in ("event", "event_lot"):
            with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text(f"TRUNCATE {table} CASCADE"))


def test_upgrade_from_empty_gives_exactly_the_models_schema(fresh: tuple[str, Engine]) -> None:
    url, engine = fresh
    command.upgrade(alembic_config(url), "head")
    assert _differences(engine) == []
    assert {t.name for t in metadata.sorted_tables} == _user_tables(engine)


def test_the_event_log_is_append_only_after_upgrade(fresh: tuple[str, Engine]) -> None:
    url, engine = fresh
    command.upgrade(alembic_config(url), "head")
    populate(engine)
    _assert_append_only(engine)
    with Session(engine) as s:
        assert chain.verify(session=s).ok  # every refused statement changed nothing


def test_downgrade_to_base_and_upgrade_again_round_trips(fresh: tuple[str, Engine]) -> None:
    # given a migrated database holding data
    url, engine = fresh
    config = alembic_config(url)
    command.upgrade(config, "head")
    populate(engine)
    # when it is downgraded to nothing (every revision's downgrade runs) and upgraded again
    command.downgrade(config, "base")
    assert _user_tables(engine) == set()
    command.upgrade(config, "head")
    # then the schema is whole again, triggers included
    assert _differences(engine) == []
    populate(engine)
    _assert_append_only(engine)


def test_rows_written_at_the_first_revision_survive_every_later_migration(fresh: tuple[str, Engine]) -> None:
    # given a database at the first revision with an organisation and its user, written as
    # plain rows of that revision's schema (the models may have moved on since)
    url, engine = fresh
    config = alembic_config(url)
    command.upgrade(config, FIRST)
    now = datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=UTC)
    organisation = sa.table(
        "organisation",
        *(
            sa.column(c)
            for c in (
                "id",
                "name",
                "kind",
                "tax_code",
                "address",
                "commune_code",
                "personal_name_consent",
                "practices_public",
                "version",
                "active",
            )
        ),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    user = sa.table(
        "user",
        *(
            sa.column(c)
            for c in ("id", "email", "full_name", "role", "organisation_id", "password_hash", "active", "token_version")
        ),
        sa.column("created_at", UTCDateTime()),
    )
    with engine.begin() as conn:
        conn.execute(
            organisation.insert().values(
                id=41,
                name="HTX Nhãn lồng Phố Hiến",
                kind="cooperative",
                tax_code="0900123456",
                address="Hưng Yên",
                commune_code="12070",
                personal_name_consent=False,
                practices_public=True,
                version=1,
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            user.insert().values(
                id=7,
                email="xa-vien@example.vn",
                full_name="Xã viên",
                role="member",
                organisation_id=41,
                password_hash=hash_password("mật khẩu cũ 2026"),
                active=True,
                token_version=0,
                created_at=now,
            )
        )
    # when every later migration runs
    command.upgrade(config, "head")
    # then today's models read those rows and the old password still signs in
    with Session(engine) as s:
        org = s.get(Organisation, 41)
        assert org is not None and org.name == "HTX Nhãn lồng Phố Hiến" and org.created_at == now
        member = authenticate(session=s, email="xa-vien@example.vn", password="mật khẩu cũ 2026")
        assert member.organisation_id == 41 and s.get(User, 7) is not None
    # and new rows can still be added next to them (sequences and defaults are intact)
    populate(engine)


def test_the_revision_history_is_one_line_ending_at_head() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1
    assert [r.revision for r in scripts.walk_revisions()][-1] == FIRST


def test_units_written_at_the_first_revision_get_valid_unique_codes(fresh: tuple[str, Engine]) -> None:
    from trace.units import normalize_code

    # given units written at the first revision, before codes existed (plain rows of its schema)
    url, engine = fresh
    config = alembic_config(url)
    command.upgrade(config, FIRST)
    now = datetime(2026, 11, 27, 1, 2, 3, tzinfo=UTC)
    cols = {
        "organisation": (
            "id",
            "name",
            "kind",
            "tax_code",
            "address",
            "commune_code",
            "personal_name_consent",
            "practices_public",
            "version",
            "active",
        ),
        "product": ("id", "name_vi", "category", "unit", "gtin", "organisation_id", "gtin_assigned", "version"),
        "lot": (
            "id",
            "product_id",
            "gtin",
            "lot_code",
            "quantity",
            "unit",
            "producer_organisation_id",
            "production_date",
            "status",
            "created_event_id",
            "product_version",
        ),
        "unit": ("id", "lot_id", "serial", "status", "created_event_id"),
    }
    tables = {
        name: sa.table(name, *(sa.column(c) for c in names), sa.column("created_at", UTCDateTime()))
        for name, names in cols.items()
    }
    tables["organisation"].append_column(sa.column("updated_at", UTCDateTime()))
    serials = [f"{i:010d}" for i in range(1, 61)]
    with engine.begin() as conn:
        conn.execute(
            tables["organisation"]
            .insert()
            .values(
                id=41,
                name="HTX Nhãn lồng Phố Hiến",
                kind="cooperative",
                tax_code="0900123456",
                address="Hưng Yên",
                commune_code="12070",
                personal_name_consent=False,
                practices_public=True,
                version=1,
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            tables["product"]
            .insert()
            .values(
                id=51,
                name_vi="Nhãn lồng sấy",
                category="longan_dried",
                unit="kg",
                gtin="08930000000019",
                organisation_id=41,
                gtin_assigned=False,
                version=1,
                created_at=now,
            )
        )
        conn.execute(
            tables["lot"]
            .insert()
            .values(
                id=61,
                product_id=51,
                gtin="08930000000019",
                lot_code="NL-2026-01",
                quantity=100,
                unit="kg",
                producer_organisation_id=41,
                production_date=now.date(),
                status="active",
                created_event_id="00000000-0000-0000-0000-000000000001",
                product_version=1,
                created_at=now,
            )
        )
        conn.execute(
            tables["unit"].insert(),
            [
                {
                    "id": 100 + i,
                    "lot_id": 61,
                    "serial": s,
                    "status": "active",
                    "created_event_id": "00000000-0000-0000-0000-000000000002",
                    "created_at": now,
                }
                for i, s in enumerate(serials)
            ],
        )

    def codes() -> dict[str, str]:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT serial, code FROM unit")).all())  # type: ignore[arg-type]

    for _ in range(2):
        # when every later migration runs (the second time after a downgrade to the first revision)
        command.upgrade(config, "head")
        # then every old unit has a code of its own that a typed check accepts
        found = codes()
        assert sorted(found) == serials
        assert all(normalize_code(code) == code for code in found.values())
        assert len(set(found.values())) == len(serials)
        command.downgrade(config, FIRST)
        with engine.connect() as conn:
            assert sorted(conn.execute(sa.text("SELECT serial FROM unit")).scalars()) == serials


def test_print_files_stored_whole_before_chunks_survive_the_upgrade_and_the_downgrade(
    fresh: tuple[str, Engine],
) -> None:
    # given, at the revision before chunks, two finished runs whose files lie whole in print_artefact.content:
    # one of several chunks (not a multiple of the chunk size) and one of a few bytes
    url, engine = fresh
    config = alembic_config(url)
    # (the world is written by today's code, so at head, then taken back: the runs go in below, raw)
    command.upgrade(config, "head")
    world = populate(engine)
    command.downgrade(config, BEFORE_CHUNKS)
    big = bytes(range(256)) * (CHUNK_BYTES * 2 // 256) + "Nhãn lồng Hưng Yên".encode()
    files = {1: big, 2: b"%PDF-1.4 tem"}
    with Session(engine) as s:
        run = PrintRun(
            organisation_id=world.org_ids[0], lot_id=world.fresh_lot_id, quantity=1, base_url="https://t.example.vn"
        )
        s.add(run)
        s.flush()
        other = PrintRun(
            organisation_id=world.org_ids[0], lot_id=world.fresh_lot_id, quantity=1, base_url="https://t.example.vn"
        )
        s.add(other)
        s.commit()
        ids = {1: run.id, 2: other.id}
    whole = sa.table(
        "print_artefact",
        *(sa.column(c) for c in ("print_run_id", "media_type", "filename", "size", "sha256", "content")),
        sa.column("created_at", UTCDateTime()),
    )
    with engine.begin() as conn:
        for key, content in files.items():
            conn.execute(
                whole.insert().values(
                    print_run_id=ids[key],
                    media_type="application/pdf",
                    filename=f"tem-{key}.pdf",
                    size=len(content),
                    sha256=hashlib.sha256(content).hexdigest(),
                    content=content,
                    created_at=datetime(2026, 12, 1, tzinfo=UTC),
                )
            )
    # when the chunks arrive
    command.upgrade(config, "head")
    # then each file reads back exactly, checked against its digest, in as many chunks as its size needs
    with Session(engine) as s:
        for key, content in files.items():
            stored = s.get(PrintArtefact, ids[key])
            assert stored is not None and artefacts.read(session=s, artefact=stored) == content
            assert [len(c) for c in artefacts.chunks(session=s, artefact=stored)] == [
                len(content[i : i + CHUNK_BYTES]) for i in range(0, len(content), CHUNK_BYTES)
            ]
    # and going back puts each file whole into its row again
    command.downgrade(config, BEFORE_CHUNKS)
    with engine.connect() as conn:
        back = dict(conn.execute(sa.select(whole.c.print_run_id, whole.c.content)).all())  # type: ignore[arg-type]
    assert back == {ids[key]: content for key, content in files.items()}
    assert "print_artefact_chunk" not in _user_tables(engine)


def test_scans_written_before_0017_get_the_same_figures_from_its_backfill(fresh: tuple[str, Engine]) -> None:
    from trace.reports import dashboard
    from trace.reports.periods import make_period
    from trace.scans import check
    from trace.scans.models import ScanBucket, ScanSighting, ScanTally
    from trace.scans.record import new_scan, stats, write
    from trace.units import Unit

    # given scans written as the application writes them: a unit's from 300 networks (past the bound),
    # in time order, places shared, a bot, a network's earlier scan written after a later one
    url, engine = fresh
    config = alembic_config(url)
    command.upgrade(config, "head")
    world = populate(engine)
    t0 = datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=UTC)
    with Session(engine) as s:
        units = list(s.exec(select(Unit.id).where(Unit.lot_id == world.dried_lot_id).order_by(Unit.id)))

    def scan(unit_id: int | None, network: int, minutes: int, **extra: object) -> object:
        return new_scan(
            lot_id=world.dried_lot_id,
            unit_id=unit_id,
            client_ip=f"10.{network // 256}.{network % 256}.1",
            user_agent=str(extra.get("agent", "Mozilla/5.0 (Linux; Android 14) Mobile")),
            lang="vi",
            kind="page",
            place=extra.get("place"),  # type: ignore[arg-type]
            at=t0 + timedelta(minutes=minutes),
        )

    flood = [scan(units[0], i, i, place=(20 + i % 7 / 10, 106.0)) for i in range(300)]
    batches = [
        flood[:150],
        flood[150:],
        [scan(units[1], 1, 500), scan(units[1], 2, 510, place=(21.0, 105.8)), scan(None, 3, 520, agent="curl/8")],
        [scan(units[1], 1, 400, place=(20.9, 106.1))],  # network 1's first scan of units[1], written late
    ]
    for batch in batches:
        with session_scope(engine) as s:
            write(session=s, scans=batch)  # type: ignore[arg-type]

    def figures() -> tuple[object, ...]:
        with Session(engine) as s:
            period = make_period(datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date())
            return (
                [stats(session=s, unit_id=u) for u in units],
                stats(session=s, lot_id=world.dried_lot_id),
                [m.scans for m in dashboard.monthly(session=s, period=period)],
                s.exec(select(ScanTally).order_by(ScanTally.scope, ScanTally.code_id)).all(),
                s.exec(select(ScanBucket).order_by(ScanBucket.starts_at)).all(),
                sorted(
                    (r.scope, r.code_id, r.network, r.first_at, r.scan_id, r.place)
                    for r in s.exec(select(ScanSighting))
                ),
            )

    kept = figures()
    assert kept[0][0].networks == 256 and kept[0][1].places == 2  # type: ignore[index]
    # when the instance is taken back to 0016 (no figures) and upgraded again
    command.downgrade(config, "0016")
    assert not {"scan_tally", "scan_sighting", "scan_bucket"} & _user_tables(engine)
    command.upgrade(config, "head")
    # then the backfill makes exactly the figures the writes had kept, and they equal a recount
    assert figures() == kept
    with Session(engine) as s:
        connection = s.connection()
        assert all(run(connection, lambda _: None) > 0 for run in check.CHECKS.values())


def test_lots_and_codes_written_before_0020_get_the_same_buckets_from_its_backfill(fresh: tuple[str, Engine]) -> None:
    from trace.access import Actor, Role
    from trace.events.ledger import capture
    from trace.events.models import EventType
    from trace.events.schemas import CommissionIn, DecommissionIn
    from trace.platform.timeutil import today
    from trace.reports import dashboard, tally_check
    from trace.reports.periods import make_period
    from trace.reports.tallies import CodeBucket, LotBucket
    from trace.units import Unit

    # given lots harvested, produced and one cancelled, codes registered and one of them voided, as the
    # application writes them
    url, engine = fresh
    config = alembic_config(url)
    command.upgrade(config, "head")
    world = populate(engine)
    with session_scope(engine) as s:
        owner = s.exec(select(Unit.created_event_id).where(Unit.lot_id == world.dried_lot_id)).first()
        event = s.get(Event, owner)
        assert event is not None
        proc = Actor(role=Role.MEMBER, organisation_id=event.organisation_id)
        capture(session=s, actor=proc, items=[(EventType.COMMISSION, CommissionIn(lot_id=world.dried_lot_id, count=4))])
        code = s.exec(select(Unit.code).where(Unit.lot_id == world.dried_lot_id).order_by(col(Unit.id))).first()
        capture(session=s, actor=proc, items=[(EventType.DECOMMISSION, DecommissionIn(codes=[code], reason="torn"))])

    def figures() -> tuple[object, ...]:
        with Session(engine) as s:
            period = make_period(today().replace(year=today().year - 1), today())
            found = dashboard.province_dashboard(
                session=s, actor=Actor(role=Role.ADMIN, organisation_id=None), period=period
            )
            return (
                [(m.lots_harvested, m.lots_produced, m.unit_codes) for m in found.months],
                [(d.designation_id, d.year, d.labels) for d in found.designations],
                sorted((b.starts_at, b.kind, b.lots) for b in s.exec(select(LotBucket)) if b.lots),
                sorted((b.lot_id, b.starts_at, b.codes) for b in s.exec(select(CodeBucket)) if b.codes),
            )

    kept = figures()
    assert sum(h for h, _, _ in kept[0]) == 1 and sum(p for _, p, _ in kept[0]) == 1  # type: ignore[attr-defined]
    assert sum(c for _, _, c in kept[0]) == 6  # type: ignore[attr-defined]
    # when the instance is taken back to 0019 (no buckets) and upgraded again
    command.downgrade(config, "0019")
    assert not {"lot_bucket", "code_bucket"} & _user_tables(engine)
    command.upgrade(config, "head")
    # then the backfill makes exactly the buckets the writes had kept, and verify-log's check agrees
    assert figures() == kept
    with Session(engine) as s:
        connection = s.connection()
        assert all(run(connection, lambda _: None) > 0 for run in tally_check.CHECKS.values())
