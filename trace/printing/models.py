"""Print-run tables and the output formats a run can be rendered in."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from trace.platform.sqltypes import enum_type
from trace.platform.timeutil import utcnow

# The formats labels/ renders (labels.FORMATS holds the same names; a test keeps them equal).
FORMATS: dict[str, str] = {
    "a4-3x8": "PDF, A4 decal sheet 3 × 8 (63,5 × 33,9 mm)",
    "a4-4x10": "PDF, A4 decal sheet 4 × 10 (45,7 × 25,4 mm)",
    "roll-50x30": "PDF, thermal roll 50 × 30 mm",
    "roll-100x50": "PDF, thermal roll 100 × 50 mm",
    "zpl-50x30": "ZPL for Zebra printers, 50 × 30 mm, 203 dpi",
    "zpl-100x50": "ZPL for Zebra printers, 100 × 50 mm, 203 dpi",
    "png-50x30": "PNG images, 50 × 30 mm at 300 dpi (ZIP)",
    "svg-50x30": "SVG images, 50 × 30 mm (ZIP)",
}
MAX_LABELS = 100_000  # one run; larger jobs are several runs
# Roll PDFs take a whole run (MAX_LABELS): they are written page by page to a file and stored in chunks,
# so rendering a 100,000-label roll adds ~2 MB to the worker (1.7 GB before: bench/labels.py --roll)
# and makes a ~195 MB PDF. A roll printer's driver spools such a job a page at a time, whatever its
# length: the limit is the media, a few thousand 50 × 30 mm labels a roll and ribbon, which the
# operator changes within the job as in any long run; more labels than a run holds are several runs.
# Formats whose files grow fast are capped lower: 100,000 PNGs at 300 dpi make a ~1.4 GB ZIP.
FORMAT_LIMITS: dict[str, int] = {"png-50x30": 5_000, "svg-50x30": 20_000}


class PrintKind(StrEnum):
    UNIT = "unit"  # one serialised code per consumer package
    CARTON = "carton"  # one serialised code per case
    LOT = "lot"  # copies of the lot's own code (no serials)


class PrintStatus(StrEnum):
    QUEUED = "queued"
    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PrintRunBase(SQLModel):
    kind: PrintKind = Field(default=PrintKind.UNIT, sa_type=enum_type(PrintKind, 10))
    format: str = Field(default="a4-4x10", max_length=20, description="Label template / output format")
    quantity: int = Field(gt=0, le=MAX_LABELS, description="Number of labels")
    packed_on: date | None = Field(default=None, description="Packing date printed on the labels")
    expiry: date | None = Field(default=None, description="Expiry printed on the labels (default: the lot's)")
    override_reason: str | None = Field(
        default=None, min_length=10, max_length=500, description="Why more labels than the lot can hold are needed"
    )


class PrintRun(PrintRunBase, table=True):
    __tablename__ = "print_run"
    # A retried request (double tap, timeout) finds the run its first attempt made.
    __table_args__ = (UniqueConstraint("organisation_id", "request_key"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    lot_id: int = Field(foreign_key="lot.id", index=True)
    status: PrintStatus = Field(default=PrintStatus.QUEUED, sa_type=enum_type(PrintStatus, 12), index=True)
    done: int = 0
    base_url: str = Field(max_length=200, description="Public base URL the codes were printed under")
    reprint_of_id: int | None = Field(default=None, foreign_key="print_run.id")
    event_id: str | None = Field(default=None, max_length=36, description="The commission event of its units")
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_token: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = None
    attempts: int = 0
    error: str | None = Field(default=None, max_length=500)
    request_key: str | None = Field(default=None, max_length=100, description="The creating request's idempotency key")


class PrintArtefact(SQLModel, table=True):
    """The rendered file of a run: one per run, kept in the database so every process sees it; its
    bytes are the run's ``PrintArtefactChunk`` rows in order, ``size`` and ``sha256`` are of the whole."""

    __tablename__ = "print_artefact"

    print_run_id: int = Field(foreign_key="print_run.id", primary_key=True)
    media_type: str = Field(max_length=60)
    filename: str = Field(max_length=120)
    size: int
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


# 1 MiB: ~190 rows for a 100,000-label roll; small enough that storing or serving one holds
# only this much, large enough that the per-row cost (a query, a TOAST pointer) does not count.
CHUNK_BYTES = 1 << 20


class PrintArtefactChunk(SQLModel, table=True):
    """``CHUNK_BYTES`` of a run's file (the last one shorter): the file is every chunk, by ``seq``.

    Plain rows of a bytes column, not the database's large objects: SQLite has none, and PostgreSQL's
    are not removed with the rows that name them (they need lo_unlink or vacuumlo) and are read through
    an API of their own; rows work the same way on both.
    """

    __tablename__ = "print_artefact_chunk"

    print_run_id: int = Field(foreign_key="print_artefact.print_run_id", primary_key=True)
    seq: int = Field(primary_key=True, description="0 for the first CHUNK_BYTES of the file, then 1, 2, …")
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
