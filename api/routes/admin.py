"""Operator endpoints: verify the tamper-evident log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from api.deps import CurrentActor, SessionDep
from trace.access import require_admin
from trace.events import chain

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/verify-log")
def verify_log(session: SessionDep, actor: CurrentActor, organisation_id: int | None = None) -> dict[str, Any]:
    """Recompute every event hash and link; names the first broken link if any."""
    require_admin(actor)
    return asdict(chain.verify(session=session, organisation_id=organisation_id))
