"""Workspace pages: receiving, transforming, packing, printing labels, storing and selling (being built; see issue #6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
