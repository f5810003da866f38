from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from common.enums import Role
from common.tickets import Priority, TicketType
from server.auth.deps import RequestContext, access
from server.core.db import utcnow
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.sla import scan as sla_scan
from server.sla import service
from server.sla.models import BusinessCalendar, SlaRule
from server.sla.schemas import (
    CalendarCreate,
    CalendarOut,
    CalendarUpdate,
    HolidayCreate,
    HolidayOut,
    ScanOut,
    SlaRuleCreate,
    SlaRuleOut,
    SlaRuleUpdate,
)

rules = api_router(prefix="/api/sla-rules", tags=["SLA"])
calendars = api_router(prefix="/api/business-calendars", tags=["SLA"])
automation = api_router(prefix="/api/automation", tags=["SLA"])

# Staff read the policies (they see the deadlines on tickets); admins change them.
Reader = Annotated[
    RequestContext, access("tickets:read", Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
]
Admin = Annotated[RequestContext, access("tickets:write", Role.ORG_ADMIN)]
Desk = Annotated[RequestContext, access("tickets:write", Role.ORG_ADMIN, Role.AGENT)]


# ---------------------------------------------------------------------------- rules


@rules.get("", summary="List tenant-scoped SLA policies.")
def list_rules(
    ctx: Reader,
    params: ListQuery,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
    priority: Annotated[Priority | None, Query()] = None,
    ticket_type: Annotated[TicketType | None, Query(alias="ticketType")] = None,
) -> ListResponse[SlaRuleOut]:
    stmt = service.query_rules(
        q=params.q,
        active=is_active,
        priority=priority.value if priority else None,
        ticket_type=ticket_type.value if ticket_type else None,
    )
    stmt = apply_sort(
        stmt, params.sort, service.RULE_SORT_FIELDS, [SlaRule.position, SlaRule.name], SlaRule.id
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[service.rule_out(r) for r in rows], pagination=pagination)


@rules.post("", status_code=201, summary="Create an SLA policy.")
def create_rule(ctx: Admin, body: SlaRuleCreate) -> DataResponse[SlaRuleOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    rule = service.create_rule(ctx.session, caller=ctx.caller, organization_id=org_id, data=body)
    return DataResponse(data=service.rule_out(rule))


@rules.get("/{id}", summary="View one SLA policy.")
def get_rule(ctx: Reader, id: uuid.UUID) -> DataResponse[SlaRuleOut]:
    return DataResponse(data=service.rule_out(service.get_rule(ctx.session, id)))


@rules.patch("/{id}", summary="Update an SLA policy (new tickets and recomputed ones use it).")
def update_rule(ctx: Admin, id: uuid.UUID, body: SlaRuleUpdate) -> DataResponse[SlaRuleOut]:
    rule = service.update_rule(
        ctx.session, caller=ctx.caller, rule=service.get_rule(ctx.session, id), data=body
    )
    return DataResponse(data=service.rule_out(rule))


@rules.delete("/{id}", status_code=204, summary="Delete an SLA policy.")
def delete_rule(ctx: Admin, id: uuid.UUID) -> None:
    service.delete_rule(ctx.session, caller=ctx.caller, rule=service.get_rule(ctx.session, id))


# ------------------------------------------------------------------------ calendars


def _calendar(ctx: RequestContext, calendar: BusinessCalendar) -> DataResponse[CalendarOut]:
    holidays = service.holidays_of(ctx.session, [calendar.id])[calendar.id]
    return DataResponse(data=service.calendar_out(calendar, holidays))


@calendars.get("", summary="List business-hours calendars with their holidays.")
def list_calendars(
    ctx: Reader,
    params: ListQuery,
    site_id: Annotated[uuid.UUID | None, Query(alias="siteId")] = None,
) -> ListResponse[CalendarOut]:
    stmt = service.query_calendars(q=params.q, site_id=site_id)
    stmt = apply_sort(
        stmt,
        params.sort,
        service.CALENDAR_SORT_FIELDS,
        [BusinessCalendar.name],
        BusinessCalendar.id,
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    holidays = service.holidays_of(ctx.session, [c.id for c in rows])
    return ListResponse(
        data=[service.calendar_out(c, holidays[c.id]) for c in rows], pagination=pagination
    )


@calendars.post("", status_code=201, summary="Create a business-hours calendar.")
def create_calendar(ctx: Admin, body: CalendarCreate) -> DataResponse[CalendarOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    calendar, holidays = service.create_calendar(
        ctx.session, caller=ctx.caller, organization_id=org_id, data=body
    )
    return DataResponse(data=service.calendar_out(calendar, holidays))


@calendars.get("/{id}", summary="View one calendar with its holidays.")
def get_calendar(ctx: Reader, id: uuid.UUID) -> DataResponse[CalendarOut]:
    return _calendar(ctx, service.get_calendar(ctx.session, id))


@calendars.patch("/{id}", summary="Update a calendar's name, zone, hours, site or default flag.")
def update_calendar(ctx: Admin, id: uuid.UUID, body: CalendarUpdate) -> DataResponse[CalendarOut]:
    calendar = service.update_calendar(
        ctx.session, caller=ctx.caller, calendar=service.get_calendar(ctx.session, id), data=body
    )
    return _calendar(ctx, calendar)


@calendars.delete("/{id}", status_code=204, summary="Delete a calendar no SLA rule uses.")
def delete_calendar(ctx: Admin, id: uuid.UUID) -> None:
    service.delete_calendar(
        ctx.session, caller=ctx.caller, calendar=service.get_calendar(ctx.session, id)
    )


@calendars.post(
    "/{id}/holidays", status_code=201, summary="Add a holiday (or a break) to a calendar."
)
def add_holiday(ctx: Admin, id: uuid.UUID, body: HolidayCreate) -> DataResponse[HolidayOut]:
    calendar = service.get_calendar(ctx.session, id)
    holiday = service.add_holiday(ctx.session, caller=ctx.caller, calendar=calendar, data=body)
    return DataResponse(data=HolidayOut.model_validate(holiday))


@calendars.delete(
    "/{id}/holidays/{holidayId}", status_code=204, summary="Remove a holiday from a calendar."
)
def remove_holiday(ctx: Admin, id: uuid.UUID, holidayId: uuid.UUID) -> None:
    calendar = service.get_calendar(ctx.session, id)
    holiday = service.get_holiday(ctx.session, calendar, holidayId)
    service.remove_holiday(ctx.session, caller=ctx.caller, calendar=calendar, holiday=holiday)


# ----------------------------------------------------------------------- automation


@automation.post(
    "/sla-scan",
    summary="Run the SLA due-soon and overdue escalation scan for the current organization.",
)
def run_scan(ctx: Desk) -> DataResponse[ScanOut]:
    org_id = ctx.require_organization()
    now = utcnow()
    result = sla_scan.scan(ctx.session, org_id, now)
    return DataResponse(
        data=ScanOut(
            warned=result.warned,
            breached=result.breached,
            escalated=result.escalated,
            scanned_at=now,
        )
    )
