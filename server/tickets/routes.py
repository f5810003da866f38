from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Response
from fastapi.responses import FileResponse

from common.enums import Role
from common.errors import ErrorCode
from common.tickets import Priority, TicketType
from common.workflow import StatusCategory, TicketStatus
from server.auth.deps import RequestContext, access
from server.core.db import utcnow
from server.core.errors import ApiError, NotFound, PermissionDenied
from server.core.listing import ListParams, ListQuery, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ErrorResponse, ListResponse
from server.core.tenancy import Caller
from server.organizations.models import Organization
from server.tickets import automation, service
from server.tickets.models import Ticket
from server.tickets.schemas import (
    ActionBody,
    ApproveBody,
    AssignBody,
    AttachmentCreate,
    AttachmentOut,
    CloseBody,
    CommentCreate,
    CommentOut,
    FinishWorkBody,
    HistoryEntry,
    LinkCreate,
    MergeBody,
    NoneFilter,
    RejectBody,
    SearchFilters,
    SetSlaBody,
    StatusBody,
    TicketCost,
    TicketCreate,
    TicketDetailOut,
    TicketOut,
    TicketRef,
    TicketSearch,
    TicketSettings,
    TicketSettingsUpdate,
    TicketUpdate,
    TransitionOut,
    WaitingRunOut,
)
from server.tickets.visibility import STAFF_ONLY_FIELDS, get_visible, sees_internal
from server.uploads import service as uploads
from server.uploads.models import Upload

router = api_router(prefix="/api/tickets", tags=["Tickets"])
settings_router = api_router(prefix="/api/ticket-settings", tags=["Tickets"])
automation_router = api_router(prefix="/api/automation", tags=["Tickets"])

Reader = Annotated[RequestContext, access("tickets:read")]
Writer = Annotated[RequestContext, access("tickets:write")]
SettingsWriter = Annotated[RequestContext, access("tickets:write", Role.ORG_ADMIN)]
Desk = Annotated[RequestContext, access("tickets:write", Role.ORG_ADMIN, Role.AGENT)]

#: counting a list stops here; beyond it the total is a lower bound (``totalCapped``)
COUNT_LIMIT = 1_000


def _out(ticket: Ticket, caller: Caller) -> TicketOut:
    out = TicketOut.model_validate(ticket)
    if not sees_internal(caller):
        for field in STAFF_ONLY_FIELDS:
            setattr(out, field, None)
    return out


def _detail(ctx: RequestContext, ticket: Ticket) -> TicketDetailOut:
    base = _out(ticket, ctx.caller).model_dump()
    related = service.related(ctx.session, ctx.caller, ticket)
    refs = {k: [TicketRef.model_validate(t) for t in v] for k, v in related.items()}
    transitions = [
        TransitionOut(name=t.name, target=t.target, description=t.description)
        for t in service.transitions_for(ctx.session, ctx.caller, ticket)
    ]
    rate = automation.settings_of(_organization_of(ctx, ticket)).labor_rate_cents_per_hour
    labor = round(ticket.minutes_worked * rate / 60)
    cost = TicketCost(
        parts_cents=ticket.parts_cost_cents,
        minutes_worked=ticket.minutes_worked,
        labor_rate_cents_per_hour=rate,
        labor_cents=labor,
        total_cents=ticket.parts_cost_cents + labor,
    )
    return TicketDetailOut(
        **base,
        cost=cost if sees_internal(ctx.caller) else None,
        available_transitions=transitions,
        blocked_by=refs["blocked_by"],
        blocking=refs["blocking"],
        children=refs["children"],
    )


def _organization_of(ctx: RequestContext, ticket: Ticket) -> Organization:
    org = ctx.session.get(Organization, ticket.organization_id)
    assert org is not None  # a ticket's organization exists while the ticket does
    return org


def _etag(ticket: Ticket, caller: Caller) -> str:
    # The representation depends on the row's version and on what the caller may see.
    view = "staff" if sees_internal(caller) else "requester"
    return f'W/"{ticket.id.hex}.{ticket.change_position}.{view}.{caller.user_id.hex[:8]}"'


def _respond(ctx: RequestContext, ticket: Ticket, response: Response) -> DataResponse[Any]:
    ctx.session.flush()
    response.headers["ETag"] = _etag(ticket, ctx.caller)
    return DataResponse(data=_detail(ctx, ticket))


