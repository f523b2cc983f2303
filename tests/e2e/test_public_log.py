"""The public log as ``make run`` runs it: a server, a worker that appends and signs, a witness that checks
and cosigns (``python -m trace.logcheck --every``), and the consumer page in a real headless Chromium saying
the journey is in the log and who cosigned it. Separate processes, committed rows, the real commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.live import ROOT, Server, celery_worker, demo_server, phone
from trace.tlog import note

WITNESS = "hytrace-dev-witness"


def _cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "trace.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def running(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("public-log")
    key_file = folder / "witness.key"
    witness_key = _cli("tlog-dev-witness", "--key-file", str(key_file), env={**os.environ})
    assert key_file.stat().st_mode & 0o777 == 0o600
    with (
        demo_server(
            databases.new(), folder, HYTRACE_TLOG_WITNESS_KEYS=witness_key, HYTRACE_TLOG_SEQUENCE_SECONDS="0.5"
        ) as server,
        celery_worker(server, folder),
    ):
        log_key = _cli("tlog-key", env=server.env)
        log = (folder / "witness.log").open("ab")
        witness = subprocess.Popen(
            [
                sys.executable, "-m", "trace.logcheck", server.base, "--state", str(folder / "state.json"),
                "--key", log_key, "--witness-key", str(key_file), "--every", "1", "--timeout", "5",
            ],
            cwd=ROOT, env=server.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield server, folder
        finally:
            witness.terminate()
            witness.wait(timeout=20)
            log.close()


def _cosigned(server: Server, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{server.base}/api/v1/log/checkpoint", timeout=5)
        if answer.status_code == 200 and f"\u2014 {WITNESS} " in answer.text:
            return answer.text
        time.sleep(0.3)
    raise AssertionError(f"no cosigned checkpoint within {timeout} s")


def test_the_worker_signs_and_the_witness_cosigns_the_whole_demo(running: tuple[Server, Path]) -> None:
    server, folder = running
    signed = _cosigned(server)
    key = httpx.get(f"{server.base}/api/v1/log/key", timeout=5).json()
    text, _ = note.open_note(signed, [note.Verifier(key["verifier_key"])])
    size = note.Checkpoint.parse(text).size
    with server.engine.connect() as c:
        events = c.exec_driver_sql("SELECT count(*) FROM event").scalar_one()
    assert size == events  # every demo event, appended by the worker
    assert key["witnesses"] and key["witnesses"][0].startswith(WITNESS + "+")
    assert "ok:" in (folder / "witness.log").read_text()


def test_the_consumer_page_says_the_journey_is_in_the_cosigned_log(running: tuple[Server, Path], browser: Any) -> None:
    server, _ = running
    _cosigned(server)
    unit = server.unit()
    url = f"{server.base}/01/{unit.gtin}/10/{unit.lot_code}/21/{unit.serial}"
    with phone(browser) as page:
        page.goto(url)
        section = page.locator("#public-log")
        assert section.is_visible()
        said = section.inner_text()
    assert "sổ công khai có chữ ký của tỉnh" in said and WITNESS in said
    facts = httpx.get(url, headers={"Accept": "application/json"}, timeout=5).json()["public_log"]
    assert facts["failed"] == 0 and facts["included"] == facts["events"] > 0 and WITNESS in facts["witnesses"]
