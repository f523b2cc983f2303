"""Workspace pages: verifying, inspecting, holds and recalls; designation holders' rights; the province's registry (being built; see issue #6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
