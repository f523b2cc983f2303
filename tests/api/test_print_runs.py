"""Print runs over HTTP: ask for labels of a lot, follow the rendering, download, list, cancel, reprint, void."""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, update
from sqlmodel import Session, col

import labels
from tests import factories as f
from tests.api.helpers import assert_problem, count, headers_for, jobs_sent, party, snapshot
from trace.access import Role
from trace.errors import Corrupt
from trace.lots import Lot
from trace.printing import artefacts, jobs, runs
from trace.printing.models import MAX_LABELS, PrintArtefact, PrintArtefactChunk, PrintRun
from trace.units import CROCKFORD, Unit

API = "/api/v1"


@dataclass
class Shop:
    """A cooperative holding a lot of 10 kg packed in 0.5 kg bags (so 20 labels fit), another
    cooperative, and the run ids the API handed to the rendering queue."""

    coop: Any
    coop_h: dict[str, str]
    other_h: dict[str, str]
    lot: Lot
    calls: list[int]


def _shop(client: TestClient, session: Session) -> Shop:
    coop, coop_h = party(session)
    _, other_h = party(session)
    bags = f.product(session, coop, package_size=Decimal("0.5"))
    lot = session.get(Lot, f.harvest(session, coop, "10", prod=bags).lot_ids[0])
    assert lot is not None
    session.commit()
    calls = jobs_sent(client, "print_run")
    return Shop(coop, coop_h, other_h, lot, calls)


def _create(client: TestClient, s: Shop, quantity: int = 3, **extra: Any) -> dict[str, Any]:
    headers = {**s.coop_h, **extra.pop("headers", {})}
    response = client.post(f"{API}/lots/{s.lot.id}/print-runs", headers=headers, json={"quantity": quantity, **extra})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def _codes(session: Session, run_id: int) -> list[str]:
    return list(
        session.execute(
            select(col(Unit.code))
            .where(Unit.print_run_id == run_id)  # type: ignore[arg-type]
            .order_by(col(Unit.id))
        ).scalars()
    )


def _check(client: TestClient, code: str) -> dict[str, Any]:
    response = client.get(f"{API}/codes/check", params={"code": code})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _state(client: TestClient, code: str) -> tuple[bool, str]:
    found = _check(client, code)
    return found["valid"], found["status"]


def start(session: Session, run_id: int, done: int = 0) -> str:
    """A worker claims the run and reports ``done`` labels (as workers.labels.render_run does, on the
    test's own session: a worker's own session could not see the test's uncommitted transaction)."""
    token = jobs.new_token()
    assert jobs.claim(session=session, run_id=run_id, token=token, lease_seconds=60) is not None
    assert jobs.heartbeat(session=session, run_id=run_id, token=token, done=done, lease_seconds=60)
    session.commit()
    return token


def render(session: Session, run_id: int, token: str | None = None) -> None:
    """The worker renders the run's labels and stores the file (claiming the run first unless it has)."""
    token = token or start(session, run_id)
    run = session.get(PrintRun, run_id, populate_existing=True)
    assert run is not None
    data = [labels.LabelData(**asdict(label)) for label in jobs.labels_for(session=session, run=run)]
    spec = labels.FORMATS[run.format]
    content = labels.render(data, format=spec.name)
    assert jobs.finish(
        session=session,
        run_id=run_id,
        token=token,
        content=io.BytesIO(content),
        done=len(data),
        media_type=spec.media_type,
        filename=f"hytrace-print-run-{run_id}.{spec.extension}",
    )
    session.commit()


def _qr_per_page(pdf: bytes) -> list[list[str]]:
    document = pdfium.PdfDocument(pdf)
    try:
        pages = [zxingcpp.read_barcodes(page.render(scale=300 / 72, grayscale=True).to_pil()) for page in document]
        return [[r.text for r in found if r.format == zxingcpp.BarcodeFormat.QRCode] for found in pages]
    finally:
        document.close()


# --- creating a run ---------------------------------------------------------------------------


def test_create_registers_the_codes_queues_the_run_and_hands_it_to_the_workers(
    client: TestClient, session: Session
) -> None:
    s = _shop(client, session)
    run = _create(client, s, 5, format="roll-50x30")
    assert run["status"] == "queued" and run["total"] == run["quantity"] == 5 and run["done"] == 0
    assert run["lot_id"] == s.lot.id and run["organisation_id"] == s.coop.id and run["format"] == "roll-50x30"
    assert run["base_url"].startswith(("http://", "https://"))
    assert s.calls == [run["id"]]
    codes = _codes(session, run["id"])
    assert len(codes) == 5 and len(set(codes)) == 5
    assert all(_check(client, code)["valid"] for code in codes)


