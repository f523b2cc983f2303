"""The scan table: when a label's page was viewed, from which (hashed) network, roughly where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

AGENTS = ("mobile", "desktop", "bot", "other")
KINDS = ("page", "json", "linkset", "check")


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
