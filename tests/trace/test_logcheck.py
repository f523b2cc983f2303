"""``python -m trace.logcheck``: a verifier that needs only HTTP, against an insider who rewrites the log.

Each test has a database of its own and reaches the API through a test client (an httpx client); the
insider works on the database directly, with the log's signing key in hand (the worst case: a key in
settings is readable by whoever runs the server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from tests import factories as f
from tests.conftest import ROOT, app_sharing, migrate
from tests.services import append_to_log
from trace import logcheck
from trace.events import chain
from trace.events.models import ChainHead, Event
from trace.platform.config import get_settings
from trace.platform.db import session_scope
from trace.tlog import note
from trace.transparency import keys, log

ORIGIN = "hytrace.test/log"


@dataclass
class Instance:
    url: str
    engine: Engine
    client: TestClient
    key: str  # the log's verifier key
    farm_id: int
    harvest_id: str


def _tick(engine: Engine) -> None:
    with session_scope(engine) as session:
        append_to_log(session)


def _events(engine: Engine, n: int) -> None:
    with Session(engine) as session:
        org = f.org(session)
        for _ in range(n):
            f.harvest(session, org, "2")
        session.commit()


@pytest.fixture
def instance(fresh: tuple[str, Engine]) -> Iterator[Instance]:
    url, engine = fresh
    migrate(url)
    with Session(engine) as session:
        farm = f.org(session)
        harvest = f.harvest(session, farm, "470")
        session.commit()
        farm_id, harvest_id = farm.id, harvest.events[0].id
    _events(engine, 6)
    _tick(engine)
    with Session(engine) as session, TestClient(app_sharing(session)) as client:
        yield Instance(url, engine, client, keys.signer(get_settings()).verifier_key, farm_id, harvest_id)  # type: ignore[arg-type]


def _check(instance: Instance, state: Path, *extra: str) -> tuple[int, str]:
    args = ["http://testserver", "--state", str(state), *extra]
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        code = logcheck.main(args, client=instance.client)
    return code, out.getvalue()


def _rewrite_harvest(engine: Engine, instance: Instance) -> None:
    """The insider: the harvest made 9,999 kg, the chain rehashed with our own code, the head moved."""
    with engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(text("DROP TRIGGER event_append_only ON event"))
        else:
            c.execute(text("DROP TRIGGER event_no_update"))
        with Session(bind=c, join_transaction_mode="create_savepoint") as session:
            event = session.get(Event, instance.harvest_id)
            assert event is not None
            event.payload = {**event.payload, "quantity": "9999.000"}
            prev = chain.GENESIS
            rows = session.exec(select(Event).where(Event.organisation_id == instance.farm_id).order_by(Event.seq))  # type: ignore[arg-type]
            for row in rows:
                row.prev_hash = prev
                row.hash = chain.compute_hash(row)
                prev = row.hash
            head = session.get(ChainHead, instance.farm_id)
            head.hash = prev  # type: ignore[union-attr]
            session.commit()


def _rebuild_log(engine: Engine, keep: int | None = None) -> None:
    """The insider rebuilds the whole log from the (rewritten) events and re-signs it with the log's key;
    ``keep``: only the first ``keep`` events (the newest ones deleted)."""
    with engine.begin() as c:
        for table in ("tlog_leaf", "tlog_node", "tlog_checkpoint", "tlog_cosignature"):
            if c.dialect.name == "postgresql":
                c.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
            else:
                c.execute(text(f"DROP TRIGGER {table}_no_delete"))
            c.execute(text(f"DELETE FROM {table}"))
        c.execute(
            text("UPDATE tlog_head SET size = 0, root = :r"),
            {"r": "e3b0c442" + "98fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        )
        ids = [r[0] for r in c.execute(text("SELECT id FROM event ORDER BY record_time"))]
        for event_id in ids[: keep if keep is not None else len(ids)]:
            c.execute(text("INSERT INTO tlog_pending (event_id) VALUES (:e)"), {"e": event_id})
    _tick(engine)


def test_the_first_run_needs_the_key_pinned(instance: Instance, tmp_path: Path) -> None:
    code, _ = _check(instance, tmp_path / "state.json")
    assert code == logcheck.ERROR and not (tmp_path / "state.json").exists()


def test_a_growing_log_stays_consistent_run_after_run(instance: Instance, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    code, out = _check(instance, state, "--key", instance.key)
    assert code == logcheck.OK, out
    first = json.loads(state.read_text())
    assert first["key"] == instance.key and "\n7\n" in first["checkpoint"]
    _events(instance.engine, 5)
    _tick(instance.engine)
    code, out = _check(instance, state)  # the key comes from the state file now
    assert code == logcheck.OK, out
    assert "12 leaves, signed, consistent with the 7 leaves seen before" in out


def test_a_whole_log_rewritten_and_re_signed_by_an_insider_is_named_by_tree_size(
    instance: Instance, tmp_path: Path
) -> None:
    # given a checkpoint stored before the tampering
    state = tmp_path / "state.json"
    assert _check(instance, state, "--key", instance.key)[0] == logcheck.OK
    # when an insider makes the harvest 9,999 kg, rehashes the chain, rebuilds the log, re-signs it, and the
    # log grows on
    _rewrite_harvest(instance.engine, instance)
    _rebuild_log(instance.engine)
    _events(instance.engine, 2)
    _tick(instance.engine)
    with Session(instance.engine) as session:
        assert chain.verify(session=session).ok  # the project's own chain check sees nothing
    # then the verifier fails and says which tree sizes disagree
    code, out = _check(instance, state)
    assert code == logcheck.BROKEN, out
    assert "tree sizes 7 and 9 disagree" in out
    assert json.loads(state.read_text())["checkpoint"].split("\n")[1] == "7"  # the state is kept as it was


def test_the_newest_events_deleted_and_the_log_rolled_back_is_named(instance: Instance, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert _check(instance, state, "--key", instance.key)[0] == logcheck.OK
    _rebuild_log(instance.engine, keep=5)
    code, out = _check(instance, state)
    assert code == logcheck.BROKEN and "went back" in out and "tree sizes 7 and 5 disagree" in out, out


def test_a_checkpoint_signed_by_another_key_fails(instance: Instance, tmp_path: Path) -> None:
    other = note.Signer(note.generate_key(ORIGIN)[0]).verifier_key
    code, out = _check(instance, tmp_path / "state.json", "--key", other)
    assert code == logcheck.BROKEN and "does not verify with the pinned key" in out


def test_a_key_other_than_the_pinned_one_is_refused(instance: Instance, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    assert _check(instance, state, "--key", instance.key)[0] == logcheck.OK
    other = note.Signer(note.generate_key(ORIGIN)[0]).verifier_key
    assert _check(instance, state, "--key", other)[0] == logcheck.ERROR


def test_a_witness_cosigns_what_it_checked_and_the_log_publishes_it(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skey, vkey = note.generate_key("witness.test", witness=True)
    monkeypatch.setenv("HYTRACE_TLOG_WITNESS_KEYS", vkey)
    get_settings.cache_clear()
    (tmp_path / "witness.key").write_text(skey)
    code, out = _check(
        instance, tmp_path / "state.json", "--key", instance.key, "--witness-key", str(tmp_path / "witness.key")
    )
    assert code == logcheck.OK and "cosigned by witness.test" in out, out
    published = instance.client.get("/api/v1/log/checkpoint").text
    text_, sigs = note.split(published)
    assert {s.name for s in sigs} == {ORIGIN, "witness.test"}
    line = next(s.line for s in sigs if s.name == "witness.test")
    assert note.verify_cosignature(text_, line, note.Verifier(vkey)) is not None


def test_the_verifier_imports_nothing_of_ours_but_the_pure_log_code() -> None:
    probe = "import sys, trace.logcheck; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert done.returncode == 0, done.stderr
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    allowed = set(sys.stdlib_module_names) | {
        "httpx", "httpcore", "h11", "h2", "hpack", "hyperframe", "anyio", "sniffio", "idna", "certifi",
        "cryptography", "cffi", "_cffi_backend", "typing_extensions", "exceptiongroup", "brotli", "zstandard",
        "socksio", "_openssl", "click", "rich", "pygments", "markdown_it", "mdurl",  # httpx's CLI, if installed
        "__main__", "_distutils_hack", "__editable___hytrace_0_1_0_finder", "trace",  # the interpreter's own
    }  # fmt: skip
    assert loaded <= allowed, loaded - allowed
    ours = {name for name in done.stdout.split() if name == "trace" or name.startswith("trace.")}
    assert ours == {"trace", "trace.logcheck", "trace.tlog", "trace.tlog.merkle", "trace.tlog.note"}, ours


def test_a_rotated_key_is_announced_by_the_old_one_and_old_checkpoints_stay_valid(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a verifier pinned to the current key
    state = tmp_path / "state.json"
    assert _check(instance, state, "--key", instance.key)[0] == logcheck.OK
    old = os.environ["HYTRACE_TLOG_SIGNING_KEY"]
    new, new_verifier = note.generate_key(ORIGIN)
    # when the operator rotates: the new key signs, the outgoing one co-signs and announces it
    monkeypatch.setenv("HYTRACE_TLOG_SIGNING_KEY", new)
    monkeypatch.setenv("HYTRACE_TLOG_PREVIOUS_SIGNING_KEY", old)
    get_settings.cache_clear()
    _events(instance.engine, 1)
    with session_scope(instance.engine) as session:
        settings = get_settings()
        log.tick(session=session, signing=keys.signing(settings))
    code, out = _check(instance, state)
    # then the verifier follows the announcement and pins the new key
    assert code == logcheck.OK and "moved to a new key" in out, out
    assert json.loads(state.read_text())["key"] == new_verifier
    # and after the rotation (the outgoing key kept as a verifier only) checks go on with the new key alone
    monkeypatch.delenv("HYTRACE_TLOG_PREVIOUS_SIGNING_KEY")
    monkeypatch.setenv("HYTRACE_TLOG_PREVIOUS_KEYS", note.Signer(old).verifier_key)
    get_settings.cache_clear()
    _events(instance.engine, 1)
    _tick(instance.engine)
    code, out = _check(instance, state)
    assert code == logcheck.OK and "9 leaves, signed, consistent with the 8" in out, out
    from trace.transparency import verify as log_verify

    with Session(instance.engine) as session:
        assert log_verify.verify(session=session).ok  # every checkpoint, old key's and new's, verifies
        # without the old key, the checkpoints it signed no longer verify: verify-log names the first
        monkeypatch.delenv("HYTRACE_TLOG_PREVIOUS_KEYS")
        get_settings.cache_clear()
        report = log_verify.verify(session=session)
    assert not report.ok and report.tree_size == 7 and "does not verify" in (report.reason or "")


def test_a_checkpoint_announcing_a_key_that_did_not_sign_it_fails(instance: Instance, tmp_path: Path) -> None:
    # given the log's own key signing a checkpoint that names another key as the next one
    other = note.Signer(note.generate_key(ORIGIN)[0]).verifier_key
    with Session(instance.engine) as session:
        newest = log.latest(session=session)
        assert newest is not None
        body = note.Checkpoint(ORIGIN, newest.size, bytes.fromhex(newest.root), (log.NEXT_KEY + other,)).text()
    signed = note.sign(body, keys.signer(get_settings()))
    text, _ = note.open_note(signed, [note.Verifier(instance.key)])
    with pytest.raises(logcheck.CheckFailed, match="announces a key that did not sign it"):
        logcheck.announced_key(signed, text, note.Checkpoint.parse(text), note.Verifier(instance.key))


def test_docker_compose_runs_this_verifier_as_a_witness_and_gives_the_log_a_key() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["witness"]["command"]
    assert command[:3] == ["python", "-m", "trace.logcheck"]
    args = logcheck.build_parser().parse_args(
        [
            a.replace("${HYTRACE_TLOG_VERIFIER_KEY:?set HYTRACE_TLOG_VERIFIER_KEY: python -m trace.cli tlog-key}", "K")
            for a in command[3:]
        ]
    )
    assert args.url == "http://api:8000" and args.witness_key == "/run/secrets/witness_key" and args.every == 60
    assert compose["services"]["witness"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    env = compose["x-env"]
    assert env["HYTRACE_TLOG_SIGNING_KEY"].startswith("${HYTRACE_TLOG_SIGNING_KEY:?")  # production refuses without


def _label(instance: Instance) -> str:
    from trace import digital_link
    from trace.lots import Lot
    from trace.printing import runs
    from trace.units import Unit

    with session_scope(instance.engine) as session:
        event = session.get(Event, instance.harvest_id)
        lot = session.get(Lot, event.lot_id)  # type: ignore[union-attr]
        assert lot is not None
        run = runs.create_run(
            session=session, actor=f.member(session.get(f.organisations.Organisation, instance.farm_id)),  # type: ignore[arg-type]
            lot_id=lot.id, data=runs.PrintRunCreate(quantity=1),  # type: ignore[arg-type]
        )  # fmt: skip
        unit = session.exec(select(Unit).where(Unit.print_run_id == run.id)).one()
        return digital_link.unit_uri(
            base_url="https://elsewhere.example", gtin=lot.gtin, lot=lot.lot_code, serial=unit.serial
        )


def test_a_label_s_whole_journey_is_checked_in_the_signed_tree(instance: Instance, tmp_path: Path) -> None:
    # given a label of the harvest, its commission event appended and signed
    label = _label(instance)
    _tick(instance.engine)
    # when the verifier checks that label (its host is any: the path is asked of the instance checked)
    code, out = _check(instance, tmp_path / "state.json", "--key", instance.key, "--unit", label)
    # then every event of the journey is in the signed tree, as the page shows it
    assert code == logcheck.OK, out
    assert "events of the label's journey are in the signed tree, as the page shows them" in out


def test_a_label_whose_logged_event_differs_from_the_page_fails(instance: Instance, tmp_path: Path) -> None:
    label = _label(instance)
    _tick(instance.engine)
    # given an insider who makes the harvest 9,999 kg where the page shows it (its lot row), after it was logged
    with instance.engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(text("DROP TRIGGER event_lot_append_only ON event_lot"))
        else:
            c.execute(text("DROP TRIGGER event_lot_no_update"))
        c.execute(text("UPDATE event_lot SET quantity = 9999 WHERE event_id = :e"), {"e": instance.harvest_id})
    code, out = _check(instance, tmp_path / "state.json", "--key", instance.key, "--unit", label)
    # then the verifier sees the page's event is not the one the log recorded
    assert code == logcheck.BROKEN and "otherwise than the log recorded" in out, out