def _check_if_match(ticket: Ticket, caller: Caller, if_match: str | None) -> None:
    if (
        if_match
        and if_match.strip() != "*"
        and _etag(ticket, caller) not in {tag.strip() for tag in if_match.split(",")}
    ):
        raise ApiError(
            "The ticket changed since you read it; reload it and try again",
            code=ErrorCode.PRECONDITION_FAILED,
            status_code=412,
            details={"currentETag": _etag(ticket, caller)},
        )


def _filters(
    status: Annotated[list[TicketStatus] | None, Query()] = None,
    status_category: Annotated[list[StatusCategory] | None, Query(alias="statusCategory")] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    ticket_type: Annotated[list[TicketType] | None, Query(alias="type")] = None,
    assignee_id: Annotated[
        list[uuid.UUID | NoneFilter] | None,
        Query(alias="assigneeId", description="A technician's id, or `none`: no technician"),
    ] = None,
    assigned_to_me: Annotated[bool | None, Query(alias="assignedToMe")] = None,
    unassigned: Annotated[
        bool | None, Query(description="No technician yet (the same as `assigneeId=none`)")
    ] = None,
    team_id: Annotated[
        list[uuid.UUID | NoneFilter] | None,
        Query(alias="teamId", description="A team's id, or `none`: in no team's queue"),
    ] = None,
    requester_id: Annotated[list[uuid.UUID] | None, Query(alias="requesterId")] = None,
    department_id: Annotated[list[uuid.UUID] | None, Query(alias="departmentId")] = None,
    site_id: Annotated[list[uuid.UUID] | None, Query(alias="siteId")] = None,
    building_id: Annotated[list[uuid.UUID] | None, Query(alias="buildingId")] = None,
    room_id: Annotated[list[uuid.UUID] | None, Query(alias="roomId")] = None,
    tag: Annotated[list[str] | None, Query(max_length=40)] = None,
    category: Annotated[str | None, Query(max_length=80)] = None,
    created_after: Annotated[datetime | date | None, Query(alias="createdAfter")] = None,
    created_before: Annotated[datetime | date | None, Query(alias="createdBefore")] = None,
    updated_after: Annotated[datetime | date | None, Query(alias="updatedAfter")] = None,
    updated_before: Annotated[datetime | date | None, Query(alias="updatedBefore")] = None,
    sla_breached: Annotated[bool | None, Query(alias="slaBreached")] = None,
    sla_due_within: Annotated[
        int | None,
        Query(alias="slaDueWithinMinutes", ge=1, le=60 * 24 * 30, description="Due soon"),
    ] = None,
) -> SearchFilters:
    values = {
        "status": status,
        "status_category": status_category,
        "priority": priority,
        "ticket_type": ticket_type,
        "assignee_ids": assignee_id,
        "assigned_to_me": assigned_to_me,
        "unassigned": unassigned,
        "team_ids": team_id,
        "requester_ids": requester_id,
        "departments": department_id,
        "site_ids": site_id,
        "building_ids": building_id,
        "room_ids": room_id,
        "tags": tag,
        "category": category,
        "created_after": created_after,
        "created_before": created_before,
        "updated_after": updated_after,
        "updated_before": updated_before,
        "sla_breached": sla_breached,
        "sla_due_within_minutes": sla_due_within,
    }
    return SearchFilters.model_validate(values)


def _list(
    ctx: RequestContext,
    filters: SearchFilters,
    text: str | None,
    sort: list[tuple[str, bool]],
    params: ListParams,
) -> ListResponse[TicketOut]:
    dialect = ctx.session.get_bind().dialect.name
    stmt = service.query(ctx.caller, filters, text=text, dialect=dialect)
    stmt = service.order(stmt, sort)
    rows, pagination = paginate(
        ctx.session,
        stmt,
        params,
        count_limit=COUNT_LIMIT,
        count_stmt=stmt.with_only_columns(Ticket.id, maintain_column_froms=True),
    )
    return ListResponse(data=[_out(t, ctx.caller) for t in rows], pagination=pagination)


Filters = Annotated[SearchFilters, Depends(_filters)]


@router.get("", summary="List tenant-scoped tickets.")
def list_tickets(ctx: Reader, params: ListQuery, filters: Filters) -> ListResponse[TicketOut]:
    return _list(ctx, filters, params.q, service.parse_sort(params.sort), params)


