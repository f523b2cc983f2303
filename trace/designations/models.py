"""Designation, right-to-use and claim tables (the rules that use them live beside them)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from trace.platform.sqltypes import enum_type
from trace.platform.timeutil import utcnow
from trace.web_urls import WebUrl


class DesignationKind(StrEnum):
    GEOGRAPHICAL_INDICATION = "geographical_indication"  # chỉ dẫn địa lý
    COLLECTIVE_TRADEMARK = "collective_trademark"  # nhãn hiệu tập thể
    CERTIFICATION_TRADEMARK = "certification_trademark"  # nhãn hiệu chứng nhận


class InheritRule(StrEnum):
    """When a lot made by a transformation carries its inputs' designation."""

    NEVER = "never"
    ALL_INPUTS = "all_inputs"  # only when every input lot carries it (e.g. dried longan from GI longan)
    ANY_INPUT = "any_input"


class RightStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class ClaimSource(StrEnum):
    HARVEST = "harvest"
    INHERITED = "inherited"


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: type(default)(), sa_column=Column(JSON, nullable=False))


class DesignationBase(SQLModel):
    kind: DesignationKind = Field(sa_type=enum_type(DesignationKind))
    name_vi: str = Field(min_length=2, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    registration_number: str | None = Field(default=None, max_length=60, description="Certificate number, e.g. 00055")
    decision_number: str | None = Field(default=None, max_length=60, description="e.g. 186/QĐ-SHTT")
    decision_date: date | None = None
    authority: str = Field(default="Cục Sở hữu trí tuệ (IP Viet Nam)", max_length=200)
    holder_organisation_id: int = Field(foreign_key="organisation.id", index=True)
    categories: list[str] = _json([])  # product categories it covers, e.g. ["longan_fresh"]
    derived_categories: list[str] = _json([])  # categories a transformation may carry it into
    inherit_rule: InheritRule = Field(default=InheritRule.NEVER, sa_type=enum_type(InheritRule))
    area_former_districts: list[str] = _json([])  # as granted, over pre-2025 districts (names)
    area_former_communes: list[str] = _json([])  # pre-2025 commune codes of the protected area
    area_communes: list[str] = _json([])  # today's commune codes the area lies in (wholly or partly)
    rules_text: str | None = Field(default=None, max_length=20000)
    logo_url: WebUrl | None = Field(default=None, max_length=500)


class Designation(DesignationBase, table=True):
    # The registrars keep one registry: their keys share one scope, so a resent form registers once.
    __table_args__ = (Index("ix_designation_request_key", "request_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    request_key: str | None = Field(
        default=None, max_length=100, description="The registering request's idempotency key"
    )


class RightToUse(SQLModel, table=True):
    """The holder's grant of its designation to a producer, with its scope and yearly label quota."""

    __tablename__ = "right_to_use"
    # A grant sent twice (double tap, retry) grants once: its key is unique per designation (one holder).
    __table_args__ = (
        Index("ix_right_to_use_designation_id_request_key", "designation_id", "request_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    designation_id: int = Field(foreign_key="designation.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    decision_number: str = Field(max_length=60)
    valid_from: date
    valid_to: date | None = None
    product_ids: list[int] = _json([])  # empty: any product of a covered category
    location_ids: list[int] = _json([])  # empty: any growing area inside the protected area
    annual_label_quota: int | None = Field(default=None, ge=0)
    status: RightStatus = Field(default=RightStatus.ACTIVE, sa_type=enum_type(RightStatus))
    status_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    request_key: str | None = Field(default=None, max_length=100, description="The granting request's idempotency key")


class LotClaim(SQLModel, table=True):
    """A lot's claim to a designation, accepted when it was made (at harvest, or inherited)."""

    __tablename__ = "lot_claim"

    lot_id: int = Field(foreign_key="lot.id", primary_key=True)
    designation_id: int = Field(foreign_key="designation.id", primary_key=True, index=True)
    right_id: int | None = Field(default=None, foreign_key="right_to_use.id", index=True)
    source: ClaimSource = Field(sa_type=enum_type(ClaimSource, 12))
    event_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow)


class ClaimStatus(SQLModel):
    """A lot's claim to a designation, as inspectors and the public see it."""

    designation_id: int
    name: str
    name_en: str | None = None
    kind: DesignationKind
    number: str | None = None  # the certificate (or decision) number, e.g. 00055
    holder_name: str
    source: ClaimSource
    badge: str  # as printed on labels, e.g. "CDĐL Nhãn lồng Hưng Yên · số 00055"
    valid_at_harvest: bool
    problem_at_harvest: str | None = None
    valid_today: bool
    problem: str | None = None  # why the claim does not hold today
