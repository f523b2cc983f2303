"""Column types shared by the table models."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


def enum_type(enum: type[StrEnum], length: int = 30) -> sa.Enum:
    """An enum stored as its plain string value (VARCHAR): new members need no migration."""
    return sa.Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


def fast_row(model: type[T], **values: Any) -> T:
    """A new table-model instance without SQLModel's per-field ``__init__`` (about 10× cheaper).

    For the capture hot path only: the caller passes every column's value, already valid
    (no defaults are applied and nothing is validated), exactly as rows loaded from the
    database are built.
    """
    row = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    row.__dict__.update(values)
    return row  # type: ignore[no-any-return]


def fast_model(model: type[T], values: dict[str, Any]) -> T:
    """A non-table model from already-valid values, every field given: pydantic's
    ``model_construct`` without its per-field default handling (a recall trace builds thousands)."""
    row = model.__new__(model)  # type: ignore[call-overload]
    object.__setattr__(row, "__dict__", values)
    object.__setattr__(row, "__pydantic_fields_set__", set(values))
    object.__setattr__(row, "__pydantic_extra__", None)
    object.__setattr__(row, "__pydantic_private__", None)
    return row  # type: ignore[no-any-return]


IN_CHUNK = 900  # values per IN list: under SQLite's old limit of 999 parameters in a statement


def in_chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """``values`` in slices small enough for one IN list on either database."""
    for i in range(0, len(values), IN_CHUNK):
        yield values[i : i + IN_CHUNK]
