"""The FSMA 204 trace export answers for every lot of the demo, in both directions and every format,
wherever it is made: the domain's CSV and XLSX, the API's CSV, the workspace's CSV and XLSX and the
operator CLI. Holds, releases, recalls and voided labels are rows too (issue 13: a trace holding one
was a KeyError, a 500 on the API and a traceback in the CLI)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from tests import factories as f
from tests.api.helpers import bearer
from tests.api.web.helpers import PASSWORD, sign_in
from tests.conftest import ROOT, Databases, migrate
from trace import cli, demo
from trace.access import Role
from trace.auth import actor_for_user
from trace.events.models import Event, EventLot, EventType
from trace.lineage import CTE, FSMA_COLUMNS, Direction, fsma_csv, fsma_xlsx, trace
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.db import make_engine, session_scope
from trace.users import User


@dataclass
class Demo:
    """The demo data set committed to a database of its own (the CLI reads it from another process)."""

    url: str
    engine: Engine
    summary: demo.DemoSummary
    lot_ids: list[int]
    inspector: User
    producer: User  # a member of the showcase lot's producer
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def loaded(databases: Databases) -> Iterator[Demo]:
    """One load for the whole module, committed; the tests only read."""
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=2)
    with session_scope(engine) as session:
        summary = demo.load_demo(session=session)
        maker = session.get(Lot, summary.showcase_lot_id).producer_organisation_id  # type: ignore[union-attr]
        inspector, inspector_token = f.user(session, None, Role.INSPECTOR, password=PASSWORD)
        producer, producer_token = f.user(session, session.get(Organisation, maker), password="")
        lot_ids = sorted(session.exec(select(Lot.id)))
    tokens = {"inspector": inspector_token, "producer": producer_token}
    yield Demo(url, engine, summary, lot_ids, inspector, producer, tokens)  # type: ignore[arg-type]
    engine.dispose()


@pytest.fixture(scope="module")
def app_client(loaded: Demo) -> Iterator[TestClient]:
    from api.main import create_app

    app = create_app(testing=True)
    app.state.engine = loaded.engine  # api.deps.get_session reads the demo's database
    with TestClient(app) as client:
        yield client


def _csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == FSMA_COLUMNS
    return list(reader)


def _xlsx(body: bytes) -> list[dict[str, Any]]:
    sheet = load_workbook(io.BytesIO(body), read_only=True).active
    assert sheet is not None
    # An empty cell reads back as None: "" as in the CSV.
    table = [["" if cell.value is None else cell.value for cell in row] for row in sheet.iter_rows()]  # type: ignore[union-attr]
    assert table[0] == FSMA_COLUMNS
    return [dict(zip(FSMA_COLUMNS, row, strict=True)) for row in table[1:]]


def test_every_event_type_has_a_row_name() -> None:
    assert set(CTE) == set(EventType), set(EventType) - set(CTE)
    assert len(set(CTE.values())) == len(CTE)  # one name, one type: a row says which event it is


def test_every_demo_lot_exports_in_both_directions_as_csv_and_xlsx(loaded: Demo) -> None:
    seen: set[str] = set()
    with Session(loaded.engine) as session:
        on_lots = set(session.exec(select(EventLot.event_id).distinct()))
        # the kinds of events a trace can reach: those on a lot, and corrections of them
        reachable = {
            CTE[EventType(t)]
            for t in session.exec(
                select(Event.type)
                .where(col(Event.id).in_(on_lots) | col(Event.corrects_event_id).in_(on_lots))
                .distinct()
            )
        }
        for lot_id in loaded.lot_ids:
            for direction in Direction:
                # when
                rows = _csv(fsma_csv(session=session, actor=f.ADMIN, lot_id=lot_id, direction=direction))
                sheet = _xlsx(fsma_xlsx(session=session, actor=f.ADMIN, lot_id=lot_id, direction=direction))
                # then: each event of the trace has its rows, named for its type, in both files
                events = {
                    e.id: e for e in trace(session=session, actor=f.ADMIN, lot_id=lot_id, direction=direction).events
                }
                assert {r["event_id"] for r in rows} == set(events), (lot_id, direction)
                assert all(r["critical_tracking_event"] == CTE[events[r["event_id"]].type] for r in rows)
                assert [(r["event_id"], r["lot_code"]) for r in sheet] == [(r["event_id"], r["lot_code"]) for r in rows]
                seen |= {r["critical_tracking_event"] for r in rows}
    # and the demo's traces between them hold every kind of event a trace can reach, holds and recalls included
    assert seen == reachable
    assert {CTE[t] for t in (EventType.HOLD, EventType.RELEASE, EventType.RECALL, EventType.DECOMMISSION)} <= seen


def test_the_api_answers_every_demo_lot_s_trace_csv_in_both_directions(loaded: Demo, app_client: TestClient) -> None:
    with Session(loaded.engine) as session:
        reader = actor_for_user(loaded.inspector)
        for lot_id in loaded.lot_ids:
            for direction in Direction:
                answer = app_client.get(
                    f"/api/v1/lots/{lot_id}/trace.csv?direction={direction.value}",
                    headers=bearer(loaded.tokens["inspector"]),
                )
                assert answer.status_code == 200, (lot_id, direction, answer.text)
                assert answer.text == fsma_csv(session=session, actor=reader, lot_id=lot_id, direction=direction)
    # the showcase lot, which had a label voided, for its own producer too
    showcase = loaded.summary.showcase_lot_id
    for direction in Direction:
        answer = app_client.get(
            f"/api/v1/lots/{showcase}/trace.csv?direction={direction.value}",
            headers=bearer(loaded.tokens["producer"]),
        )
        assert answer.status_code == 200, answer.text
        assert "Label Voiding" in {r["critical_tracking_event"] for r in _csv(answer.text)}


STOPS = {EventType.HOLD, EventType.RELEASE, EventType.RECALL, EventType.DECOMMISSION}


def test_the_workspace_downloads_the_trace_as_csv_and_xlsx_where_a_lot_was_stopped(
    loaded: Demo, app_client: TestClient
) -> None:
    # given every demo trace holding a hold, release, recall or voided label (the ones that failed)
    with Session(loaded.engine) as session:
        stopped = [
            (lot_id, direction)
            for lot_id in loaded.lot_ids
            for direction in Direction
            if STOPS
            & {e.type for e in trace(session=session, actor=f.ADMIN, lot_id=lot_id, direction=direction).events}
        ]
    assert len(stopped) >= 5
    app_client.cookies.clear()
    assert sign_in(app_client, loaded.inspector.email).status_code == 303  # type: ignore[attr-defined]
    kinds: set[str] = set()
    for lot_id, direction in stopped:
        as_csv = app_client.get(f"/app/lots/{lot_id}/trace.csv?direction={direction.value}")
        as_xlsx = app_client.get(f"/app/lots/{lot_id}/trace.xlsx?direction={direction.value}")
        assert (as_csv.status_code, as_xlsx.status_code) == (200, 200), (lot_id, direction)
        rows = _csv(as_csv.text)
        assert [r["event_id"] for r in _xlsx(as_xlsx.content)] == [r["event_id"] for r in rows]
        kinds |= {r["critical_tracking_event"] for r in rows}
    assert {"Hold", "Hold Release", "Recall", "Label Voiding"} <= kinds
    app_client.cookies.clear()


def test_the_cli_exports_the_showcase_lot_in_both_directions_without_a_traceback(
    loaded: Demo,
) -> None:
    summary = loaded.summary
    env = {**os.environ, "HYTRACE_DATABASE_URL": loaded.url}
    with Session(loaded.engine) as session:
        for direction in Direction:
            # when
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "trace.cli",
                    "export-trace",
                    "--gtin",
                    summary.showcase_gtin,
                    "--lot-code",
                    summary.showcase_lot_code,
                    "--direction",
                    direction.value,
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=False,
            )
            # then: the file on standard output, byte for byte (CRLF records), and nothing on stderr
            assert (done.returncode, done.stderr.decode()) == (cli.OK, "")
            out = done.stdout.decode("utf-8")
            assert out == fsma_csv(
                session=session,
                actor=cli.CLI_ACTOR,
                lot_id=summary.showcase_lot_id,
                direction=direction,
            )
            assert "Label Voiding" in {r["critical_tracking_event"] for r in _csv(out)}
