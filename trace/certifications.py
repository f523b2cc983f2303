"""Certifications (VietGAP, organic, GlobalG.A.P., OCOP stars): who holds them, over what, and when."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, select
from sqlmodel import Field, Session, SQLModel, col

from trace.access import Actor, Role, can_see_private
from trace.errors import Conflict, Forbidden, NotFound, RuleViolation
from trace.locations import Location
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform import timeutil
from trace.platform.paging import Page, key_order, page, paged
from trace.platform.sqltypes import enum_type
from trace.platform.timeutil import local_zone, to_utc, utcnow
from trace.products import Product
from trace.web_urls import ShownUrl, WebUrl


class CertificationKind(StrEnum):
    VIETGAP = "vietgap"
    ORGANIC = "organic"  # TCVN 11041
    GLOBALGAP = "globalgap"
    OCOP = "ocop"  # One Commune One Product, 3 to 5 stars


class CertificationBase(SQLModel):
    kind: CertificationKind = Field(sa_type=enum_type(CertificationKind, 12))
    stars: int | None = Field(default=None, ge=3, le=5, description="OCOP stars")
    number: str = Field(min_length=1, max_length=60)
    issuer: str = Field(min_length=2, max_length=200)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    product_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # empty: all
    location_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # empty: all
    valid_from: date
    valid_to: date
    document_url: WebUrl | None = Field(default=None, max_length=500)


class Certification(CertificationBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    revoked_at: datetime | None = None
    revoked_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class CertificationCreate(CertificationBase):
    organisation_id: int | None = Field(  # type: ignore[assignment]
        default=None, description="The certified organisation (default: yours)"
    )
    product_ids: list[int] = Field(default_factory=list, max_length=500, description="Products covered; empty: all")
    location_ids: list[int] = Field(default_factory=list, max_length=500, description="Locations covered; empty: all")


class RevokeIn(SQLModel):
    reason: str = Field(min_length=3, max_length=500)
    revoked_at: datetime | None = Field(default=None, description="When the issuer withdrew it (default now)")


class CertificationPublic(CertificationBase):
    document_url: ShownUrl = None
    id: int
    revoked_at: datetime | None
    revoked_reason: str | None
    created_at: datetime


class CertificateStatus(SQLModel):
    """A certificate as a lot's page shows it: public fields and whether it covered the harvest."""

    certification_id: int
    kind: CertificationKind
    stars: int | None
    number: str
    issuer: str
    valid_from: date
    valid_to: date
    revoked_on: date | None = Field(description="Local date it was revoked, if it was")
    valid_at_harvest: bool
    valid_today: bool
    shown: bool = Field(description="Shown as valid for this lot: it was valid when the lot was harvested")


def _local_date(moment: datetime) -> date:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(local_zone()).date()


def _may_certify(actor: Actor, organisation_id: int) -> None:
    # Certificates are issued by outside bodies: the province admin records them, or the certified
    # organisation's administrator does, showing the certificate itself.
    if actor.is_admin:
        return
    if actor.role == Role.ORG_ADMIN and actor.organisation_id == organisation_id:
        return
    raise Forbidden(
        "Only the province administrator or an administrator of the certified organisation "
        "may record or revoke its certificates",
        code="not_certification_manager",
    )


def _check_scope(
    session: Session, model: type[Product] | type[Location], ids: list[int], org_id: int, what: str
) -> list[int]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return wanted
    theirs = set(
        session.execute(
            select(model.id).where(  # type: ignore[call-overload]
                col(model.id).in_(wanted), model.organisation_id == org_id
            )
        ).scalars()
    )
    stray = [i for i in wanted if i not in theirs]
    if stray:
        raise RuleViolation(
            f"{what.capitalize()}(s) {', '.join(map(str, stray[:10]))} do not belong to organisation {org_id}",
            code=f"{what}_not_in_organisation",
            ids=stray[:50],
        )
    return wanted


def record_certification(*, session: Session, actor: Actor, data: CertificationCreate) -> Certification:
    """Record a certificate held by an organisation, its scope limited to that organisation's products and places."""
    org_id = data.organisation_id or actor.organisation_id
    if org_id is None:
        raise RuleViolation("organisation_id is required", code="organisation_required")
    _may_certify(actor, org_id)
    if session.get(Organisation, org_id) is None:
        raise RuleViolation(f"Organisation {org_id} does not exist", code="unknown_organisation")
    if not actor.is_admin and not data.document_url:
        raise RuleViolation(
            "Attach the certificate (document_url) when recording it yourself", code="document_required"
        )
    if data.valid_from > data.valid_to:
        raise RuleViolation(f"valid_from {data.valid_from} is after valid_to {data.valid_to}", code="invalid_validity")
    if data.kind == CertificationKind.OCOP and data.stars not in (3, 4, 5):
        raise RuleViolation("An OCOP certificate carries 3, 4 or 5 stars", code="stars_required")
    if data.kind != CertificationKind.OCOP and data.stars is not None:
        raise RuleViolation(f"A {data.kind} certificate has no stars", code="stars_not_allowed")
    products = _check_scope(session, Product, data.product_ids, org_id, "product")
    places = _check_scope(session, Location, data.location_ids, org_id, "location")
    same = session.execute(
        select(Certification.id).where(  # type: ignore[call-overload]
            Certification.organisation_id == org_id,
            Certification.kind == data.kind,
            Certification.number == data.number,
            Certification.issuer == data.issuer,
        )
    ).first()
    if same is not None:
        raise Conflict(
            f"Certificate {data.number} from {data.issuer} is already recorded",
            code="certification_exists",
            certification_id=same[0],
        )
    cert = Certification.model_validate(
        data, update={"organisation_id": org_id, "product_ids": products, "location_ids": places}
    )
    session.add(cert)
    session.flush()
    return cert


