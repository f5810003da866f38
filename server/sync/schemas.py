from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from server.core.schemas import ApiInput, ApiModel


class SyncRequest(ApiInput):
    protocol_version: int = Field(ge=0, le=1_000_000)
    device_id: uuid.UUID


class PullRequest(SyncRequest):
    #: null for the first pull of a new replica
    cursor: str | None = Field(default=None, max_length=120)
    #: tickets per page (each with its children)
    limit: int = Field(default=200, ge=1, le=500)


class HydrateRequest(SyncRequest):
    ticket_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


class TableRows(ApiModel):
    table: str
    rows: list[dict[str, Any]]


class TableIds(ApiModel):
    table: str
    ids: list[str]


class ScopeIds(ApiModel):
    tickets: list[str]


class PullOut(ApiModel):
    cursor: str
    has_more: bool
    changes: list[TableRows]
    removals: list[TableIds]
    scope: ScopeIds | None
    wipe: bool
    #: the page's tickets carry all their children: nothing to hydrate
    complete: bool
    #: the last mutation sequence the server applied from this device
    last_sequence: int
    server_time: str


class HydrateOut(ApiModel):
    changes: list[TableRows]
