"""Operational tasks."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from trace.events import chain
from trace.platform.db import session_scope
from workers.app import app


@app.task(name="ops.verify_log")
def verify_log() -> dict[str, Any]:
    """Recompute the whole hash chain (e.g. nightly) and return the report."""
    with session_scope(write=False) as session:
        return asdict(chain.verify(session=session))
