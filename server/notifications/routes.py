from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query

from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.notifications import events, service
from server.notifications.models import Notification
from server.notifications.schemas import (
    EventName,
    NotificationOut,
    PreferenceOut,
    PreferencesUpdate,
    ReadAllOut,
    UnreadCountOut,
)
from server.tickets.models import Ticket

router = api_router(prefix="/api/notifications", tags=["Notifications"])

# Everyone signed in has an inbox and sees only their own. API tokens need the
# tickets scopes: notifications are about tickets and the work around them.
Reader = Annotated[RequestContext, access("tickets:read")]
Writer = Annotated[RequestContext, access("tickets:write")]


def _out(item: Notification, ticket_number: str | None = None) -> NotificationOut:
    return NotificationOut(
        id=item.id,
        event=item.event,
        event_label=events.label(item.event),
        title=item.title,
        body=item.body,
        ticket_id=item.ticket_id,
        ticket_number=ticket_number,
        link=item.link,
        actor_id=item.actor_id,
        is_read=item.read_at is not None,
        read_at=item.read_at,
        created_at=item.created_at,
    )


@router.get("", summary="List my notifications, newest first.")
def list_notifications(
    ctx: Reader,
    params: ListQuery,
    unread: Annotated[bool | None, Query(description="true: only unread; false: only read")] = None,
    event: Annotated[EventName | None, Query()] = None,
    ticket_id: Annotated[uuid.UUID | None, Query(alias="ticketId")] = None,
) -> ListResponse[NotificationOut]:
    stmt = service.query_notifications(
        ctx.caller, unread=unread, event=event, ticket_id=ticket_id, q=params.q
    )
    stmt = apply_sort(
        stmt, params.sort, service.SORT_FIELDS, [Notification.created_at.desc()], Notification.id
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[_out(item, number) for item, number in rows], pagination=pagination)


@router.get("/unread-count", summary="How many of my notifications are unread (for a badge).")
def get_unread_count(ctx: Reader) -> DataResponse[UnreadCountOut]:
    return DataResponse(data=UnreadCountOut(unread=service.unread_count(ctx.session, ctx.caller)))


@router.patch("/{id}/read", summary="Mark one of my notifications read.")
def mark_read(ctx: Writer, id: uuid.UUID) -> DataResponse[NotificationOut]:
    item = service.mark_read(ctx.session, ctx.caller, id)
    number = None
    if item.ticket_id is not None:
        ticket = ctx.session.get(Ticket, item.ticket_id)
        number = ticket.number if ticket is not None and ticket.deleted_at is None else None
    return DataResponse(data=_out(item, number))


@router.post("/read-all", summary="Mark all my notifications read.")
def mark_all_read(ctx: Writer) -> DataResponse[ReadAllOut]:
    updated = service.mark_all_read(ctx.session, ctx.caller)
    unread = service.unread_count(ctx.session, ctx.caller)
    return DataResponse(data=ReadAllOut(updated=updated, unread=unread))


@router.get("/preferences", summary="How I receive each kind of notification.")
def get_preferences(ctx: Reader) -> DataResponse[list[PreferenceOut]]:
    return DataResponse(data=_prefs(service.preferences(ctx.session, ctx.caller)))


@router.put(
    "/preferences",
    summary="Choose in-app and email delivery per event; events not listed keep theirs.",
)
def put_preferences(ctx: Writer, body: PreferencesUpdate) -> DataResponse[list[PreferenceOut]]:
    result = service.set_preferences(ctx.session, ctx.caller, body.preferences)
    return DataResponse(data=_prefs(result))


def _prefs(items: list[dict[str, Any]]) -> list[PreferenceOut]:
    return [PreferenceOut(**item) for item in items]
