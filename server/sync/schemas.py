from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from server.core.schemas import ApiInput, ApiModel


class SyncRequest(ApiInput):
    protocol_version: int = Field(ge=0, le=1_000_000)
    device_id: uuid.UUID
    #: the app's version ("1.4.2"), checked against the server's minimum
    client_version: str | None = Field(default=None, max_length=40, pattern=r"^\d+(\.\d+){0,3}$")


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
    #: on the first page of a first download: how many tickets it brings (progress)
    tickets_total: int | None = None
    server_time: str


class HydrateOut(ApiModel):
    changes: list[TableRows]


class MutationIn(BaseModel):
    """One queued edit: its id, sequence and kind, and the kind's own fields
    (docs/sync-protocol.md, "Mutation kinds"), which the server checks per kind."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)

    id: uuid.UUID
    seq: int = Field(ge=1, le=2**62)
    kind: str = Field(min_length=1, max_length=40)
    #: when it happened on the device (kept for the timeline; never used to merge)
    at: datetime | None = None


class PushRequest(SyncRequest):
    sent_at: datetime | None = None
    mutations: list[MutationIn] = Field(min_length=1, max_length=100)


class MutationResult(ApiModel):
    id: str
    seq: int
    verdict: Literal["applied", "merged", "conflict", "rejected"]
    code: str | None = None
    message: str | None = None
    conflicts: list[dict[str, Any]] = Field(default_factory=list)
    rows: list[TableRows] = Field(default_factory=list)


class PushOut(ApiModel):
    last_sequence: int
    results: list[MutationResult]


class ConflictOut(ApiModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    ticket_number: str
    field: str
    base: Any
    mine: Any
    server: Any
    device_id: uuid.UUID | None
    user_id: uuid.UUID | None
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class DeviceOut(ApiModel):
    id: uuid.UUID
    user_id: uuid.UUID
    client: str
    created_at: datetime
    last_seen_at: datetime
    last_sequence: int
    clock_skew_seconds: int | None
    wipe_requested_at: datetime | None
    wiped_at: datetime | None


class VerifyRequest(SyncRequest):
    cursor: str | None = Field(default=None, max_length=120)


class TableDigestOut(ApiModel):
    table: str
    count: int
    sha256: str


class VerifyOut(ApiModel):
    #: the organization changed after the cursor: sync, then verify again
    stale: bool
    tables: list[TableDigestOut]


class VersionsOut(ApiModel):
    min_protocol: int
    max_protocol: int
    min_client_version: str
    latest_client_version: str
