"""The log's tables. Leaves, nodes, checkpoints and cosignatures are only ever added (triggers refuse the rest)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint, insert
from sqlmodel import Field, Session, SQLModel


class LogPending(SQLModel, table=True):
    """An event committed but not yet in the tree: written in the event's own transaction."""

    __tablename__ = "tlog_pending"

    event_id: str = Field(primary_key=True, max_length=36)


def enqueue(*, session: Session, event_ids: Sequence[str]) -> None:
    """Tell the sequencer these events exist, in their own transaction: one executemany for a whole call."""
    if event_ids:
        session.execute(insert(LogPending.__table__), [{"event_id": e} for e in event_ids])  # type: ignore[attr-defined]


class LogLeaf(SQLModel, table=True):
    """One entry of the tree: an event's public form and a salted commitment to all of it."""

    __tablename__ = "tlog_leaf"

    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_id: str = Field(foreign_key="event.id", unique=True, max_length=36)
    entry: str = Field(sa_column=Column(Text, nullable=False))  # the exact bytes hashed as the leaf (UTF-8 JSON)
    salt: str = Field(max_length=32)  # hex; private: shown only to those who may see the event in full


class LogNode(SQLModel, table=True):
    """The hash of a complete subtree: leaves [idx * 2**level, (idx + 1) * 2**level)."""

    __tablename__ = "tlog_node"

    level: int = Field(primary_key=True)
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(max_length=64)


class LogHead(SQLModel, table=True):
    """The tree as the sequencer left it (one row, locked while appending)."""

    __tablename__ = "tlog_head"

    id: int = Field(default=1, primary_key=True)
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    root: str = Field(max_length=64)


class LogCheckpoint(SQLModel, table=True):
    """A signed checkpoint (C2SP tlog-checkpoint) as published."""

    __tablename__ = "tlog_checkpoint"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: str = Field(max_length=64)
    note: str = Field(sa_column=Column(Text, nullable=False))  # the signed note, byte for byte
    key_name: str = Field(max_length=200)
    signed_at: datetime


class LogCosignature(SQLModel, table=True):
    """A witness's cosignature (C2SP tlog-cosignature) of a checkpoint, verified when received."""

    __tablename__ = "tlog_cosignature"
    __table_args__ = (UniqueConstraint("size", "witness"),)

    id: int | None = Field(default=None, primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    witness: str = Field(max_length=200)  # the witness key's name
    line: str = Field(sa_column=Column(Text, nullable=False))  # the signature line, as a note carries it
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))  # when the witness cosigned (Unix seconds)
    received_at: datetime
