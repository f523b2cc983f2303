"""Master data keeps its history: each edit stores a new version; events cite the version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, select

from trace.platform.timeutil import utcnow

# Columns that say how a row was written, not what it is: kept out of its versions.
NOT_MASTER_DATA = {"request_key"}


class MasterVersion(SQLModel, table=True):
    """A snapshot of an organisation, location or product as it stood from ``valid_from``."""

    __tablename__ = "master_version"
    __table_args__ = (UniqueConstraint("entity", "entity_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=20)
    entity_id: int
    version: int
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    valid_from: datetime = Field(default_factory=utcnow)
    recorded_by_user_id: int | None = None


def snapshot(*, session: Session, entity: str, row: SQLModel, user_id: int | None) -> MasterVersion:
    """Store the row's current state as its version ``row.version``."""
    data = row.model_dump(mode="json", exclude=NOT_MASTER_DATA)
    version = MasterVersion(
        entity=entity,
        entity_id=data["id"],
        version=data["version"],
        data=data,
        recorded_by_user_id=user_id,
    )
    session.add(version)
    return version


def version_at(*, session: Session, entity: str, entity_id: int, version: int) -> dict[str, Any]:
    """The data of one version of a master record."""
    row = session.exec(
        select(MasterVersion).where(
            MasterVersion.entity == entity,
            MasterVersion.entity_id == entity_id,
            MasterVersion.version == version,
        )
    ).first()
    return dict(row.data) if row else {}


def history(*, session: Session, entity: str, entity_id: int) -> list[MasterVersion]:
    """All versions of one master record, oldest first."""
    return list(
        session.exec(
            select(MasterVersion)
            .where(MasterVersion.entity == entity, MasterVersion.entity_id == entity_id)
            .order_by(MasterVersion.version)  # type: ignore[arg-type]
        )
    )
