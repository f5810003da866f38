from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.enums import AuditCategory, AuditSeverity
from server.core.db import Base, IdMixin, TenantMixin, utcnow
from server.organizations.models import enum_column


class AuditEvent(IdMixin, TenantMixin, Base):
    __tablename__ = "audit_events"
    __tenant_optional__ = True  # platform-level events have no organization
    __table_args__ = (Index("ix_audit_events_org_created", "organization_id", "created_at"),)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_user_id: Mapped[uuid.UUID | None]
    actor_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(80), index=True)
    entity_type: Mapped[str | None] = mapped_column(String(60))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[AuditSeverity] = mapped_column(enum_column(AuditSeverity, 16))
    category: Mapped[AuditCategory] = mapped_column(enum_column(AuditCategory))
    message: Mapped[str] = mapped_column(Text, default="")
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
