"""Rows for the cross-tenant walk (tests/test_tenancy.py), one module per domain.

Each module defines ``seed(domain: DomainSeed) -> None`` and makes, through the API
wherever a route exists, at least one row in every table its domain owns. Modules
run in name order (prefix them 10_, 20_, ... when one needs another's rows); what
a module makes for later ones goes into ``domain.made``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from server.core.engine import Database


@dataclass
class DomainSeed:
    client: httpx.Client
    world: Any  # tests.conftest.World
    db: Database
    marker: str
    tenant_id: uuid.UUID
    #: headers of the organization admin
    admin: dict[str, str]
    #: headers per caller: org_admin, api_token, agent, technician, requester
    callers: dict[str, dict[str, str]]
    #: created users by role value (API output: id, email, ...)
    users: dict[str, dict[str, Any]]
    department: dict[str, Any]
    made: dict[str, Any] = field(default_factory=dict)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, f"{response.request.url}: {response.text}"
        return response.json()["data"] if response.content else None
