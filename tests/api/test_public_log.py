"""The consumer page, its JSON and its EPCIS document say whether the journey is in the signed public log, and
carry the inclusion proofs on request; checked with RFC 9162 verification of what the page itself serves."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from tests.services import append_to_log
from tests.trace.test_origin import Chain, build_chain
from trace.epcis.document import schema_errors
from trace.platform.config import get_settings
from trace.tlog import merkle, note
from trace.transparency import keys, log

JSON = {"accept": "application/json"}


@pytest.fixture
def chain(session: Session) -> Chain:
    c = build_chain(session)
    session.commit()
    return c


def _path(chain: Chain) -> str:
    from tests.api.test_public_page import path_of

    return path_of(chain)


def test_before_the_worker_appends_the_page_says_the_events_are_on_their_way(client: TestClient, chain: Chain) -> None:
    facts = client.get(_path(chain), headers=JSON).json()["public_log"]
    assert facts["included"] == 0 and facts["pending"] == facts["events"] > 0 and facts["tree_size"] is None
    assert "đang được ghi vào sổ" in client.get(_path(chain), headers={"accept-language": "vi"}).text


def test_the_page_and_its_json_say_the_journey_is_in_the_signed_log(
    client: TestClient, chain: Chain, session: Session
) -> None:
    append_to_log(session)
    session.commit()
    facts = client.get(_path(chain), headers=JSON).json()["public_log"]
    assert facts["failed"] == 0 and facts["pending"] == 0 and facts["included"] == facts["events"] > 0
    assert facts["tree_size"] == log.latest(session=session).size  # type: ignore[union-attr]
    page = client.get(_path(chain), headers={"accept-language": "vi"}).text
    assert "Trong sổ công khai của tỉnh" in page and "sổ công khai có chữ ký của tỉnh" in page
    english = client.get(_path(chain) + "?lang=en").text
    assert "are in the province's signed public log" in english


def test_the_epcis_document_carries_a_proof_for_every_event_on_request(
    client: TestClient, chain: Chain, session: Session
) -> None:
    append_to_log(session)
    session.commit()
    plain = client.get(_path(chain) + "?linkType=gs1:epcis").json()
    answer = client.get(_path(chain) + "?linkType=gs1:epcis&proofs=1")
    assert (
        answer.status_code == 200
        and answer.headers["etag"] != client.get(_path(chain) + "?linkType=gs1:epcis").headers["etag"]
    )
    document = answer.json()
    assert schema_errors(document) == []  # still a valid EPCIS document
    assert "hytrace:publicLog" not in plain
    proofs = document["hytrace:publicLog"]
    text_, _ = note.open_note(proofs["checkpoint"], [note.Verifier(keys.signer(get_settings()).verifier_key)])
    signed = note.Checkpoint.parse(text_)
    events = {e["eventID"]: e for e in document["epcisBody"]["eventList"]}
    assert {i["eventID"] for i in proofs["inclusions"]} == set(events)
    for inclusion in proofs["inclusions"]:
        leaf = merkle.leaf_hash(inclusion["entry"].encode())
        path = [base64.b64decode(h) for h in inclusion["proof"]]
        assert merkle.verify_inclusion(inclusion["leafIndex"], signed.size, leaf, path, signed.root)
        logged = json.loads(inclusion["entry"])["event"]
        shown = events[inclusion["eventID"]]
        assert logged["eventID"] == shown["eventID"] and logged["eventTime"] == shown["eventTime"]
    with_json = client.get(_path(chain) + "?proofs=1", headers=JSON).json()
    assert len(with_json["public_log_proofs"]["inclusions"]) == len(events)


def test_a_leaf_altered_in_the_database_shows_on_the_page(client: TestClient, chain: Chain, session: Session) -> None:
    append_to_log(session)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP TRIGGER tlog_leaf_append_only ON tlog_leaf")
    else:
        connection.exec_driver_sql("DROP TRIGGER tlog_leaf_no_update")
    connection.execute(text("UPDATE tlog_leaf SET entry = replace(entry, :a, :b)"), {"a": '"v":1', "b": '"v":7'})
    session.commit()
    facts = client.get(_path(chain), headers=JSON).json()["public_log"]
    assert facts["failed"] == facts["events"] > 0 and facts["included"] == 0
    assert "không khớp với sổ công khai" in client.get(_path(chain), headers={"accept-language": "vi"}).text
