"""Certifications (VietGAP, organic, GlobalG.A.P., OCOP stars): who holds them, over what, and when."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from trace.sqltypes import enum_type
from trace.timeutil import utcnow


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
    document_url: str | None = Field(default=None, max_length=500)


class Certification(CertificationBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    revoked_at: datetime | None = None
    revoked_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
