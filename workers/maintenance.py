"""The database's upkeep beside the tasks: the planner's statistics kept fresh after bulk writes.

Every worker runs the round; an advisory lock lets one analyse at a time (trace.platform.db)."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready

from trace.platform.config import get_settings
from trace.platform.db import get_engine, refresh_statistics

logger = logging.getLogger(__name__)


def _refresh_forever(stop: threading.Event) -> None:
    while not stop.wait(get_settings().statistics_seconds):
        try:
            analysed = refresh_statistics(get_engine())
            if analysed:
                logger.info("statistics refreshed: %s", ", ".join(analysed))
        except Exception:
            logger.exception("refreshing the planner's statistics failed")


@worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    threading.Thread(target=_refresh_forever, args=(threading.Event(),), name="statistics", daemon=True).start()
