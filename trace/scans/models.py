"""The scan table: when a label's page was viewed, from which (hashed) network, roughly where; and the
figures kept as scans are written (:mod:`trace.scans.tallies`), so reading them never recounts the scans."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel

AGENTS = ("mobile", "desktop", "bot", "other")
KINDS = ("page", "json", "linkset", "check")
SCOPES = ("lot", "unit")  # a lot's code (every scan of the lot) or a unit's (the scans of its own code)


class Scan(SQLModel, table=True):
    """One scan of a lot's or a unit's code. Never the IP, the full User-Agent or anything personal."""

    __table_args__ = (Index("ix_scan_unit_id_scanned_at", "unit_id", "scanned_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # Made when the scan happens, so a batch written twice (a retry, a crash before LTRIM) adds nothing.
    uid: str = Field(max_length=32, unique=True, index=True)
    lot_id: int = Field(foreign_key="lot.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    scanned_at: datetime = Field(index=True)
    network: str = Field(max_length=16, description="HMAC of the client's /24 (IPv4) or /48 (IPv6)")
    place: str | None = Field(default=None, max_length=16, description="'lat,lon' to 0.1°, only if shared")
    agent: str = Field(max_length=10, description="mobile | desktop | bot | other")
    lang: str | None = Field(default=None, max_length=5)
    kind: str = Field(max_length=10, description="page | json | linkset | check")


class ScanTally(SQLModel, table=True):
    """A code's figures, kept as its scans are written: one row per lot and per unit that was scanned."""

    __tablename__ = "scan_tally"

    scope: str = Field(primary_key=True, max_length=4, description="lot | unit")
    code_id: int = Field(primary_key=True, description="the lot's or the unit's id")
    scans: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_at: datetime
    last_at: datetime
    networks: int = Field(description="its first sightings kept (at most record.SOURCES_KEPT)")
    places: int = Field(description="distinct places shared on those first sightings")


class ScanSighting(SQLModel, table=True):
    """A network's first scan of a code (time, then scan id) and the place shared on it; at most
    ``record.SOURCES_KEPT`` per code, the earliest networks to have been written."""

    __tablename__ = "scan_sighting"

    scope: str = Field(primary_key=True, max_length=4)
    code_id: int = Field(primary_key=True)
    network: str = Field(primary_key=True, max_length=16)
    first_at: datetime
    scan_id: int = Field(foreign_key="scan.id")
    place: str | None = Field(default=None, max_length=16)


class ScanBucket(SQLModel, table=True):
    """Scans per quarter hour (UTC), by people and by bots: the dashboard's months and years are sums of these."""

    __tablename__ = "scan_bucket"

    starts_at: datetime = Field(primary_key=True)
    people: int = Field(sa_column=Column(BigInteger, nullable=False))
    bots: int = Field(sa_column=Column(BigInteger, nullable=False))
