from __future__ import annotations

from typing import Literal

from server.core.schemas import ApiModel


class Check(ApiModel):
    status: Literal["ok", "degraded", "down", "not_configured"]
    detail: str | None = None


class HealthOut(ApiModel):
    status: Literal["ok", "degraded", "down"]
    version: str
    database: Check
    migrations: Check
    email: Check
    redis: Check
    current_revision: str | None
    head_revision: str | None
