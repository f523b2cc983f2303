"""The one Celery app. Redis when HYTRACE_REDIS_URL is set; otherwise an embedded broker in a
local SQLite file, so asynchronous work needs no server."""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from sqlalchemy import make_url

import trace.schema  # noqa: F401  (every table, so foreign keys resolve in a worker process)
from trace.platform.config import get_settings


def broker_urls() -> tuple[str, str]:
    """(broker, result backend) for the configured deployment: Redis when configured, else two
    SQLite files beside the embedded database (or under ./data when the database is a server)."""
    settings = get_settings()
    if settings.redis_url:
        return settings.redis_url, settings.redis_url
    url = make_url(settings.database_url)
    folder = (
        Path(url.database).resolve().parent if url.get_backend_name() == "sqlite" and url.database else Path("data")
    )
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqla+sqlite:///{folder / 'celery-broker.db'}", f"db+sqlite:///{folder / 'celery-results.db'}"


def _transport_options(broker: str) -> dict[str, float]:
    options: dict[str, float] = {"max_retries": 0}
    if broker.startswith(("redis://", "rediss://")):
        options["socket_connect_timeout"] = 0.5  # a broker host that does not answer at all
    return options


def create_celery() -> Celery:
    """Build the app with settings that make tasks safe to retry."""
    broker, backend = broker_urls()
    app = Celery(
        "hytrace",
        broker=broker,
        backend=backend,
        include=[
            "workers.ops",
            "workers.jobs",
            "workers.labels",
            "workers.maintenance",
            "workers.reports",
            "workers.transparency",
            "workers.webhooks",
        ],
    )
    app.conf.update(
        task_acks_late=True,  # a killed worker's task is redelivered, so tasks are idempotent
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone=get_settings().timezone,
        broker_connection_retry_on_startup=True,
        task_default_queue=get_settings().celery_queue,
        # Sending a task (from a request, or a sweep) tries the broker once: with the broker down, kombu's
        # default of retrying the connection made a print run take 6 s to answer. Unsent jobs stay queued
        # in the database and the sweep sends them (workers/jobs.py). A worker's own connection to the
        # broker is retried as before (broker_connection_retry*).
        broker_transport_options=_transport_options(broker),
    )
    return app


app = create_celery()
