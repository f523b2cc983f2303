"""Appending to the public log and signing its checkpoints, off the request path (thin on purpose).

Every worker runs a sequencer thread; the head row's lock lets one append at a time, so any number of
workers is safe. ``python -m trace.cli tlog-tick`` does the same by hand.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready

from trace.platform.config import get_settings
from trace.platform.db import session_scope
from trace.transparency import keys, log

logger = logging.getLogger(__name__)


def run_tick() -> int:
    """Append everything pending (a batch per transaction) and sign a checkpoint; events appended."""
    return log.drain(session_scope, keys.signing(get_settings()))


def _sequence_forever(stop: threading.Event) -> None:
    while not stop.wait(get_settings().tlog_sequence_seconds):
        try:
            run_tick()
        except Exception:
            logger.exception("transparency log round failed")


@worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    keys.check(get_settings())  # a malformed key is said once, at start, not every round
    threading.Thread(target=_sequence_forever, args=(threading.Event(),), name="tlog-sequencer", daemon=True).start()
