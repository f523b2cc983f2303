"""Public code checks: a typed human code or a scanned Digital Link, genuine or not."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep
from trace import verification
from trace.errors import RuleViolation

router = APIRouter(prefix="/codes", tags=["verification"])


@router.get("/check", response_model=verification.CodeCheck)
def check(
    session: SessionDep,
    code: Annotated[str | None, Query(max_length=40)] = None,
    uri: Annotated[str | None, Query(max_length=300)] = None,
) -> verification.CodeCheck:
    """Check a label: ``code`` as printed under the QR (dashes and case don't matter) or the QR's ``uri``.
    404 when the system never issued it; ``valid: false`` when it was voided or its lot is held or recalled."""
    if (code is None) == (uri is None):
        raise RuleViolation("Give either code or uri", code="code_or_uri")
    if code is not None:
        return verification.check_code(session=session, code=code)
    return verification.check_uri(session=session, uri=uri)  # type: ignore[arg-type]
