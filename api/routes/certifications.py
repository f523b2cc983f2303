"""Certifications (VietGAP, organic, GlobalG.A.P., OCOP stars): record, read, revoke; a lot's certificates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentActor, DbId, SessionDep
from api.paging import PAGED, Cursor, Offset, announce
from trace import certifications, lots
from trace.certifications import CertificationKind

router = APIRouter(tags=["certifications"])


@router.post("/certifications", status_code=201, response_model=certifications.CertificationPublic)
def create(
    session: SessionDep, actor: CurrentActor, data: certifications.CertificationCreate
) -> certifications.CertificationPublic:
    """Record a certificate (province admin, or the certified organisation's admin with the document)."""
    cert = certifications.record_certification(session=session, actor=actor, data=data)
    return certifications.to_public(actor=actor, cert=cert)


@router.get("/certifications", response_model=list[certifications.CertificationPublic], responses=PAGED)
def list_(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    organisation_id: int | None = None,
    kind: CertificationKind | None = None,
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[certifications.CertificationPublic]:
    """Certificates, filtered by organisation and kind (documents only for their own organisation)."""
    rows = certifications.list_certifications(
        session=session, organisation_id=organisation_id, kind=kind, cursor=cursor, offset=offset, limit=limit
    )
    announce(request, response, rows)
    return [certifications.to_public(actor=actor, cert=c) for c in rows]


@router.get("/certifications/{certification_id}", response_model=certifications.CertificationPublic)
def get(session: SessionDep, actor: CurrentActor, certification_id: int) -> certifications.CertificationPublic:
    """One certificate."""
    cert = certifications.get_certification(session=session, certification_id=certification_id)
    return certifications.to_public(actor=actor, cert=cert)


@router.post("/certifications/{certification_id}/revoke", response_model=certifications.CertificationPublic)
def revoke(
    session: SessionDep, actor: CurrentActor, certification_id: int, data: certifications.RevokeIn
) -> certifications.CertificationPublic:
    """Withdraw a certificate with the reason; lots harvested before keep showing it."""
    cert = certifications.revoke_certification(
        session=session, actor=actor, certification_id=certification_id, data=data
    )
    return certifications.to_public(actor=actor, cert=cert)


@router.get("/lots/{lot_id}/certifications", response_model=list[certifications.CertificateStatus])
def for_lot(session: SessionDep, lot_id: DbId) -> list[certifications.CertificateStatus]:
    """Public: the certificates covering a lot, each valid or not at its harvest and today."""
    lot = lots.get_lot(session=session, lot_id=lot_id)
    return certifications.certificates_for_lot(session=session, lot=lot)