def get_certification(*, session: Session, certification_id: int) -> Certification:
    """One certificate, or NotFound."""
    cert = session.get(Certification, certification_id)
    if cert is None:
        raise NotFound(f"Certification {certification_id} not found")
    return cert


def revoke_certification(*, session: Session, actor: Actor, certification_id: int, data: RevokeIn) -> Certification:
    """Withdraw a certificate, with the reason; lots harvested before the withdrawal keep it."""
    cert = get_certification(session=session, certification_id=certification_id)
    _may_certify(actor, cert.organisation_id)
    if cert.revoked_at is not None:
        raise Conflict(
            f"Certification {cert.number} was revoked on {_local_date(cert.revoked_at)}", code="already_revoked"
        )
    when = to_utc(data.revoked_at)[0] if data.revoked_at else utcnow()
    if when > utcnow():
        raise RuleViolation("A revocation cannot be dated in the future", code="revoked_in_future")
    cert.revoked_at, cert.revoked_reason = when, data.reason
    session.add(cert)
    session.flush()
    return cert


CERTIFICATION_ORDER = key_order("certifications", (col(Certification.id), int, False))  # oldest first


def list_certifications(
    *,
    session: Session,
    organisation_id: int | None = None,
    kind: CertificationKind | None = None,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[Certification]:
    """Certificates, filtered (numbers and issuers are public; documents are not, see :func:`to_public`)."""
    query = select(Certification)
    if organisation_id is not None:
        query = query.where(Certification.organisation_id == organisation_id)  # type: ignore[arg-type]
    if kind is not None:
        query = query.where(Certification.kind == kind)  # type: ignore[arg-type]
    rows = session.execute(paged(query, CERTIFICATION_ORDER, cursor=cursor, offset=offset, limit=limit)).scalars()
    return page(rows, CERTIFICATION_ORDER, limit=limit, key=lambda x: (x.id,))


def to_public(*, actor: Actor | None, cert: Certification) -> CertificationPublic:
    """The API shape of a certificate; the scanned document only for its organisation, admins and inspectors."""
    out = CertificationPublic.model_validate(cert)
    if not can_see_private(actor, cert.organisation_id):
        out.document_url = None
    return out


def covers(cert: Certification, lot: Lot) -> bool:
    """Whether the certificate's scope takes in the lot: its organisation, product and origin."""
    if cert.organisation_id != lot.producer_organisation_id:
        return False
    if cert.product_ids and lot.product_id not in cert.product_ids:
        return False
    return not cert.location_ids or lot.origin_location_id in cert.location_ids


def valid_on(cert: Certification, day: date) -> bool:
    """Valid that day: inside valid_from..valid_to and not revoked on or before it."""
    if not cert.valid_from <= day <= cert.valid_to:
        return False
    # Like a revoked right to use: from the day of the revocation on, the certificate covers nothing new.
    return cert.revoked_at is None or _local_date(cert.revoked_at) > day


def certificates_for_lot(*, session: Session, lot: Lot, today: date | None = None) -> list[CertificateStatus]:
    """The certificates whose scope covers the lot, each judged at its harvest date and today."""
    today = today or timeutil.today()
    certs = session.execute(
        select(Certification)
        .where(Certification.organisation_id == lot.producer_organisation_id)  # type: ignore[arg-type]
        .order_by(col(Certification.valid_from).desc(), col(Certification.id))
    ).scalars()
    out = []
    for cert in certs:
        if not covers(cert, lot):
            continue
        at_harvest = valid_on(cert, lot.production_date)
        out.append(
            CertificateStatus(
                certification_id=cert.id,
                kind=cert.kind,
                stars=cert.stars,
                number=cert.number,  # type: ignore[arg-type]
                issuer=cert.issuer,
                valid_from=cert.valid_from,
                valid_to=cert.valid_to,
                revoked_on=_local_date(cert.revoked_at) if cert.revoked_at else None,
                valid_at_harvest=at_harvest,
                valid_today=valid_on(cert, today),
                shown=at_harvest,
            )
        )
    return out
