"""POST /api/v1/log/cosignatures: a witness sends back the checkpoint it checked. Only the configured
witnesses' valid cosignatures of a checkpoint this log signed are kept, once each; everything else is
refused with a reason (twenty copies racing through two processes: tests/e2e/test_races.py)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from tests import factories as f
from tests.services import append_to_log
from trace.platform.config import get_settings
from trace.tlog import note
from trace.transparency import log

NOTE = {"Content-Type": "text/plain; charset=utf-8"}


@pytest.fixture
def witness(monkeypatch: pytest.MonkeyPatch) -> note.Signer:
    skey, vkey = note.generate_key("witness.test", witness=True)
    monkeypatch.setenv("HYTRACE_TLOG_WITNESS_KEYS", vkey)
    get_settings.cache_clear()
    return note.Signer(skey)


def _signed(session: Session) -> str:
    f.harvest(session, f.org(session), "3")
    append_to_log(session)
    session.commit()
    return log.latest(session=session).note  # type: ignore[union-attr]


def _body(signed: str) -> str:
    return note.split(signed)[0]


def test_a_configured_witness_s_cosignature_is_kept_once_and_published(
    client: TestClient, session: Session, witness: note.Signer
) -> None:
    text_ = _body(_signed(session))
    line = note.cosign(text_, witness, int(time.time()))
    first = client.post("/api/v1/log/cosignatures", content=text_ + "\n" + line, headers=NOTE)
    again = client.post("/api/v1/log/cosignatures", content=text_ + "\n" + line, headers=NOTE)
    assert first.status_code == again.status_code == 200 and first.json()["witnesses"] == ["witness.test"]
    published = client.get("/api/v1/log/checkpoint").text
    assert published.count("\u2014 witness.test ") == 1 and line in published


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("unknown witness", "log_cosignature_unknown"),
        ("tampered cosignature", "log_cosignature_bad"),
        ("future cosignature", "log_cosignature_bad"),
        ("another root", "log_checkpoint_not_ours"),
        ("never signed size", "log_checkpoint_not_ours"),
        ("not a note", "log_note_malformed"),
        ("too large", "log_note_too_large"),
    ],
)
def test_anything_but_a_configured_witness_s_valid_cosignature_is_refused_with_a_reason(
    client: TestClient, session: Session, witness: note.Signer, case: str, code: str
) -> None:
    signed = _signed(session)
    text_ = _body(signed)
    body = note.Checkpoint.parse(text_)
    stranger = note.Signer(note.generate_key("witness.test", witness=True)[0])  # same name, another key
    now = int(time.time())
    if case == "unknown witness":
        sent = text_ + "\n" + note.cosign(text_, stranger, now)
    elif case == "tampered cosignature":
        line = note.cosign(text_, witness, now)
        sent = text_ + "\n" + line[:-6] + ("A" if line[-6] != "A" else "B") + line[-5:]
    elif case == "future cosignature":
        sent = text_ + "\n" + note.cosign(text_, witness, now + 3600)
    elif case == "another root":
        other = note.Checkpoint(body.origin, body.size, bytes(32)).text()
        sent = other + "\n" + note.cosign(other, witness, now)
    elif case == "never signed size":
        other = note.Checkpoint(body.origin, body.size + 5, body.root).text()
        sent = other + "\n" + note.cosign(other, witness, now)
    elif case == "not a note":
        sent = "hello"
    else:
        sent = text_ + "\n" + note.cosign(text_, witness, now) * 300
    answer = client.post("/api/v1/log/cosignatures", content=sent.encode(), headers=NOTE)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code
    assert session.execute(text("SELECT count(*) FROM tlog_cosignature")).scalar_one() == 0


def test_a_cosignature_must_be_sent_as_utf8_text(client: TestClient, session: Session, witness: note.Signer) -> None:
    text_ = _body(_signed(session))
    line = note.cosign(text_, witness, int(time.time()))
    as_json = client.post("/api/v1/log/cosignatures", json={"note": text_ + "\n" + line})
    assert as_json.status_code == 415 and as_json.json()["code"] == "unsupported_media_type"
    broken = client.post("/api/v1/log/cosignatures", content=b"\xff\xfe" + text_.encode(), headers=NOTE)
    assert broken.status_code == 422 and broken.json()["code"] == "log_note_malformed"
