from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from common.enums import AuditCategory, AuditSeverity, Role
from server.audit import service
from server.audit.models import AuditEvent
from server.audit.schemas import AuditEventOut
from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import ListResponse

router = api_router(prefix="/api/audit-logs", tags=["Audit"])
Reader = Annotated[RequestContext, access("audit:read", Role.ORG_ADMIN)]

SORT_FIELDS = {
    "createdAt": AuditEvent.created_at,
    "action": AuditEvent.action,
    "severity": AuditEvent.severity,
}
CSV_ROW_LIMIT = 100_000


@router.get(
    "",
    summary="List tenant-scoped audit events or export authorized audit rows as CSV.",
    response_model=ListResponse[AuditEventOut],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def list_audit_events(
    ctx: Reader,
    params: ListQuery,
    severity: Annotated[AuditSeverity | None, Query()] = None,
    category: Annotated[AuditCategory | None, Query()] = None,
    entity_type: Annotated[str | None, Query(alias="entityType", max_length=60)] = None,
    entity_id: Annotated[str | None, Query(alias="entityId", max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    actor_id: Annotated[uuid.UUID | None, Query(alias="actorId")] = None,
    created_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    created_to: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    format: Annotated[Literal["csv"] | None, Query()] = None,
) -> ListResponse[AuditEventOut] | Response:
    stmt = service.query_events(
        q=params.q,
        severity=severity,
        category=category,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor_user_id=actor_id,
        created_from=created_from,
        created_to=created_to,
    )
    stmt = apply_sort(
        stmt, params.sort, SORT_FIELDS, [AuditEvent.created_at.desc()], AuditEvent.id.desc()
    )
    if format == "csv":
        events = ctx.session.scalars(stmt.limit(CSV_ROW_LIMIT)).all()
        return Response(
            service.to_csv(events),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
        )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[AuditEventOut.model_validate(e) for e in rows], pagination=pagination)
