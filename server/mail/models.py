from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from common.enums import EmailStatus
from server.core.db import Base, IdMixin, utcnow
from server.organizations.models import enum_column


class OutboxEmail(IdMixin, Base):
    """An email written in the transaction that caused it and sent later by a job."""

    __tablename__ = "outbox_emails"
    __table_args__ = (Index("ix_outbox_emails_status_next", "status", "next_attempt_at"),)

    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    #: what caused it (e.g. "password_reset"), for filtering and tests
    kind: Mapped[str] = mapped_column(String(60))
    #: the body carries a one-time link or code: it is removed once the mail is sent
    #: (or given up on), so the database does not keep a working secret
    holds_secret: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[EmailStatus] = mapped_column(
        enum_column(EmailStatus, 16), default=EmailStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