@router.post("/search", summary="Search tickets with structured filters and full text.")
def search_tickets(ctx: Reader, body: TicketSearch) -> ListResponse[TicketOut]:
    params = ListParams(page=body.page, per_page=body.size, sort=None, q=body.query)
    sort = [(key.field, key.order == "desc") for key in body.sort]
    return _list(ctx, body.filters, body.query, sort, params)


@router.post("", status_code=201, summary="Create a tenant-scoped ticket.")
def create_ticket(
    ctx: Writer, body: TicketCreate, response: Response
) -> DataResponse[TicketDetailOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    ticket = service.create(ctx.session, ctx.caller, organization_id=org_id, data=body)
    response.headers["Location"] = f"/api/tickets/{ticket.id}"
    return _respond(ctx, ticket, response)


@router.get(
    "/{id}",
    summary="View one tenant-scoped ticket.",
    response_model=DataResponse[TicketDetailOut],
    responses={304: {"description": "Not modified since the ETag given in If-None-Match"}},
)
def get_ticket(
    ctx: Reader,
    id: uuid.UUID,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=400)] = None,
) -> Any:
    ticket = get_visible(ctx.session, ctx.caller, id)
    etag = _etag(ticket, ctx.caller)
    if if_none_match and etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": etag})
    return _respond(ctx, ticket, response)


