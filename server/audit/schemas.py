from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from common.enums import AuditCategory, AuditSeverity
from server.core.schemas import ApiModel


class AuditEventOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID | None
    created_at: datetime
    actor_user_id: uuid.UUID | None
    actor_email: str | None
    action: str
    entity_type: str | None
    entity_id: str | None
    severity: AuditSeverity
    category: AuditCategory
    message: str
    ip_address: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]
