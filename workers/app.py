"""The one Celery app. Redis when HYTRACE_REDIS_URL is set; otherwise an embedded broker in a
local SQLite file, so asynchronous work needs no server."""

from __future__ import annotations

from celery import Celery

from trace.config import get_settings


def broker_urls() -> tuple[str, str]:
    """(broker, result backend) for the configured deployment."""
    settings = get_settings()
    if settings.redis_url:
        return settings.redis_url, settings.redis_url
    return "sqla+sqlite:///data/celery-broker.db", "db+sqlite:///data/celery-results.db"


def create_celery() -> Celery:
    """Build the app with settings that make tasks safe to retry."""
    broker, backend = broker_urls()
    app = Celery("hytrace", broker=broker, backend=backend, include=["workers.ops"])
    app.conf.update(
        task_acks_late=True,  # a killed worker's task is redelivered, so tasks are idempotent
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone=get_settings().timezone,
        broker_connection_retry_on_startup=True,
    )
    return app


app = create_celery()
