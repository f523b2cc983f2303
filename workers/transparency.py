"""Appending to the public log and signing its checkpoints, off the request path (thin on purpose).

Every worker runs a sequencer thread; the head row's lock lets one append at a time, so any number of
workers is safe. ``tlog.tick`` does one round on request (tests, operators).
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready

from trace.platform.config import get_settings
from trace.platform.db import session_scope
from trace.transparency import keys, log
from workers.app import app

logger = logging.getLogger(__name__)


def run_tick() -> int:
    """Append everything pending (a batch per transaction) and sign a checkpoint; events appended."""
    settings = get_settings()
    signer, previous = keys.signer(settings), keys.previous_signer(settings)
    appended = 0
    while True:
        with session_scope() as session:
            done = log.tick(session=session, signer=signer, origin=settings.log_origin, previous=previous)
        appended += done
        if done < log.BATCH:
            return appended


@app.task(name="tlog.tick", ignore_result=True)
def tick() -> int:
    """One sequencer round."""
    return run_tick()


def _sequence_forever(stop: threading.Event) -> None:
    while not stop.wait(get_settings().tlog_sequence_seconds):
        try:
            run_tick()
        except Exception:
            logger.exception("transparency log round failed")


@worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    threading.Thread(target=_sequence_forever, args=(threading.Event(),), name="tlog-sequencer", daemon=True).start()
