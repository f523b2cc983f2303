"""Market inspectors: the verdict and checklist on a scanned or typed label."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentActor, SessionDep
from trace import inspector
from trace.errors import RuleViolation

router = APIRouter(prefix="/inspector", tags=["inspector"])


@router.get("/verify", response_model=inspector.Inspection)
def verify(
    session: SessionDep,
    actor: CurrentActor,
    code: Annotated[str | None, Query(max_length=40)] = None,
    uri: Annotated[str | None, Query(max_length=300)] = None,
) -> inspector.Inspection:
    """Verdict (genuine and compliant / warning / violation) with each check's evidence and the
    lot's backward trace. Give the code printed under the QR, or the QR's URI."""
    if (code is None) == (uri is None):
        raise RuleViolation("Give either code or uri", code="code_or_uri")
    return inspector.inspect_code(session=session, actor=actor, code=code, uri=uri)