@router.patch(
    "/{id}",
    summary="Update tenant-scoped ticket fields.",
    responses={412: {"model": ErrorResponse, "description": "If-Match names an older version"}},
)
def update_ticket(
    ctx: Writer,
    id: uuid.UUID,
    body: TicketUpdate,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=400)] = None,
) -> DataResponse[TicketDetailOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    _check_if_match(ticket, ctx.caller, if_match)
    service.update(ctx.session, ctx.caller, ticket, body)
    return _respond(ctx, ticket, response)


@router.get("/{id}/history", summary="One timeline of comments, notes and changes.")
def ticket_history(ctx: Reader, id: uuid.UUID) -> DataResponse[list[HistoryEntry]]:
    ticket = get_visible(ctx.session, ctx.caller, id)
    entries = service.history(ctx.session, ctx.caller, ticket)
    return DataResponse(data=[HistoryEntry.model_validate(e) for e in entries])


# --- comments and notes --------------------------------------------------------------


@router.get("/{id}/comments", summary="List a ticket's public comments.")
def list_comments(ctx: Reader, id: uuid.UUID) -> DataResponse[list[CommentOut]]:
    ticket = get_visible(ctx.session, ctx.caller, id)
    rows = [c for c in service.comments(ctx.session, ctx.caller, ticket) if not c.is_internal]
    return DataResponse(data=[CommentOut.model_validate(c) for c in rows])


@router.post("/{id}/comments", status_code=201, summary="Add a public ticket comment.")
def add_comment(ctx: Writer, id: uuid.UUID, body: CommentCreate) -> DataResponse[CommentOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    comment = service.add_comment(
        ctx.session, ctx.caller, ticket, body=body.body, internal=False,
        minutes_worked=body.minutes_worked,
    )  # fmt: skip
    return DataResponse(data=CommentOut.model_validate(comment))


@router.get("/{id}/internal-notes", summary="List a ticket's staff-only notes.")
def list_notes(ctx: Reader, id: uuid.UUID) -> DataResponse[list[CommentOut]]:
    if not sees_internal(ctx.caller):
        raise PermissionDenied("Internal notes are for staff")
    ticket = get_visible(ctx.session, ctx.caller, id)
    rows = [c for c in service.comments(ctx.session, ctx.caller, ticket) if c.is_internal]
    return DataResponse(data=[CommentOut.model_validate(c) for c in rows])


@router.post("/{id}/internal-notes", status_code=201, summary="Add a staff-only internal note.")
def add_note(ctx: Writer, id: uuid.UUID, body: CommentCreate) -> DataResponse[CommentOut]:
    if not sees_internal(ctx.caller):
        raise PermissionDenied("Internal notes are for staff")
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    comment = service.add_comment(
        ctx.session, ctx.caller, ticket, body=body.body, internal=True,
        minutes_worked=body.minutes_worked,
    )  # fmt: skip
    return DataResponse(data=CommentOut.model_validate(comment))


# --- attachments ----------------------------------------------------------------------


@router.get("/{id}/attachments", summary="List a ticket's attachments.")
def list_attachments(ctx: Reader, id: uuid.UUID) -> DataResponse[list[AttachmentOut]]:
    ticket = get_visible(ctx.session, ctx.caller, id)
    rows = service.attachments(ctx.session, ctx.caller, ticket)
    return DataResponse(data=[AttachmentOut.model_validate(a) for a in rows])


@router.post("/{id}/attachments", status_code=201, summary="Attach a private file to a ticket.")
def add_attachment(
    ctx: Writer, id: uuid.UUID, body: AttachmentCreate
) -> DataResponse[AttachmentOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    attachment = service.add_attachment(
        ctx.session, ctx.caller, ticket, storage_key=body.storage_key, internal=body.is_internal
    )
    return DataResponse(data=AttachmentOut.model_validate(attachment))


@router.get(
    "/{id}/attachments/{attachment_id}/download",
    summary="Download an attachment (only for those who may see the ticket).",
    response_class=FileResponse,
)
def download_attachment(ctx: Reader, id: uuid.UUID, attachment_id: uuid.UUID) -> FileResponse:
    ticket = get_visible(ctx.session, ctx.caller, id)
    attachment = service.get_attachment(ctx.session, ctx.caller, ticket, attachment_id)
    upload = ctx.session.get(Upload, attachment.upload_id)
    if upload is None:
        raise NotFound("File")
    return uploads.download_response(upload, data_dir=ctx.settings.data_dir)


# --- assignment and workflow -----------------------------------------------------------


@router.patch("/{id}/assign", summary="Assign or reassign a ticket.")
def assign_ticket(
    ctx: Writer, id: uuid.UUID, body: AssignBody, response: Response
) -> DataResponse[TicketDetailOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    service.assign(
        ctx.session,
        ctx.caller,
        ticket,
        fields=body.model_fields_set & {"assignee_id", "team_id"},
        assignee_id=body.assignee_id,
        team_id=body.team_id,
        note=body.note,
    )
    return _respond(ctx, ticket, response)


def _act(
    ctx: RequestContext,
    id: uuid.UUID,
    target: TicketStatus,
    response: Response,
    *,
    note: str | None = None,
    resolution_notes: str | None = None,
    root_cause: str | None = None,
) -> DataResponse[Any]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    service.transition(
        ctx.session, ticket, target, caller=ctx.caller, note=note,
        resolution_notes=resolution_notes, root_cause=root_cause,
    )  # fmt: skip
    return _respond(ctx, ticket, response)


@router.patch("/{id}/status", summary="Update ticket workflow status.")
def set_status(
    ctx: Writer, id: uuid.UUID, body: StatusBody, response: Response
) -> DataResponse[TicketDetailOut]:
    return _act(ctx, id, body.status, response, note=body.note,
                resolution_notes=body.resolution_notes)  # fmt: skip


@router.patch("/{id}/close", summary="Resolve or close a ticket.")
def close_ticket(
    ctx: Writer, id: uuid.UUID, body: CloseBody, response: Response
) -> DataResponse[TicketDetailOut]:
    return _act(ctx, id, TicketStatus(body.status), response, note=body.note,
                resolution_notes=body.resolution_notes, root_cause=body.root_cause)  # fmt: skip


@router.patch("/{id}/reopen", summary="Reopen a resolved or closed ticket.")
def reopen_ticket(
    ctx: Writer, id: uuid.UUID, body: ActionBody, response: Response
) -> DataResponse[TicketDetailOut]:
    return _act(ctx, id, TicketStatus.OPEN, response, note=body.note)


@router.post("/{id}/resolve", summary="Resolve: the work is done; the requester is asked.")
def resolve_ticket(
    ctx: Writer, id: uuid.UUID, body: ActionBody, response: Response
) -> DataResponse[TicketDetailOut]:
    return _act(ctx, id, TicketStatus.RESOLVED, response, note=body.note,
                resolution_notes=body.resolution_notes, root_cause=body.root_cause)  # fmt: skip


@router.post("/{id}/start-work", summary="Start (or resume) work on a ticket.")
def start_work(
    ctx: Writer, id: uuid.UUID, body: ActionBody, response: Response
) -> DataResponse[TicketDetailOut]:
    return _act(ctx, id, TicketStatus.IN_PROGRESS, response, note=body.note)


@router.post("/{id}/finish-work", summary="Finish work: resolve with resolution notes.")
def finish_work(
    ctx: Writer, id: uuid.UUID, body: FinishWorkBody, response: Response
) -> DataResponse[TicketDetailOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    service.transition(
        ctx.session, ticket, TicketStatus.RESOLVED, caller=ctx.caller,
        resolution_notes=body.resolution_notes, root_cause=body.root_cause,
    )  # fmt: skip
    if body.minutes_worked:
        ticket.minutes_worked += body.minutes_worked
    return _respond(ctx, ticket, response)


@router.post("/{id}/approve", summary="The requester accepts the resolution; the ticket closes.")
def approve_resolution(
    ctx: Writer, id: uuid.UUID, body: ApproveBody, response: Response
) -> DataResponse[TicketDetailOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    service.transition(ctx.session, ticket, TicketStatus.CLOSED, caller=ctx.caller, note=body.note)
    if body.satisfaction_rating is not None or body.satisfaction_comment is not None:
        service.update(
            ctx.session,
            ctx.caller,
            ticket,
            TicketUpdate.model_validate(
                body.model_dump(
                    include={"satisfaction_rating", "satisfaction_comment"}, exclude_none=True
                )
            ),
        )
    return _respond(ctx, ticket, response)


@router.post("/{id}/reject", summary="The requester rejects the resolution; work resumes.")
def reject_resolution(
    ctx: Writer, id: uuid.UUID, body: RejectBody, response: Response
) -> DataResponse[TicketDetailOut]:
    return _act(ctx, id, TicketStatus.IN_PROGRESS, response, note=body.reason)


@router.post("/{id}/cancel", summary="Withdraw a ticket: no work will be done.")
def cancel_ticket(
    ctx: Writer, id: uuid.UUID, body: ActionBody, response: Response
) -> DataResponse[TicketDetailOut]:
    return _act(ctx, id, TicketStatus.CANCELLED, response, note=body.note)


@router.post("/{id}/set-sla", summary="Set the ticket's SLA deadlines by hand.")
def set_sla(
    ctx: Writer, id: uuid.UUID, body: SetSlaBody, response: Response
) -> DataResponse[TicketDetailOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    service.set_sla(
        ctx.session, ctx.caller, ticket, response_due_at=body.response_due_at,
        resolution_due_at=body.resolution_due_at, reason=body.reason,
    )  # fmt: skip
    return _respond(ctx, ticket, response)


# --- links and merge -------------------------------------------------------------------


@router.post("/{id}/blockers", status_code=201, summary="Record that another ticket blocks this.")
def add_blocker(
    ctx: Writer, id: uuid.UUID, body: LinkCreate, response: Response
) -> DataResponse[TicketDetailOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    service.add_blocker(ctx.session, ctx.caller, ticket, body.blocker_id)
    return _respond(ctx, ticket, response)


@router.delete("/{id}/blockers/{blocker_id}", summary="Remove a blocker.")
def remove_blocker(
    ctx: Writer, id: uuid.UUID, blocker_id: uuid.UUID, response: Response
) -> DataResponse[TicketDetailOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    service.remove_blocker(ctx.session, ctx.caller, ticket, blocker_id)
    return _respond(ctx, ticket, response)


@router.post("/{id}/merge", summary="Merge a duplicate into another ticket.")
def merge_ticket(
    ctx: Writer, id: uuid.UUID, body: MergeBody, response: Response
) -> DataResponse[TicketDetailOut]:
    ticket = get_visible(ctx.session, ctx.caller, id, for_update=True)
    target = service.merge(ctx.session, ctx.caller, ticket, into_id=body.into_id, note=body.note)
    return _respond(ctx, target, response)


# --- settings and the waiting-on-requester rules -------------------------------------


@settings_router.get("", summary="Read the organization's ticket settings and categories.")
def get_ticket_settings(ctx: Reader) -> DataResponse[TicketSettings]:
    return DataResponse(data=automation.settings_of(ctx.organization()))


@settings_router.patch("", summary="Update the organization's ticket settings.")
def update_ticket_settings(
    ctx: SettingsWriter, body: TicketSettingsUpdate
) -> DataResponse[TicketSettings]:
    org = ctx.organization(body.organization_id)
    settings = automation.update_settings(ctx.session, caller=ctx.caller, org=org, changes=body)
    return DataResponse(data=settings)


@automation_router.post(
    "/waiting-reminders",
    summary="Remind requesters who have not answered, and close tickets that waited too long.",
)
def run_waiting_reminders(ctx: Desk) -> DataResponse[WaitingRunOut]:
    result = automation.run_waiting_rules(ctx.session, ctx.organization().id, utcnow())
    return DataResponse(data=WaitingRunOut(reminded=result.reminded, closed=result.closed))
