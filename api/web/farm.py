"""Workspace pages: growing areas, harvests and shipments of cooperatives and farms (being built; see issue #6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
