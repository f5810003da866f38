"""The sync endpoints (docs/sync-protocol.md): thin; the rules are in the service."""

from __future__ import annotations

from typing import Annotated, Any

from server.auth.deps import RequestContext, access
from server.core.db import utcnow
from server.core.routing import ERROR, api_router
from server.core.schemas import DataResponse
from server.sync import service, wire
from server.sync.schemas import (
    HydrateOut,
    HydrateRequest,
    PullOut,
    PullRequest,
    ScopeIds,
    TableIds,
    TableRows,
)

router = api_router(prefix="/api/sync", tags=["Sync"])
SYNC_ERRORS: dict[int | str, dict[str, Any]] = {
    410: {**ERROR, "description": "RESYNC_REQUIRED: download the scope again, keep the outbox"},
    426: {**ERROR, "description": "UPGRADE_REQUIRED: this app's protocol is not supported"},
}

# Every signed-in person may keep a replica of what they may see.
Syncer = Annotated[RequestContext, access("sync:read")]


def _changes(page: service.Page) -> list[TableRows]:
    return [TableRows(table=name, rows=rows) for name, rows in page.changes.items()]


@router.post(
    "/pull",
    responses=SYNC_ERRORS,
    summary="Changes of the caller's scope above a cursor, a page at a time.",
)
def pull(ctx: Syncer, body: PullRequest) -> DataResponse[PullOut]:
    service.check_protocol(body.protocol_version)
    page = service.pull(
        ctx.session,
        ctx.caller,
        device_id=body.device_id,
        cursor=body.cursor,
        limit=body.limit,
        client=ctx.request.headers.get("user-agent", ""),
    )
    return DataResponse(
        data=PullOut(
            cursor=page.cursor,
            has_more=page.has_more,
            changes=_changes(page),
            removals=[TableIds(table=name, ids=ids) for name, ids in page.removals.items()],
            scope=None if page.scope is None else ScopeIds(tickets=page.scope),
            wipe=page.wipe,
            complete=page.complete,
            last_sequence=page.last_sequence,
            server_time=wire.timestamp(utcnow()),
        )
    )


@router.post(
    "/hydrate",
    responses=SYNC_ERRORS,
    summary="Tickets new to a replica, each with all its history.",
)
def hydrate(ctx: Syncer, body: HydrateRequest) -> DataResponse[HydrateOut]:
    service.check_protocol(body.protocol_version)
    page = service.hydrate(
        ctx.session, ctx.caller, device_id=body.device_id, ticket_ids=body.ticket_ids
    )
    return DataResponse(data=HydrateOut(changes=_changes(page)))
