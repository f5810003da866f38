"""Private uploaded files: one row per upload intent, from presign to claim.

An upload is ``pending`` from ``POST /api/uploads/presign`` until its bytes arrive
and check out (``complete``) or are refused for not being what they claimed
(``rejected``). A feature that uses the file (a ticket attachment, an import)
*claims* it once; unclaimed and expired uploads are cleaned up by a job.
Uploads are server-side only (not replicated): the attachment rows that point at
them are.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, TenantMixin, TimestampMixin


class UploadPurpose(StrEnum):
    TICKET_ATTACHMENT = "TICKET_ATTACHMENT"
    ASSET_ATTACHMENT = "ASSET_ATTACHMENT"
    IMPORT_FILE = "IMPORT_FILE"
    CHROME_SCREENSHOT = "CHROME_SCREENSHOT"


class UploadStatus(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    REJECTED = "rejected"


class Upload(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "uploads"
    __table_args__ = (
        # the cleanup job: expired pending rows, old unclaimed ones
        Index("ix_uploads_status_expires", "status", "expires_at"),
    )

    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    #: the name the user gave, made safe (no path, no control characters)
    file_name: Mapped[str] = mapped_column(String(255))
    #: the type claimed at presign; once complete, verified against the bytes
    mime_type: Mapped[str] = mapped_column(String(120))
    #: declared at presign; the upload must be exactly this long
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.PENDING.value)
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    completed_at: Mapped[datetime | None]
    #: when the upload link stops working
    expires_at: Mapped[datetime]
    #: what the file is meant for (checked again when it is claimed)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), default=None
    )
    #: no foreign key yet: the assets domain adds it with its table
    asset_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), default=None
    )
    #: set once, when a feature takes the file (an attachment, an import)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    #: why the bytes were refused (``rejected``), e.g. "looks like application/x-msdownload"
    rejected_reason: Mapped[str | None] = mapped_column(String(200), default=None)
