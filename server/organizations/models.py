from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.enums import OrganizationStatus
from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique


def enum_column(enum_cls: type[Any], length: int = 32) -> Enum:
    """Enums are stored as their wire values in a plain string column (no native type)."""
    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Organization(IdMixin, TimestampMixin, Base):
    """A tenant: one school district on the platform."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    status: Mapped[OrganizationStatus] = mapped_column(
        enum_column(OrganizationStatus, 16), default=OrganizationStatus.ACTIVE
    )
    contact_email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    website: Mapped[str | None] = mapped_column(String(300))
    #: logoUrl, primaryColor, accentColor
    branding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: general settings; the security policy lives under "security"
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)

    domain_rows: Mapped[list[OrganizationDomain]] = relationship(
        back_populates="organization",
        cascade="all, delete-orphan",
        order_by="OrganizationDomain.domain",
    )

    @property
    def domains(self) -> list[str]:
        """Email domains of this organization (sign-in domain matching)."""
        return [row.domain for row in self.domain_rows]


class OrganizationDomain(Base):
    """An email domain belongs to at most one organization, platform-wide."""

    __tablename__ = "organization_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    organization: Mapped[Organization] = relationship(back_populates="domain_rows")


class Department(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "departments"
    __extra_table_args__ = (live_unique("uq_departments_org_name", "organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    code: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))
    manager_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", use_alter=True)
    )
