"""Workspace pages: a lot, its trace forward and backward, and its exports (being built; see issue #6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