def test_a_retry_with_the_same_idempotency_key_gives_the_same_run(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    key = {"Idempotency-Key": "print-lot-7-attempt-1"}
    first = _create(client, s, 4, headers=key)
    units = count(session, Unit)
    again = _create(client, s, 4, headers=key)
    assert again["id"] == first["id"]
    assert count(session, Unit) == units and count(session, PrintRun) == 1
    assert set(s.calls) == {first["id"]}  # sending the same run twice is harmless; a second run is not
    # the same key for a different request is a client bug, not a retry
    reused = client.post(f"{API}/lots/{s.lot.id}/print-runs", headers={**s.coop_h, **key}, json={"quantity": 5})
    assert_problem(reused, 409, "idempotency_key_reused")
    assert count(session, Unit) == units


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"quantity": 0}, "validation_error", "quantity"),
        ({"quantity": MAX_LABELS + 1}, "validation_error", "quantity"),
        ({"quantity": 2, "format": "a5-2x2"}, "unknown_format", "a5-2x2"),
        ({"quantity": 2, "override_reason": "big"}, "validation_error", "override_reason"),
        ({"quantity": 2, "kind": "pallet"}, "validation_error", "kind"),
    ],
)
def test_invalid_requests_are_refused_with_the_reason_and_write_nothing(
    client: TestClient, session: Session, body: dict[str, Any], code: str, field: str
) -> None:
    s = _shop(client, session)
    before = snapshot(session)
    problem = assert_problem(client.post(f"{API}/lots/{s.lot.id}/print-runs", headers=s.coop_h, json=body), 422, code)
    assert field in problem["detail"], problem
    assert snapshot(session) == before and s.calls == []


