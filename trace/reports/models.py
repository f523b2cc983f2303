"""Dashboard tables: the province's plan targets and the report jobs built by the workers."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from trace.platform.sqltypes import enum_type
from trace.platform.timeutil import utcnow


class Indicator(StrEnum):
    """What the province plans and the dashboard measures, per calendar year."""

    ORGANISATIONS = "organisations"  # organisations on the system at the year's end
    PRODUCTS = "products"  # products carrying trace codes (with at least one lot) at the year's end
    LABELS = "labels"  # labels (trace codes) issued in the year
    SCANS = "scans"  # scans of trace codes by people in the year


class PlanTarget(SQLModel, table=True):
    """A target the province's administrator entered for an indicator and a year. Rows are kept: a new
    value is a new row, and the latest row of an (indicator, year) is the target in force."""

    __tablename__ = "plan_target"
    __table_args__ = (Index("ix_plan_target_indicator_year", "indicator", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    indicator: Indicator = Field(sa_type=enum_type(Indicator, 20))
    year: int = Field(ge=2000, le=2100)
    value: int = Field(ge=0)
    note: str | None = Field(default=None, max_length=500)
    set_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    set_at: datetime = Field(default_factory=utcnow)
    request_key: str | None = Field(
        default=None, max_length=100, unique=True, description="The form's once-only key: a double submit records once"
    )


class ReportFormat(StrEnum):
    XLSX = "xlsx"  # every section, one sheet each, and a summary sheet
    CSV = "csv"  # one section
    ZIP = "zip"  # every section as CSV files


class ReportStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    DONE = "done"
    FAILED = "failed"


class ReportJob(SQLModel, table=True):
    """A report someone asked for: its period and format, the worker's progress, and the file."""

    __tablename__ = "report_job"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int | None = Field(
        default=None,
        foreign_key="organisation.id",
        index=True,
        description="The requester's organisation (None: the province admin)",
    )
    requested_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    scope: str = Field(default="province", max_length=20, description="province | holder")
    period_start: date
    period_end: date
    format: ReportFormat = Field(sa_type=enum_type(ReportFormat, 10))
    section: str | None = Field(default=None, max_length=30, description="The section of a CSV report")
    status: ReportStatus = Field(default=ReportStatus.QUEUED, sa_type=enum_type(ReportStatus, 12), index=True)
    progress: int = Field(default=0, ge=0, le=100)
    filename: str | None = Field(default=None, max_length=120)
    media_type: str | None = Field(default=None, max_length=100)
    size: int | None = None
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    error: str | None = Field(default=None, max_length=500)
    attempts: int = 0
    lease_token: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = None
    request_key: str | None = Field(
        default=None, max_length=100, unique=True, description="The form's once-only key: a double submit asks once"
    )
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
