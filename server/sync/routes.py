"""The sync endpoints (docs/sync-protocol.md): thin; the rules are in the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Query

from server.auth.deps import RequestContext, access
from server.core.db import utcnow
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import ERROR, api_router
from server.core.schemas import DataResponse, ListResponse
from server.sync import push as push_service
from server.sync import service, wire
from server.sync.models import SyncConflict, SyncDevice
from server.sync.schemas import (
    ConflictOut,
    DeviceOut,
    HydrateOut,
    HydrateRequest,
    MutationResult,
    PullOut,
    PullRequest,
    PushOut,
    PushRequest,
    ScopeIds,
    TableDigestOut,
    TableIds,
    TableRows,
    VerifyOut,
    VerifyRequest,
    VersionsOut,
)

router = api_router(prefix="/api/sync", tags=["Sync"])
SYNC_ERRORS: dict[int | str, dict[str, Any]] = {
    410: {
        **ERROR,
        "description": "RESYNC_REQUIRED: download the scope again, keep the outbox; or "
        "DEVICE_WIPED: an administrator ordered this replica deleted",
    },
    426: {**ERROR, "description": "UPGRADE_REQUIRED: this app's protocol is not supported"},
}

# Every signed-in person may keep a replica of what they may see (pull reads; push
# writes, each edit then checked as the API checks it).
Syncer = Annotated[RequestContext, access("sync:read")]
Pusher = Annotated[RequestContext, access("sync:write")]
Wiper = Annotated[RequestContext, access("sync:write")]
CONFLICT_SORT = {"createdAt": SyncConflict.created_at, "field": SyncConflict.field}
DEVICE_SORT = {"lastSeenAt": SyncDevice.last_seen_at, "createdAt": SyncDevice.created_at}


def _changes(page: service.Page) -> list[TableRows]:
    return [TableRows(table=name, rows=rows) for name, rows in page.changes.items()]


@router.get("/versions", summary="The protocol versions and app versions this server serves.")
def versions(ctx: Syncer) -> DataResponse[VersionsOut]:
    return DataResponse(data=VersionsOut.model_validate(service.versions(ctx.settings)))


@router.post(
    "/pull",
    responses=SYNC_ERRORS,
    summary="Changes of the caller's scope above a cursor, a page at a time.",
)
def pull(ctx: Syncer, body: PullRequest) -> DataResponse[PullOut]:
    service.check_protocol(body.protocol_version, ctx.settings, body.client_version)
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
            tickets_total=page.tickets_total,
            server_time=wire.timestamp(utcnow()),
        )
    )


@router.post(
    "/hydrate",
    responses=SYNC_ERRORS,
    summary="Tickets new to a replica, each with all its history.",
)
def hydrate(ctx: Syncer, body: HydrateRequest) -> DataResponse[HydrateOut]:
    service.check_protocol(body.protocol_version, ctx.settings, body.client_version)
    page = service.hydrate(
        ctx.session, ctx.caller, device_id=body.device_id, ticket_ids=body.ticket_ids
    )
    return DataResponse(data=HydrateOut(changes=_changes(page)))


@router.post(
    "/verify", responses=SYNC_ERRORS, summary="Row counts and hashes a replica should match."
)
def verify(ctx: Syncer, body: VerifyRequest) -> DataResponse[VerifyOut]:
    service.check_protocol(body.protocol_version, ctx.settings, body.client_version)
    stale, digests = service.verify(
        ctx.session, ctx.caller, device_id=body.device_id, cursor=body.cursor
    )
    return DataResponse(
        data=VerifyOut(
            stale=stale,
            tables=[TableDigestOut(table=d.table, count=d.count, sha256=d.sha256) for d in digests],
        )
    )


@router.post("/push", responses=SYNC_ERRORS, summary="Queued edits of a replica, each judged once.")
def push(ctx: Pusher, body: PushRequest) -> DataResponse[PushOut]:
    service.check_protocol(body.protocol_version, ctx.settings, body.client_version)
    result = push_service.push(
        ctx.session,
        ctx.caller,
        device_id=body.device_id,
        sent_at=body.sent_at,
        mutations=[m.model_dump() for m in body.mutations],
        client=ctx.request.headers.get("user-agent", ""),
    )
    return DataResponse(
        data=PushOut(
            last_sequence=result.last_sequence,
            results=[MutationResult.model_validate(r) for r in result.results],
        )
    )


@router.get("/conflicts", summary="Edits that met another change of the same field.")
def list_conflicts(
    ctx: Syncer,
    params: ListQuery,
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
) -> ListResponse[ConflictOut]:
    stmt = service.query_conflicts(ctx.caller, status=status)
    stmt = apply_sort(stmt, params.sort, CONFLICT_SORT, [SyncConflict.created_at], SyncConflict.id)
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(
        data=[_conflict_out(conflict, number) for conflict, number in rows],
        pagination=pagination,
    )


def _conflict_out(conflict: SyncConflict, number: str) -> ConflictOut:
    fields = {
        name: getattr(conflict, name)
        for name in ConflictOut.model_fields
        if name != "ticket_number"
    }
    return ConflictOut.model_validate({**fields, "ticket_number": number})


@router.get("/devices", summary="Replicas: your own, or everyone's for an organization admin.")
def list_devices(ctx: Syncer, params: ListQuery) -> ListResponse[DeviceOut]:
    stmt = apply_sort(
        service.query_devices(ctx.caller),
        params.sort,
        DEVICE_SORT,
        [SyncDevice.last_seen_at.desc()],
        SyncDevice.id,
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[DeviceOut.model_validate(d) for d in rows], pagination=pagination)


@router.post("/devices/{id}/wipe", summary="Order a remote wipe of a replica at its next sync.")
def wipe_device(ctx: Wiper, id: uuid.UUID) -> DataResponse[DeviceOut]:
    return DataResponse(
        data=DeviceOut.model_validate(service.order_wipe(ctx.session, ctx.caller, id))
    )
