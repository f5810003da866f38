from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from common.enums import Role
from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique
from server.organizations.models import enum_column


class User(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A person who signs in. Super admins belong to no organization."""

    __tablename__ = "users"
    __tenant_optional__ = True
    # Emails are stored lower-cased and identify an account platform-wide: login
    # takes an email and a password, not an organization.
    __extra_table_args__ = (
        live_unique("uq_users_email", "email"),
        # the people list is sorted by name within an organization
        Index("ix_users_org_name", "organization_id", "last_name", "first_name"),
    )

    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[Role] = mapped_column(enum_column(Role), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"), index=True
    )
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    job_title: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(40))

    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None]
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]

    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mfa_secret: Mapped[str | None] = mapped_column(String(64))
    #: the last 30-second TOTP step accepted, so a code cannot be used twice
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)
    #: argon2 hashes of unused one-time backup codes
    mfa_backup_codes: Mapped[list[str]] = mapped_column(default=list)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email