def test_more_labels_than_the_lot_holds_are_refused_with_the_room_left(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    _create(client, s, 15)
    before = snapshot(session)
    response = client.post(f"{API}/lots/{s.lot.id}/print-runs", headers=s.coop_h, json={"quantity": 6})
    problem = assert_problem(response, 422, "over_capacity")
    # 10 kg in 0.5 kg bags is 20 labels; 15 are issued
    assert (problem["limit"], problem["used"], problem["left"]) == (20, 15, 5)
    assert snapshot(session) == before and len(s.calls) == 1
    # exactly what is left fits; an override with a reason prints beyond it
    _create(client, s, 5)
    beyond = _create(client, s, 3, override_reason="Spare labels for damaged bags at the market")
    assert beyond["override_reason"] == "Spare labels for damaged bags at the market"
    assert len(_codes(session, beyond["id"])) == 3


def test_lot_labels_up_to_the_lot_capacity_are_accepted(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run = _create(client, s, 20, kind="lot")
    assert run["kind"] == "lot" and run["total"] == 20 and _codes(session, run["id"]) == []


def test_lot_labels_count_against_the_lot_capacity(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    url = f"{API}/lots/{s.lot.id}/print-runs"
    before = snapshot(session)
    assert_problem(client.post(url, headers=s.coop_h, json={"quantity": 21, "kind": "lot"}), 422, "over_capacity")
    assert snapshot(session) == before
    # five lot labels leave room for fifteen unit labels, not sixteen
    lot_run = _create(client, s, 5, kind="lot")
    assert lot_run["kind"] == "lot" and _codes(session, lot_run["id"]) == []
    problem = assert_problem(client.post(url, headers=s.coop_h, json={"quantity": 16}), 422, "over_capacity")
    assert (problem["limit"], problem["used"], problem["left"]) == (20, 5, 15)


def test_only_a_holder_of_the_lot_may_print_for_it(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    session.commit()
    before = snapshot(session)
    url = f"{API}/lots/{s.lot.id}/print-runs"
    assert_problem(client.post(url, headers=s.other_h, json={"quantity": 1}), 403, "not_holder")
    assert_problem(client.post(url, headers=inspector, json={"quantity": 1}), 403)
    assert_problem(client.post(url, json={"quantity": 1}), 401)
    assert_problem(client.post(f"{API}/lots/987654/print-runs", headers=s.coop_h, json={"quantity": 1}), 404)
    assert snapshot(session) == before and s.calls == []


# --- following, downloading, listing ----------------------------------------------------------


def test_progress_and_privacy_of_a_run(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run = _create(client, s, 6, format="roll-50x30")
    start(session, run["id"], done=3)
    shown = client.get(f"{API}/print-runs/{run['id']}", headers=s.coop_h)
    assert shown.status_code == 200, shown.text
    assert (shown.json()["status"], shown.json()["done"], shown.json()["total"]) == ("rendering", 3, 6)
    # another organisation's runs are not even confirmed to exist
    assert_problem(client.get(f"{API}/print-runs/{run['id']}", headers=s.other_h), 404, "not_found")
    assert_problem(client.get(f"{API}/print-runs/{run['id']}/file", headers=s.other_h), 404, "not_found")
    assert_problem(client.get(f"{API}/print-runs/987654", headers=s.coop_h), 404, "not_found")
    assert_problem(client.get(f"{API}/print-runs/{run['id']}"), 401)


def test_the_file_is_not_ready_until_rendered_then_downloads_with_an_etag(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run = _create(client, s, 6, format="roll-50x30")
    url = f"{API}/print-runs/{run['id']}/file"
    assert_problem(client.get(url, headers=s.coop_h), 409, "not_ready")
    # when a worker has rendered it
    render(session, run["id"])
    shown = client.get(f"{API}/print-runs/{run['id']}", headers=s.coop_h).json()
    assert (shown["status"], shown["done"], shown["artefact"]) == ("done", 6, "application/pdf")
    response = client.get(url, headers=s.coop_h)
    # then
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'attachment; filename="hytrace-print-run-{run["id"]}.pdf"'
    assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
    not_modified = client.get(url, headers={**s.coop_h, "If-None-Match": response.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == response.headers["etag"]
    assert client.get(url, headers={**s.coop_h, "If-None-Match": '"stale"'}).status_code == 200
    # every label's QR is one of the run's codes, in registration order, one label per roll page
    rows = session.execute(
        select(col(Unit.serial))
        .where(Unit.print_run_id == run["id"])  # type: ignore[arg-type]
        .order_by(col(Unit.id))
    ).scalars()
    gtin = s.lot.gtin.zfill(14)
    expected = [f"{run['base_url']}/01/{gtin}/10/{s.lot.lot_code}/21/{serial}" for serial in rows]
    assert _qr_per_page(response.content) == [[uri] for uri in expected]


def test_the_list_shows_the_organisations_runs_newest_first(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    first, second = _create(client, s, 2), _create(client, s, 3, format="zpl-50x30")
    mine = client.get(f"{API}/lots/{s.lot.id}/print-runs", headers=s.coop_h)
    assert mine.status_code == 200, mine.text
    assert [r["id"] for r in mine.json()] == [second["id"], first["id"]]
    assert [r["total"] for r in mine.json()] == [3, 2]
    theirs = client.get(f"{API}/lots/{s.lot.id}/print-runs", headers=s.other_h)
    assert theirs.status_code == 200 and theirs.json() == []


# --- cancel, reprint, void --------------------------------------------------------------------


def test_cancelling_a_queued_run_voids_its_codes(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run = _create(client, s, 3)
    url = f"{API}/print-runs/{run['id']}/cancel"
    assert_problem(client.post(url, headers=s.other_h), 404, "not_found")
    cancelled = client.post(url, headers=s.coop_h)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["void_codes"] == 3
    for code in _codes(session, run["id"]):
        assert _state(client, code) == (False, "void")
    assert_problem(client.post(url, headers=s.coop_h), 409, "not_queued")
    # the cancelled codes no longer count against the lot
    assert _create(client, s, 20)["total"] == 20


def test_a_started_run_cannot_be_cancelled(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run = _create(client, s, 2, format="zpl-50x30")
    render(session, run["id"])
    assert_problem(client.post(f"{API}/print-runs/{run['id']}/cancel", headers=s.coop_h), 409, "not_queued")
    assert all(_check(client, code)["valid"] for code in _codes(session, run["id"]))


def test_reprint_prints_the_same_codes_less_the_voided_ones(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run = _create(client, s, 4, format="zpl-50x30")
    codes = _codes(session, run["id"])
    voided = client.post(
        f"{API}/print-runs/{run['id']}/void", headers=s.coop_h, json={"codes": [codes[1]], "reason": "sheet torn"}
    )
    assert voided.status_code == 200, voided.text
    units = count(session, Unit)
    # when
    response = client.post(f"{API}/print-runs/{run['id']}/reprint", headers=s.coop_h, json={"format": "roll-50x30"})
    # then a new queued run of the three live codes, no new codes, handed to the workers
    assert response.status_code == 202, response.text
    again = response.json()
    assert again["id"] != run["id"] and again["reprint_of_id"] == run["id"]
    assert (again["status"], again["total"], again["format"]) == ("queued", 3, "roll-50x30")
    assert s.calls == [run["id"], again["id"]] and count(session, Unit) == units
    # and it renders those three codes
    render(session, again["id"])
    pdf = client.get(f"{API}/print-runs/{again['id']}/file", headers=s.coop_h)
    assert pdf.status_code == 200, pdf.text
    serials = dict(
        session.execute(select(col(Unit.code), col(Unit.serial)).where(Unit.print_run_id == run["id"])).all()
    )  # type: ignore[arg-type]
    printed = [uri.rsplit("/21/", 1)[1] for page in _qr_per_page(pdf.content) for uri in page]
    assert printed == [serials[c] for c in codes if c != codes[1]]
    assert_problem(client.post(f"{API}/print-runs/{run['id']}/reprint", headers=s.other_h), 404, "not_found")
    assert_problem(
        client.post(f"{API}/print-runs/{run['id']}/reprint", headers=s.coop_h, json={"format": "a0"}),
        422,
        "unknown_format",
    )


def test_a_reprint_retried_with_the_same_idempotency_key_is_one_reprint(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run = _create(client, s, 4, format="zpl-50x30")
    url, key = f"{API}/print-runs/{run['id']}/reprint", {**s.coop_h, "Idempotency-Key": "reprint-jammed-sheet"}
    # when the same reprint is sent twice (a timeout, then a retry)
    first = client.post(url, headers=key, json={"format": "roll-50x30"})
    again = client.post(url, headers=key, json={"format": "roll-50x30"})
    # then there is one reprint (handing it to the workers again while queued is harmless, as for a create)
    assert first.status_code == again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"] and first.json()["reprint_of_id"] == run["id"]
    assert count(session, PrintRun) == 2 and set(s.calls) == {run["id"], first.json()["id"]}
    # the key of the first run's creation, or the same key for another template, is a client's mistake
    assert_problem(client.post(url, headers=key, json={"format": "a4-3x8"}), 409, "idempotency_key_reused")
    created = _create(client, s, 2, headers={"Idempotency-Key": "create-then-reprint"})
    assert_problem(
        client.post(
            f"{API}/print-runs/{created['id']}/reprint", headers={**s.coop_h, "Idempotency-Key": "reprint-jammed-sheet"}
        ),
        409,
        "idempotency_key_reused",
    )
    assert count(session, PrintRun) == 3
    # another organisation's reprint with the same key is its own
    assert_problem(client.post(url, headers={**s.other_h, "Idempotency-Key": "reprint-jammed-sheet"}), 404, "not_found")


def test_voiding_codes_of_a_run(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run, other = _create(client, s, 4), _create(client, s, 1)
    codes, stranger = _codes(session, run["id"]), _codes(session, other["id"])[0]
    url = f"{API}/print-runs/{run['id']}/void"
    before = snapshot(session)
    refused = assert_problem(
        client.post(url, headers=s.coop_h, json={"codes": [codes[0], stranger], "reason": "torn"}), 422, "not_in_run"
    )
    assert refused["codes"] == [stranger]
    assert_problem(client.post(url, headers=s.other_h, json={"codes": [codes[0]], "reason": "torn"}), 404, "not_found")
    assert_problem(client.post(url, headers=s.coop_h, json={"codes": [], "reason": "torn"}), 422, "validation_error")
    assert snapshot(session) == before
    # when two codes are voided, typed the way people type them
    typed = [codes[0].lower(), "-".join((codes[2][:3], codes[2][3:6], codes[2][6:]))]
    response = client.post(url, headers=s.coop_h, json={"codes": typed, "reason": "roll wet in the rain"})
    # then
    assert response.status_code == 200, response.text
    assert response.json() == {"voided": 2}
    states = {code: _state(client, code) for code in codes}
    assert states == {
        codes[0]: (False, "void"),
        codes[1]: (True, "valid"),
        codes[2]: (False, "void"),
        codes[3]: (True, "valid"),
    }
    assert client.get(f"{API}/print-runs/{run['id']}", headers=s.coop_h).json()["void_codes"] == 2
    assert_problem(
        client.post(url, headers=s.coop_h, json={"codes": [codes[0]], "reason": "again"}), 409, "already_void"
    )
    mistyped = codes[1][:4] + next(ch for ch in CROCKFORD if ch != codes[1][4]) + codes[1][5:]
    assert_problem(client.post(url, headers=s.coop_h, json={"codes": [mistyped], "reason": "torn"}), 422, "code_check")


# --- formats and the schema ---------------------------------------------------------------------


def test_print_formats_are_the_ones_labels_can_render(client: TestClient) -> None:
    from trace.printing.models import FORMATS

    response = client.get(f"{API}/print-formats")
    assert response.status_code == 200, response.text
    names = [x["name"] for x in response.json()]
    assert names == list(FORMATS) and set(names) == set(labels.FORMATS)
    assert all(x["description"] for x in response.json())


def test_openapi_documents_every_print_run_path(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        f"{API}/lots/{{lot_id}}/print-runs": {"get", "post"},
        f"{API}/print-runs/{{run_id}}": {"get"},
        f"{API}/print-runs/{{run_id}}/file": {"get"},
        f"{API}/print-runs/{{run_id}}/reprint": {"post"},
        f"{API}/print-runs/{{run_id}}/cancel": {"post"},
        f"{API}/print-runs/{{run_id}}/void": {"post"},
        f"{API}/print-formats": {"get"},
        f"{API}/codes/check": {"get"},
    }
    assert {path: set(paths.get(path, {})) & {"get", "post"} for path in expected} == expected
    assert "application/pdf" in paths[f"{API}/print-runs/{{run_id}}/file"]["get"]["responses"]["200"]["content"]


def test_an_inspector_or_admin_may_see_a_run_but_not_download_its_codes(client: TestClient, session: Session) -> None:
    # given a finished run
    s = _shop(client, session)
    run_id = _create(client, s, quantity=2)["id"]
    render(session, run_id)
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    admin = headers_for(session, None, Role.ADMIN)
    session.commit()
    for headers in (inspector, admin):
        # when someone who reads everything asks for it
        assert client.get(f"{API}/print-runs/{run_id}", headers=headers).status_code == 200
        # then the file of valid codes stays with the printer
        assert_problem(client.get(f"{API}/print-runs/{run_id}/file", headers=headers), 403, "not_your_run")
    assert client.get(f"{API}/print-runs/{run_id}/file", headers=s.coop_h).status_code == 200


# --- the stored file: chunks, streaming, tampering ----------------------------------------------


def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Store files in 4 KB chunks, so a test's few labels make many of them."""
    monkeypatch.setattr(artefacts, "CHUNK_BYTES", 4096)
    return 4096


def _chunks(session: Session, run_id: int) -> list[bytes]:
    rows = session.execute(
        select(col(PrintArtefactChunk.data))
        .where(col(PrintArtefactChunk.print_run_id) == run_id)
        .order_by(col(PrintArtefactChunk.seq))
    ).scalars()
    return list(rows)


def _rendered(session: Session, run_id: int) -> bytes:
    """The file the run's labels make, rendered here independently of what was stored."""
    run = session.get(PrintRun, run_id, populate_existing=True)
    assert run is not None
    data = [labels.LabelData(**asdict(label)) for label in jobs.labels_for(session=session, run=run)]
    return labels.render(data, format=run.format)


@pytest.mark.parametrize("format", ["roll-50x30", "a4-3x8", "png-50x30"])
def test_a_file_of_many_chunks_downloads_as_exactly_the_rendered_bytes(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch, format: str
) -> None:
    # given a finished run whose file was stored in small chunks
    chunk = _small_chunks(monkeypatch)
    s = _shop(client, session)
    run_id = _create(client, s, 12, format=format)["id"]
    render(session, run_id)
    expected = _rendered(session, run_id)
    stored = _chunks(session, run_id)
    assert len(stored) == -(-len(expected) // chunk) > 2
    assert all(len(part) == chunk for part in stored[:-1]) and b"".join(stored) == expected
    # when it is downloaded
    api = client.get(f"{API}/print-runs/{run_id}/file", headers=s.coop_h)
    # then the same bytes, whole, with the headers a download always had
    assert api.status_code == 200 and api.content == expected
    assert api.headers["content-length"] == str(len(expected))
    assert api.headers["etag"] == f'"{hashlib.sha256(expected).hexdigest()}"'
    assert api.headers["content-type"] == labels.FORMATS[format].media_type
    assert api.headers["cache-control"] == "private, no-cache"


@pytest.mark.parametrize(
    "tamper",
    ["flip a byte", "drop the last chunk", "add a chunk", "swap two chunks", "edit the size", "edit the digest"],
)
def test_a_file_edited_in_the_database_is_refused_by_name_not_served(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    # given a finished run, and an insider who edits its file straight in the database
    _small_chunks(monkeypatch)
    s = _shop(client, session)
    run_id = _create(client, s, 6, format="roll-50x30")["id"]
    render(session, run_id)
    stored = _chunks(session, run_id)
    table = PrintArtefactChunk.__table__  # type: ignore[attr-defined]
    where = table.c.print_run_id == run_id
    if tamper == "flip a byte":
        forged = bytearray(stored[1])
        forged[100] ^= 0x01
        session.execute(update(table).where(where, table.c.seq == 1).values(data=bytes(forged)))
    elif tamper == "drop the last chunk":
        session.execute(delete(table).where(where, table.c.seq == len(stored) - 1))
    elif tamper == "add a chunk":
        session.execute(insert(table).values(print_run_id=run_id, seq=len(stored), data=b"%%EOF extra page"))
    elif tamper == "swap two chunks":
        session.execute(update(table).where(where, table.c.seq == 0).values(data=stored[1]))
        session.execute(update(table).where(where, table.c.seq == 1).values(data=stored[0]))
    else:
        artefact = PrintArtefact.__table__  # type: ignore[attr-defined]
        values = {"size": len(b"".join(stored)) - 1} if tamper == "edit the size" else {"sha256": "0" * 64}
        session.execute(update(artefact).where(artefact.c.print_run_id == run_id).values(**values))
    session.commit()
    session.expire_all()
    # when the printer downloads it
    response = client.get(f"{API}/print-runs/{run_id}/file", headers=s.coop_h)
    # then a problem that names the damage, and not one byte of the file
    body = assert_problem(response, 500, "artefact_corrupt")
    assert body["run_id"] == run_id and "checksum" in body["detail"]
    assert b"%PDF" not in response.content


def test_a_stream_that_finds_the_file_changed_after_the_check_is_cut_short(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a stored file, changed after a download's check had passed (a race with an insider's edit)
    _small_chunks(monkeypatch)
    coop, _ = party(session)
    bags = f.product(session, coop, package_size=Decimal("0.5"))
    lot = session.get(Lot, f.harvest(session, coop, "10", prod=bags).lot_ids[0])
    assert lot is not None and lot.id is not None
    run = runs.create_run(
        session=session, actor=f.member(coop), lot_id=lot.id, data=runs.PrintRunCreate(quantity=4, format="roll-50x30")
    )
    render(session, run.id)  # type: ignore[arg-type]
    found = session.get(PrintArtefact, run.id)
    assert found is not None
    artefacts.check(session=session, artefact=found)
    table = PrintArtefactChunk.__table__  # type: ignore[attr-defined]
    session.execute(update(table).where(table.c.print_run_id == run.id, table.c.seq == 2).values(data=b"x" * 4096))
    # when it is streamed, then the stream raises after the last chunk instead of ending as if complete
    sent = []
    with pytest.raises(Corrupt, match="checksum"):
        for part in artefacts.chunks(session=session, artefact=found):
            sent.append(part)
    assert len(sent) == len(_chunks(session, run.id))  # type: ignore[arg-type]


def test_another_organisation_cannot_download_a_finished_run(client: TestClient, session: Session) -> None:
    s = _shop(client, session)
    run_id = _create(client, s, 3, format="roll-100x50")["id"]
    render(session, run_id)
    assert client.get(f"{API}/print-runs/{run_id}/file", headers=s.coop_h).status_code == 200
    # another organisation learns nothing, not even that the run exists
    response = client.get(f"{API}/print-runs/{run_id}/file", headers=s.other_h)
    assert_problem(response, 404, "not_found")
    assert b"%PDF" not in response.content


def test_roll_formats_take_a_whole_run_and_the_image_zips_keep_their_caps(client: TestClient) -> None:
    listed = {f["name"]: f["max_labels"] for f in client.get(f"{API}/print-formats").json()}
    assert listed["roll-50x30"] == listed["roll-100x50"] == MAX_LABELS == 100_000
    assert listed["png-50x30"] == 5_000 and listed["svg-50x30"] == 20_000
