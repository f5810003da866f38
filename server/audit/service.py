"""Write audit events in the caller's transaction, and read them back."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity
from server.audit.models import AuditEvent
from server.core.context import client_ip_var, request_id_var, user_agent_var
from server.core.listing import text_filter
from server.core.tenancy import Caller


def record(
    session: Session,
    *,
    action: str,
    category: AuditCategory,
    organization_id: uuid.UUID | None,
    actor: Caller | None = None,
    actor_user_id: uuid.UUID | None = None,
    actor_email: str | None = None,
    severity: AuditSeverity = AuditSeverity.INFO,
    entity_type: str | None = None,
    entity_id: uuid.UUID | str | None = None,
    message: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it commits or rolls back with the change."""
    event = AuditEvent(
        organization_id=organization_id,
        actor_user_id=actor.user_id if actor else actor_user_id,
        actor_email=actor.email if actor else actor_email,
        action=action,
        category=category,
        severity=severity,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        message=message,
        details=details or {},
        ip_address=client_ip_var.get(),
        user_agent=(user_agent_var.get() or "")[:300] or None,
        request_id=request_id_var.get(),
    )
    session.add(event)
    return event


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"jobTitle": {"from": ..., "to": ...}}`` for the fields that differ, in API names."""
    return {
        to_camel(key): {"from": before.get(key), "to": after.get(key)}
        for key in after
        if before.get(key) != after.get(key)
    }


def query_events(
    *,
    q: str | None = None,
    severity: AuditSeverity | None = None,
    category: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    actor_user_id: uuid.UUID | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> Select[Any]:
    stmt = select(AuditEvent)
    if q:
        stmt = stmt.where(
            text_filter(q, AuditEvent.message, AuditEvent.action, AuditEvent.actor_email)
        )
    if severity:
        stmt = stmt.where(AuditEvent.severity == severity)
    if category:
        stmt = stmt.where(AuditEvent.category == category)
    if entity_type:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if actor_user_id:
        stmt = stmt.where(AuditEvent.actor_user_id == actor_user_id)
    if created_from:
        stmt = stmt.where(AuditEvent.created_at >= created_from)
    if created_to:
        stmt = stmt.where(AuditEvent.created_at <= created_to)
    return stmt


CSV_COLUMNS = (
    "createdAt",
    "organizationId",
    "actorEmail",
    "action",
    "category",
    "severity",
    "entityType",
    "entityId",
    "message",
    "ipAddress",
    "userAgent",
    "requestId",
)


def _csv_safe(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula in spreadsheets (CSV injection).
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def to_csv(events: Iterable[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow(
            _csv_safe(v)
            for v in (
                e.created_at.isoformat(),
                e.organization_id,
                e.actor_email,
                e.action,
                e.category.value,
                e.severity.value,
                e.entity_type,
                e.entity_id,
                e.message,
                e.ip_address,
                e.user_agent,
                e.request_id,
            )
        )
    return out.getvalue()
