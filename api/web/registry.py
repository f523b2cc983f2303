"""Workspace pages: designation holders' rights, quotas and usage; the province's organisations, users
and designations registry (being built; see issue #6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
