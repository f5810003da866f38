"""SLA policies. (Skeleton: the SLA work extends this with calendars and holidays.)"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin


class SlaRule(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "sla_rules"

    name: Mapped[str] = mapped_column(String(120))
    priority: Mapped[str | None] = mapped_column(String(16))
    ticket_type: Mapped[str | None] = mapped_column(String(24))
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE")
    )
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
